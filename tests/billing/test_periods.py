from __future__ import annotations

import datetime as dt

import pytest

from billing.errors import BillingError
from billing.periods import is_regular, period_bounds, preceding_month_days

D = dt.date


def test_regular_means_one_calendar_month_on_the_reading_day() -> None:
    assert is_regular(D(2026, 1, 31), D(2026, 2, 28))  # both month ends
    assert is_regular(D(2026, 2, 28), D(2026, 3, 31))
    assert is_regular(D(2026, 1, 15), D(2026, 2, 15))
    assert is_regular(D(2026, 1, 30), D(2026, 2, 28))  # agreed day clipped to a short month
    assert not is_regular(D(2026, 1, 15), D(2026, 2, 16))
    assert not is_regular(D(2024, 1, 3), D(2024, 2, 29))
    assert is_regular(D(2026, 2, 28), D(2026, 3, 28))


def test_period_bounds_and_t() -> None:
    assert period_bounds("2026-03", 0) == (D(2026, 2, 28), D(2026, 3, 31))
    assert period_bounds("2026-03", 15) == (D(2026, 2, 15), D(2026, 3, 15))
    assert period_bounds("2026-01", 0) == (D(2025, 12, 31), D(2026, 1, 31))
    assert preceding_month_days(D(2024, 2, 29)) == 31
    assert preceding_month_days(D(2024, 3, 31)) == 29
    with pytest.raises(BillingError, match="2026-13"):
        period_bounds("2026-13", 0)
