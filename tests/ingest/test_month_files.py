"""Month partitions (daily, register reads) hold a file per day: a run writes the days it
recomputed and keeps the other days' files, so its work does not grow through the month."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import polars as pl
import pytest

import ingest.aggregate_days as aggregate_days
from core.errors import StoreError
from core.measurements import MeasurementStore, file_label, parse_partition
from core.state import StateStore
from core.tables import DAILY, REGISTER_READS
from ingest.run import run_ingest
from tests.ingest.builders import DAY, assert_same_store, interval_day, land, register, settings_for

METERS = [f"M{n:03d}" for n in range(8)]  # over the builders' 4 buckets


def _run_day(data_dir: Path, state: StateStore, day: dt.date) -> None:
    land(data_dir, [r for meter in METERS for r in interval_day(meter, day)])
    clock = dt.datetime.combine(day + dt.timedelta(days=1), dt.time(1), tzinfo=dt.UTC)
    assert run_ingest(data_dir, state, settings=settings_for(data_dir), now=clock).balanced


def _files(data_dir: Path, table: str) -> dict[str, list[str]]:
    return MeasurementStore(data_dir).table(table).manifest().partitions


def test_a_month_partition_holds_a_file_per_day_and_keeps_the_days_not_recomputed(tmp_path: Path) -> None:
    state = StateStore.open(tmp_path)
    register(state, METERS)
    days = [DAY + dt.timedelta(days=k) for k in range(4)]
    for day in days[:3]:
        _run_day(tmp_path, state, day)
    before = _files(tmp_path, DAILY)
    _run_day(tmp_path, state, days[3])
    store = MeasurementStore(tmp_path)
    for table in (DAILY, REGISTER_READS):
        for path, names in _files(tmp_path, table).items():
            labels = [file_label(name) for name in names]
            assert labels == sorted(set(labels)) and None not in labels, names  # one file a day
            for name in names:
                rows = pl.read_parquet(store.table(table).root / path / name)
                day = dt.date.fromisoformat(str(file_label(name)))
                assert rows.get_column("date").unique().to_list() == [day]
                assert rows.get_column("meter_id").is_sorted()
    # a day's batch (its first register read ends the day before) recomputes the day before
    # and that day's day before; the first day's files are kept, the new day's added
    for path, names in _files(tmp_path, DAILY).items():
        first_day = [n for n in names if file_label(n) == days[0].isoformat()]
        assert first_day and first_day == [n for n in before[path] if file_label(n) == days[0].isoformat()]
        assert [n for n in names if file_label(n) == days[3].isoformat()]
        assert len(names) == len(before[path]) + 1
    state.dispose()


@pytest.mark.parametrize("update_from", [0, aggregate_days.UPDATE_MONTHLY_FROM])
def test_a_month_file_written_before_is_split_into_day_files(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, update_from: int
) -> None:
    """A store written before day files (one file a month partition) reads the same and is
    split into day files when its month is next written, with the same rows. Its monthly
    rows are made from the whole month, and equal those updated from the stored ones (with
    no kept day file needed, the straight store's second run updates them)."""
    monkeypatch.setattr(aggregate_days, "UPDATE_MONTHLY_FROM", update_from)
    days = [DAY + dt.timedelta(days=k) for k in range(2)]
    for name in ("straight", "merged"):
        state = StateStore.open(tmp_path / name)
        register(state, METERS)
        _run_day(tmp_path / name, state, days[0])
        if name == "merged":  # as written before: a month partition's rows in one file
            for table_name in (DAILY, REGISTER_READS):
                table = MeasurementStore(tmp_path / name).table(table_name)
                whole = {
                    parse_partition(path): [table.write_file(parse_partition(path), pl.read_parquet(
                        [table.root / path / n for n in names]).sort("meter_id", "date"))]
                    for path, names in table.manifest().partitions.items()
                }
                table.commit(replace=whole)
                assert all(file_label(n) is None for names in _files(tmp_path / name, table_name).values()
                           for n in names)
        _run_day(tmp_path / name, state, days[1])
        state.dispose()
    for table_name in (DAILY, REGISTER_READS):
        assert all(file_label(n) is not None for names in _files(tmp_path / "merged", table_name).values()
                   for n in names)
    assert_same_store(tmp_path / "straight", tmp_path / "merged")


def test_a_file_label_is_checked_and_read_back(tmp_path: Path) -> None:
    table = MeasurementStore(tmp_path).table("t")
    frame = pl.DataFrame({"x": [1]})
    key = parse_partition("month=2026-11/bucket=0001")
    assert file_label(table.write_file(key, frame, label="2026-11-12")) == "2026-11-12"
    assert file_label(table.write_file(key, frame)) is None
    with pytest.raises(StoreError, match="label"):
        table.write_file(key, frame, label="../x")
