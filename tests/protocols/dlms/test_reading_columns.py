from __future__ import annotations

import datetime as dt

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from core.errors import ContractError
from core.reading import Reading
from protocols.dlms.reading_columns import column_readings

READ_AT = dt.datetime(2026, 3, 10, 5, 0, tzinfo=dt.UTC)
times = st.datetimes(
    min_value=dt.datetime(2000, 1, 1), max_value=dt.datetime(2090, 1, 1), timezones=st.just(dt.UTC)
)
Rows = list[tuple[dt.datetime, int, int]]
rows = st.lists(st.tuples(times, st.integers(-(2**63), 2**63 - 1), st.integers(0, 255)), max_size=20)


def _one_by_one(data: Rows, scale: int, quantity: str) -> list[Reading]:
    return [
        Reading(
            meter_id="M1",
            quantity=quantity,
            ts=ts,
            value=value,
            scale=scale,
            unit="Wh",
            status=status,
            source="poll-1",
            read_at=READ_AT,
        )
        for ts, value, status in data
    ]


def _columns(data: Rows, scale: int | list[int], quantity: str) -> list[Reading]:
    return column_readings(
        meter_id="M1",
        quantity=quantity,
        ts=[r[0] for r in data],
        values=[r[1] for r in data],
        scale=scale,
        unit="Wh",
        status=[r[2] for r in data],
        source="poll-1",
        read_at=READ_AT,
    )


@settings(max_examples=50, deadline=None)
@given(rows, st.integers(-9, 9))
def test_columns_equal_readings_built_one_by_one(data: Rows, scale: int) -> None:
    built = _columns(data, scale, "1.0.1.8.0.255")
    assert built == _one_by_one(data, scale, "1.0.1.8.0.255")
    assert all(type(r) is Reading for r in built)
    assert [r.to_json() for r in built] == [r.to_json() for r in _one_by_one(data, scale, "1.0.1.8.0.255")]


def test_a_scale_per_row() -> None:
    data = [(READ_AT, 15, 0), (READ_AT + dt.timedelta(minutes=15), 2, 0)]
    built = _columns(data, [-1, 0], "1.0.1.8.0.255")
    assert [(r.value, r.scale) for r in built] == [(15, -1), (2, 0)]


def test_a_column_outside_the_contract_raises_as_the_constructor_does() -> None:
    data = [(READ_AT, 1, 0)]
    with pytest.raises(ContractError, match="scale"):
        _columns(data, 12, "1.0.1.8.0.255")
    with pytest.raises(ContractError, match="int64"):
        _columns([(READ_AT, 2**63, 0)], 0, "1.0.1.8.0.255")


def test_other_spellings_and_zones_are_normalised_like_the_constructor() -> None:
    local = dt.timezone(dt.timedelta(hours=7))
    data = [(dt.datetime(2026, 3, 10, 12, 0, tzinfo=local), 5, 1)]
    built = _columns(data, 0, "1-0:1.8.0.255")
    assert built == _one_by_one(data, 0, "1.0.1.8.0.255")
    assert built[0].ts.tzinfo is dt.UTC and built[0].quantity == "1.0.1.8.0.255"
