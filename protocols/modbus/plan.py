"""A map's registers grouped into as few read requests as the protocol and the meter allow.

Entries of one function (holding or input) are sorted by address and packed greedily: the
next entry joins the current request when the unused registers before it are at most
`max_gap` and the request stays within `max_registers`. For intervals on a line, packing
left to right this way gives the fewest requests.
"""

from __future__ import annotations

import struct
from collections.abc import Iterable
from dataclasses import dataclass
from functools import cached_property

from protocols.modbus.datatypes import DataType, WordOrder
from protocols.modbus.maps import Function, RegisterEntry

_FORMAT = {
    DataType.U16: "H", DataType.S16: "h", DataType.U32: "I", DataType.S32: "i",
    DataType.U64: "Q", DataType.S64: "q", DataType.F32: "f", DataType.F64: "d",
}


@dataclass(frozen=True)
class ReadBlock:
    """One read request: `count` registers of `function` from `address`, feeding `entries`."""

    function: Function
    address: int
    count: int
    entries: tuple[RegisterEntry, ...]

    @cached_property
    def layout(self) -> tuple[struct.Struct, tuple[RegisterEntry, ...], tuple[RegisterEntry, ...]]:
        """One struct that unpacks every most-significant-word-first entry of the block in a single
        call (unused registers skipped as pad bytes), those entries in order, and the rest."""
        direct = sorted((e for e in self.entries if e.word_order is WordOrder.BIG or e.width == 1),
                        key=lambda e: e.address)
        others = tuple(e for e in self.entries if e not in direct)
        parts, position = [">"], self.address
        for entry in direct:
            if entry.address > position:
                parts.append(f"{(entry.address - position) * 2}x")
            parts.append(_FORMAT[entry.type])
            position = entry.end
        return struct.Struct("".join(parts)), tuple(direct), others


def plan_reads(entries: Iterable[RegisterEntry], *, max_registers: int, max_gap: int) -> list[ReadBlock]:
    """The fewest requests covering `entries` under the meter's limits."""
    blocks: list[ReadBlock] = []
    for function in Function:
        chosen = sorted((e for e in entries if e.function is function), key=lambda e: e.address)
        current: list[RegisterEntry] = []
        start = end = 0
        for entry in chosen:
            if current and entry.address - end <= max_gap and entry.end - start <= max_registers:
                current.append(entry)
                end = max(end, entry.end)
                continue
            if current:
                blocks.append(ReadBlock(function, start, end - start, tuple(current)))
            current, start, end = [entry], entry.address, entry.end
        if current:
            blocks.append(ReadBlock(function, start, end - start, tuple(current)))
    return blocks


def plan_single(entries: Iterable[RegisterEntry]) -> list[ReadBlock]:
    """One request per value: the naive baseline the benchmark compares against."""
    return [ReadBlock(e.function, e.address, e.width, (e,)) for e in sorted(entries, key=lambda e: e.address)]
