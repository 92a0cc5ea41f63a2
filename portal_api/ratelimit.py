"""Per-client token buckets: `rate` requests a second, bursts up to `2 x rate`.

In-process: with several server workers each keeps its own buckets, so a client's
effective limit is the rate times the number of workers.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

from portal_api.errors import RateLimited


class RateLimiter:
    def __init__(
        self, rate_of: Callable[[str], float], *, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._rate_of = rate_of
        self._clock = clock
        self._buckets: dict[str, tuple[float, float]] = {}  # who -> (tokens, last refill)
        self._lock = threading.Lock()

    def take(self, who: str) -> None:
        rate = self._rate_of(who)
        burst = 2 * rate
        now = self._clock()
        with self._lock:
            tokens, last = self._buckets.get(who, (burst, now))
            tokens = min(burst, tokens + (now - last) * rate)
            if tokens < 1:
                self._buckets[who] = (tokens, now)
                raise RateLimited(
                    f"too many requests from {who}: the limit is {rate:g} a second",
                    retry_after_s=(1 - tokens) / rate,
                    hint="wait for the Retry-After seconds and slow down",
                )
            self._buckets[who] = (tokens - 1, now)
