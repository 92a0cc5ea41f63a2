"""Staging on the executor: landing batches dealt into shares, routed and staged by tasks,
and merged back in batch order whatever order the tasks ran in."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
import sqlalchemy as sa
from hypothesis import given, settings
from hypothesis import strategies as st

from core.executor import LocalExecutor
from core.landing import LandingBatch, list_batches
from core.state import StateStore
from ingest.config import VeeConfig
from ingest.registry import load_registry
from ingest.run import run_ingest
from ingest.staging import StageShare, merged, route, shares, stage_share
from tests.ingest.builders import AFTER, BUCKETS, DAY, frame, interval_day, land, register, settings_for


def _batches(folder: Path, sizes: list[int]) -> list[LandingBatch]:
    out = []
    for n, size in enumerate(sizes):
        path = folder / f"b{n:03d}.parquet"
        path.write_bytes(b"x" * size)
        out.append(LandingBatch(path, dt.date(2026, 11, 20), path.stem))
    return out


@settings(max_examples=40, deadline=None)
@given(sizes=st.lists(st.integers(1, 5000), max_size=12), slots=st.integers(1, 5))
def test_shares_deal_every_batch_once_in_balanced_shares(
    tmp_path_factory: pytest.TempPathFactory, sizes: list[int], slots: int
) -> None:
    batches = _batches(tmp_path_factory.mktemp("landing"), sizes)
    dealt = shares(batches, slots)
    indices = sorted(index for share in dealt for index, _ in share)
    assert indices == list(range(len(batches)))
    assert all(batches[index] == batch for share in dealt for index, batch in share)
    assert len(dealt) <= slots and all(dealt)
    if dealt:
        loads = [sum(sizes[i] for i, _ in share) for share in dealt]
        # largest first to the lightest share: no share exceeds another by more than one batch
        assert max(loads) - min(loads) <= max(sizes)


def test_merged_lists_each_partition_in_batch_order(tmp_path: Path) -> None:
    state = StateStore.open(tmp_path)
    meters = ["M001", "M002", "M003"]
    register(state, meters)
    day = [record for meter in meters for record in interval_day(meter, DAY)]
    for part in range(3):  # every batch has rows of every meter's partition
        land(tmp_path, day[part::3], prefix=f"p{part}")
    batches = list(list_batches(tmp_path))
    keys = load_registry(state).select("meter_id", "meter_key", "bucket")
    folder = tmp_path / "staging"
    dealt = shares(batches, 2)
    # the tasks' results handed back in the reverse of batch order
    parts = [stage_share(StageShare(folder, share, keys, BUCKETS, VeeConfig())) for share in reversed(dealt)]
    staged = merged(folder, parts)
    assert sorted(staged.rows_in) == list(range(len(batches)))
    assert sum(staged.rows.values()) == sum(staged.rows_in.values()) == 3 * 98
    assert max(len(files) for files in staged.files.values()) == 3
    for files in staged.files.values():
        assert [p.name for p in files] == sorted(p.name for p in files)
        assert all(p.exists() for p in files)
    state.dispose()


def test_a_repeat_staged_by_another_task_counts_against_the_later_batch(tmp_path: Path) -> None:
    """The earlier batch keeps the reading and the later one's copy is the duplicate, with
    the batches staged by two processes (the later, bigger batch dealt first)."""
    state = StateStore.open(tmp_path)
    register(state, ["M001", "M002"])
    first = interval_day("M001", DAY)[:10]
    land(tmp_path, first, prefix="a")
    land(tmp_path, first + interval_day("M002", DAY), prefix="b")
    with LocalExecutor(2) as executor:
        report = run_ingest(tmp_path, state, settings=settings_for(tmp_path), now=AFTER, executor=executor)
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


def test_route_keeps_the_batch_order(tmp_path: Path) -> None:
    """seq numbers the batch's rows in their order and the routed frame keeps it (known and
    unknown meters, several quantities): dedupe keeps the first of identical repeats by it."""
    state = StateStore.open(tmp_path)
    register(state, [f"M{n:03d}" for n in range(0, 40, 2)])  # every other meter unknown
    records = [r for n in range(40) for r in interval_day(f"M{n:03d}", DAY)]
    records = records[1::2] + records[::2]  # meters interleaved, not in any sorted order
    batch = frame(records)
    keys = load_registry(state).select("meter_id", "meter_key", "bucket")
    routed = route(batch, keys, batch=0, buckets=BUCKETS, cfg=VeeConfig())
    assert routed.get_column("seq").to_list() == list(range(batch.height))
    assert routed.select(batch.columns).equals(batch)
    parts = routed.partition_by(["day", "bucket"])
    assert all(part.get_column("seq").is_sorted() for part in parts)
    state.dispose()
