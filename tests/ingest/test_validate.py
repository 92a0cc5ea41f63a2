"""Each validation rule on its own, on small frames (pure functions, no I/O)."""

from __future__ import annotations

import datetime as dt
import random

import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from core.obis import ACTIVE_IMPORT_INTERVAL, ACTIVE_IMPORT_TOTAL, STANDARD_EVENT_LOG, VOLTAGE_L1
from core.reading import STATUS_CLOCK_ADJUSTED, STATUS_CLOCK_INVALID, STATUS_DATA_NOT_VALID, STATUS_POWER_DOWN
from core.timezones import local_midnight_utc
from ingest import validate as v
from ingest.codes import Reason
from ingest.config import VeeConfig
from ingest.quantities import classify
from tests.ingest.builders import DAY, STEP, frame, rows

CFG = VeeConfig()
NOW = local_midnight_utc(DAY + dt.timedelta(days=2))
T0 = local_midnight_utc(DAY)


def prepared(
    records: list[dict[str, object]],
    *,
    key: int = 1,
    installed: dt.date = dt.date(2026, 1, 1),
    removed: dt.date | None = None,
    rated_mwh: int = 5_750_000,
    capacity_mwh: int = 10**12,
    hist_mwh: int | None = None,
) -> pl.LazyFrame:
    until = local_midnight_utc(removed + dt.timedelta(days=1)) if removed else None
    return classify(
        frame(records)
        .lazy()
        .with_columns(
            meter_key=pl.lit(key, pl.Int64),
            in_service_from=pl.lit(local_midnight_utc(installed)).dt.cast_time_unit("us"),
            in_service_until=pl.lit(until, pl.Datetime("us", "UTC")),
            rated_mwh=pl.lit(rated_mwh, pl.Int64),
            capacity_mwh=pl.lit(capacity_mwh, pl.Int64),
            hist_interval_mwh=pl.lit(hist_mwh, pl.Int64),
            reason=pl.lit(None, pl.String),
            flags=pl.lit(""),
        )
    )


def reasons(lf: pl.LazyFrame) -> list[str | None]:
    return lf.sort("ts").collect().get_column("reason").to_list()


def flags(lf: pl.LazyFrame) -> list[str]:
    return lf.sort("ts").collect().get_column("flags").to_list()


def intervals(values: list[int], **kw: object) -> list[dict[str, object]]:
    return rows("M1", ACTIVE_IMPORT_INTERVAL, [(T0 + STEP * (i + 1), x) for i, x in enumerate(values)], **kw)  # type: ignore[arg-type]


def test_unknown_meter_is_quarantined() -> None:
    out = v.unknown_meter(prepared(intervals([1]), key=-1), CFG, NOW)
    assert reasons(out) == [Reason.UNKNOWN_METER]


def test_unit_must_fit_the_quantity() -> None:
    good = intervals([1], unit="kWh")
    bad = rows("M1", ACTIVE_IMPORT_TOTAL, [(T0, 5)], unit="V")
    volts = rows("M1", VOLTAGE_L1, [(T0 + STEP, 230)], unit="V")  # not energy: any unit
    out = v.unit_fits(prepared(good + bad + volts), CFG, NOW)
    assert reasons(out) == [Reason.UNIT, None, None]


def test_before_install_and_retired() -> None:
    lf = prepared(intervals([1]), installed=DAY + dt.timedelta(days=1))
    assert reasons(v.before_install(lf, CFG, NOW)) == [Reason.BEFORE_INSTALL]
    lf = prepared(intervals([1]), removed=DAY - dt.timedelta(days=1))
    assert reasons(v.retired(lf, CFG, NOW)) == [Reason.RETIRED_METER]
    lf = prepared(intervals([1]), installed=DAY, removed=DAY)
    assert reasons(v.retired(v.before_install(lf, CFG, NOW), CFG, NOW)) == [None]


def test_future_allows_the_configured_skew() -> None:
    now = T0 + STEP * 2
    lf = prepared(intervals([1, 1, 1, 1]))
    out = v.future(lf, CFG, now)  # skew 5 min: the third interval end is 15 min ahead
    assert reasons(out) == [None, None, Reason.FUTURE, Reason.FUTURE]


def test_off_grid_interval_ends() -> None:
    records = rows("M1", ACTIVE_IMPORT_INTERVAL, [(T0 + STEP, 1), (T0 + STEP + dt.timedelta(minutes=7), 1)])
    records += rows("M1", ACTIVE_IMPORT_TOTAL, [(T0 + dt.timedelta(minutes=8), 1)])  # registers: any time
    # by time: the register at 00:08, the interval at 00:15, the one at 00:22
    assert reasons(v.off_grid(prepared(records), CFG, NOW)) == [None, None, Reason.OFF_GRID]


@pytest.mark.parametrize(
    ("status", "reason", "flag"),
    [
        (STATUS_DATA_NOT_VALID, Reason.DATA_NOT_VALID, ""),
        (STATUS_CLOCK_INVALID, Reason.CLOCK_INVALID, ""),
        (STATUS_CLOCK_ADJUSTED, None, ",clock_adjusted"),
        (STATUS_POWER_DOWN, None, ",outage"),
        (0, None, ""),
    ],
)
def test_status_bits(status: int, reason: str | None, flag: str) -> None:
    out = v.status_bits(prepared(intervals([1], status=status)), CFG, NOW)
    assert reasons(out) == [reason]
    assert flags(out) == [flag]


def test_conflicting_values_are_all_quarantined() -> None:
    records = intervals([5]) + intervals([6]) + rows("M1", ACTIVE_IMPORT_INTERVAL, [(T0 + STEP * 2, 7)])
    out = v.conflicts(prepared(records), CFG, NOW)
    assert reasons(out) == [Reason.CONFLICT, Reason.CONFLICT, None]


@settings(max_examples=80, deadline=None)
@given(
    keys=st.lists(
        st.tuples(st.integers(1, 3), st.integers(1, 4), st.integers(0, 3), st.booleans()),
        min_size=1,
        max_size=40,
    )
)
def test_conflicts_on_sorted_rows_match_the_window(keys: list[tuple[int, int, int, bool]]) -> None:
    """Neighbour comparisons on rows sorted by meter, quantity and time find the same conflicts
    as the window over the key, whichever rows were already quarantined."""
    table = pl.concat(
        [
            prepared(intervals([value]), key=meter)
            .with_columns(
                ts=pl.col("ts") + STEP * slot, reason=pl.lit("future" if dirty else None, pl.String)
            )
            .collect()
            for meter, slot, value, dirty in keys
        ]
    ).sort(["meter_key", "qcode", "ts"], maintain_order=True)
    by_window = v.conflicts(table.lazy(), CFG, NOW).collect()
    by_neighbours = v.conflicts(table.lazy(), CFG, NOW, presorted=True).collect()
    assert by_neighbours.equals(by_window)


def test_negative_interval_and_rated_spike() -> None:
    # 60 A x 230 V x 1 phase x 15 min = 3450 Wh
    lf = prepared(intervals([-1, 3450, 3451]), rated_mwh=60 * 230 * 15 * 1000 // 60)
    out = v.spike_rated(v.negative_interval(lf, CFG, NOW), CFG, NOW)
    assert reasons(out) == [Reason.NEGATIVE, None, Reason.SPIKE_RATED]


def test_register_rollover_is_unwrapped_other_decreases_are_negative() -> None:
    capacity = 1_000_000  # Wh
    values = [999_000, 999_900, 100, 50, 400]  # wrap, then a decrease
    records = rows("M1", ACTIVE_IMPORT_TOTAL, [(T0 + STEP * i, x) for i, x in enumerate(values)])
    out = v.register_decrease(prepared(records, capacity_mwh=capacity * 1000), CFG, NOW)
    assert reasons(out) == [None, None, None, Reason.NEGATIVE, None]
    assert flags(out) == ["", "", ",rollover", "", ""]


def test_spike_against_history() -> None:
    lf = prepared(intervals([100, 600, 5000]), hist_mwh=50_000)  # mean 50 Wh; x10 = 500 Wh
    assert flags(v.spike_history(lf, CFG, NOW)) == ["", ",spike_history", ",spike_history"]
    quiet = prepared(intervals([400]), hist_mwh=10_000)  # above 10 x 10 Wh but below the 500 Wh floor
    assert flags(v.spike_history(quiet, CFG, NOW)) == [""]


def test_recorded_outage_marks_intervals_inside_it() -> None:
    down, up = T0 + STEP * 2 + dt.timedelta(minutes=5), T0 + STEP * 4 + dt.timedelta(minutes=1)
    records = intervals([10, 10, 3, 0, 2, 10])
    records += rows("M1", STANDARD_EVENT_LOG, [(down, 1), (up, 2)], unit="")
    out = v.outages(prepared(records), CFG, NOW).filter(pl.col("quantity") == ACTIVE_IMPORT_INTERVAL)
    # power down at 00:35, up at 01:01: the intervals ending 00:45, 01:00 and 01:15 overlap it
    assert flags(out) == ["", "", ",outage", ",outage", ",outage", ""]


@settings(max_examples=80, deadline=None)
@given(
    series=st.lists(
        st.tuples(
            st.integers(1, 3), st.sampled_from([10, 20]), st.sets(st.integers(1, 40), min_size=1, max_size=40)
        ),
        min_size=1,
        max_size=6,
    ),
    outages=st.lists(
        st.tuples(st.integers(1, 3), st.integers(0, 45 * 15), st.one_of(st.none(), st.integers(0, 300))),
        max_size=5,
    ),
)
def test_in_outage_on_sorted_series_matches_the_general_join(
    series: list[tuple[int, int, set[int]]], outages: list[tuple[int, int, int | None]]
) -> None:
    """The as-of join straight on rows sorted by time within each (meter, quantity) series
    (several series per meter, so time falls back between them) marks exactly the intervals
    the general join marks: a guard on Polars' as-of join by groups."""
    records = {(key, code, T0 + STEP * slot) for key, code, slots in series for slot in slots}
    utc = pl.Datetime("us", "UTC")
    rows_ = pl.DataFrame(
        sorted(records), schema={"meter_key": pl.Int64, "qcode": pl.Int64, "ts": utc}, orient="row"
    )
    minutes = dt.timedelta(minutes=1)
    windows = pl.DataFrame(
        [
            (key, T0 + minutes * down, None if up is None else T0 + minutes * (down + up))
            for key, down, up in outages
        ],
        schema={"meter_key": pl.Int64, "down_ts": utc, "up_ts": utc},
        orient="row",
    ).with_columns(pl.col("up_ts").fill_null(dt.datetime(9999, 1, 1, tzinfo=dt.UTC)))
    # one window per power-down time, as the event log gives (a repeat is one event)
    windows = windows.unique(["meter_key", "down_ts"], keep="first", maintain_order=True)
    fast = v.in_outage(rows_.lazy(), windows.lazy(), STEP, presorted=True).collect()
    general = v.in_outage(rows_.lazy(), windows.lazy(), STEP).collect()
    assert fast.equals(general)
    # and by the plain definition: the latest power-down at or before the interval's end,
    # with the power back after the interval began
    for key, _, ts, hit in fast.iter_rows():
        downs = [(d, u) for k, d, u in windows.iter_rows() if k == key and d <= ts]
        latest = max(downs, key=lambda w: w[0], default=None)
        expected = latest is not None and latest[1] > ts - STEP
        assert hit == expected


def test_zero_runs_without_outage_are_suspect() -> None:
    cfg = VeeConfig(zero_run_minutes=60)
    out = v.zero_runs(prepared(intervals([5, 0, 0, 0, 0, 5, 0, 0, 5])), cfg, NOW)
    assert flags(out) == ["", *[",zero_run"] * 4, "", "", "", ""]


def test_zero_run_explained_by_outage_is_not_suspect() -> None:
    cfg = VeeConfig(zero_run_minutes=60)
    lf = prepared(intervals([0, 0, 0, 0, 0]))
    lf = lf.with_columns(flags=pl.lit(",outage"))
    assert flags(v.zero_runs(lf, cfg, NOW)) == [",outage"] * 5


@settings(max_examples=80, deadline=None)
@given(
    series=st.lists(st.lists(st.sampled_from([0, 0, 0, 7]), min_size=1, max_size=30), min_size=1, max_size=3),
    slots=st.integers(1, 6),
    seed=st.randoms(use_true_random=False),
)
def test_zero_runs_match_the_plain_definition(
    series: list[list[int]], slots: int, seed: random.Random
) -> None:
    """Whatever order the rows come in, a zero is flagged exactly when its run of zeros (in its
    meter's series by time) is at least `zero_run_minutes` long; no row is lost or changed."""
    cfg = VeeConfig(zero_run_minutes=slots * CFG.interval_minutes)
    parts = [prepared(intervals(values), key=key) for key, values in enumerate(series, start=1)]
    table = pl.concat(parts).collect()
    table = table[seed.sample(range(table.height), table.height)]
    out = v.zero_runs(table.lazy(), cfg, NOW).collect()
    by = ["meter_key", "ts"]
    assert out.select(pl.exclude("flags")).sort(by).equals(table.select(pl.exclude("flags")).sort(by))
    expected: dict[tuple[int, int], bool] = {}
    for key, values in enumerate(series, start=1):
        i = 0
        while i < len(values):
            j = i
            while j < len(values) and values[j] == values[i]:
                j += 1
            for k in range(i, j):
                expected[(key, k)] = values[i] == 0 and j - i >= slots
            i = j
    got = {
        (key, int((ts - T0) / STEP) - 1): flag == ",zero_run"
        for key, ts, flag in out.select("meter_key", "ts", "flags").iter_rows()
    }
    assert got == expected


def test_rules_keep_the_first_reason() -> None:
    lf = prepared(intervals([-5], status=STATUS_DATA_NOT_VALID), key=-1)
    assert reasons(v.validate(lf, CFG, NOW)) == [Reason.UNKNOWN_METER]
