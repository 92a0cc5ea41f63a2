"""Aggregation transforms: TOU split, register-based days with rollover, day findings."""

from __future__ import annotations

import datetime as dt

import polars as pl
from hypothesis import given, settings
from hypothesis import strategies as st

from core.obis import ACTIVE_IMPORT_INTERVAL
from core.timezones import local_midnight_utc
from ingest import aggregate
from ingest.config import VeeConfig
from ingest.tou import in_force, load_calendars
from tests.ingest.builders import DAY, STEP

CFG = VeeConfig()
T0 = local_midnight_utc(DAY)
METERS = pl.LazyFrame({"meter_key": [1, 2], "meter_id": ["M1", "M2"]})


def day_of_intervals(mwh: int) -> pl.LazyFrame:
    return pl.LazyFrame(
        {
            "meter_key": [1] * 96,
            "meter_id": ["M1"] * 96,
            "quantity": [ACTIVE_IMPORT_INTERVAL] * 96,
            "ts": [T0 + STEP * k for k in range(1, 97)],
            "mwh": [mwh] * 96,
            "state": ["valid"] * 96,
            "method": [None] * 96,
        },
        schema_overrides={"ts": pl.Datetime("us", "UTC"), "method": pl.String},
    )


def test_tou_split_by_circular_16_adds_up() -> None:
    tou = in_force(load_calendars(), DAY).lookup(DAY)  # a Tuesday
    intervals = aggregate.interval_days(day_of_intervals(1500), tou, CFG)  # 1.5 Wh each
    no_registers = pl.LazyFrame(
        schema={"meter_key": pl.Int64, "advance_mwh": pl.Int64, "estimated": pl.Boolean}
    )
    row = aggregate.daily(intervals, no_registers, METERS, DAY).collect().row(0, named=True)
    # offpeak 22:00-04:00 = 24 slots, peak 09:30-11:30 and 17:00-20:00 = 20 slots, normal 52
    assert (row["offpeak_wh"], row["normal_wh"], row["peak_wh"]) == (36, 78, 30)
    assert row["energy_wh"] == 144 == row["offpeak_wh"] + row["normal_wh"] + row["peak_wh"]
    assert row["basis"] == "intervals" and row["intervals"] == 96


def test_interval_sums_are_known_by_what_they_are_made_of() -> None:
    """Stored interval sums stand in for a partition's readings only while their basis is the
    same: the same files (in any order), interval length and TOU bands."""
    tou = in_force(load_calendars(), DAY).lookup(DAY)
    basis = aggregate.sums_basis(["a.parquet", "b.parquet"], tou, CFG)
    assert aggregate.sums_basis(["b.parquet", "a.parquet"], tou, CFG) == basis
    assert aggregate.sums_basis(["a.parquet", "c.parquet"], tou, CFG) != basis
    assert aggregate.sums_basis(["a.parquet", "b.parquet"], tou, VeeConfig(interval_minutes=30)) != basis
    one_minute_moved = tou.with_columns(
        tou=pl.when(pl.col("minute") == 600).then(pl.lit("offpeak")).otherwise(pl.col("tou"))
    )
    assert aggregate.sums_basis(["a.parquet", "b.parquet"], one_minute_moved, CFG) != basis


@settings(max_examples=40, deadline=None)
@given(
    rows=st.lists(
        st.tuples(
            st.sampled_from([(1, "M1"), (2, "M2"), (-1, "U1"), (-1, "U2")]),  # U*: not registered
            st.integers(1, 96),  # the slot
            st.integers(0, 5_000),  # mWh
            st.sampled_from(["valid", "estimated", "quarantined"]),
            st.sampled_from(["interpolation", "outage"]),  # an estimate's method
        ),
        max_size=60,
    )
)
def test_interval_sums_are_each_meters_own(
    rows: list[tuple[tuple[int, str], int, int, str, str]],
) -> None:
    """Per meter id, whether the registry knows it or not (unknown meters share key -1):
    the published (valid, estimated) intervals' energy, its TOU parts by the interval's
    start, the measured count and the estimated part."""
    tou = in_force(load_calendars(), DAY).lookup(DAY)
    frame = pl.LazyFrame(
        {
            "meter_key": [m[0] for m, *_ in rows],
            "meter_id": [m[1] for m, *_ in rows],
            "quantity": [ACTIVE_IMPORT_INTERVAL] * len(rows),
            "ts": [T0 + STEP * slot for _, slot, *_ in rows],
            "mwh": [mwh for _, _, mwh, _, _ in rows],
            "state": [state for *_, state, _ in rows],
            "method": [method if state == "estimated" else None for *_, state, method in rows],
        },
        schema_overrides={"meter_key": pl.Int64, "ts": pl.Datetime("us", "UTC"), "method": pl.String},
    )
    band = dict(tou.collect().select("minute", "tou").iter_rows())
    expected: dict[str, list[int]] = {}
    for (key, meter), slot, mwh, state, method in rows:
        if state == "quarantined":
            continue
        sums = expected.setdefault(meter, [key, 0, 0, 0, 0, 0, 0])
        tou_band = band[(slot - 1) * 15 % 1440]  # the band of the minute the interval starts
        estimate = state == "estimated"
        sums[1:] = [
            sums[1] + mwh,
            sums[2] + (mwh if tou_band == "offpeak" else 0),
            sums[3] + (mwh if tou_band == "normal" else 0),
            sums[4] + (not estimate),
            sums[5] + (mwh if estimate else 0),
            sums[6] + (estimate and method != "outage"),
        ]
    got = aggregate.interval_days(frame, tou, CFG).collect()
    columns = ["meter_key", "total_mwh", "off_mwh", "normal_mwh", "intervals", "est_mwh", "est_slots"]
    assert {r[0]: list(r[1:]) for r in got.select("meter_id", *columns).rows()} == expected
    assert got.get_column("zero_slots").to_list() == [0] * got.height


def test_register_day_unwraps_a_rollover() -> None:
    def ends(mwh: int) -> pl.LazyFrame:
        return pl.LazyFrame(
            {"meter_key": [2], "quantity": ["1.0.1.8.0.255"], "mwh": [mwh], "estimated": [False]}
        )

    capacity = pl.LazyFrame({"meter_key": [2], "capacity_mwh": [1_000_000_000]})
    adv = aggregate.advances(ends(999_990_000), ends(5_000), capacity)
    no_intervals = aggregate.interval_days(
        day_of_intervals(0).clear(), in_force(load_calendars(), DAY).lookup(DAY), CFG
    )
    row = aggregate.daily(no_intervals, adv, METERS, DAY).collect().row(0, named=True)
    assert row["meter_id"] == "M2" and row["basis"] == "registers" and row["energy_wh"] == 15


def test_findings_sum_check_and_usage() -> None:
    intervals = pl.LazyFrame(
        {"meter_key": [1], "meter_id": ["M1"], "total_mwh": [10_000_000], "est_slots": [0], "zero_slots": [0]}
    )
    adv = pl.LazyFrame({"meter_key": [1], "advance_mwh": [12_000_000]})
    day_rows = pl.LazyFrame({"meter_id": ["M1"], "energy_wh": [10_000]})
    history = pl.LazyFrame(
        {
            "meter_id": ["M1"] * 10,
            "date": [DAY - dt.timedelta(days=n) for n in range(1, 11)],
            "energy_wh": [3_000] * 10,
        }
    )
    usage = aggregate.usage_history(history, DAY, CFG)
    found = aggregate.findings(intervals, adv, day_rows, usage, METERS, day=DAY, complete=True, cfg=CFG)
    rules = dict(found.select("rule", "value").collect().iter_rows())
    assert rules == {"sum_check": 10_000, "high_usage": 10_000}


def test_a_zero_run_is_a_day_finding_too() -> None:
    flags = [",zero_run" if k < 60 else "" for k in range(96)]
    readings = day_of_intervals(0).with_columns(flags=pl.Series(flags))
    tou = in_force(load_calendars(), DAY).lookup(DAY)
    intervals = aggregate.interval_days(readings, tou, CFG)
    adv = pl.LazyFrame(schema={"meter_key": pl.Int64, "advance_mwh": pl.Int64})
    empty = pl.LazyFrame(schema={"meter_id": pl.String, "date": pl.Date, "energy_wh": pl.Int64})
    usage = aggregate.usage_history(empty, DAY, CFG)
    found = aggregate.findings(intervals, adv, empty, usage, METERS, day=DAY, complete=True, cfg=CFG)
    assert found.select("meter_id", "rule", "value", "limit").collect().rows() == [
        ("M1", "zero_run", 60, CFG.zero_run_minutes // CFG.interval_minutes)
    ]


@settings(max_examples=100, deadline=None)
@given(
    rows=st.lists(
        st.tuples(
            st.integers(-1, 2**62),
            st.datetimes(dt.datetime(1, 1, 2), dt.datetime(9999, 12, 30), timezones=st.just(dt.UTC)),
        ),
        min_size=1,
        max_size=60,
    )
)
def test_meter_time_key_orders_as_meter_then_time(rows: list[tuple[int, dt.datetime]]) -> None:
    frame = pl.DataFrame(rows, schema={"meter_key": pl.Int64, "ts": pl.Datetime("us", "UTC")}, orient="row")
    by_key = frame.sort(aggregate.meter_time_key(), maintain_order=True)
    assert by_key.equals(frame.sort("meter_key", "ts", maintain_order=True))


DAY_ROW = st.tuples(
    st.sampled_from(["A", "B", "C"]), st.integers(1, 30), *[st.integers(0, 10**9)] * 5
)


@settings(max_examples=150, deadline=None)
@given(
    stored=st.lists(DAY_ROW, max_size=25, unique_by=lambda r: (r[0], r[1])),
    fresh=st.lists(DAY_ROW, max_size=10, unique_by=lambda r: (r[0], r[1])),
    replaced_days=st.sets(st.integers(1, 30), max_size=4),
)
def test_a_month_updated_is_the_month_made_whole(
    stored: list[tuple[object, ...]], fresh: list[tuple[object, ...]], replaced_days: set[int]
) -> None:
    """The stored monthly rows, less the replaced days' daily rows, plus the new ones, are
    exactly the monthly rows of the month's daily rows as they now are."""
    columns = ["meter_id", "day", "energy_wh", "offpeak_wh", "normal_wh", "peak_wh", "estimated_wh"]

    def daily(rows: list[tuple[object, ...]]) -> pl.LazyFrame:
        frame = pl.DataFrame(rows, schema=columns, orient="row").with_columns(pl.col(c).cast(pl.Int64)
                                                                             for c in columns[2:])
        return frame.lazy().with_columns(date=pl.date(2026, 11, pl.col("day"))).drop("day")

    # a run writes whole days: the days it recomputes are replaced in full
    days = replaced_days | {r[1] for r in fresh}
    gone = [r for r in stored if r[1] in days]
    now = [r for r in stored if r[1] not in days] + [r for r in fresh if r[1] in days]
    before = aggregate.monthly(daily(stored), "2026-11")
    updated = aggregate.monthly_updated(before, daily(fresh), daily(gone), "2026-11").collect()
    whole = aggregate.monthly(daily(now), "2026-11").collect()
    assert updated.sort("meter_id").equals(whole.sort("meter_id"))
