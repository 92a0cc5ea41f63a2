"""A round's readings as the landing frame, built column by column from what the sessions gave.

A session hands its readings back in chunks: a profile read as `ReadingColumns` (hundreds of
rows as a few lists), registers and events as lists of `Reading`. The round keeps the chunks
as they came and makes ONE frame per flush by extending a list per column, so a profile row
never becomes a Python object on the way to the landing batch. Every row's `source` is the
round (one repeated value rather than one read from every reading).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence
from itertools import repeat
from operator import attrgetter

import polars as pl

from core.reading import READING_SCHEMA, ROW_FIELDS, Reading, ReadingColumns, empty_frame, instants

Chunk = Sequence[Reading]  # a ReadingColumns, or a list of Reading
_SHARED_COLUMNS = ("meter_id", "snapshot", "read_at")  # the round's id stands for every source


def within(rows: Chunk, after: dt.datetime, until: dt.datetime) -> Chunk:
    """The rows with after < ts <= until, as columns when they came as columns."""
    if isinstance(rows, ReadingColumns):
        return rows.within(after, until)
    return [r for r in rows if after < r.ts <= until]


def landing_frame(chunks: Iterable[Chunk], source: str) -> pl.DataFrame:
    """The chunks' readings as one frame of the contract's dtypes, every row's source `source`."""
    columns: dict[str, list[object]] = {name: [] for name in (*ROW_FIELDS, *_SHARED_COLUMNS)}
    for chunk in chunks:
        rows = len(chunk)
        if not rows:
            continue
        if isinstance(chunk, ReadingColumns):
            for name in ROW_FIELDS:
                columns[name].extend(getattr(chunk, name))
            for name in _SHARED_COLUMNS:
                columns[name].extend(repeat(getattr(chunk, name), rows))
        else:
            for name in columns:
                columns[name].extend(map(attrgetter(name), chunk))
    height = len(columns["ts"])
    if not height:
        return empty_frame()
    series = []
    for name, dtype in READING_SCHEMA.items():
        if name == "source":
            series.append(pl.repeat(source, height, dtype=dtype, eager=True).alias(name))
        elif isinstance(dtype, pl.Datetime):
            series.append(instants(name, columns[name]))  # type: ignore[arg-type]
        else:
            series.append(pl.Series(name, columns[name], dtype=dtype))
    return pl.DataFrame(series)
