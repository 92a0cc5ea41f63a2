"""Property tests for the small arithmetic the engine relies on."""

from __future__ import annotations

import datetime as dt
import random

from hypothesis import given
from hypothesis import strategies as st

from headend.clocksync import SHIFT_LIMIT_S, ClockAction, ClockPolicy, decide
from headend.policy import BreakerPolicy, RetryPolicy
from headend.timestamps import from_db, to_db

instants = st.datetimes(
    min_value=dt.datetime(2000, 1, 1), max_value=dt.datetime(2100, 1, 1), timezones=st.just(dt.UTC)
)


@given(instants, instants)
def test_stored_instants_round_trip_and_sort_as_text(a: dt.datetime, b: dt.datetime) -> None:
    assert from_db(to_db(a)) == a
    assert (to_db(a) < to_db(b)) == (a < b)


@given(st.integers(0, 30), st.floats(0, 10), st.integers(0, 2**32))
def test_backoff_stays_within_its_exponential_ceiling(attempt: int, base: float, seed: int) -> None:
    policy = RetryPolicy(backoff_s=base, max_backoff_s=60)
    delay = policy.delay(attempt, random.Random(seed))
    assert 0 <= delay <= min(60, base * 2**attempt)


@given(st.floats(-100_000, 100_000), st.integers(0, 5), st.integers(1, 600), st.integers(0, 5))
def test_clock_decisions(drift: float, used: int, threshold: int, cap: int) -> None:
    action = decide(drift, used, ClockPolicy(threshold, cap))
    if abs(drift) <= threshold:
        assert action is ClockAction.NONE
    elif used >= cap:
        assert action is ClockAction.CAPPED
    else:
        assert action is (ClockAction.SHIFT if abs(drift) <= SHIFT_LIMIT_S else ClockAction.SET)


@given(st.integers(0, 40))
def test_breaker_cooldown_grows_and_is_capped(failures: int) -> None:
    policy = BreakerPolicy()
    now = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
    until = policy.open_until(failures, now)
    if failures < policy.threshold:
        assert until is None
    else:
        assert until is not None and policy.cooldown <= until - now <= policy.max_cooldown
