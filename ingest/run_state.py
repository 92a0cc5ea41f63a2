"""What one ingest task knows of its run: the clock, settings and registry, the store's
manifests (read once per task) and the files it wrote and has not committed; and how a
day's partitions are grouped into plans and a plan's rows split back into partitions.
A task gets its own copy (`ingest.run`), so nothing here is shared between workers."""

from __future__ import annotations

import contextlib
import datetime as dt
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final

import polars as pl

from core.buckets import fill_unknown_buckets
from core.measurements import MeasurementStore, Snapshot, Table, partition_values
from core.tables import DAILY, DAILY_SCHEMA
from ingest.config import VeeConfig
from ingest.schema import READINGS, scan_readings, scan_registers
from ingest.staging import Direct, PartitionKey, Staged, check_direct_taken, route_direct
from ingest.tou import Calendar
from ingest.vee import STAGED_SCHEMA

DAY = dt.timedelta(days=1)
GROUP_ROWS: Final = 500_000  # rows of small partitions of a day that share one plan
# Stages inside VEE and aggregation timed apart, as task seconds in the report: what a run
# does beyond validation, store and the daily and TOU aggregates (docs/ingest.md, Scale).
ESTIMATION: Final = "estimation"
# the history's read and each meter's averages, for the rules that judge a meter against its
# own history (spike, high and low usage); their comparisons are timed with the rest
HISTORY_RULES: Final = "history_rules"
CUSTOMER_INTERVALS: Final = "customer_intervals"
STAGES: Final = (ESTIMATION, HISTORY_RULES, CUSTOMER_INTERVALS)


@dataclass
class Run:
    """A task's view of the run: the run's settings and clock, the registry of its buckets,
    the store (manifests read once), and what the task wrote and has not committed."""

    data_dir: Path
    cfg: VeeConfig
    now: dt.datetime
    store: MeasurementStore
    registry: pl.DataFrame
    calendars: list[Calendar]
    decisions: pl.DataFrame
    day_decisions: pl.DataFrame  # meter-days rejected or edited in review (DAY_DECISIONS_SCHEMA)
    pending: dict[PartitionKey, Path] = field(default_factory=dict)  # written, not yet committed
    pending_names: dict[PartitionKey, str] = field(default_factory=dict)
    pending_rows: dict[PartitionKey, int] = field(default_factory=dict)
    stored_rows: dict[PartitionKey, int] = field(default_factory=dict)  # committed partitions' rows
    buckets: int = 16
    pending_daily: dict[PartitionKey, pl.DataFrame] = field(default_factory=dict)
    # what validated days' intervals add up to, for the history of later days until the days
    # are aggregated (`aggregate.interval_energy`)
    provisional_daily: dict[PartitionKey, pl.DataFrame] = field(default_factory=dict)
    # the interval sums (`aggregate.interval_days`) of the partitions validated and written by
    # this task, made from their rows in memory; taken by the days' aggregation
    fresh_sums: dict[PartitionKey, pl.DataFrame] = field(default_factory=dict)
    snapshot: Snapshot | None = None  # the store's manifests, read once per task (see `files`)
    # direct batches' days not handed out yet and rows handed out, by batch index
    direct_left: dict[int, tuple[set[dt.date], int]] = field(default_factory=dict)
    # seconds of the stages inside VEE and aggregation that the report names (`STAGES`)
    seconds: dict[str, float] = field(default_factory=dict)

    @contextlib.contextmanager
    def stage(self, name: str) -> Iterator[None]:
        started = time.perf_counter()
        try:
            yield
        finally:
            self.seconds[name] = self.seconds.get(name, 0.0) + time.perf_counter() - started

    def direct_rows(self, direct: Direct, day: dt.date) -> pl.DataFrame | None:
        """A direct batch's rows of `day`, routed as staged rows are (None when it has none);
        once its days are all handed out, its rows must all have been."""
        left, taken = self.direct_left.get(direct.index, (set(direct.days), 0))
        rows = route_direct(direct, day, self.registry, buckets=self.buckets, cfg=self.cfg)
        left, taken = left - {day}, taken + rows.height
        self.direct_left[direct.index] = (left, taken)
        if not left:
            del self.direct_left[direct.index]
            check_direct_taken(direct, taken)
        return rows if rows.height else None

    def new_rows(self, staged: Staged, day: dt.date, buckets: list[int]) -> tuple[pl.LazyFrame, set[int]]:
        """The new rows of a day's partitions of some buckets, in batch order per partition,
        and the buckets that have any: staged files as ONE scan when that is all there is (a
        plan's cost grows with its scan nodes), else each file and direct batch in its place."""
        sources = [(b, source) for b in buckets for _, source in staged.sources((day, b))]
        paths = [source for _, source in sources if isinstance(source, Path)]
        fed = {b for b, source in sources if isinstance(source, Path)}
        if len(paths) == len(sources):
            return (pl.scan_ipc(paths) if paths else pl.LazyFrame(schema=STAGED_SCHEMA)), fed
        frames: list[pl.LazyFrame] = []
        for bucket, source in sources:
            if isinstance(source, Path):
                frames.append(pl.scan_ipc(source))
            elif (rows := self.direct_rows(source, day)) is not None:
                frames.append(rows.lazy())
                fed.add(bucket)
        new = pl.concat(frames, how="vertical_relaxed") if frames else pl.LazyFrame(schema=STAGED_SCHEMA)
        return new, fed

    def table(self, name: str) -> Table:
        return self.store.table(name)

    def files(self, table: str, **where: object) -> list[Path]:
        """Committed files of a table's partitions. The manifests are read once per task and
        looked up through an index: nothing else commits under the run lock, and this run
        commits only after its tasks. Reading a manifest afresh for every lookup cost a pass
        over all of a table's partitions each time (a city's year of readings: 163,000
        partitions, 0.7-1.0 s a lookup)."""
        return self.manifests().files(table, **where)

    def manifests(self) -> Snapshot:
        if self.snapshot is None:
            self.snapshot = Snapshot(self.store)
        return self.snapshot

    def group_readings(self, day: dt.date, buckets: list[int]) -> pl.LazyFrame:
        """The partitions of a day for some buckets as ONE scan (a plan's cost grows with
        its scan nodes)."""
        return scan_readings(self._group_files(day, buckets))

    def group_registers(self, day: dt.date, buckets: list[int]) -> pl.LazyFrame:
        """Those partitions' rows that may be of register quantities (`scan_registers`)."""
        return scan_registers(self._group_files(day, buckets))

    def _group_files(self, day: dt.date, buckets: list[int]) -> list[Path]:
        files: list[Path] = []
        for b in buckets:
            pending = self.pending.get((day, b))
            files.extend([pending] if pending else self.files(READINGS, date=day, bucket=b))
        return files

    def readings_names(self, day: dt.date, bucket: int) -> list[str]:
        """The names of a partition's readings files as this run sees them (`group_readings`)."""
        pending = self.pending_names.get((day, bucket))
        return [pending] if pending else [f.name for f in self.files(READINGS, date=day, bucket=bucket)]

    def rows_of(self, day: dt.date, bucket: int) -> int:
        """Rows a partition holds (from Parquet metadata), to size groups of buckets."""
        if (day, bucket) in self.pending_rows:
            return self.pending_rows[(day, bucket)]
        if (day, bucket) not in self.stored_rows:  # committed files do not change in a task
            files = self.files(READINGS, date=day, bucket=bucket)
            count = int(pl.scan_parquet(files).select(pl.len()).collect().item()) if files else 0
            self.stored_rows[(day, bucket)] = count
        return self.stored_rows[(day, bucket)]

    def with_bucket(self, frame: pl.DataFrame, buckets: list[int], key: str = "meter_key") -> pl.DataFrame:
        """Add each row's bucket (from the registry; by hash for unknown meters)."""
        if len(buckets) == 1:
            return frame.with_columns(bucket=pl.lit(buckets[0], pl.Int32))
        # the buckets' own registry rows: a join builds its table from them, and a worker's
        # whole share is most of the registry
        own = self.registry.filter(pl.col("bucket").is_in(buckets)).select(key, "bucket")
        return fill_unknown_buckets(frame.join(own, on=key, how="left", maintain_order="left"), self.buckets)

    def readings_days(self, bucket: int) -> set[dt.date]:
        days = {d for d, b in self.pending if b == bucket}
        for path in self.manifests().manifest(READINGS).matching(bucket=bucket):
            days.add(dt.date.fromisoformat(partition_values(path)["date"]))
        return days

    def meters(self, buckets: list[int]) -> pl.LazyFrame:
        return self.registry.lazy().filter(pl.col("bucket").is_in(buckets))

    def let_go(self, buckets: set[int]) -> None:
        """Drop what the task keeps of these buckets' days for their later days, once those
        are done too: the daily rows for the history, and any interval sums not taken."""
        for kept in (self.pending_daily, self.provisional_daily, self.fresh_sums):
            for key in [key for key in kept if key[1] in buckets]:
                del kept[key]

    def daily_history(self, day: dt.date, buckets: list[int]) -> pl.LazyFrame:
        """Daily rows of the buckets' meters in the history window before `day`: the
        committed ones (one scan) with this run's pending days in their place."""
        first = day - dt.timedelta(days=self.cfg.history_days)
        months = sorted({(first + DAY * i).strftime("%Y-%m") for i in range(self.cfg.history_days)})
        # this run's days: aggregated, else as far as validated (VEE runs before aggregation)
        pending = {k: f for k, f in self.provisional_daily.items() if k[1] in buckets}
        pending.update({k: f for k, f in self.pending_daily.items() if k[1] in buckets})
        files = self.files(DAILY, month=months, bucket=buckets)
        live = pl.scan_parquet(files) if files else pl.LazyFrame(schema=DAILY_SCHEMA)
        extra = [frame for (d, _), frame in sorted(pending.items()) if first <= d < day]
        recent = pl.concat(extra, how="vertical_relaxed") if extra else pl.DataFrame(schema=DAILY_SCHEMA)
        live = live.filter(pl.col("date").is_between(first, day - DAY)).join(
            recent.lazy().select("meter_id", "date"), on=["meter_id", "date"], how="anti"
        )
        return pl.concat([live.select(list(DAILY_SCHEMA)), recent.lazy()], how="vertical_relaxed")


def groups(sizes: dict[PartitionKey, int]) -> list[tuple[dt.date, list[int]]]:
    """Partitions grouped per day into runs of buckets of at most GROUP_ROWS rows together,
    so small partitions share one plan (a plan has a fixed cost) and big ones stay alone."""
    by_day: dict[dt.date, list[int]] = {}
    for day, bucket in sorted(sizes):
        by_day.setdefault(day, []).append(bucket)
    out: list[tuple[dt.date, list[int]]] = []
    for day, buckets in by_day.items():
        group: list[int] = []
        rows = 0
        for bucket in buckets:
            if group and rows + sizes[(day, bucket)] > GROUP_ROWS:
                out.append((day, group))
                group, rows = [], 0
            group.append(bucket)
            rows += sizes[(day, bucket)]
        out.append((day, group))
    return out


def split_by_bucket(
    frame: pl.DataFrame, buckets: list[int], *, keep_empty: bool = True
) -> dict[int, pl.DataFrame]:
    """A frame with a `bucket` column as one frame per bucket, without that column (the
    buckets without rows as empty frames unless `keep_empty` is false)."""
    if len(buckets) == 1:  # a big partition alone in its group: a split would gather every column
        return {buckets[0]: frame.drop("bucket")} if frame.height or keep_empty else {}
    parts = {
        int(k[0]): v  # type: ignore[arg-type]
        for k, v in frame.partition_by("bucket", as_dict=True, include_key=False).items()
    }
    if not keep_empty:
        return parts
    return {b: parts.get(b, frame.drop("bucket").clear()) for b in buckets}
