"""Snapshot Readings filled slot by slot equal what the validating constructor builds."""

from __future__ import annotations

import datetime as dt

import pytest
from hypothesis import given
from hypothesis import strategies as st

from core.errors import ContractError
from core.reading import Reading
from protocols.modbus.maps import RegisterEntry, list_maps
from protocols.modbus.snapshots import snapshot_readings

ENTRIES = [entry for register_map in list_maps() for entry in register_map.entries]
HANOI = dt.timezone(dt.timedelta(hours=7))


def _validated(entry: RegisterEntry, value: int, meter_id: str, ts: dt.datetime, source: str) -> Reading:
    return Reading(meter_id=meter_id, quantity=entry.quantity, ts=ts, value=value, scale=entry.reading_scale,
                   unit=entry.unit, snapshot=True, source=source, read_at=ts)


@given(
    st.lists(st.tuples(st.sampled_from(ENTRIES), st.integers(-(2**63), 2**63 - 1)), max_size=40),
    st.text(min_size=1, max_size=16),
    st.datetimes(min_value=dt.datetime(2000, 1, 1), max_value=dt.datetime(2100, 1, 1),
                 timezones=st.sampled_from([dt.UTC, HANOI])),
    st.text(max_size=12),
)
def test_equal_to_the_validating_constructor(
    values: list[tuple[RegisterEntry, int]], meter_id: str, ts: dt.datetime, source: str
) -> None:
    fast = snapshot_readings(values, meter_id=meter_id, ts=ts, source=source)
    slow = [_validated(entry, value, meter_id, ts, source) for entry, value in values]
    assert fast == slow
    assert all(r.ts.tzinfo is dt.UTC and r.read_at is r.ts for r in fast)
    assert [r.to_json() for r in fast] == [r.to_json() for r in slow]


def test_the_read_time_and_meter_are_checked_once() -> None:
    entry = ENTRIES[0]
    with pytest.raises(ContractError, match="no time zone"):
        snapshot_readings([(entry, 1)], meter_id="M1", ts=dt.datetime(2026, 3, 10, 12, 0), source="")
    with pytest.raises(ContractError, match="meter_id is empty"):
        snapshot_readings([(entry, 1)], meter_id="", ts=dt.datetime.now(dt.UTC), source="")


def test_readings_stay_frozen() -> None:
    (reading,) = snapshot_readings([(ENTRIES[0], 5)], meter_id="M1", ts=dt.datetime.now(dt.UTC), source="p")
    with pytest.raises(AttributeError):
        reading.value = 6  # type: ignore[misc]
