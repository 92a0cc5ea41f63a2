"""The landing area: immutable Parquet batches of raw readings.

`<data>/landing/arrived=YYYY-MM-DD/<batch-id>.parquet`, the date being the UTC date the
batch was written. A batch is written under a temporary name, fsynced and renamed, so a
writer killed at any moment leaves either a whole batch or nothing; it is never changed
afterwards. Ingest records each batch it has taken with its checksum.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import os
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import polars as pl

from core.errors import ContractError
from core.reading import conform

TMP_PREFIX = ".tmp-"


# Parquet key-value metadata a batch carries about itself, so ingest can plan without reading it
BUCKET_KEY = "amr.bucket"  # present when every reading is of meters of this one bucket
FIRST_TS_KEY = "amr.first_ts"  # the earliest and latest `ts`, ISO 8601
LAST_TS_KEY = "amr.last_ts"


@dataclass(frozen=True)
class Layout:
    """What a batch says of itself (`LandingBatch.layout`)."""

    rows: int
    bucket: int | None  # the one meter bucket of all its readings, when the writer knew it
    first_ts: dt.datetime | None
    last_ts: dt.datetime | None


@dataclass(frozen=True)
class LandingBatch:
    path: Path
    arrived: dt.date
    batch_id: str

    def layout(self) -> Layout:
        """Its row count and self-description, from the Parquet footer only."""
        try:
            meta = pl.read_parquet_metadata(self.path)
            rows = int(pl.scan_parquet(self.path).select(pl.len()).collect().item())
        except (OSError, pl.exceptions.PolarsError) as exc:
            raise ContractError(f"landing batch {self.path} cannot be read: {exc}") from exc
        first, last = meta.get(FIRST_TS_KEY), meta.get(LAST_TS_KEY)
        return Layout(
            rows=rows,
            bucket=int(meta[BUCKET_KEY]) if BUCKET_KEY in meta else None,
            first_ts=dt.datetime.fromisoformat(first) if first else None,
            last_ts=dt.datetime.fromisoformat(last) if last else None,
        )

    def read(self, between: tuple[dt.datetime, dt.datetime] | None = None) -> pl.DataFrame:
        """Its readings, checked against the contract; with `between`, only those stamped in
        that closed range (the time column is read first, the rest for those rows only)."""
        try:
            if between is not None and _zoned(pl.read_parquet_schema(self.path).get("ts")):
                frame = pl.scan_parquet(self.path).filter(pl.col("ts").is_between(*between)).collect()
            else:  # conform names what is wrong with a time column that is not one
                frame = pl.read_parquet(self.path)
        except (OSError, pl.exceptions.PolarsError) as exc:
            raise ContractError(f"landing batch {self.path} cannot be read: {exc}") from exc
        return conform(frame, origin=str(self.path))

    def sha256(self) -> str:
        digest = hashlib.sha256()
        with open(self.path, "rb") as handle:
            for block in iter(lambda: handle.read(1 << 20), b""):
                digest.update(block)
        return digest.hexdigest()


def _zoned(dtype: pl.DataType | None) -> bool:
    return isinstance(dtype, pl.Datetime) and dtype.time_zone is not None


def landing_dir(data_dir: Path) -> Path:
    return data_dir / "landing"


@dataclass(frozen=True)
class PreparedBatch:
    """A batch written and fsynced under a temporary name that `list_batches` skips: it is
    taken only once published, so a writer can land several as a whole or not at all."""

    temporary: Path
    batch: LandingBatch

    def publish(self) -> LandingBatch:
        self.temporary.rename(self.batch.path)
        return self.batch

    def discard(self) -> None:
        self.temporary.unlink(missing_ok=True)


def prepare_batch(
    data_dir: Path,
    readings: pl.DataFrame,
    *,
    prefix: str = "poll",
    now: dt.datetime | None = None,
    batch_id: str | None = None,
    bucket: int | None = None,
) -> PreparedBatch:
    """Write a frame of readings (checked against the contract) as a batch not yet landed.
    `batch_id` names it (batches of one day are taken in the order of their names);
    by default `<prefix>-<UTC time>-<random>`. `bucket`: every reading is of meters of this
    bucket (the head-end polls by bucket), so ingest may take the batch straight into that
    bucket's task instead of splitting it by partition first."""
    frame = conform(readings, origin=f"{prefix} batch")
    metadata: dict[str, str] = {}
    if frame.height:
        first, last = frame.select(first=pl.col("ts").min(), last=pl.col("ts").max()).row(0)
        metadata = {FIRST_TS_KEY: first.isoformat(), LAST_TS_KEY: last.isoformat()}
        if bucket is not None:
            metadata[BUCKET_KEY] = str(bucket)
    arrived = (now or dt.datetime.now(dt.UTC)).astimezone(dt.UTC).date()
    directory = landing_dir(data_dir) / f"arrived={arrived.isoformat()}"
    directory.mkdir(parents=True, exist_ok=True)
    if batch_id is None:
        stamp = (now or dt.datetime.now(dt.UTC)).strftime("%Y%m%dT%H%M%S")
        batch_id = f"{prefix}-{stamp}-{uuid.uuid4().hex[:10]}"
    temporary = directory / f"{TMP_PREFIX}{batch_id}.parquet"
    frame.write_parquet(temporary, compression="zstd", metadata=metadata)
    with open(temporary, "rb") as handle:
        os.fsync(handle.fileno())
    return PreparedBatch(temporary, LandingBatch(directory / f"{batch_id}.parquet", arrived, batch_id))


def write_batch(
    data_dir: Path,
    readings: pl.DataFrame,
    *,
    prefix: str = "poll",
    now: dt.datetime | None = None,
    bucket: int | None = None,
) -> LandingBatch:
    """Land a frame of readings (checked against the contract) as one immutable batch
    (`bucket`: see `prepare_batch`)."""
    return prepare_batch(data_dir, readings, prefix=prefix, now=now, bucket=bucket).publish()


def list_batches(data_dir: Path) -> Iterator[LandingBatch]:
    """Every complete batch, oldest day first; temporaries of a killed writer are skipped."""
    root = landing_dir(data_dir)
    if not root.exists():
        return
    for day_dir in sorted(root.glob("arrived=*")):
        arrived = dt.date.fromisoformat(day_dir.name.split("=", 1)[1])
        for path in sorted(day_dir.glob("*.parquet")):
            if path.name.startswith(TMP_PREFIX):
                continue
            yield LandingBatch(path, arrived, path.stem)
