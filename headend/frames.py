"""A round's readings as the landing frame: `core.reading.to_frame` with every row's `source`
set to the round (one repeated value rather than one read from every reading)."""

from __future__ import annotations

from collections.abc import Sequence

import polars as pl

from core.reading import Reading, empty_frame, to_frame


def landing_frame(readings: Sequence[Reading], source: str) -> pl.DataFrame:
    """The readings as a frame of the contract's dtypes, every row's source being `source`."""
    if not readings:
        return empty_frame()
    return to_frame(readings).with_columns(pl.lit(source, dtype=pl.String()).alias("source"))
