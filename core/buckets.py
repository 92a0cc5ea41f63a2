"""Stable meter shards: `crc32(meter_id as UTF-8) mod B`.

Python's `hash()` and Polars' hashes change between processes and versions, so the
bucket of a meter is computed here and nowhere else.
"""

from __future__ import annotations

import zlib

import polars as pl


def bucket_of(meter_id: str, buckets: int) -> int:
    return zlib.crc32(meter_id.encode("utf-8")) % buckets


def bucket_expr(column: str, buckets: int) -> pl.Expr:
    """The same bucket as `bucket_of`, as a Polars expression: one batch call, crc32 per row
    (about 1 s for 2.8 M customer codes; de-duplicating first measured 5x slower on distinct ids)."""
    return (
        pl.col(column)
        .map_batches(
            lambda ids: pl.Series(
                [zlib.crc32(i.encode("utf-8")) % buckets for i in ids.to_list()],
                dtype=pl.Int32,
            ),
            return_dtype=pl.Int32,
        )
        .alias("bucket")
    )


def fill_unknown_buckets(frame: pl.DataFrame, buckets: int, *, id_column: str = "meter_id") -> pl.DataFrame:
    """`frame` with its null `bucket`s (ids the registry does not know) set to the hash of
    the id, computed once per distinct id; the rows stay in their order (callers gather by
    position)."""
    unknown = frame.filter(pl.col("bucket").is_null()).select(id_column).unique()
    if not unknown.height:
        return frame
    hashed = unknown.with_columns(bucket_expr(id_column, buckets).alias("_hashed"))
    return (
        frame.join(hashed, on=id_column, how="left", maintain_order="left")
        .with_columns(bucket=pl.coalesce("bucket", "_hashed"))
        .drop("_hashed")
    )
