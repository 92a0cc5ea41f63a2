"""Invocation counters for ciphered APDUs: never repeated, and no disk write per request.

The durable store hands out blocks (`reserve`): a row per key holds the first counter not
yet handed out, moved forward in one short transaction. A session takes counters from its
block in memory; a restarted head-end reserves a fresh block past everything handed out
before, so a counter is never reused even if the previous process died mid-block (the
unused rest of a block is simply skipped). `advance_past` recovers from a lost store by
jumping past the meter's frame counter read through the public client.
"""

from __future__ import annotations

import threading
from typing import Protocol

import sqlalchemy as sa

from core.state import StateStore
from protocols.dlms.errors import DlmsLocalError

MAX_COUNTER = 0xFFFFFFFF
DEFAULT_BLOCK = 1000


class InvocationCounterStore(Protocol):
    def next_counter(self, key_id: str) -> int:
        """A counter never handed out before for this key."""
        ...

    def advance_past(self, key_id: str, seen: int) -> None:
        """Make every later counter for this key larger than `seen`."""
        ...


class _Blocks:
    """The in-memory part: the current block per key, refilled from `reserve`."""

    def __init__(self, block: int) -> None:
        self._block = block
        self._current: dict[str, tuple[int, int]] = {}  # key -> (next, end exclusive)
        self._lock = threading.Lock()

    def _reserve(self, key_id: str, size: int) -> int:
        raise NotImplementedError

    def next_counter(self, key_id: str) -> int:
        with self._lock:
            start, end = self._current.get(key_id, (0, 0))
            if start >= end:
                start = self._reserve(key_id, self._block)
                end = start + self._block
            if start > MAX_COUNTER:
                raise DlmsLocalError(
                    f"the invocation counter for key {key_id} is exhausted",
                    hint="the meter's global unicast key must be changed (key transfer)",
                )
            self._current[key_id] = (start + 1, end)
            return start

    def _forget(self, key_id: str) -> None:
        with self._lock:
            self._current.pop(key_id, None)


class MemoryCounterStore(_Blocks):
    """Counters for one process only (tests, the public client, one-off reads)."""

    def __init__(self, block: int = DEFAULT_BLOCK) -> None:
        super().__init__(block)
        self._next_free: dict[str, int] = {}

    def _reserve(self, key_id: str, size: int) -> int:
        start = self._next_free.get(key_id, 1)
        self._next_free[key_id] = start + size
        return start

    def advance_past(self, key_id: str, seen: int) -> None:
        self._forget(key_id)
        with self._lock:
            self._next_free[key_id] = max(self._next_free.get(key_id, 1), seen + 1)


class StateCounterStore(_Blocks):
    """Counter blocks reserved durably in the operational store (table dlms_invocation_counters)."""

    def __init__(self, store: StateStore, block: int = DEFAULT_BLOCK) -> None:
        super().__init__(block)
        self._store = store

    def _reserve(self, key_id: str, size: int) -> int:
        with self._store.transaction() as conn:
            row = conn.execute(
                sa.text("SELECT next_free FROM dlms_invocation_counters WHERE key_id = :k"), {"k": key_id}
            ).first()
            start = int(row[0]) if row else 1
            if row:
                conn.execute(
                    sa.text(
                        "UPDATE dlms_invocation_counters SET next_free = :n, "
                        "updated_at = CURRENT_TIMESTAMP WHERE key_id = :k"
                    ),
                    {"n": start + size, "k": key_id},
                )
            else:
                conn.execute(
                    sa.text("INSERT INTO dlms_invocation_counters (key_id, next_free) VALUES (:k, :n)"),
                    {"k": key_id, "n": start + size},
                )
            return start

    def advance_past(self, key_id: str, seen: int) -> None:
        self._forget(key_id)
        with self._store.transaction() as conn:
            conn.execute(
                sa.text(
                    "INSERT INTO dlms_invocation_counters (key_id, next_free) VALUES (:k, :n) "
                    "ON CONFLICT (key_id) DO UPDATE SET next_free = "
                    "CASE WHEN excluded.next_free > dlms_invocation_counters.next_free "
                    "THEN excluded.next_free ELSE dlms_invocation_counters.next_free END"
                ),
                {"k": key_id, "n": seen + 1},
            )
