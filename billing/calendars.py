"""Time-of-use calendars (which band a local clock time falls in), dated data in
`fixtures/tariffs/calendars/`. A contract names the calendar its meter is programmed
with, because meters are reprogrammed over a window after a change.
"""

from __future__ import annotations

import datetime as dt
import functools
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass

from billing.errors import TariffError
from billing.tariffs import BANDS
from core.paths import fixture

MINUTES = 24 * 60
DEFAULT_CALENDAR = "16/2014/TT-BCT"


@dataclass(frozen=True)
class TouCalendar:
    name: str
    weekday: tuple[str, ...]  # band of each minute of Monday-Saturday
    sunday: tuple[str, ...]

    def band_at(self, local: dt.datetime) -> str:
        minutes = self.sunday if local.weekday() == 6 else self.weekday
        return minutes[local.hour * 60 + local.minute]


def _minutes(spec: Mapping[str, list[str]], origin: str) -> tuple[str, ...]:
    bands: list[str | None] = [None] * MINUTES
    for band in BANDS:
        for span in spec.get(band, []):
            start_text, end_text = span.split("-")
            start = int(start_text[:2]) * 60 + int(start_text[3:])
            end = int(end_text[:2]) * 60 + int(end_text[3:])
            for minute in range(start, end):
                if bands[minute] is not None:
                    raise TariffError(f"{origin}: {span} overlaps another band")
                bands[minute] = band
    if any(b is None for b in bands):
        raise TariffError(f"{origin}: some minutes of the day belong to no band")
    return tuple(b for b in bands if b is not None)


@functools.cache
def calendars() -> dict[str, TouCalendar]:
    out: dict[str, TouCalendar] = {}
    for path in sorted(fixture("tariffs", "calendars").glob("*.toml")):
        raw = tomllib.loads(path.read_text("utf-8"))
        name = str(raw["name"])
        out[name] = TouCalendar(name, _minutes(raw["mon-sat"], str(path)), _minutes(raw["sun"], str(path)))
    return out


def calendar(name: str) -> TouCalendar:
    known = calendars()
    if name not in known:
        raise TariffError(f"TOU calendar {name!r} is unknown", hint=f"use one of: {', '.join(known)}")
    return known[name]
