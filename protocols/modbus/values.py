"""Registers of one read request -> exact decimal values, checked before they become Readings.

Integers are exact: the reading is `raw` with the entry's `scale`. A float is converted to the
exact decimal of its bits, scaled, and rounded once (half-even) to the entry's resolution,
so no binary float reaches a Reading. NaN, infinity and values outside the entry's declared
range are reported as `BadEntry`, never as a good value.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import ROUND_HALF_EVEN, Decimal

from protocols.modbus.datatypes import decode, registers_to_bytes
from protocols.modbus.maps import RegisterEntry
from protocols.modbus.plan import ReadBlock

_ONE = Decimal(1)
_POWERS = {shift: 10.0**shift for shift in range(-18, 19)}
_EXACT_LIMIT = 2.0**52


@dataclass(frozen=True, slots=True)
class DecodedValue:
    entry: RegisterEntry
    value: int  # the reading's value: amount = value x 10^entry.reading_scale

    @property
    def amount(self) -> Decimal:
        return Decimal(self.value).scaleb(self.entry.reading_scale)


@dataclass(frozen=True, slots=True)
class BadEntry:
    entry: RegisterEntry
    raw: int | float
    reason: str


def round_exactly(raw: float, shift: int) -> int:
    """`raw x 10^shift` rounded half-even to an integer, exactly as decimal arithmetic would.

    The float product is within one ulp of the exact one, so it rounds the same way unless it
    lies within that distance of a tie (or is too large to carry every integer digit); only then
    is the exact decimal computed. This keeps a 40-value read well under a millisecond.
    """
    product = raw * _POWERS[shift]
    nearest = round(product)
    if abs(product) < _EXACT_LIMIT and abs(abs(product - nearest) - 0.5) > 1e-9 * max(1.0, abs(product)):
        return nearest
    exact = Decimal(raw).scaleb(shift).quantize(_ONE, ROUND_HALF_EVEN)
    return int(exact)


def exact_value(entry: RegisterEntry, raw: int | float) -> int | str:
    """The reading value for `raw` (an int), or the reason it is not a good value (a str)."""
    if isinstance(raw, float):
        if not math.isfinite(raw):
            return f"decodes to {raw}"
        assert entry.resolution is not None  # guaranteed by the map's validation
        # round_exactly, inlined: this runs for every value of every read
        shift = entry.scale - entry.resolution
        product = raw * _POWERS[shift]
        value = round(product)
        magnitude = abs(product)
        if not (magnitude < _EXACT_LIMIT and abs(abs(product - value) - 0.5) > 1e-9 * max(1.0, magnitude)):
            value = int(Decimal(raw).scaleb(shift).quantize(_ONE, ROUND_HALF_EVEN))
    else:
        value = raw
    if not -(2**63) <= value < 2**63:
        return f"{value} does not fit a reading (64-bit)"
    low, high = entry.bounds
    if low is not None and value < low:
        return f"{_amount(entry, value)} {entry.unit} is below the declared minimum {entry.min}"
    if high is not None and value > high:
        return f"{_amount(entry, value)} {entry.unit} is above the declared maximum {entry.max}"
    return value


def _amount(entry: RegisterEntry, value: int) -> Decimal:
    return Decimal(value).scaleb(entry.reading_scale)


def decode_block(block: ReadBlock, registers: Sequence[int]) -> tuple[list[DecodedValue], list[BadEntry]]:
    """Every entry of `block` from the registers the meter returned for it."""
    if len(registers) != block.count:
        raise ValueError(f"expected {block.count} registers from {block.address}, got {len(registers)}")
    data = registers_to_bytes(registers)
    layout, direct, others = block.layout
    raws = list(zip(direct, layout.unpack_from(data), strict=True))
    raws.extend((e, decode(data, e.address - block.address, e.type, e.word_order)) for e in others)
    good: list[DecodedValue] = []
    bad: list[BadEntry] = []
    for entry, raw in raws:
        checked = exact_value(entry, raw)
        if isinstance(checked, str):
            bad.append(BadEntry(entry, raw, checked))
        else:
            good.append(DecodedValue(entry, checked))
    return good, bad
