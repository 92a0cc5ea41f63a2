"""Staging: landing batches routed to their partitions in their own row order, several at a
time, each partition's files listed in batch order."""

from __future__ import annotations

from pathlib import Path

import sqlalchemy as sa

from core.landing import list_batches
from core.state import StateStore
from ingest.config import VeeConfig
from ingest.registry import load_registry
from ingest.run import run_ingest
from ingest.staging import route, stage_batches
from tests.ingest.builders import AFTER, BUCKETS, DAY, frame, interval_day, land, register, settings_for


def test_route_keeps_the_batch_order(tmp_path: Path) -> None:
    """The routed frame keeps the batch's row order, and so does each partition's part (known
    and unknown meters, several quantities): dedupe keeps the first of identical repeats by it."""
    state = StateStore.open(tmp_path)
    register(state, [f"M{n:03d}" for n in range(0, 40, 2)])  # every other meter unknown
    records = [r for n in range(40) for r in interval_day(f"M{n:03d}", DAY)]
    records = records[1::2] + records[::2]  # meters interleaved, not in any sorted order
    batch = frame(records)
    keys = load_registry(state).select("meter_id", "meter_key", "bucket")
    # a column of the batch's own (route carries every column through): its row numbers
    routed = route(batch.with_row_index("row"), keys, batch=0, buckets=BUCKETS, cfg=VeeConfig())
    assert routed.get_column("row").to_list() == list(range(batch.height))
    assert routed.select(batch.columns).equals(batch)
    parts = routed.partition_by(["day", "bucket"])
    assert len(parts) > 1
    assert all(part.get_column("row").is_sorted() for part in parts)
    state.dispose()


def test_staged_files_are_listed_in_batch_order(tmp_path: Path) -> None:
    """Batches staged two at a time (the later ones smaller, so they finish first) are
    listed per partition in batch order."""
    state = StateStore.open(tmp_path)
    meters = [f"M{n:03d}" for n in range(12)]
    register(state, meters)
    day = [record for meter in meters for record in interval_day(meter, DAY)]
    landed = [day[part::4][:size] for part, size in enumerate((290, 120, 40, 12))]
    for part, records in enumerate(landed):  # every batch has rows of most partitions
        land(tmp_path, records, prefix=f"p{part}")
    batches = list(list_batches(tmp_path))
    folder = tmp_path / "staging"
    staged = stage_batches(batches, load_registry(state), folder, buckets=BUCKETS, cfg=VeeConfig())
    assert sorted(staged.rows_in) == list(range(len(batches)))
    assert sum(staged.rows.values()) == sum(staged.rows_in.values()) == sum(map(len, landed))
    assert max(len(files) for files in staged.files.values()) == len(batches)
    for files in staged.files.values():
        assert [p.name for p in files] == sorted(p.name for p in files)  # named by batch index
    state.dispose()


def test_a_repeat_in_a_later_batch_is_its_duplicate(tmp_path: Path) -> None:
    """The earlier batch keeps the reading and the later batch's copy is counted as its
    duplicate, though the batches are staged at the same time."""
    state = StateStore.open(tmp_path)
    register(state, ["M001", "M002"])
    first = interval_day("M001", DAY)[:10]
    land(tmp_path, first, prefix="a")
    land(tmp_path, first + interval_day("M002", DAY) + interval_day("M001", DAY)[10:], prefix="b")
    report = run_ingest(tmp_path, state, settings=settings_for(tmp_path), now=AFTER)
    assert report.balanced
    with state.read() as conn:
        logged = conn.execute(
            sa.text("SELECT batch_path, rows_in, stored, duplicates FROM ingest_log ORDER BY batch_path")
        ).all()
    (path_a, in_a, stored_a, dup_a), (path_b, in_b, stored_b, dup_b) = logged
    assert "/a-" in path_a and "/b-" in path_b
    assert (in_a, stored_a, dup_a) == (10, 10, 0)
    assert (dup_b, stored_b) == (10, in_b - 10)
    state.dispose()
