"""Billing periods: from one reading date to the next (each the END of that local day).

A period is regular when it is one calendar month long on the agreed reading day (the
same day of the month, or both month ends, or the day clipped to a shorter month);
anything else is irregular and gets prorated quotas (see `billing.tiers`).
"""

from __future__ import annotations

import calendar
import datetime as dt
import re

from billing.errors import BillingError

PERIOD = re.compile(r"^(\d{4})-(0[1-9]|1[0-2])$")


def month_days(year: int, month: int) -> int:
    return calendar.monthrange(year, month)[1]


def is_month_end(day: dt.date) -> bool:
    return day.day == month_days(day.year, day.month)


def add_months(day: dt.date, months: int, *, month_end: bool = False) -> dt.date:
    """The same day `months` later, clipped to the month's length (or its end if asked)."""
    index = day.year * 12 + day.month - 1 + months
    year, month = divmod(index, 12)
    last = month_days(year, month + 1)
    return dt.date(year, month + 1, last if month_end else min(day.day, last))


def is_regular(start: dt.date, end: dt.date) -> bool:
    if is_month_end(start) and is_month_end(end):
        return add_months(start, 1, month_end=True) == end
    return add_months(start, 1) == end


def preceding_month_days(end: dt.date) -> int:
    """T of the proration rule: calendar days of the month before the reading date's month."""
    first = end.replace(day=1) - dt.timedelta(days=1)
    return month_days(first.year, first.month)


def parse_period(period: str) -> tuple[int, int]:
    match = PERIOD.match(period)
    if not match:
        raise BillingError(f"period {period!r} is not YYYY-MM", hint="for example --period 2026-11")
    return int(match.group(1)), int(match.group(2))


def reading_date(year: int, month: int, reading_day: int) -> dt.date:
    """The reading date of a month for an agreed day (0 = the month's end)."""
    last = month_days(year, month)
    return dt.date(year, month, last if reading_day in (0, 31) else min(reading_day, last))


def period_bounds(period: str, reading_day: int) -> tuple[dt.date, dt.date]:
    """(previous reading date, this reading date) of the billing period `YYYY-MM`."""
    year, month = parse_period(period)
    previous = add_months(dt.date(year, month, 1), -1)
    return reading_date(previous.year, previous.month, reading_day), reading_date(year, month, reading_day)


def last_full_month(today: dt.date) -> tuple[dt.date, dt.date]:
    end = today.replace(day=1) - dt.timedelta(days=1)
    return add_months(end, -1, month_end=True), end
