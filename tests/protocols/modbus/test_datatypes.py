"""Golden decodes of each data type and word order, plus round-trip and cross-check properties."""

from __future__ import annotations

import math
import struct

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pymodbus.client.mixin import ModbusClientMixin

from protocols.modbus.datatypes import (
    DataType,
    WordOrder,
    decode,
    from_registers,
    registers_to_bytes,
    to_registers,
)

BIG, LITTLE = WordOrder.BIG, WordOrder.LITTLE

# (type, registers as sent most-significant-word-first, value). Float vectors are IEEE 754
# encodings (230.0 V is 0x43660000, 50.0 Hz 0x42480000); integer vectors are two's complement.
# Eastron documents its input registers as IEEE 754 single floats, high word first; Schneider
# documents energy as INT64 Wh, high word first; these are the layouts checked here.
GOLDEN = [
    (DataType.U16, [0x1234], 0x1234),
    (DataType.S16, [0xFFFF], -1),
    (DataType.S16, [0x8000], -32768),
    (DataType.U32, [0x1234, 0x5678], 0x12345678),
    (DataType.S32, [0xFFFF, 0xFFFE], -2),
    (DataType.U64, [0x0000, 0x0000, 0x075B, 0xCD15], 123_456_789),
    (DataType.S64, [0x0000, 0x0000, 0x075B, 0xCD15], 123_456_789),  # iEM3000 energy, Wh
    (DataType.S64, [0xFFFF, 0xFFFF, 0xFFFF, 0xFFFF], -1),
    (DataType.F32, [0x4366, 0x0000], 230.0),  # a voltage as an SDM630 serves it
    (DataType.F32, [0x4248, 0x0000], 50.0),  # frequency
    (DataType.F32, [0x3F80, 0x0000], 1.0),
    (DataType.F32, [0xC020, 0x0000], -2.5),
    (DataType.F32, [0x4640, 0xE400], 12345.0),  # an energy register, kWh
    (DataType.F64, [0x3FF0, 0x0000, 0x0000, 0x0000], 1.0),
    (DataType.F64, [0x406C, 0xC000, 0x0000, 0x0000], 230.0),
]


@pytest.mark.parametrize(("dtype", "words", "value"), GOLDEN, ids=[f"{g[0]}-{g[2]}" for g in GOLDEN])
def test_golden_big_word_order(dtype: DataType, words: list[int], value: float) -> None:
    assert from_registers(words, dtype, BIG) == value
    assert to_registers(value, dtype, BIG) == words


@pytest.mark.parametrize(("dtype", "words", "value"), GOLDEN, ids=[f"{g[0]}-{g[2]}" for g in GOLDEN])
def test_golden_little_word_order_is_the_words_reversed(
    dtype: DataType, words: list[int], value: float
) -> None:
    swapped = list(reversed(words))
    assert from_registers(swapped, dtype, LITTLE) == value
    assert to_registers(value, dtype, LITTLE) == swapped


def test_nan_and_infinity_decode_as_such() -> None:
    assert math.isnan(from_registers([0x7FC0, 0x0000], DataType.F32))
    assert from_registers([0x7F80, 0x0000], DataType.F32) == math.inf
    assert from_registers([0xFFF0, 0, 0, 0], DataType.F64) == -math.inf


def test_decode_inside_a_block_at_an_offset() -> None:
    block = registers_to_bytes([0xAAAA, 0x4366, 0x0000, 0x0000, 0x0001])
    assert decode(block, 1, DataType.F32, BIG) == 230.0
    assert decode(block, 3, DataType.U32, BIG) == 1
    assert decode(block, 3, DataType.U32, LITTLE) == 0x10000
    with pytest.raises(ValueError, match="runs past"):
        decode(block, 4, DataType.U32, BIG)


def test_out_of_range_integers_are_refused() -> None:
    with pytest.raises(ValueError, match="does not fit"):
        to_registers(70000, DataType.U16)
    with pytest.raises(ValueError, match="does not fit"):
        to_registers(-1, DataType.U64)


_RANGES = {
    DataType.U16: (0, 2**16 - 1), DataType.S16: (-(2**15), 2**15 - 1),
    DataType.U32: (0, 2**32 - 1), DataType.S32: (-(2**31), 2**31 - 1),
    DataType.U64: (0, 2**64 - 1), DataType.S64: (-(2**63), 2**63 - 1),
}
_PYMODBUS = {
    DataType.U16: ModbusClientMixin.DATATYPE.UINT16, DataType.S16: ModbusClientMixin.DATATYPE.INT16,
    DataType.U32: ModbusClientMixin.DATATYPE.UINT32, DataType.S32: ModbusClientMixin.DATATYPE.INT32,
    DataType.U64: ModbusClientMixin.DATATYPE.UINT64, DataType.S64: ModbusClientMixin.DATATYPE.INT64,
    DataType.F32: ModbusClientMixin.DATATYPE.FLOAT32, DataType.F64: ModbusClientMixin.DATATYPE.FLOAT64,
}


@st.composite
def integer_cases(draw: st.DrawFn) -> tuple[DataType, int]:
    dtype = draw(st.sampled_from(list(_RANGES)))
    low, high = _RANGES[dtype]
    return dtype, draw(st.integers(low, high))


@given(integer_cases(), st.sampled_from(list(WordOrder)))
def test_integers_round_trip(case: tuple[DataType, int], order: WordOrder) -> None:
    dtype, value = case
    words = to_registers(value, dtype, order)
    assert len(words) == dtype.width and all(0 <= w <= 0xFFFF for w in words)
    assert from_registers(words, dtype, order) == value


@given(st.sampled_from([DataType.F32, DataType.F64]), st.data(), st.sampled_from(list(WordOrder)))
def test_float_bit_patterns_round_trip(dtype: DataType, data: st.DataObject, order: WordOrder) -> None:
    words = data.draw(st.lists(st.integers(0, 0xFFFF), min_size=dtype.width, max_size=dtype.width))
    value = from_registers(words, dtype, order)
    if math.isnan(value):
        return  # NaN payloads need not survive a round trip
    assert to_registers(value, dtype, order) == words


@given(st.sampled_from(list(DataType)), st.data(), st.sampled_from(["big", "little"]))
def test_agrees_with_pymodbus_conversion(dtype: DataType, data: st.DataObject, order: str) -> None:
    words = data.draw(st.lists(st.integers(0, 0xFFFF), min_size=dtype.width, max_size=dtype.width))
    ours = from_registers(words, dtype, WordOrder(order))
    theirs = ModbusClientMixin.convert_from_registers(words, _PYMODBUS[dtype], word_order=order)  # type: ignore[arg-type]
    if isinstance(ours, float) and math.isnan(ours):
        assert isinstance(theirs, float) and math.isnan(theirs)
    else:
        assert ours == theirs


@given(st.floats(width=32, allow_nan=False))
def test_f32_matches_struct(value: float) -> None:
    words = to_registers(value, DataType.F32)
    assert struct.pack(">HH", *words) == struct.pack(">f", value)
