"""Time-of-use calendars as date-effective data (`fixtures/tou/*.json`).

A calendar maps each local minute of a day type (mon-sat, sun) to offpeak, normal or
peak; the calendar in force on a day is the one with the latest `effective_from` on or
before it. A calendar without an effective date (decided, not yet applied) is loaded
but never in force until its file is given one (or `effective` overrides it).
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import polars as pl

from core.paths import fixture
from ingest.errors import IngestError

BUCKETS = ("offpeak", "normal", "peak")
DAY_TYPES = ("mon-sat", "sun")


@dataclass(frozen=True)
class Calendar:
    id: str
    effective_from: dt.date | None
    minutes: Mapping[str, tuple[str, ...]]  # day type -> 1440 bucket names

    def day_type(self, day: dt.date) -> str:
        return "sun" if day.weekday() == 6 else "mon-sat"

    def lookup(self, day: dt.date) -> pl.LazyFrame:
        """(minute, tou) for the day: the bucket of the minute an interval starts in."""
        names = self.minutes[self.day_type(day)]
        return pl.LazyFrame(
            {"minute": list(range(1440)), "tou": list(names)},
            schema={"minute": pl.Int32(), "tou": pl.String()},
        )


def _minute(text: str, where: str) -> int:
    hours, _, minutes = text.partition(":")
    try:
        value = int(hours) * 60 + int(minutes)
    except ValueError as exc:
        raise IngestError(f"{where}: time {text!r} is not HH:MM") from exc
    if not 0 <= value <= 1440:
        raise IngestError(f"{where}: time {text!r} is outside 00:00-24:00")
    return value


def parse_calendar(raw: Mapping[str, object], where: str) -> Calendar:
    day_types = raw.get("day_types")
    if not isinstance(day_types, dict) or set(day_types) != set(DAY_TYPES):
        raise IngestError(f"{where}: day_types must name exactly {', '.join(DAY_TYPES)}")
    minutes: dict[str, tuple[str, ...]] = {}
    for name, spans in day_types.items():
        table: list[str | None] = [None] * 1440
        for start_text, end_text, bucket in spans:
            if bucket not in BUCKETS:
                raise IngestError(f"{where}: {name} bucket {bucket!r} is not one of {BUCKETS}")
            for m in range(_minute(start_text, where), _minute(end_text, where)):
                if table[m] is not None:
                    raise IngestError(f"{where}: {name} spans overlap at minute {m}")
                table[m] = bucket
        if None in table:
            raise IngestError(
                f"{where}: {name} leaves minute {table.index(None)} without a bucket",
                hint="the spans of a day type must cover 00:00-24:00",
            )
        minutes[name] = tuple(b for b in table if b is not None)
    effective = raw.get("effective_from")
    return Calendar(
        id=str(raw.get("id", where)),
        effective_from=dt.date.fromisoformat(str(effective)) if effective else None,
        minutes=minutes,
    )


def load_calendars(directory: Path | None = None) -> list[Calendar]:
    folder = directory or fixture("tou")
    calendars = []
    for path in sorted(folder.glob("*.json")):
        try:
            raw = json.loads(path.read_text("utf-8"))
        except (OSError, ValueError) as exc:
            raise IngestError(f"TOU calendar {path} cannot be read: {exc}") from exc
        calendars.append(parse_calendar(raw, str(path)))
    return calendars


def in_force(
    calendars: list[Calendar], day: dt.date, effective: Mapping[str, dt.date] | None = None
) -> Calendar:
    """The calendar in force on `day`; `effective` gives dates to calendars by id."""
    dated = []
    for calendar in calendars:
        start = (effective or {}).get(calendar.id, calendar.effective_from)
        if start is not None and start <= day:
            dated.append((start, calendar.id, calendar))
    if not dated:
        raise IngestError(
            f"no time-of-use calendar is in force on {day}",
            hint="add one to fixtures/tou/ with an effective_from on or before it",
        )
    return max(dated, key=lambda item: (item[0], item[1]))[2]
