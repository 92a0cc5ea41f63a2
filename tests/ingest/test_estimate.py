"""Estimation: interpolation, like days, outage zeros, exact scaling to registers."""

from __future__ import annotations

import datetime as dt

import polars as pl
from hypothesis import given, settings
from hypothesis import strategies as st

from core.obis import ACTIVE_IMPORT_INTERVAL
from core.timezones import local_midnight_utc
from ingest.config import VeeConfig
from ingest.estimate import (
    day_type,
    estimate,
    like_day_meters,
    like_days,
    missing_slots,
    scale_to_registers,
)
from tests.ingest.builders import DAY, STEP

CFG = VeeConfig()
NOW = local_midnight_utc(DAY + dt.timedelta(days=1))
T0 = local_midnight_utc(DAY)
NO_WINDOWS = pl.LazyFrame(
    schema={"meter_key": pl.Int64, "down_ts": pl.Datetime("us", "UTC"), "up_ts": pl.Datetime("us", "UTC")}
)
NO_LIKE = pl.LazyFrame(
    schema={
        "meter_key": pl.Int64,
        "quantity": pl.Categorical,
        "ts": pl.Datetime("us", "UTC"),
        "mwh": pl.Int64,
        "state": pl.String,
    }
)
NO_ADVANCE = pl.LazyFrame(schema={"meter_key": pl.Int64, "advance_mwh": pl.Int64})


def readings(values: dict[int, int]) -> pl.LazyFrame:
    """Slot number (1..96) -> mWh of valid intervals of meter 1."""
    slots = sorted(values)
    return pl.LazyFrame(
        {
            "meter_key": [1] * len(slots),
            "meter_id": ["M1"] * len(slots),
            "quantity": [ACTIVE_IMPORT_INTERVAL] * len(slots),
            "ts": [T0 + STEP * k for k in slots],
            "mwh": [values[k] for k in slots],
            "state": ["valid"] * len(slots),
            "kind": ["interval"] * len(slots),
        },
        schema={
            "meter_key": pl.Int64,
            "meter_id": pl.String,
            "quantity": pl.Categorical,
            "ts": pl.Datetime("us", "UTC"),
            "mwh": pl.Int64,
            "state": pl.String,
            "kind": pl.String,
        },
    )


def estimated(
    lf: pl.LazyFrame,
    like: pl.LazyFrame = NO_LIKE,
    advance: pl.LazyFrame = NO_ADVANCE,
    windows: pl.LazyFrame = NO_WINDOWS,
    now: dt.datetime = NOW,
) -> dict[int, tuple[int, str]]:
    out = estimate(lf, windows, like, advance, day=DAY, cfg=CFG, now=now).collect()
    return {
        int((ts - T0) / STEP): (mwh, method)
        for ts, mwh, method in out.select("ts", "mwh", "method").iter_rows()
    }


def test_short_gap_is_interpolated_linearly() -> None:
    values = {k: 1000 for k in range(1, 97)}
    values[10], values[14] = 1000, 5000
    for k in (11, 12, 13):
        del values[k]
    assert estimated(readings(values)) == {
        11: (2000, "interpolation"),
        12: (3000, "interpolation"),
        13: (4000, "interpolation"),
    }


def test_long_gap_uses_the_like_day_profile() -> None:
    values = {k: 1000 for k in range(1, 97) if not 20 <= k < 40}  # 5 hours missing
    # two like days, 6 and 8 mWh in every slot: their mean is 7
    like = pl.concat(
        [
            readings({k: mwh for k in range(1, 97)}).with_columns(pl.col("ts") - dt.timedelta(days=weeks * 7))
            for weeks, mwh in ((1, 6), (2, 8))
        ]
    ).select("meter_key", "quantity", "ts", "mwh", "state")
    result = estimated(readings(values), like=like)
    assert set(result) == set(range(20, 40))
    assert {v for v in result.values()} == {(7, "like_day")}


def test_like_days_fill_a_long_gap_up_to_midnight() -> None:
    """The slot ending at local midnight takes the like days' slot ending at their midnight
    (keyed by the minute the interval starts, so it is not lost at the day boundary)."""
    values = {k: 1000 for k in range(1, 80)}  # 80..96 missing: over 4 hours up to midnight
    like = pl.concat(
        [
            readings({k: mwh for k in range(1, 97)}).with_columns(pl.col("ts") - dt.timedelta(days=weeks * 7))
            for weeks, mwh in ((1, 6), (2, 8))
        ]
    ).select("meter_key", "quantity", "ts", "mwh", "state")
    # the last slots are due for estimation once the lag after midnight has passed
    result = estimated(readings(values), like=like, now=NOW + dt.timedelta(minutes=CFG.estimate_lag_minutes))
    assert result == {k: (7, "like_day") for k in range(80, 97)}


def test_gap_inside_a_recorded_outage_is_zero() -> None:
    values = {k: 1000 for k in range(1, 97) if k not in (30, 31)}
    windows = pl.LazyFrame(
        {"meter_key": [1], "down_ts": [T0 + STEP * 29], "up_ts": [T0 + STEP * 31]},
        schema_overrides={"down_ts": pl.Datetime("us", "UTC"), "up_ts": pl.Datetime("us", "UTC")},
    )
    assert estimated(readings(values), windows=windows) == {30: (0, "outage"), 31: (0, "outage")}


def test_scaled_to_the_register_advance() -> None:
    values = {k: 1000 for k in range(1, 97) if k not in (50, 51)}
    advance = pl.LazyFrame({"meter_key": [1], "advance_mwh": [94 * 1000 + 5001]})
    result = estimated(readings(values), advance=advance)
    assert sum(v for v, _ in result.values()) == 5001
    assert {m for _, m in result.values()} == {"interpolation+scaled"}


@settings(max_examples=60, deadline=None)
@given(estimates=st.lists(st.integers(0, 10**6), min_size=1, max_size=40), residual=st.integers(0, 10**9))
def test_scaling_sums_exactly(estimates: list[int], residual: int) -> None:
    gaps = pl.LazyFrame(
        {
            "meter_key": [1] * len(estimates),
            "meter_id": ["M1"] * len(estimates),
            "quantity": [ACTIVE_IMPORT_INTERVAL] * len(estimates),
            "ts": [T0 + STEP * (k + 1) for k in range(len(estimates))],
            "mwh": estimates,
            "method": ["interpolation"] * len(estimates),
        },
        schema_overrides={"ts": pl.Datetime("us", "UTC")},
    )
    valid = pl.LazyFrame(
        schema={
            "meter_key": pl.Int64, "quantity": pl.Categorical, "ts": pl.Datetime("us", "UTC"), "mwh": pl.Int64
        }
    )
    advance = pl.LazyFrame({"meter_key": [1], "advance_mwh": [residual]})
    out = scale_to_registers(gaps, valid, advance).collect()
    assert out.get_column("mwh").sum() == residual
    assert out.get_column("mwh").min() >= 0


def test_like_days_are_the_same_day_type() -> None:
    tuesday = dt.date(2026, 11, 10)
    available = {tuesday - dt.timedelta(days=n) for n in range(1, 22)}
    assert like_days(tuesday, available, CFG) == [
        dt.date(2026, 11, 9),
        dt.date(2026, 11, 6),
        dt.date(2026, 11, 5),
    ]
    sunday = dt.date(2026, 11, 15)  # the store has Sundays Nov 8, Nov 1 and Oct 25 in reach
    assert [day_type(d) for d in like_days(sunday, available, CFG)] == [2, 2, 2]


def _reference_gaps(valid: dict[int, int], slots: int) -> dict[int, tuple[int, int, int | None, int | None]]:
    """Slot -> (run length, place in run, value before, value after): the plain definition."""
    missing = [k for k in range(1, slots + 1) if k not in valid]
    out: dict[int, tuple[int, int, int | None, int | None]] = {}
    runs: list[list[int]] = []
    for k in missing:
        if runs and runs[-1][-1] == k - 1:
            runs[-1].append(k)
        else:
            runs.append([k])
    for run in runs:
        for place, k in enumerate(run, start=1):
            out[k] = (len(run), place, valid.get(run[0] - 1), valid.get(run[-1] + 1))
    return out


@settings(max_examples=120, deadline=None)
@given(
    present=st.dictionaries(st.integers(-2, 99), st.integers(0, 10**6), max_size=60),
    quarantined=st.sets(st.integers(1, 96), max_size=10),
    lag_slots=st.integers(0, 100),
)
def test_missing_slots_match_the_plain_definition(
    present: dict[int, int], quarantined: set[int], lag_slots: int
) -> None:
    """Every grid slot without a valid value is missing exactly once, with its run and the valid
    values right next to it, whatever values lie outside the day or the estimation lag."""
    now = T0 + STEP * lag_slots + dt.timedelta(minutes=CFG.estimate_lag_minutes)
    valid = readings(present)
    other = readings({k: 1 for k in quarantined}).with_columns(state=pl.lit("quarantined"))
    got = missing_slots(pl.concat([valid, other]), DAY, CFG, now).collect()
    slots = min(max(lag_slots, 0), 96)
    expected = _reference_gaps(present, slots) if present or quarantined else {}
    rows = got.select("ts", "gap_len", "pos", "prev_mwh", "next_mwh").iter_rows()
    assert {int((ts - T0) / STEP): (n, pos, before, after) for ts, n, pos, before, after in rows} == expected
    assert got.height == len(expected)


def test_like_days_are_read_for_the_meters_whose_gaps_interpolation_leaves() -> None:
    """Meter 1 misses five hours (like days), meter 2 half an hour (interpolated), and meter 3,
    expected from the day before, has no interval at all (no neighbour to interpolate from):
    only meters 1 and 3 need their like days read."""
    full = dict.fromkeys(range(1, 97), 1000)
    long_gap = {k: v for k, v in full.items() if not 20 <= k < 40}
    short_gap = {k: v for k, v in full.items() if k not in (50, 51)}
    rows = pl.concat(
        [
            readings(long_gap),
            readings(short_gap).with_columns(meter_key=pl.lit(2, pl.Int64), meter_id=pl.lit("M2")),
        ]
    )
    silent = pl.LazyFrame(
        {"meter_key": [3], "meter_id": ["M3"], "quantity": [ACTIVE_IMPORT_INTERVAL]},
        schema={"meter_key": pl.Int64, "meter_id": pl.String, "quantity": pl.Categorical},
    )
    gaps = missing_slots(rows, DAY, CFG, NOW, expected=silent)
    assert sorted(like_day_meters(gaps, CFG).collect().get_column("meter_key").to_list()) == [1, 3]
