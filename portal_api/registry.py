"""Which meters belong to a customer: the registry's `meters.customer_code`, briefly cached.

The cache keeps a busy portal from asking the operational store the same question many
times a second; a meter moved to another customer shows within `ttl_s`.
"""

from __future__ import annotations

import threading
import time

import sqlalchemy as sa

from core.state import StateStore

_QUERY = sa.text("SELECT meter_id FROM meters WHERE customer_code = :code ORDER BY meter_id")


class CustomerMeters:
    def __init__(self, state: StateStore, *, ttl_s: float = 60.0, max_entries: int = 200_000) -> None:
        self.state = state
        self.ttl_s = ttl_s
        self.max_entries = max_entries
        self._cache: dict[str, tuple[float, tuple[str, ...]]] = {}
        self._lock = threading.Lock()

    def of(self, customer_code: str) -> tuple[str, ...]:
        now = time.monotonic()
        hit = self._cache.get(customer_code)
        if hit is not None and hit[0] > now:
            return hit[1]
        with self.state.read() as conn:
            meters = tuple(row[0] for row in conn.execute(_QUERY, {"code": customer_code}))
        with self._lock:
            if len(self._cache) >= self.max_entries:
                self._cache.clear()
            self._cache[customer_code] = (now + self.ttl_s, meters)
        return meters
