"""Registers <-> numbers: the Modbus data types meters use, in either word order.

A Modbus register is a 16-bit word sent most significant byte first. Values wider than one
register span 2 or 4 consecutive registers; manufacturers disagree on which word comes
first, so the word order is a named setting of each map entry ("big": most significant word
first, as Eastron and Schneider document; "little": least significant word first).

Pure functions, no I/O. `from_registers`/`to_registers` are exact inverses for integers and
for every float bit pattern except NaN payloads.
"""

from __future__ import annotations

import struct
from collections.abc import Sequence
from enum import StrEnum


class DataType(StrEnum):
    U16 = "u16"
    S16 = "s16"
    U32 = "u32"
    S32 = "s32"
    U64 = "u64"
    S64 = "s64"
    F32 = "f32"
    F64 = "f64"

    @property
    def width(self) -> int:
        """Registers (16-bit words) one value occupies."""
        return _WIDTH[self]

    @property
    def is_float(self) -> bool:
        return self in (DataType.F32, DataType.F64)


class WordOrder(StrEnum):
    BIG = "big"  # most significant word first (ABCD)
    LITTLE = "little"  # least significant word first (CDAB)


_WIDTH = {
    DataType.U16: 1, DataType.S16: 1, DataType.U32: 2, DataType.S32: 2,
    DataType.U64: 4, DataType.S64: 4, DataType.F32: 2, DataType.F64: 4,
}
_STRUCT = {
    DataType.U16: struct.Struct(">H"), DataType.S16: struct.Struct(">h"),
    DataType.U32: struct.Struct(">I"), DataType.S32: struct.Struct(">i"),
    DataType.U64: struct.Struct(">Q"), DataType.S64: struct.Struct(">q"),
    DataType.F32: struct.Struct(">f"), DataType.F64: struct.Struct(">d"),
}


def registers_to_bytes(registers: Sequence[int]) -> bytes:
    """A block of registers as the bytes on the wire (each word big-endian)."""
    return struct.pack(f">{len(registers)}H", *registers)


def decode(block: bytes, offset: int, dtype: DataType, order: WordOrder) -> int | float:
    """The value of `dtype` starting at register `offset` of a block (see `registers_to_bytes`)."""
    start = offset * 2
    size = dtype.width * 2
    if start < 0 or start + size > len(block):
        raise ValueError(
            f"{dtype} at register offset {offset} runs past a block of {len(block) // 2} registers"
        )
    if order is WordOrder.LITTLE and dtype.width > 1:
        chunk = block[start:start + size]
        words = [chunk[i:i + 2] for i in range(0, size, 2)]
        value: int | float = _STRUCT[dtype].unpack(b"".join(reversed(words)))[0]
        return value
    unpacked: int | float = _STRUCT[dtype].unpack_from(block, start)[0]
    return unpacked


def from_registers(
    registers: Sequence[int], dtype: DataType, order: WordOrder = WordOrder.BIG
) -> int | float:
    """Decode one value from exactly `dtype.width` registers."""
    if len(registers) != dtype.width:
        raise ValueError(f"{dtype} needs {dtype.width} register(s), got {len(registers)}")
    return decode(registers_to_bytes(registers), 0, dtype, order)


def to_registers(value: int | float, dtype: DataType, order: WordOrder = WordOrder.BIG) -> list[int]:
    """Encode one value as `dtype.width` registers; integers out of range raise ValueError."""
    try:
        packed = _STRUCT[dtype].pack(value if dtype.is_float else int(value))
    except (struct.error, OverflowError) as exc:
        raise ValueError(f"{value!r} does not fit in {dtype}: {exc}") from exc
    words = list(struct.unpack(f">{dtype.width}H", packed))
    if order is WordOrder.LITTLE:
        words.reverse()
    return words
