"""TOU calendars: both calendars of the domain file, date-effective, and their checks."""

from __future__ import annotations

import datetime as dt

import polars as pl
import pytest

from ingest.errors import IngestError
from ingest.tou import in_force, load_calendars, parse_calendar

MONDAY, SUNDAY = dt.date(2026, 11, 9), dt.date(2026, 11, 15)


def bucket_at(calendar_day: dt.date, hhmm: str, effective: dict[str, dt.date] | None = None) -> str:
    calendar = in_force(load_calendars(), calendar_day, effective)
    hours, minutes = map(int, hhmm.split(":"))
    frame = calendar.lookup(calendar_day).collect()
    return str(frame.filter(pl.col("minute") == hours * 60 + minutes).item(0, "tou"))


def test_circular_16_2014_hours() -> None:
    assert bucket_at(MONDAY, "09:29") == "normal"
    assert bucket_at(MONDAY, "09:30") == "peak"
    assert bucket_at(MONDAY, "11:30") == "normal"
    assert bucket_at(MONDAY, "17:00") == "peak"
    assert bucket_at(MONDAY, "19:59") == "peak"
    assert bucket_at(MONDAY, "20:00") == "normal"
    assert bucket_at(MONDAY, "22:00") == "offpeak"
    assert bucket_at(MONDAY, "03:59") == "offpeak"
    assert bucket_at(SUNDAY, "10:00") == "normal"
    assert bucket_at(SUNDAY, "18:00") == "normal"


def test_decision_963_applies_only_once_dated() -> None:
    assert in_force(load_calendars(), MONDAY).id == "circular-16-2014"
    dated = {"decision-963-2026": dt.date(2026, 11, 1)}
    assert in_force(load_calendars(), MONDAY, dated).id == "decision-963-2026"
    assert bucket_at(MONDAY, "17:30", dated) == "peak"
    assert bucket_at(MONDAY, "22:30", dated) == "normal"
    assert bucket_at(MONDAY, "05:59", dated) == "offpeak"
    assert in_force(load_calendars(), dt.date(2026, 10, 31), dated).id == "circular-16-2014"


def test_a_calendar_must_cover_the_day() -> None:
    with pytest.raises(IngestError, match="without a bucket"):
        parse_calendar({"day_types": {"mon-sat": [["00:00", "12:00", "normal"]], "sun": []}}, "bad.json")
    with pytest.raises(IngestError, match="overlap"):
        parse_calendar(
            {
                "day_types": {
                    "mon-sat": [["00:00", "24:00", "normal"], ["01:00", "02:00", "peak"]],
                    "sun": [["00:00", "24:00", "normal"]],
                }
            },
            "bad.json",
        )


def test_no_calendar_in_force_before_2014() -> None:
    with pytest.raises(IngestError, match="no time-of-use calendar"):
        in_force(load_calendars(), dt.date(2010, 1, 1))
