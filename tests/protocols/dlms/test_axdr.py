from __future__ import annotations

import contextlib
from decimal import Decimal

import pytest
from dlms_cosem import dlms_data
from hypothesis import given, settings
from hypothesis import strategies as st

from protocols.dlms import axdr
from protocols.dlms.errors import ApduError
from protocols.errors import RemoteProtocolError

INTEGER_TYPES = [
    (axdr.INTEGER, -128, 127),
    (axdr.LONG, -(2**15), 2**15 - 1),
    (axdr.DOUBLE_LONG, -(2**31), 2**31 - 1),
    (axdr.LONG64, -(2**63), 2**63 - 1),
    (axdr.UNSIGNED, 0, 255),
    (axdr.LONG_UNSIGNED, 0, 2**16 - 1),
    (axdr.DOUBLE_LONG_UNSIGNED, 0, 2**32 - 1),
    (axdr.LONG64_UNSIGNED, 0, 2**64 - 1),
    (axdr.ENUM, 0, 255),
]


def _scalar() -> st.SearchStrategy[tuple[bytes, object]]:
    integers = st.sampled_from(INTEGER_TYPES).flatmap(
        lambda t: st.integers(t[1], t[2]).map(lambda v, tag=t[0]: (axdr.integer(tag, v), v))
    )
    strings = st.binary(max_size=300).map(lambda b: (axdr.octets(b), b))
    text = st.text(alphabet=st.characters(min_codepoint=32, max_codepoint=126), max_size=40).map(
        lambda s: (axdr.visible(s), s)
    )
    flags = st.booleans().map(lambda b: (axdr.boolean(b), b))
    return st.one_of(integers, strings, text, flags, st.just((axdr.null(), None)))


values = st.recursive(
    _scalar(),
    lambda children: st.lists(children, max_size=5).flatmap(
        lambda items: st.sampled_from([axdr.array, axdr.structure]).map(
            lambda enc: (enc([i[0] for i in items]), [i[1] for i in items])
        )
    ),
    max_leaves=20,
)


@settings(max_examples=120, deadline=None)
@given(values)
def test_round_trip(pair: tuple[bytes, object]) -> None:
    encoded, value = pair
    assert axdr.decode(encoded) == value


@settings(max_examples=500, deadline=None)
@given(st.binary(max_size=200))
def test_any_bytes_decode_or_raise_remote_error(data: bytes) -> None:
    with contextlib.suppress(RemoteProtocolError):
        axdr.decode(data)
    with contextlib.suppress(RemoteProtocolError):
        axdr.decode_columns(data, 3)


@settings(max_examples=100, deadline=None)
@given(st.integers(0, 70000))
def test_length_round_trip(length: int) -> None:
    assert axdr.decode_length(axdr.encode_length(length), 0) == (length, len(axdr.encode_length(length)))


def _buffer(rows: list[tuple[bytes, int, int]]) -> bytes:
    return axdr.array(
        [
            axdr.structure(
                [
                    axdr.octets(t, axdr.OCTET_STRING),
                    axdr.integer(axdr.UNSIGNED, s),
                    axdr.integer(axdr.DOUBLE_LONG_UNSIGNED, e),
                ]
            )
            for t, s, e in rows
        ]
    )


@settings(max_examples=100, deadline=None)
@given(
    st.lists(
        st.tuples(st.binary(min_size=12, max_size=12), st.integers(0, 255), st.integers(0, 2**32 - 1)),
        max_size=50,
    )
)
def test_columnar_decoder_agrees_with_dlms_cosem(rows: list[tuple[bytes, int, int]]) -> None:
    raw = _buffer(rows)
    columns = axdr.decode_columns(raw, 3)
    theirs = dlms_data.DlmsDataParser().parse(raw)[0].to_python() if rows else []
    assert [list(r) for r in zip(*columns, strict=True)] == [[bytes(c[0]), c[1], c[2]] for c in theirs]
    assert [list(r) for r in zip(*columns, strict=True)] == [list(r) for r in rows]


def test_float_becomes_its_shortest_decimal() -> None:
    assert axdr.decode(bytes([axdr.FLOAT32]) + bytes.fromhex("3dcccccd")) == Decimal("0.1")


def test_not_a_number_is_a_bad_value() -> None:
    with pytest.raises(RemoteProtocolError, match="nan"):
        axdr.decode(bytes([axdr.FLOAT64]) + bytes.fromhex("7ff8000000000000"))


def test_trailing_bytes_are_refused() -> None:
    with pytest.raises(ApduError, match="follow"):
        axdr.decode(axdr.integer(axdr.UNSIGNED, 1) + b"\x00")


integer_cells = st.sampled_from(INTEGER_TYPES).flatmap(
    lambda t: st.integers(t[1], t[2]).map(lambda v, tag=t[0]: axdr.integer(tag, v))
)
cells = st.one_of(
    integer_cells,
    st.binary(max_size=20).map(axdr.octets),
    st.just(axdr.null()),
    st.binary(min_size=12, max_size=12).map(lambda b: axdr.octets(b, axdr.DATE_TIME)),
)


tables = st.integers(1, 5).flatmap(
    lambda w: st.tuples(st.just(w), st.lists(st.lists(cells, min_size=w, max_size=w), max_size=8))
)


@settings(max_examples=50, deadline=None)
@given(tables, st.booleans())
def test_uniform_rows_decode_as_cell_by_cell(shape: tuple[int, list[list[bytes]]], alike: bool) -> None:
    width, table = shape
    if alike and table:  # every row the first row's types and sizes: the one-pass struct path
        table = [table[0]] * len(table)
    raw = axdr.array([axdr.structure(row) for row in table])
    expected = [[axdr.decode(cell) for cell in column] for column in zip(*table, strict=True)]
    assert axdr.decode_columns(raw, width) == (expected if table else [[] for _ in range(width)])
