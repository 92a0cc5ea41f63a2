"""Exports of a period's bills (every version, with invoice numbers) as Parquet, CSV or JSON."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Literal

import polars as pl

from billing import sources
from billing.errors import BillingError
from core.measurements import MeasurementStore

Format = Literal["parquet", "csv", "json"]


def export_bills(
    data_dir: Path, *, period: str, out: Path, fmt: Format | None = None, latest_only: bool = False
) -> int:
    """Write the period's bills to `out` (format from `fmt` or the file suffix); returns the rows."""
    kind = fmt or out.suffix.lstrip(".").lower()
    if kind not in ("parquet", "csv", "json"):
        raise BillingError(
            f"export format {kind!r} of {out} is not parquet, csv or json",
            hint="name the file .parquet, .csv or .json, or pass --format",
        )
    frame = sources.bills(MeasurementStore(data_dir), [period])
    if latest_only:
        frame = sources.latest(frame)
    bills = frame.sort("bill_id", "version").collect()
    if bills.height == 0:
        raise BillingError(
            f"there are no bills for {period}", hint=f"run `amr bill run --period {period}` first"
        )
    out.parent.mkdir(parents=True, exist_ok=True)
    temporary = out.with_name(f".tmp-{out.name}")
    if kind == "parquet":
        bills.write_parquet(temporary)
    elif kind == "csv":
        bills.write_csv(temporary)
    else:
        # lines are JSON already: embed them as arrays, not strings
        rows = bills.with_columns(
            pl.col("created_at").dt.to_string("%Y-%m-%dT%H:%M:%S%.fZ"),
            pl.col("period_start", "period_end").cast(pl.String),
        ).to_dicts()
        for row in rows:
            row["lines"] = json.loads(row["lines"])
        temporary.write_text(json.dumps(rows, ensure_ascii=False, indent=1), encoding="utf-8")
    temporary.replace(out)
    return bills.height
