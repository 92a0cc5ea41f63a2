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
    found = aggregate.findings(intervals, adv, day_rows, history, METERS, day=DAY, complete=True, cfg=CFG)
    rules = dict(found.select("rule", "value").collect().iter_rows())
    assert rules == {"sum_check": 10_000, "high_usage": 10_000}


def test_a_zero_run_is_a_day_finding_too() -> None:
    flags = [",zero_run" if k < 60 else "" for k in range(96)]
    readings = day_of_intervals(0).with_columns(flags=pl.Series(flags))
    tou = in_force(load_calendars(), DAY).lookup(DAY)
    intervals = aggregate.interval_days(readings, tou, CFG)
    adv = pl.LazyFrame(schema={"meter_key": pl.Int64, "advance_mwh": pl.Int64})
    empty = pl.LazyFrame(schema={"meter_id": pl.String, "date": pl.Date, "energy_wh": pl.Int64})
    found = aggregate.findings(intervals, adv, empty, empty, METERS, day=DAY, complete=True, cfg=CFG)
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
