"""ReadingColumns: readings held as columns are the same readings, row for row and as a frame."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from polars.testing import assert_frame_equal

from core.errors import ContractError
from core.reading import Reading, ReadingColumns, to_frame

READ_AT = dt.datetime(2026, 3, 10, 5, 0, tzinfo=dt.UTC)
Row = tuple[str, dt.datetime, int, int, str, int]  # quantity, ts, value, scale, unit, status
times = st.datetimes(
    min_value=dt.datetime(2000, 1, 1), max_value=dt.datetime(2090, 1, 1), timezones=st.just(dt.UTC)
)
rows = st.lists(
    st.tuples(
        st.sampled_from(["1.0.1.8.0.255", "1.0.1.29.0.255", "1.0.2.8.0.255"]),
        times,
        st.integers(-(2**63), 2**63 - 1),
        st.integers(-9, 9),
        st.sampled_from(["Wh", "varh", ""]),
        st.integers(0, 255),
    ),
    max_size=30,
)


def _columns(data: Sequence[Row], *, meter_id: str = "M1", snapshot: bool = False) -> ReadingColumns:
    return ReadingColumns(
        meter_id,
        [r[0] for r in data],
        [r[1] for r in data],
        [r[2] for r in data],
        [r[3] for r in data],
        [r[4] for r in data],
        [r[5] for r in data],
        "poll-1",
        READ_AT,
        snapshot,
    )


def _one_by_one(data: Sequence[Row], *, meter_id: str = "M1", snapshot: bool = False) -> list[Reading]:
    return [
        Reading(
            meter_id=meter_id, quantity=quantity, ts=ts, value=value, scale=scale, unit=unit,
            status=status, snapshot=snapshot, source="poll-1", read_at=READ_AT,
        )
        for quantity, ts, value, scale, unit, status in data
    ]


@settings(max_examples=60, deadline=None)
@given(rows, st.booleans())
def test_rows_equal_readings_built_one_by_one(data: list[Row], snapshot: bool) -> None:
    columns = _columns(data, snapshot=snapshot)
    expected = _one_by_one(data, snapshot=snapshot)
    assert list(columns) == expected
    assert len(columns) == len(expected)
    assert [columns[i] for i in range(-len(data), len(data))] == expected + expected
    assert list(columns[1:3]) == expected[1:3]
    assert all(type(r) is Reading for r in columns)
    assert [r.to_json() for r in columns] == [r.to_json() for r in expected]


@settings(max_examples=40, deadline=None)
@given(rows, st.booleans())
def test_frame_equals_the_frame_of_the_readings(data: list[Row], snapshot: bool) -> None:
    expected = to_frame(_one_by_one(data, snapshot=snapshot))
    assert_frame_equal(_columns(data, snapshot=snapshot).to_frame(), expected)


def test_rows_outside_the_contract_raise_as_the_constructor_does() -> None:
    row: Row = ("1.0.1.8.0.255", READ_AT, 1, 0, "Wh", 0)
    with pytest.raises(ContractError, match="scale"):
        _columns([row, (*row[:3], 12, *row[4:])])
    with pytest.raises(ContractError, match="int64"):
        _columns([row, (*row[:2], 2**63, *row[3:])])
    with pytest.raises(ContractError, match="time zone"):
        _columns([row, (row[0], dt.datetime(2026, 3, 10), *row[2:])])
    with pytest.raises(ContractError, match="meter_id"):
        _columns([row], meter_id="")
    with pytest.raises(ContractError, match="unequal length"):
        ReadingColumns("M1", ["1.0.1.8.0.255"], [READ_AT], [1, 2], [0], ["Wh"], [0], "", READ_AT)


def test_other_spellings_and_zones_are_normalised_like_the_constructor() -> None:
    local = dt.timezone(dt.timedelta(hours=7))
    data: list[Row] = [
        ("1-0:1.8.0.255", dt.datetime(2026, 3, 10, 12, 0, tzinfo=local), 5, 0, "Wh", 1),
        ("1.0.1.8.0.255", READ_AT, 6, 0, "Wh", 0),
    ]
    columns = _columns(data)
    assert list(columns) == _one_by_one(data)
    assert columns.quantity == ("1.0.1.8.0.255", "1.0.1.8.0.255")
    assert columns[0].ts.tzinfo is dt.UTC and columns[0].ts == dt.datetime(2026, 3, 10, 5, 0, tzinfo=dt.UTC)


def test_columns_cannot_change_after_the_check() -> None:
    values = [1, 2]
    columns = ReadingColumns(
        "M1", ["1.0.1.8.0.255"] * 2, [READ_AT] * 2, values, [0, 0], ["Wh"] * 2, [0, 0], "", READ_AT
    )
    values.append(2**64)  # the caller's list, not the columns'
    assert columns.value == (1, 2)


def test_empty_columns_are_an_empty_frame() -> None:
    columns = _columns([])
    assert len(columns) == 0 and list(columns) == []
    assert_frame_equal(columns.to_frame(), to_frame([]))
