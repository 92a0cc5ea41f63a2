"""Which meters belong to a customer: the registry's `meters.customer_code`, briefly cached.

The cache keeps a busy portal from asking the operational store the same question many
times a second; a meter moved to another customer shows within `ttl_s`.
"""

from __future__ import annotations

import threading
import time

from portal_api.reading import StoreReader

_QUERY = "SELECT meter_id FROM meters WHERE customer_code = :code ORDER BY meter_id"


class CustomerMeters:
    def __init__(self, reader: StoreReader, *, ttl_s: float = 60.0, max_entries: int = 200_000) -> None:
        self.reader = reader
        self.ttl_s = ttl_s
        self.max_entries = max_entries
        self._cache: dict[str, tuple[float, tuple[str, ...]]] = {}
        self._lock = threading.Lock()

    def of(self, customer_code: str) -> tuple[str, ...]:
        now = time.monotonic()
        hit = self._cache.get(customer_code)
        if hit is not None and hit[0] > now:
            return hit[1]
        meters = tuple(row[0] for row in self.reader.rows(_QUERY, {"code": customer_code}))
        with self._lock:
            if len(self._cache) >= self.max_entries:
                self._cache.clear()
            self._cache[customer_code] = (now + self.ttl_s, meters)
        return meters
