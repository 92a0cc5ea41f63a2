"""A-XDR encoding of COSEM `Data` (IEC 62056-6-2 / Green Book 9.5): bytes <-> Python values.

Decoding returns plain values: None, bool, int (every integer type and enum), bytes
(octet-string, date-time, date, time, bit-string), str (visible and UTF-8 strings),
Decimal (float32/64, exactly the decimal the float spells) and list (array, structure).
Our own decoder, rather than dlms-cosem's, because it raises precise errors on any bytes
and because profile buffers are decoded column by column for speed (`decode_columns`).
"""

from __future__ import annotations

import math
import struct
from collections.abc import Sequence
from decimal import Decimal

from protocols.dlms.errors import ApduError
from protocols.errors import BadValue

DlmsValue = None | bool | int | bytes | str | Decimal | list["DlmsValue"]

NULL, ARRAY, STRUCTURE, BOOLEAN, BIT_STRING = 0, 1, 2, 3, 4
DOUBLE_LONG, DOUBLE_LONG_UNSIGNED, OCTET_STRING, VISIBLE_STRING, UTF8_STRING = 5, 6, 9, 10, 12
BCD, INTEGER, LONG, UNSIGNED, LONG_UNSIGNED, COMPACT_ARRAY = 13, 15, 16, 17, 18, 19
LONG64, LONG64_UNSIGNED, ENUM, FLOAT32, FLOAT64 = 20, 21, 22, 23, 24
DATE_TIME, DATE, TIME = 25, 26, 27

# Fixed-size integer types: tag -> (size, struct format).
_FIXED: dict[int, tuple[int, struct.Struct]] = {
    DOUBLE_LONG: (4, struct.Struct(">i")),
    DOUBLE_LONG_UNSIGNED: (4, struct.Struct(">I")),
    BCD: (1, struct.Struct(">b")),
    INTEGER: (1, struct.Struct(">b")),
    LONG: (2, struct.Struct(">h")),
    UNSIGNED: (1, struct.Struct(">B")),
    LONG_UNSIGNED: (2, struct.Struct(">H")),
    LONG64: (8, struct.Struct(">q")),
    LONG64_UNSIGNED: (8, struct.Struct(">Q")),
    ENUM: (1, struct.Struct(">B")),
}
_FIXED_OCTETS = {DATE_TIME: 12, DATE: 5, TIME: 4}
_MAX_DEPTH = 32


def encode_length(length: int) -> bytes:
    """A-XDR length: one byte below 128, else 0x80|n followed by n big-endian bytes."""
    if length < 0x80:
        return bytes((length,))
    size = (length.bit_length() + 7) // 8
    return bytes((0x80 | size,)) + length.to_bytes(size, "big")


def decode_length(data: bytes | bytearray | memoryview, pos: int) -> tuple[int, int]:
    """Decode a length at `pos`; returns (length, position after it)."""
    if pos >= len(data):
        raise ApduError(f"A-XDR length expected at offset {pos}, but the data ends there")
    first = data[pos]
    if first < 0x80:
        return first, pos + 1
    size = first & 0x7F
    if size == 0 or size > 4:
        raise ApduError(f"A-XDR length at offset {pos} uses {size} bytes; 1 to 4 are allowed")
    end = pos + 1 + size
    if end > len(data):
        raise ApduError(f"A-XDR length at offset {pos} is cut short")
    return int.from_bytes(data[pos + 1 : end], "big"), end


def _decode(data: bytes, pos: int, depth: int) -> tuple[DlmsValue, int]:
    if pos >= len(data):
        raise ApduError(f"A-XDR data expected at offset {pos}, but the data ends there")
    tag = data[pos]
    pos += 1
    fixed = _FIXED.get(tag)
    if fixed is not None:
        size, fmt = fixed
        if pos + size > len(data):
            raise ApduError(f"A-XDR type {tag} at offset {pos - 1} needs {size} bytes; the data ends")
        return fmt.unpack_from(data, pos)[0], pos + size
    if tag in (ARRAY, STRUCTURE):
        if depth >= _MAX_DEPTH:
            raise ApduError(f"A-XDR data nests deeper than {_MAX_DEPTH} levels at offset {pos - 1}")
        count, pos = decode_length(data, pos)
        if count > len(data) - pos:  # each element takes at least one byte
            raise ApduError(
                f"A-XDR {'array' if tag == ARRAY else 'structure'} at offset {pos - 1} "
                f"claims {count} elements, more than the bytes left"
            )
        items: list[DlmsValue] = []
        end = len(data)
        for _ in range(count):
            # Scalar elements (a scaler_unit, a capture object's ids) inline, without recursing.
            entry = _FIXED.get(data[pos]) if pos < end else None
            if entry is not None and pos + 1 + entry[0] <= end:
                items.append(entry[1].unpack_from(data, pos + 1)[0])
                pos += 1 + entry[0]
                continue
            item, pos = _decode(data, pos, depth + 1)
            items.append(item)
        return items, pos
    if tag in (OCTET_STRING, VISIBLE_STRING, UTF8_STRING):
        length, pos = decode_length(data, pos)
        end = pos + length
        if end > len(data):
            raise ApduError(
                f"A-XDR string at offset {pos} claims {length} bytes; only {len(data) - pos} left"
            )
        raw = data[pos:end]
        if tag == OCTET_STRING:
            return bytes(raw), end
        try:
            return raw.decode("ascii" if tag == VISIBLE_STRING else "utf-8"), end
        except UnicodeDecodeError as exc:
            raise ApduError(f"A-XDR string at offset {pos} is not valid text: {exc.reason}") from None
    if tag in _FIXED_OCTETS:
        size = _FIXED_OCTETS[tag]
        if pos + size > len(data):
            raise ApduError(f"A-XDR date/time type {tag} at offset {pos - 1} is cut short")
        return bytes(data[pos : pos + size]), pos + size
    if tag == NULL:
        return None, pos
    if tag == BOOLEAN:
        if pos >= len(data):
            raise ApduError(f"A-XDR boolean at offset {pos - 1} is cut short")
        return data[pos] != 0, pos + 1
    if tag == BIT_STRING:
        bits, pos = decode_length(data, pos)
        size = (bits + 7) // 8
        if pos + size > len(data):
            raise ApduError(f"A-XDR bit-string at offset {pos} is cut short")
        return bytes(data[pos : pos + size]), pos + size
    if tag in (FLOAT32, FLOAT64):
        size = 4 if tag == FLOAT32 else 8
        if pos + size > len(data):
            raise ApduError(f"A-XDR float at offset {pos - 1} is cut short")
        number = struct.unpack_from(">f" if size == 4 else ">d", data, pos)[0]
        if not math.isfinite(number):
            raise BadValue(f"A-XDR float at offset {pos - 1} is {number}, not a number a meter may report")
        # The shortest decimal that round-trips: the value the meter meant, not the binary noise.
        text = repr(number) if size == 8 else f"{number:.7g}"
        return Decimal(text), pos + size
    raise ApduError(
        f"A-XDR type tag {tag} at offset {pos - 1} is not a COSEM data type we read",
        hint="compact-array and unknown types are not supported",
    )


def decode(data: bytes) -> DlmsValue:
    """Decode exactly one value that fills `data`."""
    value, end = decode_prefix(data)
    if end != len(data):
        raise ApduError(f"A-XDR value ends at offset {end} but {len(data) - end} byte(s) follow")
    return value


def decode_prefix(data: bytes, pos: int = 0) -> tuple[DlmsValue, int]:
    """Decode one value starting at `pos`; returns (value, position after it)."""
    return _decode(bytes(data), pos, 0)


def _row_layout(data: bytes, pos: int, width: int) -> tuple[struct.Struct, list[tuple[int, int]]] | None:
    """The first row's layout as a struct (tags and lengths skipped) and the (offset, byte)
    pairs every row must repeat, or None if a cell has no fixed size (null, float, long string)."""
    if pos + 2 > len(data) or data[pos] != STRUCTURE or data[pos + 1] != width:
        return None
    fmt, constants, offset = [">2x"], [(0, STRUCTURE), (1, width)], 2
    for _ in range(width):
        at = pos + offset
        if at >= len(data):
            return None
        tag = data[at]
        fixed = _FIXED.get(tag)
        if fixed is not None:
            fmt.append("x" + fixed[1].format[1:])
            constants.append((offset, tag))
            offset += 1 + fixed[0]
        elif tag == OCTET_STRING and at + 1 < len(data) and data[at + 1] < 0x80:
            size = data[at + 1]
            fmt.append(f"2x{size}s")
            constants += [(offset, tag), (offset + 1, size)]
            offset += 2 + size
        elif tag in _FIXED_OCTETS:
            fmt.append(f"x{_FIXED_OCTETS[tag]}s")
            constants.append((offset, tag))
            offset += 1 + _FIXED_OCTETS[tag]
        else:
            return None
    return struct.Struct("".join(fmt)), constants


def _uniform_columns(data: bytes, pos: int, rows: int, width: int) -> list[list[DlmsValue]] | None:
    """Columns of a buffer whose rows all share the first row's types and sizes (the usual
    case: meters write every row alike), unpacked by struct in C; None if they do not."""
    layout = _row_layout(data, pos, width)
    if layout is None:
        return None
    row, constants = layout
    body = data[pos:]
    if len(body) != rows * row.size:
        return None
    # Every row's tag and length bytes checked at once by strided slices.
    for offset, byte in constants:
        if body[offset :: row.size] != bytes((byte,)) * rows:
            return None
    return [list(column) for column in zip(*row.iter_unpack(body), strict=True)]


def decode_columns(data: bytes, width: int) -> list[list[DlmsValue]]:
    """A profile buffer (array of structures of `width` elements) as `width` columns.

    Rows all alike are unpacked in one struct pass; otherwise fixed-size types take a fast
    path without recursion, and anything else falls back to the general decoder per cell.
    """
    data = bytes(data)
    if not data or data[0] != ARRAY:
        raise ApduError("a profile buffer must be an A-XDR array", hint="the meter sent another type")
    rows, pos = decode_length(data, 1)
    if rows * (width + 2) > len(data) - pos + (1 if rows == 0 else 0):
        raise ApduError(f"a profile buffer claims {rows} rows, more than its {len(data)} bytes can hold")
    if rows and width:
        uniform = _uniform_columns(data, pos, rows, width)
        if uniform is not None:
            return uniform
    columns: list[list[DlmsValue]] = [[] for _ in range(width)]
    fixed = _FIXED
    end = len(data)
    for row in range(rows):
        if pos + 2 > end or data[pos] != STRUCTURE or data[pos + 1] != width:
            raise ApduError(f"profile buffer row {row} at offset {pos} is not a structure of {width}")
        pos += 2
        for column in columns:
            if pos >= end:
                raise ApduError(f"profile buffer row {row} is cut short at offset {pos}")
            tag = data[pos]
            entry = fixed.get(tag)
            if entry is not None and pos + 1 + entry[0] <= end:
                column.append(entry[1].unpack_from(data, pos + 1)[0])
                pos += 1 + entry[0]
            elif tag == OCTET_STRING and pos + 2 <= end and data[pos + 1] < 0x80:
                size = data[pos + 1]
                if pos + 2 + size > end:
                    raise ApduError(f"profile buffer row {row}: octet-string at offset {pos} is cut short")
                column.append(data[pos + 2 : pos + 2 + size])
                pos += 2 + size
            else:
                value, pos = _decode(data, pos, 1)
                column.append(value)
    if pos != end:
        raise ApduError(f"profile buffer ends at offset {pos} but {end - pos} byte(s) follow")
    return columns


# --- encoding: each function returns the A-XDR bytes of one value -------------------------


def null() -> bytes:
    return b"\x00"


def boolean(value: bool) -> bytes:
    return bytes((BOOLEAN, 0xFF if value else 0))


def integer(tag: int, value: int) -> bytes:
    """Encode an integer as the fixed-size type `tag` (UNSIGNED, LONG, DOUBLE_LONG, ENUM ...)."""
    _, fmt = _FIXED[tag]
    return bytes((tag,)) + fmt.pack(value)


def octets(value: bytes, tag: int = OCTET_STRING) -> bytes:
    if tag in _FIXED_OCTETS:
        return bytes((tag,)) + value
    return bytes((tag,)) + encode_length(len(value)) + value


def visible(value: str) -> bytes:
    raw = value.encode("ascii")
    return bytes((VISIBLE_STRING,)) + encode_length(len(raw)) + raw


def array(items: Sequence[bytes]) -> bytes:
    return bytes((ARRAY,)) + encode_length(len(items)) + b"".join(items)


def structure(items: Sequence[bytes]) -> bytes:
    return bytes((STRUCTURE,)) + encode_length(len(items)) + b"".join(items)
