"""How far apart a file's interval readings are, against the capture period ingest expects.

VEE judges interval values on one grid, `interval_minutes` (15 by default): a file of
30-minute values would come out with every other slot a gap (estimated and flagged), and
5-minute values mostly off the grid (quarantined). Nothing would be lost, but every meter
would look faulty, so an import whose readings keep another period is refused before
anything is stored, with the setting that fits them.

The period is the most common step between consecutive readings of the same series (meter
and quantity) over the whole file: gaps, repeats and stray timestamps are rare next to the
regular steps, so they do not move it.
"""

from __future__ import annotations

from dataclasses import dataclass

import polars as pl

from ingest.quantities import INTERVAL, kind_expr


@dataclass(frozen=True)
class Spacing:
    minutes: int  # the most common step, in whole minutes (rounded down)
    steps: int  # steps of that length
    total: int  # steps between consecutive readings of a series, in all


STEP_COUNTS_SCHEMA: dict[str, pl.DataType] = {"step": pl.Int64(), "len": pl.UInt32()}


def step_counts(frame: pl.DataFrame) -> pl.DataFrame:
    """How many times each step (whole minutes) separates a series' consecutive interval
    readings (`quantity` of an interval kind, see `quantities`) in `frame`: (step, len).

    Counts of a file's chunks add up to an answer for the file: in a chunk that holds only
    part of a series (a file in time order, or shuffled), its steps are still most often
    the capture period, because dropping readings at random leaves short steps the
    commonest."""
    interval_quantities = (
        frame.select("quantity").unique().filter(kind_expr() == INTERVAL).get_column("quantity")
    )
    return (
        frame.lazy()
        .filter(pl.col("quantity").is_in(interval_quantities.implode()))
        .select("meter_id", "quantity", "ts")
        .unique()
        .sort("meter_id", "quantity", "ts")
        .select(
            step=pl.when(
                (pl.col("meter_id") == pl.col("meter_id").shift(1))
                & (pl.col("quantity") == pl.col("quantity").shift(1))
            ).then((pl.col("ts") - pl.col("ts").shift(1)).dt.total_minutes())
        )
        .drop_nulls()
        .group_by("step")
        .len()
        .select(pl.col(name).cast(dtype) for name, dtype in STEP_COUNTS_SCHEMA.items())
        .collect()
    )


def spacing_of(counts: list[pl.DataFrame]) -> Spacing | None:
    """The most common step of some `step_counts` together; None when they hold no step."""
    steps = (
        pl.concat([pl.DataFrame(schema=STEP_COUNTS_SCHEMA), *counts])
        .group_by("step")
        .agg(pl.col("len").sum())
        # the most common; on a tie the shorter step, so the answer does not depend on order
        .sort(["len", "step"], descending=[True, False])
    )
    if steps.height == 0:
        return None
    return Spacing(
        minutes=int(steps.item(0, "step")),
        steps=int(steps.item(0, "len")),
        total=int(steps.get_column("len").sum()),
    )


def interval_spacing(frame: pl.DataFrame) -> Spacing | None:
    """The most common step between a series' consecutive interval readings in `frame`."""
    return spacing_of([step_counts(frame)])
