"""A read's readings gathered a column at a time: a profile gives hundreds of rows that share
everything but time, value and status, so they are handed over as core's `ReadingColumns`
rather than as one `Reading` object per row.

Making a `Reading` costs about 1.5 us even without `__post_init__`'s checks (a profile day
is ~390 of them, about a quarter of a session's client CPU); appending a column to lists
costs a few list operations. `ReadingColumns` checks the contract once over the whole read,
and still yields `Reading` rows to a caller that iterates it.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

from core.reading import ReadingColumns


class ColumnsBuilder:
    """Blocks of rows, one quantity each, appended in order and then made into `ReadingColumns`."""

    def __init__(self) -> None:
        self._quantity: list[str] = []
        self._ts: list[dt.datetime] = []
        self._value: list[int] = []
        self._scale: list[int] = []
        self._unit: list[str] = []
        self._status: list[int] = []

    def add(
        self,
        *,
        quantity: str,
        unit: str,
        ts: Sequence[dt.datetime],
        values: Sequence[int],
        scale: int | Sequence[int],
        status: Sequence[int],
    ) -> None:
        """One row per element of `values`; `scale` is one scale for the block or one per row."""
        rows = len(values)
        scales = [scale] * rows if isinstance(scale, int) else scale
        if not len(ts) == rows == len(status) == len(scales):
            raise ValueError(
                f"column {quantity}: {len(ts)} times, {rows} values, {len(scales)} scales, "
                f"{len(status)} statuses"
            )
        self._quantity += [quantity] * rows
        self._unit += [unit] * rows
        self._ts += ts
        self._value += values
        self._scale += scales
        self._status += status

    def build(self, *, meter_id: str, source: str, read_at: dt.datetime) -> ReadingColumns:
        return ReadingColumns(
            meter_id, self._quantity, self._ts, self._value, self._scale, self._unit, self._status,
            source, read_at,
        )
