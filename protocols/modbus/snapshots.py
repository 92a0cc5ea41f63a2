"""Exact values of one read -> snapshot Readings, each field checked once rather than per row.

`Reading.__post_init__` re-checks every field of every row (OBIS spelling, UTC, scale range,
int64), which costs more than decoding the value. Here each check is made where the data came
in, once: the map's validation canonicalised every entry's quantity and bounded its scale, the
decoder refused values outside int64, and `snapshot_readings` checks the meter id and converts
the read time to UTC once per read. The rows are then filled slot by slot, and are equal to
what `Reading(...)` would build (tests/protocols/modbus/test_snapshots.py checks it).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable

from core.errors import ContractError
from core.reading import Reading
from protocols.modbus.maps import RegisterEntry

_FIELDS = ("meter_id", "quantity", "ts", "value", "scale", "unit", "status", "snapshot", "source", "read_at")
if tuple(Reading.__slots__) != _FIELDS:  # a changed contract must not be filled half-right
    raise ContractError(f"core.reading.Reading's fields are {Reading.__slots__}; "
                        f"protocols/modbus/snapshots.py fills {_FIELDS}",
                        hint="fill the new fields in snapshot_readings, as Reading(...) would")
_new = object.__new__
(_meter_id, _quantity, _ts, _value, _scale, _unit, _status, _snapshot, _source, _read_at) = (
    getattr(Reading, name).__set__ for name in _FIELDS
)


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
        reading = _new(Reading)
        _meter_id(reading, meter_id)
        _quantity(reading, quantity)
        _ts(reading, ts)
        _value(reading, value)
        _scale(reading, scale)
        _unit(reading, unit)
        _status(reading, 0)
        _snapshot(reading, True)
        _source(reading, source)
        _read_at(reading, ts)
        readings.append(reading)
    return readings
