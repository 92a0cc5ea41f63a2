"""A task validates and aggregates its buckets a chunk at a time (`ingest.task.chunks`), so
its memory is a chunk's: the store is the same whatever the chunks."""

from __future__ import annotations

import datetime as dt
import itertools
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

import ingest.task as task
from core.state import StateStore
from ingest.run import run_ingest
from tests.ingest.builders import (
    BUCKETS,
    DAY,
    assert_same_store,
    interval_day,
    land,
    register,
    settings_for,
    snapshot,
)

METERS = [f"M{n:03d}" for n in range(8)]  # over the builders' 4 buckets


def _two_runs(data_dir: Path) -> None:
    """A first day, then a running system's day: the second run merges its day into months
    that hold the first, and aggregates the day before again."""
    state = StateStore.open(data_dir)
    register(state, METERS)
    for day in (DAY, DAY + dt.timedelta(days=1)):
        records: list[dict[str, object]] = []
        for meter in METERS:
            day_rows = interval_day(meter, day)
            records += day_rows[:40] + day_rows[45:]  # a gap for estimation
        land(data_dir, records)
        clock = dt.datetime.combine(day + dt.timedelta(days=1), dt.time(1), tzinfo=dt.UTC)
        report = run_ingest(data_dir, state, settings=settings_for(data_dir), now=clock)
        assert report.balanced and report.partitions >= BUCKETS
    state.dispose()


def test_store_is_the_same_in_chunks_of_one_bucket(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _two_runs(tmp_path / "whole")
    seen: list[list[set[int]]] = []
    split = task.chunks

    def recorded(sizes: dict[tuple[dt.date, int], int]) -> list[set[int]]:
        seen.append(split(sizes))
        return seen[-1]

    monkeypatch.setattr(task, "CHUNK_ROWS", 1)
    monkeypatch.setattr(task, "chunks", recorded)
    _two_runs(tmp_path / "chunked")
    # every run took its buckets one at a time
    assert seen and all(len(chunks) == BUCKETS and all(len(c) == 1 for c in chunks) for chunks in seen)
    assert snapshot(tmp_path / "whole")["monthly"].height >= len(METERS)
    assert_same_store(tmp_path / "whole", tmp_path / "chunked")


@given(
    st.dictionaries(
        st.tuples(st.integers(0, 3), st.integers(0, 20)).map(lambda k: (DAY + dt.timedelta(days=k[0]), k[1])),
        st.integers(0, 30),
        max_size=40,
    ),
    st.integers(1, 60),
)
def test_chunks_keep_a_buckets_days_together_within_the_limit(
    sizes: dict[tuple[dt.date, int], int], limit: int
) -> None:
    original = task.CHUNK_ROWS
    task.CHUNK_ROWS = limit
    try:
        chunks = task.chunks(sizes)
    finally:
        task.CHUNK_ROWS = original
    buckets = [b for c in chunks for b in c]
    assert sorted(buckets) == sorted({b for _, b in sizes})  # each bucket in exactly one chunk
    for chunk in chunks:
        rows = sum(n for (_, b), n in sizes.items() if b in chunk)
        assert rows <= limit or len(chunk) == 1  # only a bucket alone may pass the limit
    # a chunk closes only when the next bucket would pass the limit
    for chunk, following in itertools.pairwise(chunks):
        rows = sum(n for (_, b), n in sizes.items() if b in chunk)
        first_next = min(following)
        assert rows + sum(n for (_, b), n in sizes.items() if b == first_next) > limit
