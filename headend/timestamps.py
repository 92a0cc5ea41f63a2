"""How instants are stored in the operational store: ISO 8601 UTC text with microseconds.

One spelling everywhere means text comparison orders instants correctly on SQLite and
PostgreSQL alike.
"""

from __future__ import annotations

import datetime as dt


def to_db(when: dt.datetime) -> str:
    if when.tzinfo is None:
        raise ValueError(f"instant {when.isoformat()} has no time zone")
    return when.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def from_db(text: str | dt.datetime) -> dt.datetime:
    if isinstance(text, dt.datetime):
        return text if text.tzinfo else text.replace(tzinfo=dt.UTC)
    parsed = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=dt.UTC)
