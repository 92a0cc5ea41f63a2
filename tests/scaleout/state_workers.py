"""Functions run in separate processes against one PostgreSQL operational store."""

from __future__ import annotations

import os
from pathlib import Path

from core.state import StateStore
from protocols.dlms.counters import StateCounterStore


def open_and_migrate(job: tuple[str, str]) -> int:
    url, data_dir = job
    os.environ["AMR_STATE_URL"] = url
    store = StateStore.open(Path(data_dir))
    try:
        return store.migrate()
    finally:
        store.dispose()


def take_counters(job: tuple[str, str, int]) -> list[int]:
    """Many small blocks, so the two processes' reservations interleave."""
    url, data_dir, count = job
    os.environ["AMR_STATE_URL"] = url
    store = StateStore.open(Path(data_dir))
    try:
        counters = StateCounterStore(store, block=3)
        return [counters.next_counter("meter-key-1") for _ in range(count)]
    finally:
        store.dispose()
