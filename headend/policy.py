"""Retry and circuit-breaker policy: which failures are tried again, after how long, and
when a meter that keeps failing is left alone for a while."""

from __future__ import annotations

import datetime as dt
import random
from dataclasses import dataclass

from protocols.errors import RemoteProtocolError


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    retries: int = 3
    backoff_s: float = 1.0
    max_backoff_s: float = 60.0

    def delay(self, attempt: int, rng: random.Random) -> float:
        """Exponential backoff with full jitter: uniform in [0, base x 2^attempt], capped."""
        ceiling = min(self.max_backoff_s, self.backoff_s * (2**attempt))
        return rng.uniform(0, ceiling)


def retryable(error: BaseException) -> bool:
    """Timeouts and dropped lines may pass; a rejected key or a bad value will not."""
    if isinstance(error, RemoteProtocolError):
        return error.retryable
    return isinstance(error, TimeoutError | ConnectionError | OSError)


def error_class(error: BaseException) -> str:
    cls = getattr(error, "error_class", None)
    if isinstance(cls, str):
        return cls
    if isinstance(error, TimeoutError):
        return "timeout"
    if isinstance(error, ConnectionError | OSError):
        return "connection"
    return type(error).__name__


@dataclass(frozen=True, slots=True)
class BreakerPolicy:
    threshold: int = 5  # consecutive failed rounds before the breaker opens
    cooldown: dt.timedelta = dt.timedelta(hours=1)
    max_cooldown: dt.timedelta = dt.timedelta(days=1)

    def open_until(self, failures: int, now: dt.datetime) -> dt.datetime | None:
        """None while under the threshold; then a cooldown doubling with each further failure."""
        if failures < self.threshold:
            return None
        doublings = min(failures - self.threshold, 32)  # a meter failing for years must not overflow
        cooldown: dt.timedelta = min(self.max_cooldown, self.cooldown * (2**doublings))
        return now + cooldown
