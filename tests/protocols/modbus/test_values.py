"""Decoded numbers become exact values: floats rounded once, bad values never pass as good."""

from __future__ import annotations

import math
from decimal import ROUND_HALF_EVEN, Decimal, localcontext

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from protocols.modbus.datatypes import DataType, WordOrder, to_registers
from protocols.modbus.maps import Function, RegisterEntry
from protocols.modbus.plan import ReadBlock
from protocols.modbus.values import decode_block, exact_value, round_exactly


def _entry(dtype: DataType = DataType.F32, scale: int = 3, resolution: int | None = 1,
           low: str | None = None, high: str | None = None, address: int = 0) -> RegisterEntry:
    return RegisterEntry(
        name="e", quantity="1.0.1.8.0.255", address=address, manual_address=address, function=Function.INPUT,
        type=dtype, word_order=WordOrder.BIG, unit="Wh", scale=scale,
        resolution=resolution if dtype.is_float else None,
        min=None if low is None else Decimal(low), max=None if high is None else Decimal(high), source="t",
    )


def _decimal_round(raw: float, shift: int) -> int:
    with localcontext(prec=1000):  # exact for any float
        return int(Decimal(raw).scaleb(shift).quantize(Decimal(1), ROUND_HALF_EVEN))


@given(st.floats(allow_nan=False, allow_infinity=False, min_value=-1e12, max_value=1e12), st.integers(-6, 6))
def test_fast_rounding_equals_exact_decimal_rounding(raw: float, shift: int) -> None:
    assert round_exactly(raw, shift) == _decimal_round(raw, shift)


@given(st.integers(0, 10**7), st.sampled_from([-1, 0, 1]))
def test_ties_round_half_even_like_decimal(units: int, shift: int) -> None:
    raw = units + 0.5  # exactly representable ties
    assert round_exactly(raw, 0) == _decimal_round(raw, 0)
    assert round_exactly(raw / 10, 1) == _decimal_round(raw / 10, 1)


@given(st.floats(allow_nan=False, allow_infinity=False, min_value=-1e12, max_value=1e12),
       st.integers(-3, 3), st.integers(-3, 3))
def test_exact_value_of_a_float_is_the_decimal_rounding(raw: float, scale: int, resolution: int) -> None:
    expected = _decimal_round(raw, scale - resolution)
    assert exact_value(_entry(scale=scale, resolution=resolution), raw) == expected


def test_kwh_float_becomes_wh_at_the_declared_resolution() -> None:
    # 12345.67 kWh as an f32 is 12345.669921875; at 10 Wh resolution that is 1234567 x 10 Wh
    assert exact_value(_entry(), 12345.669921875) == 1234567


def test_nan_infinity_and_out_of_range_are_reasons_not_values() -> None:
    assert exact_value(_entry(), math.nan) == "decodes to nan"
    assert exact_value(_entry(), math.inf) == "decodes to inf"
    low = exact_value(_entry(low="0"), -0.5)
    assert isinstance(low, str) and "below the declared minimum 0" in low
    high = exact_value(_entry(dtype=DataType.F32, scale=0, resolution=-1, high="500"), 500.06)
    assert isinstance(high, str) and "above the declared maximum 500" in high
    assert exact_value(_entry(dtype=DataType.F32, scale=0, resolution=-1, high="500"), 500.04) == 5000


def test_integers_are_exact_and_checked_against_their_range() -> None:
    entry = _entry(dtype=DataType.S64, scale=0, low="0")
    assert exact_value(entry, 123_456_789) == 123_456_789
    assert isinstance(exact_value(entry, -1), str)
    assert isinstance(exact_value(_entry(dtype=DataType.U64, scale=0), 2**63), str)  # beyond int64


def test_decode_block_splits_good_from_bad() -> None:
    good = _entry(address=0)
    bad = _entry(address=2).model_copy(update={"name": "v", "quantity": "1.0.2.8.0.255"})
    block = ReadBlock(Function.INPUT, 0, 4, (good, bad))
    registers = [*to_registers(10.0, DataType.F32), 32704, 0]
    values, problems = decode_block(block, registers)
    assert [(v.entry.name, v.value, v.amount) for v in values] == [("e", 1000, Decimal("1.0000E+4"))]
    assert [(p.entry.name, p.reason) for p in problems] == [("v", "decodes to nan")]


def _block_entries(draw: st.DrawFn) -> list[RegisterEntry]:
    entries: list[RegisterEntry] = []
    address = draw(st.integers(0, 50))
    for index in range(draw(st.integers(1, 12))):
        dtype = draw(st.sampled_from(list(DataType)))
        resolution = draw(st.integers(-3, 3)) if dtype.is_float else None
        low = draw(st.none() | st.integers(-(10**6), 0).map(str))
        high = draw(st.none() | st.integers(0, 10**6).map(str))
        entries.append(RegisterEntry(
            name=f"e{index}", quantity=f"1.0.{index}.7.0.255", address=address, manual_address=address,
            function=Function.HOLDING, type=dtype, word_order=draw(st.sampled_from(list(WordOrder))),
            unit="W", scale=draw(st.integers(-3, 3)), resolution=resolution,
            min=None if low is None else Decimal(low), max=None if high is None else Decimal(high),
            source="t",
        ))
        address += dtype.width + draw(st.integers(0, 3))
    return entries


@settings(max_examples=25, deadline=None)
@given(st.data())
def test_block_decoder_agrees_with_each_entry_decoded_alone(data: st.DataObject) -> None:
    from protocols.modbus.datatypes import decode, registers_to_bytes
    from protocols.modbus.values import BlockDecoder

    entries = _block_entries(data.draw)
    start, end = entries[0].address, entries[-1].end
    block = ReadBlock(Function.HOLDING, start, end - start, tuple(entries))
    # mostly small floats and integers, so both good values and range failures show
    words = data.draw(st.lists(st.integers(0, 0xFFFF) | st.sampled_from([0, 0x3F80, 0x4366, 0x7FC0, 0xFF80]),
                               min_size=block.count, max_size=block.count))
    raw = registers_to_bytes(words)
    good, bad = BlockDecoder(block).decode(raw)
    expected = {e.name: exact_value(e, decode(raw, e.address - start, e.type, e.word_order)) for e in entries}
    assert {e.name: v for e, v in good} == {k: v for k, v in expected.items() if isinstance(v, int)}
    assert {b.entry.name for b in bad} == {k for k, v in expected.items() if isinstance(v, str)}
    assert len(good) + len(bad) == len(entries)


def test_block_decoder_refuses_an_answer_of_the_wrong_size() -> None:
    from protocols.modbus.values import BlockDecoder

    block = ReadBlock(Function.INPUT, 0, 2, (_entry(),))
    with pytest.raises(ValueError, match="expected 2 registers from 0, got 3"):
        BlockDecoder(block).decode(bytes(6))


def test_a_float_too_large_for_a_reading_is_bad_not_a_crash() -> None:
    entry = _entry(dtype=DataType.F64, scale=9, resolution=-9)
    block = ReadBlock(Function.INPUT, 0, 4, (entry,))
    _, bad = decode_block(block, to_registers(1e300, DataType.F64))
    assert [b.entry.name for b in bad] == ["e"]
    assert isinstance(exact_value(entry, 1e300), str)
