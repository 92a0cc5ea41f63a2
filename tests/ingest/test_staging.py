"""Staging: a landing batch routed to its partitions in its own row order."""

from __future__ import annotations

from pathlib import Path

from core.state import StateStore
from ingest.config import VeeConfig
from ingest.registry import load_registry
from ingest.staging import route
from tests.ingest.builders import BUCKETS, DAY, frame, interval_day, register


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
