"""Decoded numbers become exact values: floats rounded once, bad values never pass as good."""

from __future__ import annotations

import math
from decimal import ROUND_HALF_EVEN, Decimal

from hypothesis import given
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
