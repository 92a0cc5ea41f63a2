"""Registers of one read request -> exact decimal values, checked before they become Readings.

Integers are exact: the reading is `raw` with the entry's `scale`. A float is converted to the
exact decimal of its bits, scaled, and rounded once (half-even) to the entry's resolution,
so no binary float reaches a Reading. NaN, infinity and values outside the entry's declared
range are reported as `BadEntry`, never as a good value.

`BlockDecoder` is the hot path of every poll: built once per planned request, it unpacks a
response's bytes with one `struct` call and checks each value with what it precomputed.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import ROUND_HALF_EVEN, Context, Decimal

from protocols.modbus.datatypes import decode, registers_to_bytes
from protocols.modbus.maps import RegisterEntry
from protocols.modbus.plan import ReadBlock

_ONE = Decimal(1)
# a float's exact decimal has at most 767 significant digits: enough precision that scaling and
# rounding it are exact (the default 28 digits would round first, or refuse a huge value)
_EXACT = Context(prec=800, rounding=ROUND_HALF_EVEN, Emax=999_999, Emin=-999_999)
_POWERS = {shift: 10.0**shift for shift in range(-18, 19)}
_EXACT_LIMIT = 2.0**52
_INT64 = (-(2**63), 2**63 - 1)


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
    if abs(product) < _EXACT_LIMIT:
        nearest = round(product)
        if abs(abs(product - nearest) - 0.5) > 1e-9 * max(1.0, abs(product)):
            return nearest
    exact = Decimal(raw).scaleb(shift, context=_EXACT).quantize(_ONE, context=_EXACT)
    return int(exact)


def exact_value(entry: RegisterEntry, raw: int | float) -> int | str:
    """The reading value for `raw` (an int), or the reason it is not a good value (a str)."""
    if isinstance(raw, float):
        if not math.isfinite(raw):
            return f"decodes to {raw}"
        assert entry.resolution is not None  # guaranteed by the map's validation
        value = round_exactly(raw, entry.scale - entry.resolution)
    else:
        value = raw
    return _checked(entry, value, *entry.bounds)


def _checked(entry: RegisterEntry, value: int, low: int | None, high: int | None) -> int | str:
    if not _INT64[0] <= value <= _INT64[1]:
        return f"{value} does not fit a reading (64-bit)"
    if low is not None and value < low:
        return f"{_amount(entry, value)} {entry.unit} is below the declared minimum {entry.min}"
    if high is not None and value > high:
        return f"{_amount(entry, value)} {entry.unit} is above the declared maximum {entry.max}"
    return value


def _amount(entry: RegisterEntry, value: int) -> Decimal:
    return Decimal(value).scaleb(entry.reading_scale)


class BlockDecoder:
    """Decodes the response to one planned request into (entry, exact value) pairs and bad entries."""

    __slots__ = ("_layout", "_others", "_steps", "block", "size")

    def __init__(self, block: ReadBlock) -> None:
        self.block = block
        self.size = block.count * 2
        self._layout, direct, self._others = block.layout
        # per entry: its float multiplier (0.0 for integers) and its range in reading units,
        # with the int64 limits standing in for an open end so every check is two compares
        steps = []
        for entry in direct:
            low, high = entry.bounds
            power = _POWERS[entry.scale - entry.resolution] if entry.resolution is not None else 0.0
            steps.append((entry, power, _INT64[0] if low is None else max(low, _INT64[0]),
                          _INT64[1] if high is None else min(high, _INT64[1])))
        self._steps = tuple(steps)

    def decode(self, data: bytes) -> tuple[list[tuple[RegisterEntry, int]], list[BadEntry]]:
        """`data` is the response's register bytes (`count` registers, each big-endian)."""
        if len(data) != self.size:
            raise ValueError(f"expected {self.size // 2} registers from {self.block.address}, "
                             f"got {len(data) / 2:g}")
        good: list[tuple[RegisterEntry, int]] = []
        bad: list[BadEntry] = []
        for (entry, power, low, high), raw in zip(self._steps, self._layout.unpack_from(data), strict=True):
            if power:
                product = raw * power
                if product - product != 0.0:  # NaN or infinity
                    reason = f"decodes to {raw}" if raw - raw != 0.0 else f"{raw} is too large for a reading"
                    bad.append(BadEntry(entry, raw, reason))
                    continue
                value = round(product)
                # round_exactly, inlined: only near a tie, or beyond 2**52, is the exact decimal needed
                off = product - value if product >= value else value - product
                magnitude = product if product >= 0.0 else -product
                if magnitude >= _EXACT_LIMIT or 0.5 - off <= 1e-9 * (magnitude if magnitude > 1.0 else 1.0):
                    value = round_exactly(raw, entry.scale - (entry.resolution or 0))
            else:
                value = raw
            if low <= value <= high:
                good.append((entry, value))
            else:
                checked = _checked(entry, value, *entry.bounds)
                bad.append(BadEntry(entry, raw, checked if isinstance(checked, str) else "out of range"))
        for entry in self._others:
            raw = decode(data, entry.address - self.block.address, entry.type, entry.word_order)
            checked = exact_value(entry, raw)
            if isinstance(checked, str):
                bad.append(BadEntry(entry, raw, checked))
            else:
                good.append((entry, checked))
        return good, bad


def decode_block(
    block: ReadBlock, data: bytes | Sequence[int]
) -> tuple[list[DecodedValue], list[BadEntry]]:
    """Every entry of `block` from the meter's answer (its register bytes, or the registers)."""
    raw = data if isinstance(data, bytes) else registers_to_bytes(data)
    good, bad = BlockDecoder(block).decode(raw)
    return [DecodedValue(entry, value) for entry, value in good], bad
