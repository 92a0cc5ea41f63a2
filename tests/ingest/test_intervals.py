"""The published `intervals` table: the pure transform (whole Wh carried through the day,
bands by start minute, only valid and estimated deltas) and `run_ingest` publishing it
with its day partitions, idempotently and through a killed run."""

from __future__ import annotations

import datetime as dt
import shutil
from pathlib import Path

import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from core.measurements import MeasurementStore
from core.obis import ACTIVE_IMPORT_INTERVAL, ACTIVE_IMPORT_TOTAL
from core.state import StateStore
from core.tables import DAILY, INTERVALS, INTERVALS_SCHEMA
from core.timezones import local_midnight_utc
from ingest.aggregate import customer_intervals
from ingest.codes import ESTIMATED, VALID
from ingest.config import VeeConfig
from ingest.run import run_ingest
from ingest.schema import READINGS, READINGS_SCHEMA
from ingest.tou import in_force, load_calendars
from tests.ingest.builders import AFTER, DAY, STEP, interval_day, land, register, rows, settings_for
from tests.ingest.test_run import land_fleet, run_in_subprocess

CFG = VeeConfig()
START = local_midnight_utc(DAY)


def readings(items: list[tuple[str, str, int, int | None, str]]) -> pl.LazyFrame:
    """(meter, quantity, slot number 1..96, mWh, state) as `readings` rows of DAY; each meter
    has its own registry key (M7 is key 7), as in the store."""
    base = {name: None for name in READINGS_SCHEMA}
    records = [
        {**base, "meter_key": int(m[1:]), "meter_id": m, "quantity": q, "ts": START + STEP * k, "value": mwh,
         "scale": -3, "unit": "Wh", "mwh": mwh, "state": s, "flags": ""}
        for m, q, k, mwh, s in items
    ]
    return pl.LazyFrame(records, schema=dict(READINGS_SCHEMA))


def tou() -> pl.LazyFrame:
    return in_force(load_calendars(), DAY).lookup(DAY)


def test_only_valid_and_estimated_interval_deltas_are_published() -> None:
    frame = readings([
        ("M1", ACTIVE_IMPORT_INTERVAL, 1, 100_000, VALID),
        ("M1", ACTIVE_IMPORT_INTERVAL, 2, 200_000, ESTIMATED),
        ("M1", ACTIVE_IMPORT_INTERVAL, 3, 300_000, "quarantined"),
        ("M1", ACTIVE_IMPORT_INTERVAL, 4, 400_000, "rejected"),
        ("M1", ACTIVE_IMPORT_TOTAL, 4, 9_000_000, VALID),
    ])
    out = customer_intervals(frame, tou(), CFG).collect()
    assert dict(out.schema) == dict(INTERVALS_SCHEMA)
    assert out.select("ts", "energy_wh", "estimated").rows() == [
        (START + STEP, 100, False),
        (START + STEP * 2, 200, True),
    ]
    assert out.get_column("period_minutes").to_list() == [CFG.interval_minutes] * 2


def test_band_is_the_calendar_band_of_the_minute_the_interval_starts() -> None:
    calendar = in_force(load_calendars(), DAY)
    names = calendar.minutes[calendar.day_type(DAY)]
    frame = readings([("M1", ACTIVE_IMPORT_INTERVAL, k, 1000, VALID) for k in range(1, 97)])
    out = customer_intervals(frame, tou(), CFG).collect()
    expected = [names[(k - 1) * 15] for k in range(1, 97)]
    assert out.get_column("tou").to_list() == expected
    assert set(expected) == {"offpeak", "normal", "peak"}  # the calendar exercises every band


@settings(max_examples=60, deadline=None)
@given(st.lists(st.integers(min_value=0, max_value=5_000_000), min_size=1, max_size=96), st.booleans())
def test_whole_wh_are_carried_so_a_day_adds_up_exactly(mwh: list[int], shuffle: bool) -> None:
    items: list[tuple[str, str, int, int | None, str]] = [
        ("M1", ACTIVE_IMPORT_INTERVAL, k + 1, v, VALID) for k, v in enumerate(mwh)
    ]
    items += [("M2", ACTIVE_IMPORT_INTERVAL, k + 1, v + 1, VALID) for k, v in enumerate(mwh)]
    if shuffle:
        items.reverse()  # input order must not matter
    out = customer_intervals(readings(items), tou(), CFG).collect()
    m1 = out.filter(pl.col("meter_id") == "M1").get_column("energy_wh").to_list()
    m2 = out.filter(pl.col("meter_id") == "M2").get_column("energy_wh").to_list()
    assert sum(m1) == sum(mwh) // 1000
    assert sum(m2) == sum(v + 1 for v in mwh) // 1000
    for got, exact in zip(m1, mwh, strict=True):  # never more than one Wh off its own interval
        assert exact // 1000 <= got <= exact // 1000 + 1


def published(data_dir: Path) -> pl.DataFrame:
    return MeasurementStore(data_dir).table(INTERVALS).scan(INTERVALS_SCHEMA).collect().sort("meter_id", "ts")


def test_ingest_publishes_intervals_that_add_up_to_daily(data_dir: Path, state: StateStore) -> None:
    register(state, ["M1", "M2"])
    full = interval_day("M1", DAY) + interval_day("M2", DAY, seed=2)
    missing = {START + STEP * k for k in (40, 41)}
    land(data_dir, [r for r in full if not (r["meter_id"] == "M1" and r["ts"] in missing
                                            and r["quantity"] == ACTIVE_IMPORT_INTERVAL)])
    land(data_dir, rows("X9", ACTIVE_IMPORT_INTERVAL, [(START + STEP, 5)]))  # unknown meter: quarantined
    run_ingest(data_dir, state, settings=settings_for(data_dir), now=AFTER)
    table = MeasurementStore(data_dir).table(INTERVALS)
    assert {p.split("/")[0] for p in table.manifest().partitions} == {f"date={DAY.isoformat()}"}
    out = published(data_dir)
    assert set(out.get_column("meter_id")) == {"M1", "M2"}
    assert out.group_by("meter_id").len().sort("meter_id").get_column("len").to_list() == [96, 96]
    assert out.filter(pl.col("estimated")).select("meter_id", "ts").rows() == [
        ("M1", ts) for ts in sorted(missing)
    ]
    daily = MeasurementStore(data_dir).table(DAILY).scan().collect()
    sums = out.group_by("meter_id").agg(pl.col("energy_wh").sum())
    joined = daily.join(sums, on="meter_id", suffix="_intervals")
    assert joined.height == 2
    assert (joined["energy_wh"] == joined["energy_wh_intervals"]).all()
    by_band = out.group_by("meter_id", "tou").agg(pl.col("energy_wh").sum())
    m2 = {band: wh for _, band, wh in by_band.filter(pl.col("meter_id") == "M2").rows()}
    row = daily.filter(pl.col("meter_id") == "M2").row(0, named=True)
    assert (m2["offpeak"], m2["normal"], m2["peak"]) == (row["offpeak_wh"], row["normal_wh"], row["peak_wh"])
    # each file is sorted by meter and end, so a reader's meter filter skips row groups
    for path in table.files():
        frame = pl.read_parquet(path)
        assert frame.equals(frame.sort("meter_id", "ts"))


def test_late_data_replaces_estimates_and_a_rerun_changes_nothing(data_dir: Path, state: StateStore) -> None:
    register(state, ["M1"])
    full = interval_day("M1", DAY)
    gap = {START + STEP * k for k in (10, 11, 12)}
    is_gap = [r["ts"] in gap and r["quantity"] == ACTIVE_IMPORT_INTERVAL for r in full]
    land(data_dir, [r for r, g in zip(full, is_gap, strict=True) if not g])
    run_ingest(data_dir, state, settings=settings_for(data_dir), now=AFTER)
    assert published(data_dir).get_column("estimated").sum() == 3
    land(data_dir, [r for r, g in zip(full, is_gap, strict=True) if g], prefix="late")
    run_ingest(data_dir, state, settings=settings_for(data_dir), now=AFTER)
    after_late = published(data_dir)
    measured = {r["ts"]: r["value"] for r in full if r["quantity"] == ACTIVE_IMPORT_INTERVAL}
    assert not after_late.get_column("estimated").any()
    assert dict(after_late.select("ts", "energy_wh").rows()) == measured
    version = MeasurementStore(data_dir).table(INTERVALS).manifest().version
    assert run_ingest(data_dir, state, settings=settings_for(data_dir), now=AFTER).batches == 0
    assert MeasurementStore(data_dir).table(INTERVALS).manifest().version == version
    assert published(data_dir).equals(after_late)


def test_quarantined_readings_are_not_shown(data_dir: Path, state: StateStore) -> None:
    register(state, ["M1"])
    slot = START + STEP * 5
    land(data_dir, interval_day("M1", DAY))
    run_ingest(data_dir, state, settings=settings_for(data_dir), now=AFTER)
    land(data_dir, rows("M1", ACTIVE_IMPORT_INTERVAL, [(slot, 987_654)]), prefix="conflict")
    run_ingest(data_dir, state, settings=settings_for(data_dir), now=AFTER)
    stored = MeasurementStore(data_dir).table(READINGS).scan().filter(pl.col("ts") == slot).collect()
    assert "quarantined" in stored.get_column("state").to_list()
    shown = published(data_dir).filter(pl.col("ts") == slot)
    # the slot is either left out or shown as an estimate, never as the disputed values
    assert shown.is_empty() or shown.row(0, named=True)["estimated"]
    assert 987_654 not in published(data_dir).get_column("energy_wh").to_list()


@pytest.mark.slow
def test_run_killed_before_the_intervals_commit_is_repaired_by_the_rerun(tmp_path: Path) -> None:
    reference, crashed = tmp_path / "reference", tmp_path / "crashed"
    reference.mkdir()
    land_fleet(reference, StateStore.open(reference))
    shutil.copytree(reference, crashed)
    run_ingest(reference, StateStore.open(reference), settings=settings_for(reference), now=AFTER)
    # commits: readings, findings, then intervals (the third): die there
    process = run_in_subprocess(crashed, "3")
    _, err = process.communicate(timeout=120)
    assert process.returncode == -9, err
    assert published(crashed).is_empty()
    run_ingest(crashed, StateStore.open(crashed), settings=settings_for(crashed), now=AFTER)
    expected = published(reference)
    assert expected.height == 8 * 96 * 2  # eight interval meters, two days
    assert published(crashed).equals(expected)
    assert dt.date.fromisoformat(
        min(MeasurementStore(crashed).table(INTERVALS).manifest().partitions).split("/")[0][5:]
    ) == DAY - dt.timedelta(days=1)
