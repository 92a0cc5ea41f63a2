from __future__ import annotations

import multiprocessing
from pathlib import Path

import pytest

from core.state import StateStore
from protocols.dlms.counters import MemoryCounterStore, StateCounterStore


def test_counters_are_strictly_increasing_within_and_across_blocks() -> None:
    store = MemoryCounterStore(block=3)
    seen = [store.next_counter("meter-keys:A") for _ in range(10)]
    assert seen == sorted(set(seen)) and len(seen) == 10


def test_a_restarted_head_end_starts_past_its_last_block(tmp_path: Path) -> None:
    first = StateCounterStore(StateStore.open(tmp_path), block=100)
    used = [first.next_counter("meter-keys:A") for _ in range(5)]
    again = StateCounterStore(StateStore.open(tmp_path), block=100)  # a new process, same store
    assert again.next_counter("meter-keys:A") > max(used)


def test_no_write_per_counter(tmp_path: Path) -> None:
    state = StateStore.open(tmp_path)
    store = StateCounterStore(state, block=1000)
    for _ in range(500):
        store.next_counter("meter-keys:A")
    with state.read() as conn:
        (next_free,) = conn.exec_driver_sql(
            "SELECT next_free FROM dlms_invocation_counters WHERE key_id = 'meter-keys:A'"
        ).one()
    assert next_free == 1001  # one block reserved, not 500 writes


def test_recovery_jumps_past_the_meters_frame_counter(tmp_path: Path) -> None:
    store = StateCounterStore(StateStore.open(tmp_path), block=10)
    store.next_counter("meter-keys:A")
    store.advance_past("meter-keys:A", 123_456)
    assert store.next_counter("meter-keys:A") == 123_457
    store.advance_past("meter-keys:A", 5)  # never backwards
    assert store.next_counter("meter-keys:A") > 123_457


def _take(path: str, count: int, queue: multiprocessing.Queue) -> None:  # type: ignore[type-arg]
    store = StateCounterStore(StateStore.open(Path(path)), block=7)
    queue.put([store.next_counter("meter-keys:shared") for _ in range(count)])


@pytest.mark.slow
def test_two_processes_never_get_the_same_counter(tmp_path: Path) -> None:
    StateStore.open(tmp_path)
    context = multiprocessing.get_context("spawn")
    queue = context.Queue()
    workers = [context.Process(target=_take, args=(str(tmp_path), 60, queue)) for _ in range(2)]
    for worker in workers:
        worker.start()
    results = [queue.get(timeout=60) for _ in workers]
    for worker in workers:
        worker.join(timeout=60)
    combined = results[0] + results[1]
    assert len(combined) == len(set(combined)) == 120
