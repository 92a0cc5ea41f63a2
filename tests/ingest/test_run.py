"""`run_ingest` end to end on real Parquet and SQLite files: accounting, idempotence,
snapshots, late data, a run killed mid-way and two processes at once."""

from __future__ import annotations

import datetime as dt
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import polars as pl
import pytest
import sqlalchemy as sa

import ingest.aggregate_days as aggregate_days
from core.buckets import bucket_of
from core.executor import LocalExecutor
from core.landing import LandingBatch, write_batch
from core.measurements import MeasurementStore, Table, parse_partition, partition_values
from core.obis import ACTIVE_IMPORT_INTERVAL, ACTIVE_IMPORT_TOTAL
from core.state import StateStore
from core.tables import DAILY, REGISTER_READS
from core.timezones import local_midnight_utc
from ingest import aggregate
from ingest.config import VeeConfig
from ingest.run import run_ingest
from ingest.schema import (
    INTERVAL_SUMS,
    READINGS,
    READINGS_SCHEMA,
    REGISTER_ROWS_KEY,
    scan_readings,
    scan_registers,
)
from ingest.tou import in_force, load_calendars
from tests.ingest.builders import (
    AFTER,
    BUCKETS,
    DAY,
    STEP,
    TABLES,
    assert_same_store,
    frame,
    interval_day,
    land,
    register,
    rows,
    settings_for,
    snapshot,
    snapshot_day_end,
)

REPO = Path(__file__).resolve().parents[2]
METERS = [f"M{i:03d}" for i in range(8)]
SNAPSHOT = [f"S{i:03d}" for i in range(4)]


def land_fleet(data_dir: Path, state: StateStore, *, by_bucket: bool = False) -> int:
    """Two days of the fleet, a batch a day or (`by_bucket`) a batch a day and bucket that
    says its bucket, as the head-end's shard rounds land them; returns the batches landed."""
    register(state, METERS + SNAPSHOT)
    batches = 0
    for day in (DAY - dt.timedelta(days=1), DAY):
        records: list[dict[str, object]] = []
        for meter in METERS:
            records += interval_day(meter, day)
        for meter in SNAPSHOT:
            records += snapshot_day_end(meter, day - dt.timedelta(days=1)) + snapshot_day_end(meter, day)
        if not by_bucket:
            land(data_dir, records)
            batches += 1
            continue
        for bucket in sorted({bucket_of(str(r["meter_id"]), BUCKETS) for r in records}):
            part = [r for r in records if bucket_of(str(r["meter_id"]), BUCKETS) == bucket]
            write_batch(data_dir, frame(part), now=dt.datetime(2026, 11, 20, tzinfo=dt.UTC), bucket=bucket)
            batches += 1
    return batches


def test_accounting_balances_and_daily_is_published(data_dir: Path, state: StateStore) -> None:
    register(state, ["M1", "S1"])
    records = interval_day("M1", DAY)
    records += snapshot_day_end("S1", DAY - dt.timedelta(days=1)) + snapshot_day_end("S1", DAY)
    records += records[:5]  # identical repeats
    records += rows("X1", ACTIVE_IMPORT_INTERVAL, [(local_midnight_utc(DAY) + STEP, 1)])  # unknown meter
    land(data_dir, records)
    report = run_ingest(data_dir, state, settings=settings_for(data_dir), now=AFTER)
    assert report.readings_in == len(records)
    assert report.balanced
    assert report.duplicates == 5
    assert report.quarantined_by_reason == {"unknown_meter": 1}
    daily = MeasurementStore(data_dir).table(DAILY).scan().collect().sort("meter_id")
    m1, s1 = (
        daily.filter(pl.col("meter_id") == "M1").row(0, named=True),
        daily.filter(pl.col("meter_id") == "S1").row(0, named=True),
    )
    assert m1["basis"] == "intervals" and m1["intervals"] == 96
    # a reading with no flag has none (null), not an empty text
    stored = MeasurementStore(data_dir).table(READINGS).scan().filter(pl.col("meter_id") == "M1").collect()
    assert stored.get_column("flags").null_count() == stored.height
    assert m1["offpeak_wh"] + m1["normal_wh"] + m1["peak_wh"] == m1["energy_wh"]
    expected = sum(
        int(r["value"]) for r in interval_day("M1", DAY) if r["quantity"] == ACTIVE_IMPORT_INTERVAL
    )
    assert m1["energy_wh"] == expected
    s1_reads = [
        r["value"] for r in snapshot_day_end("S1", DAY - dt.timedelta(days=1)) + snapshot_day_end("S1", DAY)
    ]
    assert s1["basis"] == "registers" and s1["energy_wh"] == s1_reads[1] - s1_reads[0]
    regs = MeasurementStore(data_dir).table(REGISTER_READS).scan().collect()
    assert set(regs.filter(pl.col("meter_id") == "S1").get_column("date").to_list()) == {
        DAY - dt.timedelta(days=1),
        DAY,
    }
    with state.read() as conn:
        logged = conn.execute(
            sa.text("SELECT rows_in, stored, duplicates, quarantined FROM ingest_log")
        ).all()
    assert [tuple(r) for r in logged] == [(len(records), report.stored, 5, 1)]


def test_a_run_reads_each_manifest_once_per_task_and_commit(
    data_dir: Path, state: StateStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two runs on a store with history (the second has days and buckets to look up): the
    readings manifest is read once by the (in-process) task and once by the commit, however
    many partitions the run looks up; a read per lookup is a pass over every partition of a
    table, which a city's year makes 163,000."""
    land_fleet(data_dir, state)
    run_ingest(data_dir, state, settings=settings_for(data_dir), now=AFTER)
    records = [r for meter in METERS for r in interval_day(meter, DAY + dt.timedelta(days=1))]
    land(data_dir, records)
    reads: list[str] = []
    real = Table.manifest

    def counted(self: Table) -> object:
        reads.append(self.name)
        return real(self)

    monkeypatch.setattr(Table, "manifest", counted)
    report = run_ingest(
        data_dir, state, settings=settings_for(data_dir), now=AFTER + dt.timedelta(days=1),
        executor=LocalExecutor(1),
    )
    assert report.partitions >= 2 and report.balanced
    assert reads.count(READINGS) == 2, reads
    assert reads.count(DAILY) == 2, reads


@pytest.mark.slow
def test_taking_the_same_batch_twice_changes_nothing(
    data_dir: Path, state: StateStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    land_fleet(data_dir, state)
    first = run_ingest(data_dir, state, settings=settings_for(data_dir), now=AFTER)
    before = snapshot(data_dir)
    again = run_ingest(data_dir, state, settings=settings_for(data_dir), now=AFTER)
    assert first.batches == 2 and again.batches == 0
    # the same file landed again under another name is the same batch
    copy = next((data_dir / "landing").rglob("*.parquet"))
    shutil.copy(copy, copy.with_name("poll-copy.parquet"))
    assert run_ingest(data_dir, state, settings=settings_for(data_dir), now=AFTER).batches == 0
    after = snapshot(data_dir)
    for name in TABLES:
        assert before[name].equals(after[name])
    # the copy is marked taken with no rows of its own: later runs do not read it again
    with state.read() as conn:
        rows_in = conn.execute(
            sa.text("SELECT rows_in FROM landing_taken WHERE batch_path LIKE '%poll-copy.parquet'")
        ).scalar_one()
    assert rows_in == 0
    hashed: list[Path] = []
    real_sha256 = LandingBatch.sha256
    monkeypatch.setattr(LandingBatch, "sha256", lambda self: hashed.append(self.path) or real_sha256(self))
    assert run_ingest(data_dir, state, settings=settings_for(data_dir), now=AFTER).batches == 0
    assert hashed == []


def test_the_report_times_estimation_history_rules_and_customers_intervals_apart(
    data_dir: Path, state: StateStore
) -> None:
    """The stages beyond the issue's core are timed inside their tasks' VEE and aggregation."""
    register(state, ["M1"])
    gap = {local_midnight_utc(DAY) + STEP * k for k in (40, 41)}
    land(data_dir, [r for r in interval_day("M1", DAY) if r["ts"] not in gap])
    report = run_ingest(data_dir, state, settings=settings_for(data_dir), now=AFTER)
    assert report.estimates == 2
    seconds = report.seconds
    assert 0 < seconds["estimation"] < seconds["vee"]
    assert 0 < seconds["customer_intervals"] < seconds["aggregate"]
    # the history's averages are made for VEE's spike rule and the day's usage findings
    assert 0 < seconds["history_rules"] < seconds["vee"] + seconds["aggregate"]


def test_gap_is_estimated_then_replaced_by_late_data(data_dir: Path, state: StateStore) -> None:
    register(state, ["M1"])
    full = interval_day("M1", DAY)
    start = local_midnight_utc(DAY)
    missing = {start + STEP * k for k in (40, 41, 42)}
    land(data_dir, [r for r in full if r["ts"] not in missing or r["quantity"] != ACTIVE_IMPORT_INTERVAL])
    report = run_ingest(data_dir, state, settings=settings_for(data_dir), now=AFTER)
    assert report.estimates == 3
    assert set(report.estimates_by_method) == {"interpolation+scaled"}
    daily = MeasurementStore(data_dir).table(DAILY).scan().collect().row(0, named=True)
    true_total = sum(int(r["value"]) for r in full if r["quantity"] == ACTIVE_IMPORT_INTERVAL)
    assert daily["energy_wh"] == true_total  # scaled to the register's advance exactly
    assert daily["intervals"] == 93 and daily["estimated_wh"] > 0
    late = [r for r in full if r["ts"] in missing and r["quantity"] == ACTIVE_IMPORT_INTERVAL]
    land(data_dir, late, prefix="late")
    report = run_ingest(data_dir, state, settings=settings_for(data_dir), now=AFTER)
    assert report.stored == 3 and report.estimates == 0
    daily = MeasurementStore(data_dir).table(DAILY).scan().collect().row(0, named=True)
    assert daily["intervals"] == 96 and daily["estimated_wh"] == 0 and daily["energy_wh"] == true_total
    with state.read() as conn:
        audit = conn.execute(sa.text("SELECT rule, actor FROM ingest_audit")).all()
    assert [tuple(a) for a in audit] == [("estimate_replaced", "ingest")] * 3


@pytest.mark.slow
def test_long_gap_uses_like_days(data_dir: Path, state: StateStore) -> None:
    register(state, ["M1"])
    # three Tuesdays of history, then a Tuesday with 4 hours missing and no registers
    for weeks in (3, 2, 1):
        land(data_dir, interval_day("M1", DAY - dt.timedelta(days=7 * weeks)))
    run_ingest(data_dir, state, settings=settings_for(data_dir), now=AFTER)
    start = local_midnight_utc(DAY)
    hole = {start + STEP * k for k in range(20, 36)}
    land(
        data_dir,
        [
            r
            for r in interval_day("M1", DAY)
            if r["quantity"] == ACTIVE_IMPORT_INTERVAL and r["ts"] not in hole
        ],
    )
    report = run_ingest(data_dir, state, settings=settings_for(data_dir), now=AFTER)
    assert report.estimates_by_method == {"like_day": 16}


def test_conflict_across_batches_quarantines_both(data_dir: Path, state: StateStore) -> None:
    register(state, ["M1"])
    ts = local_midnight_utc(DAY) + STEP
    land(data_dir, rows("M1", ACTIVE_IMPORT_INTERVAL, [(ts, 10)]))
    run_ingest(data_dir, state, settings=settings_for(data_dir), now=AFTER)
    land(data_dir, rows("M1", ACTIVE_IMPORT_INTERVAL, [(ts, 11), (ts, 10)]))
    report = run_ingest(data_dir, state, settings=settings_for(data_dir), now=AFTER)
    assert (report.duplicates, report.quarantined) == (1, 1) and report.balanced
    readings = MeasurementStore(data_dir).table(READINGS).scan().filter(pl.col("ts") == ts).collect()
    assert sorted(readings.get_column("reason").to_list()) == ["conflict", "conflict"]


_CRASHING_RUN = """
import datetime as dt, os, signal, sys
from pathlib import Path
import core.measurements, ingest.run
from core.state import StateStore
from core.config import Settings
point, data_dir, buckets = sys.argv[1], Path(sys.argv[2]), int(sys.argv[3])
def die(*args, **kwargs):
    os.kill(os.getpid(), signal.SIGKILL)
if point == "record":
    ingest.run.record = die
elif point != "none":
    original, count = core.measurements.Table.commit, [0]
    def commit(self, *args, **kwargs):
        count[0] += 1
        if count[0] == int(point):
            die()
        return original(self, *args, **kwargs)
    core.measurements.Table.commit = commit
now = dt.datetime.fromisoformat(sys.argv[4])
state, settings = StateStore.open(data_dir), Settings(data_dir=data_dir, buckets=buckets)
ingest.run.run_ingest(data_dir, state, settings=settings,
                      now=now)
"""


def run_in_subprocess(data_dir: Path, point: str) -> subprocess.Popen[str]:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    return subprocess.Popen(
        [sys.executable, "-c", _CRASHING_RUN, point, str(data_dir), "4", AFTER.isoformat()],
        env=env,
        text=True,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )


@pytest.mark.slow
@pytest.mark.parametrize("by_bucket", [False, True], ids=["staged", "by-bucket"])
@pytest.mark.parametrize("point", ["1", "4", "record"])
def test_killed_run_then_rerun_gives_the_same_store(tmp_path: Path, point: str, by_bucket: bool) -> None:
    reference, crashed = tmp_path / "reference", tmp_path / "crashed"
    reference.mkdir()
    batches = land_fleet(reference, StateStore.open(reference), by_bucket=by_bucket)
    shutil.copytree(reference, crashed)
    run_ingest(reference, StateStore.open(reference), settings=settings_for(reference), now=AFTER)
    process = run_in_subprocess(crashed, point)
    _, err = process.communicate(timeout=120)
    assert process.returncode == -9, err  # killed, at the chosen point
    state = StateStore.open(crashed)
    report = run_ingest(crashed, state, settings=settings_for(crashed), now=AFTER)
    assert report.batches == batches and report.balanced
    assert_same_store(reference, crashed)
    with state.read() as conn:
        assert conn.execute(sa.text("SELECT COUNT(*) FROM landing_taken")).scalar_one() == batches


@pytest.mark.slow
def test_two_processes_at_once_take_each_batch_once(tmp_path: Path) -> None:
    reference, shared = tmp_path / "reference", tmp_path / "shared"
    reference.mkdir()
    land_fleet(reference, StateStore.open(reference))
    shutil.copytree(reference, shared)
    run_ingest(reference, StateStore.open(reference), settings=settings_for(reference), now=AFTER)
    first, second = run_in_subprocess(shared, "none"), run_in_subprocess(shared, "none")
    for process in (first, second):
        _, err = process.communicate(timeout=120)
        assert process.returncode == 0, err
    assert_same_store(reference, shared)
    with StateStore.open(shared).read() as conn:
        assert conn.execute(sa.text("SELECT COUNT(*) FROM ingest_log")).scalar_one() == 2


def test_missing_day_end_snapshot_is_estimated(data_dir: Path, state: StateStore) -> None:
    register(state, ["S1"])
    days = [DAY - dt.timedelta(days=2), DAY - dt.timedelta(days=1), DAY]
    land(data_dir, snapshot_day_end("S1", days[0]) + snapshot_day_end("S1", days[2]))  # days[1]'s poll failed
    run_ingest(data_dir, state, settings=settings_for(data_dir), now=AFTER)
    store = MeasurementStore(data_dir)
    regs = store.table(REGISTER_READS).scan().collect().sort("date")
    assert regs.get_column("date").to_list() == days
    assert regs.get_column("estimated").to_list() == [False, True, False]
    daily = store.table(DAILY).scan().collect().sort("date")
    first, last = (int(r["value"]) for r in snapshot_day_end("S1", days[0]) + snapshot_day_end("S1", days[2]))
    assert daily.get_column("date").to_list() == days[1:]
    assert daily.get_column("energy_wh").sum() == last - first  # the two days add up exactly
    assert daily.get_column("estimated_wh").to_list() == daily.get_column("energy_wh").to_list()


def test_a_file_of_many_days_is_judged_as_day_by_day(tmp_path: Path) -> None:
    """History rules and like days see the earlier days of the same run: nine days in one
    batch give the store that nine daily runs give, the spike on the last day flagged
    against the meter's own history in both."""
    days = [DAY - dt.timedelta(days=k) for k in range(8, -1, -1)]
    start = local_midnight_utc(DAY)
    spike_at = start + STEP * 40
    hole = {start + STEP * k for k in range(50, 70)}  # five hours: like days

    def day_records(day: dt.date) -> list[dict[str, object]]:
        records: list[dict[str, object]] = []
        for meter in METERS[:3]:
            for r in interval_day(meter, day):
                if r["ts"] == spike_at and r["quantity"] == ACTIVE_IMPORT_INTERVAL and meter == METERS[0]:
                    r = {**r, "value": 3000}  # far above the meter's mean, far below its rated power
                if meter == METERS[1] and r["ts"] in hole and r["quantity"] == ACTIVE_IMPORT_INTERVAL:
                    continue
                records.append(r)
        for meter in SNAPSHOT[:2]:
            records += snapshot_day_end(meter, day)
        return records

    daily, at_once = tmp_path / "daily", tmp_path / "at-once"
    for folder in (daily, at_once):
        folder.mkdir()
        register(StateStore.open(folder), METERS[:3] + SNAPSHOT[:2])
    for day in days:
        land(daily, day_records(day))
        run_ingest(daily, StateStore.open(daily), settings=settings_for(daily), now=AFTER)
    land(at_once, [r for day in days for r in day_records(day)])
    report = run_ingest(at_once, StateStore.open(at_once), settings=settings_for(at_once), now=AFTER)
    assert report.estimates_by_method == {"like_day+scaled": len(hole)}
    assert_same_store(daily, at_once)
    spike = snapshot(at_once)[READINGS].filter(
        (pl.col("meter_id") == METERS[0])
        & (pl.col("ts") == spike_at)
        & (pl.col("quantity") == ACTIVE_IMPORT_INTERVAL)
    )
    assert "spike_history" in spike.get_column("flags").item()


def _two_days_one_at_a_time(data_dir: Path, *, as_text: bool) -> None:
    """The day before `DAY` (with a gap estimated and a reading quarantined) taken by one run
    and `DAY` by the next. `as_text`: between the runs, the readings files are rewritten
    with their coded columns as text, as the store had them before 2026-11-27."""
    before = DAY - dt.timedelta(days=1)
    register(StateStore.open(data_dir), METERS[:3])
    first = [r for m in METERS[:3] for r in interval_day(m, before)]
    gap = {local_midnight_utc(before) + dt.timedelta(minutes=15 * k) for k in (40, 41)}
    first = [r for r in first if not (r["meter_id"] == METERS[1] and r["ts"] in gap)]
    first[5] = {**first[5], "unit": "V"}  # a unit that does not fit the quantity
    land(data_dir, first)
    run_ingest(data_dir, StateStore.open(data_dir), settings=settings_for(data_dir), now=AFTER)
    if as_text:
        table = MeasurementStore(data_dir).table(READINGS)
        coded = ("quantity", "unit", "source", "state", "reason", "method")
        text = [pl.col(c).cast(pl.String) for c in coded]
        for path, names in table.manifest().partitions.items():
            stored = pl.read_parquet([table.root / path / name for name in names]).with_columns(text)
            key = parse_partition(path)
            table.commit(replace={key: [table.write_file(key, stored)]})
    # M001's bucket gets nothing of the day before (its reads at midnight close that day)
    late = [r for m in METERS[:3] for r in interval_day(m, DAY)]
    closing = {"meter_id": METERS[1], "ts": local_midnight_utc(DAY)}
    land(data_dir, [r for r in late if {k: r[k] for k in closing} != closing])
    run_ingest(data_dir, StateStore.open(data_dir), settings=settings_for(data_dir), now=AFTER)


def test_a_store_with_its_codes_as_text_is_read_as_before(tmp_path: Path) -> None:
    """Readings files written before the quantity, unit, source, state, reason and method
    were codes are read, alone or beside newer ones, as they were written."""
    old, new = tmp_path / "old", tmp_path / "new"
    _two_days_one_at_a_time(old, as_text=True)
    _two_days_one_at_a_time(new, as_text=False)
    table = MeasurementStore(old).table(READINGS)
    day = DAY - dt.timedelta(days=1)
    before = table.files(date=day)
    merged, kept = (table.files(date=day, bucket=bucket_of(m, BUCKETS)) for m in METERS[:2])
    assert pl.read_parquet_schema(kept[0])["quantity"] == pl.String  # left as it was, and read
    assert pl.read_parquet_schema(merged[0])["state"] == READINGS_SCHEMA["state"]  # read, merged, written
    assert_same_store(old, new)
    day_before = scan_readings(before).collect()
    assert set(day_before.get_column("reason").drop_nulls()) == {"unit"}
    # the two slots of the gap and the quarantined interval's
    assert day_before.get_column("method").drop_nulls().to_list() == ["interpolation+scaled"] * 3
    both = scan_readings(before + table.files(date=DAY)).collect()
    assert both.height == day_before.height + scan_readings(table.files(date=DAY)).collect().height


def _two_days_apart(
    data_dir: Path, *, reuse: bool, monkeypatch: pytest.MonkeyPatch, change: bool = False
) -> list[tuple[dt.date, bool]]:
    """The day before `DAY` taken by one run, `DAY` by the next, with nothing of the day before
    in it: the second run aggregates the day before again for its day end, which only the
    new day's reads place (M000's read at midnight is missing). Returns, per aggregated
    group of the second run, its day and whether its stored interval sums were used.
    `reuse` False: they never are (the reference). `change`: the day before's readings of
    M000's bucket are rewritten between the runs (as a tool or a restore might)."""
    before = DAY - dt.timedelta(days=1)
    midnight = local_midnight_utc(DAY)
    register(StateStore.open(data_dir), METERS[:3])
    end_read = {"meter_id": METERS[0], "ts": midnight, "quantity": ACTIVE_IMPORT_TOTAL}
    first = [
        r for m in METERS[:3] for r in interval_day(m, before) if {k: r[k] for k in end_read} != end_read
    ]
    land(data_dir, first)
    run_ingest(data_dir, StateStore.open(data_dir), settings=settings_for(data_dir), now=AFTER)
    if change:
        table = MeasurementStore(data_dir).table(READINGS)
        key = (("date", before.isoformat()), ("bucket", f"{bucket_of(METERS[0], BUCKETS):04d}"))
        stored = pl.read_parquet(table.files(date=before, bucket=bucket_of(METERS[0], BUCKETS)))
        more = pl.col("quantity").eq(ACTIVE_IMPORT_INTERVAL) & pl.col("meter_id").eq(METERS[0])
        stored = stored.with_columns(mwh=pl.when(more).then(pl.col("mwh") + 1000).otherwise(pl.col("mwh")))
        table.commit(replace={key: [table.write_file(key, stored)]})
    # the new day without the reads at its midnight (the day before's values): it is not touched
    land(data_dir, [r for m in METERS[:3] for r in interval_day(m, DAY) if r["ts"] != midnight])
    used: list[tuple[dt.date, bool]] = []
    real = aggregate_days.stored_sums

    def stored_sums(run: Any, day: dt.date, buckets: list[int], bases: dict[int, str]) -> Any:
        found = real(run, day, buckets, bases) if reuse else None
        used.append((day, found is not None))
        return found

    with monkeypatch.context() as patch:
        patch.setattr(aggregate_days, "stored_sums", stored_sums)
        run_ingest(data_dir, StateStore.open(data_dir), settings=settings_for(data_dir), now=AFTER)
    return used


def test_a_day_aggregated_again_starts_from_its_interval_sums(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The day before a new day is aggregated again from its stored interval sums, not its
    readings, and gives the store that aggregating it from its readings gives, its
    newly estimated day end included."""
    reused, reference = tmp_path / "reused", tmp_path / "reference"
    used = _two_days_apart(reused, reuse=True, monkeypatch=monkeypatch)
    _two_days_apart(reference, reuse=False, monkeypatch=monkeypatch)
    before = DAY - dt.timedelta(days=1)
    assert {flag for day, flag in used if day == before} == {True}
    assert_same_store(reused, reference)
    ends = MeasurementStore(reused).table(REGISTER_READS).scan().collect()
    placed = ends.filter((pl.col("date") == before) & (pl.col("meter_id") == METERS[0]))
    assert placed.get_column("estimated").to_list() == [True]  # the second run placed it


def test_interval_sums_of_rewritten_readings_are_not_used(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Sums made from a partition's earlier readings file are computed again from the file it
    has now."""
    reused, reference = tmp_path / "reused", tmp_path / "reference"
    used = _two_days_apart(reused, reuse=True, monkeypatch=monkeypatch, change=True)
    _two_days_apart(reference, reuse=False, monkeypatch=monkeypatch, change=True)
    before = DAY - dt.timedelta(days=1)
    assert (before, False) in used
    assert_same_store(reused, reference)
    daily = MeasurementStore(reused).table(DAILY).scan().collect()
    moved = daily.filter((pl.col("date") == before) & (pl.col("meter_id") == METERS[0]))
    expected = sum(
        int(r["value"]) for r in interval_day(METERS[0], before) if r["quantity"] == ACTIVE_IMPORT_INTERVAL
    ) + 96  # each interval 1,000 mWh more
    assert moved.get_column("energy_wh").to_list() == [expected]


def test_the_interval_sums_a_run_keeps_are_those_of_the_readings_it_stored(
    data_dir: Path, state: StateStore
) -> None:
    """A run makes a day's interval sums from the rows it validated, in memory; they must be
    what the stored readings add up to (estimates for a gap, a meter the registry does not
    know, the intervals stamped past midnight that fall on the day after included)."""
    register(state, METERS[:3])
    landed = [r for m in METERS[:4] for r in interval_day(m, DAY)]  # METERS[3] is not registered
    gap = {local_midnight_utc(DAY) + dt.timedelta(hours=9, minutes=15 * k) for k in range(3)}
    landed = [r for r in landed if not (r["meter_id"] == METERS[0] and r["ts"] in gap)]
    land(data_dir, landed)
    run_ingest(data_dir, state, settings=settings_for(data_dir), now=AFTER)
    store = MeasurementStore(data_dir)
    cfg = VeeConfig()
    kept = store.table(INTERVAL_SUMS).manifest().partitions
    assert any(f"date={DAY.isoformat()}" in path for path in kept)
    for path in kept:
        where = partition_values(path)
        day = dt.date.fromisoformat(where["date"])
        tou = in_force(load_calendars(), day).lookup(day)
        readings = scan_readings(store.table(READINGS).files(date=day, bucket=int(where["bucket"])))
        expected = aggregate.interval_days(readings, tou, cfg).collect().sort("meter_key", "meter_id")
        sums = pl.read_parquet(store.table(INTERVAL_SUMS).files(**where)).sort("meter_key", "meter_id")
        assert sums.equals(expected), path
    estimated = pl.read_parquet(store.table(INTERVAL_SUMS).files(date=DAY)).filter(pl.col("est_slots") > 0)
    assert estimated.get_column("meter_id").to_list() == [METERS[0]]


def test_a_readings_file_says_how_many_register_rows_lead_it_and_the_day_ends_read_those(
    data_dir: Path, state: StateStore, tmp_path: Path
) -> None:
    """Registers first, counted in the footer (REGISTER_ROWS_KEY); `scan_registers` reads
    those rows alone of such a file and every row of a file without the count."""
    register(state, METERS[:3])
    land(data_dir, [r for m in METERS[:3] for r in interval_day(m, DAY)])
    run_ingest(data_dir, state, settings=settings_for(data_dir), now=AFTER)
    files = MeasurementStore(data_dir).table(READINGS).files(date=DAY)
    for path in files:
        rows = scan_readings([path]).collect()
        registers = rows.get_column("quantity").cast(pl.String) == ACTIVE_IMPORT_TOTAL
        count = int(pl.read_parquet_metadata(path)[REGISTER_ROWS_KEY])
        assert count == registers.sum() > 0 and bool(registers.head(count).all())
        assert scan_registers([path]).collect().equals(rows.head(count))
        uncounted = tmp_path / f"uncounted-{path.name}"
        rows.write_parquet(uncounted)  # as files written before the count
        assert scan_registers([uncounted]).collect().equals(rows)
    assert scan_registers([]).collect().height == 0


@pytest.mark.parametrize("sums_kept", [True, False], ids=["from-its-sums", "from-its-readings"])
def test_a_meter_silent_all_day_is_found_from_the_series_it_had_the_day_before(
    data_dir: Path, state: StateStore, sums_kept: bool
) -> None:
    """A running system's day: the meters expected to send intervals are those with a series
    the day before, taken from that day's interval sums when the store keeps them for its
    readings as they are, else from its readings; either way the silent meter's day is
    estimated whole and found as a gap."""
    register(state, METERS[:3])
    before = DAY - dt.timedelta(days=1)
    land(data_dir, [r for m in METERS[:3] for r in interval_day(m, before)], prefix="first")
    run_ingest(data_dir, state, settings=settings_for(data_dir), now=local_midnight_utc(DAY) + STEP * 8)
    if not sums_kept:
        sums = MeasurementStore(data_dir).table(INTERVAL_SUMS)
        sums.commit(replace={parse_partition(p): [] for p in sums.manifest().partitions})
    # without the reads at the day's midnight (the day before's ends): that day is not touched
    midnight = local_midnight_utc(DAY)
    land(data_dir, [r for m in METERS[:2] for r in interval_day(m, DAY) if r["ts"] != midnight], "second")
    run_ingest(data_dir, state, settings=settings_for(data_dir), now=AFTER)
    store = MeasurementStore(data_dir)
    silent = pl.col("meter_id") == METERS[2]
    readings = scan_readings(store.table(READINGS).files(date=DAY)).collect().filter(silent)
    assert readings.height == 96 and set(readings.get_column("state").cast(pl.String)) == {"estimated"}
    gaps = store.table("findings").scan().collect().filter(silent & (pl.col("date") == DAY))
    assert gaps.select("rule", "value").rows() == [("gap", 96)]


def test_interval_sums_of_days_long_past_leave_the_store(data_dir: Path, state: StateStore) -> None:
    """Sums are kept for the days a new one may aggregate again (`SUMS_KEPT_DAYS`); a later
    run drops older days' from the manifest, and nothing else."""
    register(state, METERS[:2])
    land(data_dir, [r for m in METERS[:2] for r in interval_day(m, DAY)])
    run_ingest(data_dir, state, settings=settings_for(data_dir), now=AFTER)
    store = MeasurementStore(data_dir)
    sums = store.table(INTERVAL_SUMS)
    assert any(f"date={DAY.isoformat()}" in path for path in sums.manifest().partitions)
    daily_before = store.table(DAILY).scan().collect().sort("meter_id", "date")
    later = DAY + dt.timedelta(days=aggregate_days.SUMS_KEPT_DAYS + 5)
    land(data_dir, [r for m in METERS[:2] for r in interval_day(m, later)], prefix="later")
    after = local_midnight_utc(later + dt.timedelta(days=1))
    run_ingest(data_dir, state, settings=settings_for(data_dir), now=after)
    days = {partition_values(path)["date"] for path in sums.manifest().partitions}
    cutoff = later + dt.timedelta(days=1) - dt.timedelta(days=aggregate_days.SUMS_KEPT_DAYS)
    assert days and all(dt.date.fromisoformat(d) >= cutoff for d in days)
    assert later.isoformat() in days
    daily_after = store.table(DAILY).scan().collect().filter(pl.col("date") <= DAY).sort("meter_id", "date")
    assert daily_after.equals(daily_before.filter(pl.col("date") <= DAY))
