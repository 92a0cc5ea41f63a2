"""A map's registers grouped into as few read requests as the protocol and the meter allow.

Entries of one function (holding or input) are sorted by address and packed greedily: the
next entry joins the current request when the unused registers before it are at most
`max_gap` and the request stays within `max_registers`. For intervals on a line, packing
left to right this way gives the fewest requests.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from protocols.modbus.maps import Function, RegisterEntry


@dataclass(frozen=True, slots=True)
class ReadBlock:
    """One read request: `count` registers of `function` from `address`, feeding `entries`."""

    function: Function
    address: int
    count: int
    entries: tuple[RegisterEntry, ...]


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
