"""Readings built a column at a time: a profile gives hundreds of rows that share everything
but time, value and status, so the contract's checks run once per column instead of once
per row.

`Reading.__post_init__` checks and normalises every field of every row (about 5 us each);
here the same checks run on whole columns (one meter, one quantity, one scale, times that
are already UTC, values in int64), and the rows are then filled slot by slot with C-level
`map` passes. If `Reading`'s fields ever differ from the ones this module knows, it falls
back to the ordinary constructor, so a new field can never be left unset.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections import deque
from collections.abc import Callable, Sequence
from itertools import repeat
from operator import attrgetter
from typing import Any

from core.obis import canonical
from core.reading import SCALE_RANGE, Reading

_FIELDS = ("meter_id", "quantity", "ts", "value", "scale", "unit", "status", "snapshot", "source", "read_at")
_INT64 = (-(2**63), 2**63 - 1)
_TZINFO = attrgetter("tzinfo")


def _slot_setters() -> tuple[Callable[[Any, Any], None], ...] | None:
    """The slot descriptors' setters, in _FIELDS order, if Reading is still the slotted
    dataclass of exactly these fields; None otherwise (then the constructor is used)."""
    if tuple(f.name for f in dataclasses.fields(Reading)) != _FIELDS:
        return None
    setters = []
    for name in _FIELDS:
        slot = Reading.__dict__.get(name)
        setter = getattr(slot, "__set__", None)
        if setter is None or type(slot).__name__ != "member_descriptor":
            return None
        setters.append(setter)
    return tuple(setters)


_SETTERS = _slot_setters()


def _fast_path_allowed(
    meter_id: str,
    quantity: str,
    ts: Sequence[dt.datetime],
    values: Sequence[int],
    scale: int | Sequence[int],
    read_at: dt.datetime,
) -> bool:
    """The contract's checks on a whole column; False sends the column through the constructor,
    whose error then names the offending row exactly."""
    if _SETTERS is None or not meter_id or not ts or read_at.tzinfo is not dt.UTC:
        return False
    scales = (scale,) if isinstance(scale, int) else scale
    if min(scales) < SCALE_RANGE[0] or max(scales) > SCALE_RANGE[1]:
        return False
    if quantity != canonical(quantity):
        return False
    # Whole-column checks in C: every value a plain int inside int64, every time in UTC.
    if set(map(type, values)) != {int} or min(values) < _INT64[0] or max(values) > _INT64[1]:
        return False
    return set(map(_TZINFO, ts)) == {dt.UTC}


def column_readings(
    *,
    meter_id: str,
    quantity: str,
    ts: Sequence[dt.datetime],
    values: Sequence[int],
    scale: int | Sequence[int],
    unit: str,
    status: Sequence[int],
    source: str,
    read_at: dt.datetime,
    snapshot: bool = False,
) -> list[Reading]:
    """One reading per row of the column `values`, equal to `Reading(...)` built row by row.
    `scale` is one scale for the column, or one per row."""
    scales = repeat(scale, len(values)) if isinstance(scale, int) else scale
    if not len(ts) == len(values) == len(status) == (len(values) if isinstance(scale, int) else len(scale)):
        raise ValueError(f"column {quantity}: {len(ts)} times, {len(values)} values, {len(status)} statuses")
    if not _fast_path_allowed(meter_id, quantity, ts, values, scale, read_at):
        return [
            Reading(
                meter_id=meter_id,
                quantity=quantity,
                ts=when,
                value=value,
                scale=row_scale,
                unit=unit,
                status=bits,
                snapshot=snapshot,
                source=source,
                read_at=read_at,
            )
            for when, value, row_scale, bits in zip(ts, values, scales, status, strict=True)
        ]
    assert _SETTERS is not None
    count = len(values)
    rows: list[Reading] = list(map(object.__new__, repeat(Reading, count)))  # type: ignore[call-overload]
    columns: tuple[Any, ...] = (
        repeat(meter_id),
        repeat(quantity),
        ts,
        values,
        repeat(scale) if isinstance(scale, int) else scale,
        repeat(unit),
        status,
        repeat(snapshot),
        repeat(source),
        repeat(read_at),
    )
    for setter, column in zip(_SETTERS, columns, strict=True):
        deque(map(setter, rows, column), maxlen=0)
    return rows
