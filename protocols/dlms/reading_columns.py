"""Readings built a column at a time: a profile gives hundreds of rows that share everything
but time, value and status, so the contract's checks run once per column instead of once
per row.

`Reading.__post_init__` checks and normalises every field of every row (about 5 us each).
Here the same checks run on whole columns (one meter, one canonical quantity, scales in
range, times already UTC, plain int values inside int64), and the rows are then made by
core's `Reading.prechecked`, which fills the slots without checking again (about 1.5 us).
A column that fails a check goes through the ordinary constructor, whose error names the
offending row exactly.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from itertools import repeat
from operator import attrgetter

from core.obis import canonical
from core.reading import SCALE_RANGE, Reading

_INT64 = (-(2**63), 2**63 - 1)
_TZINFO = attrgetter("tzinfo")


def _checked(
    meter_id: str,
    quantity: str,
    ts: Sequence[dt.datetime],
    values: Sequence[int],
    scale: int | Sequence[int],
    read_at: dt.datetime,
) -> bool:
    """The contract's checks on a whole column, in C where it can (map, set, min, max)."""
    if not meter_id or not ts or read_at.tzinfo is not dt.UTC:
        return False
    scales = (scale,) if isinstance(scale, int) else scale
    if min(scales) < SCALE_RANGE[0] or max(scales) > SCALE_RANGE[1]:
        return False
    if quantity != canonical(quantity):
        return False
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
    if not _checked(meter_id, quantity, ts, values, scale, read_at):
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
    prechecked = Reading.prechecked
    return [
        prechecked(meter_id, quantity, when, value, row_scale, unit, bits, snapshot, source, read_at)
        for when, value, row_scale, bits in zip(ts, values, scales, status, strict=True)
    ]
