"""Routing new readings into partitions: (local day, meter bucket), with integer keys.

Each batch is read once, joined to the registry for its meter keys and buckets, given the
local day its value belongs to, and written per partition to a staging folder of this
run. Memory is bounded by the largest batch, whatever the run's size; a run killed here
leaves only its staging folder, which the next run removes.

A batch whose readings are all of one bucket's meters and that says so (the head-end's,
polled by bucket) is not staged: the coordinator reads its footer only (`plan_direct`) and
the bucket's task reads and routes it itself (`route_direct`).

The day a value belongs to: an interval value's end at local midnight belongs to the day
before; a register read at or within `day_end_window_minutes` after local midnight is
that day's end value, so it also belongs to the day before.
"""

from __future__ import annotations

import datetime as dt
import math
import shutil
from collections import defaultdict
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import polars as pl

from core.buckets import fill_unknown_buckets
from core.landing import LandingBatch
from core.timezones import local_date, local_midnight_utc
from ingest.config import VeeConfig
from ingest.errors import IngestError
from ingest.localtime import local_day
from ingest.quantities import INTERVAL, PAIR_COLUMNS, REGISTER, pair_attributes

PartitionKey = tuple[dt.date, int]
# Batches staged at once: two overlap one batch's reading with another's writing on a 2-core
# machine (100,000 meters: 4.2-4.3 -> 3.4-3.6 s wall, same CPU); each holds a batch in memory.
STAGING_THREADS = 2


@dataclass(frozen=True)
class Direct:
    """A landing batch whose readings are all of one bucket's meters (the head-end polls by
    bucket and says so in the batch): that bucket's task reads and routes it itself, so it
    is neither read by the coordinator nor written and read again as staging files."""

    index: int  # the batch's place in the run
    batch: LandingBatch
    bucket: int
    days: tuple[dt.date, ...]  # every local day its readings can belong to
    rows: int
    first_ts: dt.datetime
    last_ts: dt.datetime

    def rows_on(self, day: dt.date) -> int:
        """Rows it likely holds of a day: its rows spread evenly over its time span, so a
        day's batch whose last reading is stamped just past midnight counts whole for its
        day and not half for the next (partitions are grouped by these sizes)."""
        span = self.last_ts - self.first_ts
        if span <= dt.timedelta(0):
            return self.rows
        start, end = local_midnight_utc(day), local_midnight_utc(day + dt.timedelta(days=1))
        overlap = min(end, self.last_ts) - max(start, self.first_ts)
        return math.ceil(self.rows * max(overlap, dt.timedelta(0)) / span)


@dataclass
class Staged:
    folder: Path
    files: dict[PartitionKey, list[Path]] = field(default_factory=lambda: defaultdict(list))
    rows_in: dict[int, int] = field(default_factory=dict)  # batch index -> rows
    rows: dict[PartitionKey, int] = field(default_factory=lambda: defaultdict(int))  # staged per partition
    direct: list[Direct] = field(default_factory=list)  # set once, before the tasks
    _direct_index: dict[PartitionKey, list[Direct]] | None = field(default=None, repr=False)

    def touched(self) -> set[PartitionKey]:
        """The partitions the run's batches can add to."""
        return set(self.files) | {(day, d.bucket) for d in self.direct for day in d.days}

    def direct_of(self, key: PartitionKey) -> list[Direct]:
        """The direct batches that can hold rows of a partition, in batch order (indexed by
        partition once: a city's run has thousands of batches and of partitions)."""
        if self._direct_index is None:
            index: dict[PartitionKey, list[Direct]] = defaultdict(list)
            for d in self.direct:
                for day in d.days:
                    index[(day, d.bucket)].append(d)
            self._direct_index = dict(index)
        return self._direct_index.get(key, [])

    def expected_rows(self, key: PartitionKey) -> int:
        """Rows a partition receives (a direct batch's by its time span), to size groups."""
        return self.rows.get(key, 0) + sum(d.rows_on(key[0]) for d in self.direct_of(key))

    def sources(self, key: PartitionKey) -> list[tuple[int, Path | Direct]]:
        """What a partition's new rows come from, in batch order (dedupe keeps the first of
        identical repeats in that order): staged files and direct batches."""
        files: list[tuple[int, Path | Direct]] = [(int(path.stem), path) for path in self.files.get(key, [])]
        direct: list[tuple[int, Path | Direct]] = [(d.index, d) for d in self.direct_of(key)]
        return sorted(files + direct, key=lambda item: item[0])


def staging_root(data_dir: Path) -> Path:
    return data_dir / "ingest" / "staging"


def clear_staging(data_dir: Path) -> None:
    """Remove what killed runs left behind (the caller holds the run lock)."""
    root = staging_root(data_dir)
    if root.exists():
        shutil.rmtree(root)


def route(
    frame: pl.DataFrame,
    registry: pl.DataFrame,
    *,
    batch: int,
    buckets: int,
    cfg: VeeConfig,
    bucket: int | None = None,
) -> pl.DataFrame:
    """Add meter_key (-1 when unknown), bucket, day, batch and what the (quantity, unit) pair
    decides (`quantities.PAIR_COLUMNS`) to a conformed frame. `bucket`: the bucket the batch
    says it holds, whose registry rows are looked in first."""
    window = _day_end_window(cfg)
    kind = pl.col("kind")
    offset = (
        pl.when(kind == REGISTER)
        .then(pl.lit(window))
        .when(kind == INTERVAL)
        .then(pl.lit(dt.timedelta(microseconds=1)))
        .otherwise(pl.lit(dt.timedelta(0)))
    )
    # the batch's own row order is kept: dedupe keeps the first of identical repeats in that
    # order, so a rerun keeps the same one. What the rows' (quantity, unit) pairs decide is
    # added here (`quantities.PAIR_COLUMNS`), where the day needs the kind anyway: once,
    # instead of here and again in VEE; the energy in mWh is left to VEE, which runs in the
    # workers (this may run in the coordinator before them).
    heads, run = _runs(frame)
    found = _registered(pair_attributes(heads.lazy()).collect(engine="in-memory"), registry, bucket)
    found = fill_unknown_buckets(found, buckets).with_columns(pl.col("bucket").cast(pl.Int32))
    return (
        frame.with_columns(found.get_column(c).gather(run) for c in (*PAIR_COLUMNS, "meter_key", "bucket"))
        .lazy()
        .with_columns(
            meter_key=pl.col("meter_key").fill_null(-1),
            batch=pl.lit(batch, pl.Int32),
            day=local_day(pl.col("ts") - offset),
        )
        .collect(engine="in-memory")
    )


def _registered(heads: pl.DataFrame, registry: pl.DataFrame, bucket: int | None) -> pl.DataFrame:
    """`meter_key` and `bucket` of each row's meter from the registry (null when unknown), in
    the rows' order. With the batch's `bucket`, from that bucket's rows first, and for ids
    not there, from the registry's rows of those ids: a join builds its table from the
    registry side, so joining with a worker's whole share cost what the share holds (a
    batch's lookups 25 ms against 0.7 ms, with half of a million meters)."""
    keys = registry.select("meter_id", "meter_key", "bucket")
    if bucket is None:
        return heads.join(keys, on="meter_id", how="left", maintain_order="left")
    own = keys.filter(pl.col("bucket") == bucket)
    found = heads.join(own, on="meter_id", how="left", maintain_order="left")
    missing = found.filter(pl.col("meter_key").is_null()).get_column("meter_id").unique()
    elsewhere = keys.filter(pl.col("meter_id").is_in(missing.implode())) if missing.len() else keys.clear()
    if not elsewhere.height:
        return found
    return (
        found.join(elsewhere, on="meter_id", how="left", maintain_order="left", suffix="_elsewhere")
        .with_columns(
            meter_key=pl.coalesce("meter_key", "meter_key_elsewhere"),
            bucket=pl.coalesce("bucket", "bucket_elsewhere"),
        )
        .drop("meter_key_elsewhere", "bucket_elsewhere")
    )


# The columns whose lookups `route` makes once per run of rows that share them.
RUN_COLUMNS = ("meter_id", "quantity", "unit")


def _runs(frame: pl.DataFrame) -> tuple[pl.DataFrame, pl.Series]:
    """The first row of each run of neighbouring rows with the same meter, quantity and unit
    (`RUN_COLUMNS`), and the run of every row. A head-end writes a meter's readings of a
    quantity together, so the registry and pair lookups are made for about one row in 28 and
    gathered to the rest (a batch of 1.2 M readings: 98 -> 48 ms to route); rows in any
    other order are right too, only with more runs."""
    starts = pl.any_horizontal(pl.col(c).ne_missing(pl.col(c).shift(1)) for c in RUN_COLUMNS)
    marked = frame.lazy().select(*RUN_COLUMNS, _start=starts).collect(engine="in-memory")
    start = marked.get_column("_start")
    run = (start.cum_sum() - 1).alias("_run")
    return marked.filter(start).drop("_start"), run


def _day_end_window(cfg: VeeConfig) -> dt.timedelta:
    """How far back a value's stamp is moved to find its day, at most (a register read at or
    within the window after midnight is the day before's end)."""
    return dt.timedelta(minutes=cfg.day_end_window_minutes, microseconds=1)


def value_days(first_ts: dt.datetime, last_ts: dt.datetime, cfg: VeeConfig) -> tuple[dt.date, ...]:
    """Every local day a reading stamped between `first_ts` and `last_ts` can belong to (see
    `route`: a value is moved back by at most the day-end window)."""
    first, last = local_date(first_ts - _day_end_window(cfg)), local_date(last_ts)
    return tuple(first + dt.timedelta(days=k) for k in range((last - first).days + 1))


def value_stamps(day: dt.date, cfg: VeeConfig) -> tuple[dt.datetime, dt.datetime]:
    """The closed range of stamps a value of `day` can have (the converse of `value_days`)."""
    # the window's end itself, closed: `_day_end_window` is a microsecond longer so that a
    # stamp moved back by it lands before midnight exactly when it is within the window
    end = local_midnight_utc(day + dt.timedelta(days=1)) + dt.timedelta(minutes=cfg.day_end_window_minutes)
    return local_midnight_utc(day), end


def plan_direct(
    batches: list[LandingBatch], *, buckets: int, cfg: VeeConfig
) -> tuple[list[Direct], list[tuple[int, LandingBatch]]]:
    """The batches that say they hold one bucket (taken by its task directly), and the rest
    (staged), each with its index in the run; from the batches' footers only."""
    direct: list[Direct] = []
    mixed: list[tuple[int, LandingBatch]] = []
    for index, batch in enumerate(batches):
        layout = batch.layout()
        if layout.bucket is not None and 0 <= layout.bucket < buckets and layout.first_ts and layout.last_ts:
            days = value_days(layout.first_ts, layout.last_ts, cfg)
            direct.append(
                Direct(index, batch, layout.bucket, days, layout.rows, layout.first_ts, layout.last_ts)
            )
        else:
            mixed.append((index, batch))
    return direct, mixed


def route_direct(
    direct: Direct, day: dt.date, registry: pl.DataFrame, *, buckets: int, cfg: VeeConfig
) -> pl.DataFrame:
    """A direct batch's rows of `day`, routed as staged rows are. Only the rows stamped where a
    value of the day can be are read: a day's batch reaches a day either side, and routed
    whole it was held until its last day was taken (a worker of a million-meter day held 80
    batches, 6 GB, while it took the small day before). A reading of another bucket is an
    error of the batch's writer; one outside the batch's days is found when its days are
    all taken (`check_direct_taken`)."""
    rows = direct.batch.read(between=value_stamps(day, cfg))
    routed = route(rows, registry, batch=direct.index, buckets=buckets, cfg=cfg, bucket=direct.bucket)
    stray = routed.filter(pl.col("bucket") != direct.bucket)
    if stray.height:
        meter, bucket = stray.select("meter_id", "bucket").row(0)
        raise IngestError(
            f"landing batch {direct.batch.path} says it holds bucket {direct.bucket}, "
            f"but meter {meter} is in bucket {bucket}",
            hint="the batch's writer mislabelled it; rewrite it without its amr.bucket metadata",
        )
    return routed.filter(pl.col("day") == day).drop("bucket", "day")


def check_direct_taken(direct: Direct, taken: int) -> None:
    """Every reading of a direct batch was handed to one of its days: those outside the days
    its stated time span reaches would otherwise be lost without a word."""
    if taken != direct.rows:
        raise IngestError(
            f"landing batch {direct.batch.path} says its readings are stamped "
            f"{direct.first_ts.isoformat()}..{direct.last_ts.isoformat()}, but "
            f"{direct.rows - taken} of its {direct.rows} readings belong to other days",
            hint="the batch's writer mislabelled it; rewrite it without its amr.first_ts and amr.last_ts",
        )


def stage_batches(
    batches: list[tuple[int, LandingBatch]],
    registry: pl.DataFrame,
    folder: Path,
    *,
    buckets: int,
    cfg: VeeConfig,
    threads: int = STAGING_THREADS,
) -> Staged:
    """Read, route and stage every batch (with its index in the run), `threads` batches at a
    time (Polars works outside the GIL; one batch alone leaves part of the machine idle
    while it writes its small files). Each partition's files are listed in batch order, the
    order dedupe keeps the first of identical repeats by."""

    def one(item: tuple[int, LandingBatch]) -> Staged:
        index, batch = item
        staged = Staged(folder=folder)
        stage(staged, route(batch.read(), registry, batch=index, buckets=buckets, cfg=cfg), batch=index)
        return staged

    out = Staged(folder=folder)
    with ThreadPoolExecutor(max(1, threads)) as pool:
        for part in pool.map(one, batches):  # in batch order
            for key, files in part.files.items():
                out.files[key].extend(files)
            for key, rows in part.rows.items():
                out.rows[key] += rows
            out.rows_in.update(part.rows_in)
    return out


def stage(staged: Staged, routed: pl.DataFrame, *, batch: int) -> None:
    staged.rows_in[batch] = routed.height
    for (day, bucket), part in routed.partition_by(["day", "bucket"], as_dict=True).items():
        assert isinstance(day, dt.date) and isinstance(bucket, int)
        folder = staged.folder / f"date={day.isoformat()}" / f"bucket={bucket:04d}"
        folder.mkdir(parents=True, exist_ok=True)
        # Arrow IPC, not Parquet: these files live for one run, and IPC with zstd writes in
        # about half the CPU time of Parquet with lz4 and is smaller too (measured)
        path = folder / f"{batch:06d}.arrow"
        part.drop("day", "bucket").write_ipc(path, compression="zstd")
        staged.files[(day, bucket)].append(path)
        staged.rows[(day, bucket)] += part.height
