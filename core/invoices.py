"""Where billing keeps e-invoices issued in archive mode, and how anyone reads one back.

A contract between billing (which writes) and the portal (which serves): a city's month is
millions of invoices, so instead of one file each they can be kept as one Parquet file per
partition, `<data>/documents/<period>/einvoices/part-NN.parquet`, with columns bill_id,
version, invoice_no and xml (the exact signed bytes). A bill's partition is
`crc32(bill_id) mod PARTS`, fixed, so a rerun replaces the same files.
"""

from __future__ import annotations

import zlib
from pathlib import Path

import polars as pl

PARTS = 16
FOLDER = "einvoices"
SCHEMA: dict[str, pl.DataType] = {
    "bill_id": pl.String(),
    "version": pl.Int32(),
    "invoice_no": pl.String(),
    "xml": pl.Binary(),
}


def archive_folder(data_dir: Path, period: str) -> Path:
    return data_dir / "documents" / period / FOLDER


def part_of(bill_id: str) -> int:
    return zlib.crc32(bill_id.encode("utf-8")) % PARTS


def part_path(data_dir: Path, period: str, bill_id: str) -> Path:
    return archive_folder(data_dir, period) / f"part-{part_of(bill_id):02d}.parquet"


def archived_versions(data_dir: Path, period: str, bill_id: str, version: int | None = None) -> pl.DataFrame:
    """The archived rows of a bill (one version, or all), oldest first; empty when none."""
    path = part_path(data_dir, period, bill_id)
    if not path.exists():
        return pl.DataFrame(schema=SCHEMA)
    chosen = pl.col("bill_id") == bill_id
    if version is not None:
        chosen &= pl.col("version") == version
    return pl.scan_parquet(path).filter(chosen).sort("version").collect()
