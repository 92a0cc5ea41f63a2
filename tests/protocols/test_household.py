"""The household load model both meter simulators serve: exact, monotonic, deterministic."""

from __future__ import annotations

import datetime as dt

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from core.timezones import local_midnight_utc
from protocols.simulation.household import SLOT, HouseholdLoad

EPOCH = dt.date(2026, 1, 1)
START = local_midnight_utc(EPOCH)
instants = st.integers(0, 400 * 86_400_000).map(lambda ms: START + dt.timedelta(milliseconds=ms))


@settings(max_examples=60)
@given(instants, instants, st.integers(0, 50))
def test_register_never_goes_backwards(a: dt.datetime, b: dt.datetime, seed: int) -> None:
    load = HouseholdLoad("M-1", seed=seed)
    early, late = min(a, b), max(a, b)
    assert load.register_wh(early) <= load.register_wh(late)


@given(st.integers(0, 365), st.integers(0, 20))
def test_a_days_intervals_sum_to_the_day_energy(day_index: int, seed: int) -> None:
    load = HouseholdLoad("M-2", seed=seed)
    day = EPOCH + dt.timedelta(days=day_index)
    start = local_midnight_utc(day)
    total = sum(load.interval_wh(start + SLOT * (i + 1)) for i in range(96))
    advance = load.register_wh(start + dt.timedelta(days=1)) - load.register_wh(start)
    assert total == advance == load.day_wh(day)


def test_same_inputs_same_numbers_in_a_fresh_instance() -> None:
    when = START + dt.timedelta(days=40, hours=13, minutes=7)
    first, second = HouseholdLoad("M-3", seed=5), HouseholdLoad("M-3", seed=5)
    assert first.register_wh(when) == second.register_wh(when)
    assert first.power_w(when) == second.power_w(when)
    assert HouseholdLoad("M-3", seed=6).register_wh(when) != first.register_wh(when)


def test_initial_register_and_epoch() -> None:
    load = HouseholdLoad("M-4", seed=1, initial_wh=1_000)
    assert load.register_wh(START) == 1_000
    with pytest.raises(ValueError, match="before the simulated meter's epoch"):
        load.register_wh(START - dt.timedelta(days=2))


def test_monthly_consumption_spans_the_tiers_with_summer_peak() -> None:
    january = [sum(HouseholdLoad(f"H{i}", seed=2).day_wh(EPOCH + dt.timedelta(days=d)) for d in range(31))
               for i in range(200)]
    kwh = sorted(wh / 1000 for wh in january)
    assert kwh[0] < 100 and kwh[-1] > 400 and 100 < kwh[len(kwh) // 2] < 250
    load = HouseholdLoad("H1", seed=2)
    july = sum(load.day_wh(dt.date(2026, 7, d)) for d in range(1, 32))
    jan = sum(load.day_wh(dt.date(2026, 1, d)) for d in range(1, 32))
    assert july > jan


def test_business_draws_more_on_weekday_daytime() -> None:
    load = HouseholdLoad("B1", seed=1, kind="business")
    monday = local_midnight_utc(dt.date(2026, 3, 9))
    assert load.power_w(monday + dt.timedelta(hours=10)) > 3 * load.power_w(monday + dt.timedelta(hours=2))
    assert load.day_wh(dt.date(2026, 3, 15)) < load.day_wh(dt.date(2026, 3, 9))  # Sunday
