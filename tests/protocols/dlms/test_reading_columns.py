from __future__ import annotations

import datetime as dt

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from core.errors import ContractError
from core.reading import Reading
from protocols.dlms.reading_columns import ColumnsBuilder

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


def _add(builder: ColumnsBuilder, data: Rows, scale: int | list[int], quantity: str) -> None:
    builder.add(
        quantity=quantity,
        unit="Wh",
        ts=[r[0] for r in data],
        values=[r[1] for r in data],
        scale=scale,
        status=[r[2] for r in data],
    )


def _build(builder: ColumnsBuilder) -> list[Reading]:
    return list(builder.build(meter_id="M1", source="poll-1", read_at=READ_AT))


@settings(max_examples=50, deadline=None)
@given(rows, rows, st.integers(-9, 9))
def test_blocks_equal_readings_built_one_by_one_in_order(first: Rows, second: Rows, scale: int) -> None:
    builder = ColumnsBuilder()
    _add(builder, first, scale, "1.0.1.8.0.255")
    _add(builder, second, 0, "1.0.1.29.0.255")
    built = _build(builder)
    assert built == _one_by_one(first, scale, "1.0.1.8.0.255") + _one_by_one(second, 0, "1.0.1.29.0.255")
    assert all(type(r) is Reading for r in built)


def test_a_scale_per_row() -> None:
    builder = ColumnsBuilder()
    _add(builder, [(READ_AT, 15, 0), (READ_AT + dt.timedelta(minutes=15), 2, 0)], [-1, 0], "1.0.1.8.0.255")
    assert [(r.value, r.scale) for r in _build(builder)] == [(15, -1), (2, 0)]


def test_a_block_of_unequal_columns_is_refused() -> None:
    with pytest.raises(ValueError, match=r"1\.0\.1\.8\.0\.255: 1 times, 1 values, 2 scales"):
        _add(ColumnsBuilder(), [(READ_AT, 15, 0)], [-1, 0], "1.0.1.8.0.255")


def test_a_column_outside_the_contract_raises_as_the_constructor_does() -> None:
    builder = ColumnsBuilder()
    _add(builder, [(READ_AT, 1, 0)], 12, "1.0.1.8.0.255")
    with pytest.raises(ContractError, match="scale"):
        _build(builder)
    builder = ColumnsBuilder()
    _add(builder, [(READ_AT, 2**63, 0)], 0, "1.0.1.8.0.255")
    with pytest.raises(ContractError, match="int64"):
        _build(builder)


def test_other_spellings_and_zones_are_normalised_like_the_constructor() -> None:
    local = dt.timezone(dt.timedelta(hours=7))
    data = [(dt.datetime(2026, 3, 10, 12, 0, tzinfo=local), 5, 1)]
    builder = ColumnsBuilder()
    _add(builder, data, 0, "1-0:1.8.0.255")
    built = _build(builder)
    assert built == _one_by_one(data, 0, "1.0.1.8.0.255")
    assert built[0].ts.tzinfo is dt.UTC and built[0].quantity == "1.0.1.8.0.255"
