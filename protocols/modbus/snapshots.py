"""Exact values of one read -> snapshot Readings, each field checked once rather than per row.

`Reading.__post_init__` re-checks every field of every row (OBIS spelling, UTC, scale range,
int64), which costs more than decoding the value. Here each check is made where the data came
in, once: the map's validation canonicalised every entry's quantity and bounded its scale, the
decoder refused values outside int64, and `snapshot_readings` checks the meter id and converts
the read time to UTC once per read. The rows are then built with `Reading.prechecked`, and are equal to
what `Reading(...)` would build (tests/protocols/modbus/test_snapshots.py checks it).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable

from core.errors import ContractError
from core.reading import Reading
from protocols.modbus.maps import RegisterEntry


def snapshot_readings(
    values: Iterable[tuple[RegisterEntry, int]], *, meter_id: str, ts: dt.datetime, source: str
) -> list[Reading]:
    """One snapshot Reading per (entry, exact value), all read at `ts` (aware; stored as UTC)."""
    if not meter_id:
        raise ContractError("Reading.meter_id is empty")
    if ts.tzinfo is None:
        raise ContractError(f"Reading.ts {ts.isoformat()} has no time zone; readings are UTC")
    ts = ts.astimezone(dt.UTC)
    readings = []
    for entry, value in values:
        quantity, scale, unit = entry.reading_fields
        readings.append(Reading.prechecked(meter_id, quantity, ts, value, scale, unit, 0, True, source, ts))
    return readings
