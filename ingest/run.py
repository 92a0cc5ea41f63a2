"""`amr ingest run`: take every new landing batch through VEE into the store.

Order of a run, chosen so that a run killed at any point and run again leaves the same
store: (1) stage the new batches by partition; (2) recompute every touched partition from
all it ever received and write new files; (3) commit `readings` (readings, quarantine
and estimates of a partition swap together); (4) aggregate the touched days (and the
day after each, whose register-based energy starts at their end) and commit `findings`,
`intervals` (of the touched days only: a day's intervals depend on its readings alone),
`register_reads`, `daily`, `monthly`; (5) log the batches and mark them taken, in one
transaction. Until (5) the batches are not taken, so a rerun takes them again: their
rows are then identical repeats of what (3) stored, and every partition comes out the
same. One run at a time per data directory (a file lock); others wait for it.

Steps (2) and (4) run on the executor (`core.executor`: in this process by default, or a
Dask cluster with AMR_CLUSTER) as one task per slot, each with a share of the buckets: a
bucket's days depend on each other (previous day, like days, history), buckets do not. A
task only writes immutable files and returns their names; this process (the coordinator)
commits them, so a task that dies and is run again elsewhere leaves unreferenced files,
never doubled rows.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as dt
import fcntl
import shutil
import time
import uuid
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final

import polars as pl
import sqlalchemy as sa

from core.buckets import bucket_expr
from core.config import Settings
from core.executor import Executor, open_executor
from core.landing import LandingBatch, list_batches
from core.measurements import (
    MeasurementStore,
    Partition,
    Snapshot,
    Table,
    parse_partition,
    partition,
    partition_values,
)
from core.state import StateStore
from core.tables import (
    DAILY,
    DAILY_SCHEMA,
    INTERVALS,
    INTERVALS_SCHEMA,
    REGISTER_READS,
    REGISTER_READS_SCHEMA,
)
from core.timezones import local_date, local_midnight_utc
from ingest import aggregate
from ingest.accounting import BatchCount, IngestReport, finish, record, tally
from ingest.config import VeeConfig
from ingest.errors import IngestError
from ingest.estimate import like_days
from ingest.localtime import local_day
from ingest.registry import load_registry, with_limits
from ingest.schema import (
    FINDINGS,
    FINDINGS_SCHEMA,
    INTERVAL_SUMS,
    INTERVAL_SUMS_SCHEMA,
    MONTHLY,
    READINGS,
    READINGS_SCHEMA,
    SUMS_BASIS_KEY,
)
from ingest.staging import (
    Direct,
    PartitionKey,
    Staged,
    check_direct_taken,
    clear_staging,
    plan_direct,
    route_direct,
    stage_batches,
    staging_root,
)
from ingest.tou import Calendar, in_force, load_calendars
from ingest.vee import DAY_DECISIONS_SCHEMA, DECISIONS_SCHEMA, ENGINE, STAGED_SCHEMA, VeeInputs, plan

DAY = dt.timedelta(days=1)
GROUP_ROWS: Final = 500_000  # rows of small partitions of a day that share one plan
# Of the other days a plan reads (the day before, like days) it takes a few columns of some
# rows (registers, meter keys): they count an eighth of their rows when sizing groups. Each
# counted whole, the small day after a day's batches got a plan per bucket (0.074 s each);
# an eighth groups about six (100,000 meters: that day's plans 1.18 -> 0.86 s; a million
# meters' run still peaks at 2.2 GB for all processes).
OTHER_DAYS_SHARE: Final = 8
# Tables a run writes, in the order the coordinator commits them.
COMMIT_ORDER: Final = (READINGS, INTERVAL_SUMS, FINDINGS, INTERVALS, REGISTER_READS, DAILY, MONTHLY)
# Tables a run commits only where it wrote something.
SPARSE: Final = (INTERVAL_SUMS, INTERVALS)
# Stages inside VEE and aggregation timed apart, as task seconds in the report: what a run
# does beyond validation, store and the daily and TOU aggregates (docs/ingest.md, Scale).
ESTIMATION: Final = "estimation"
CUSTOMER_INTERVALS: Final = "customer_intervals"
STAGES: Final = (ESTIMATION, CUSTOMER_INTERVALS)
# Days of `interval_sums` kept before the run's day: they are read only when a day is
# aggregated again beside a new one; an older day's are dropped from the manifest (and its
# files left to `amr store vacuum`), and computed again if ever wanted.
SUMS_KEPT_DAYS: Final = 7


@dataclass(frozen=True)
class NewBatch:
    path: str  # relative to the data directory, as recorded in landing_taken
    sha256: str
    batch: LandingBatch


@contextlib.contextmanager
def run_lock(data_dir: Path) -> Iterator[None]:
    folder = data_dir / "ingest"
    folder.mkdir(parents=True, exist_ok=True)
    with open(folder / "run.lock", "a+") as handle:
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle.fileno(), fcntl.LOCK_UN)


def new_batches(data_dir: Path, state: StateStore) -> list[NewBatch]:
    """Landing batches not taken yet; a batch whose checksum was taken (or is new) under
    another name is the same data landed twice: it is marked taken with no rows of its own,
    so later runs do not read it to hash it again (the caller holds the run lock)."""
    with state.read() as conn:
        taken: dict[str, str] = {
            str(path): str(sha)
            for path, sha in conn.execute(sa.text("SELECT batch_path, sha256 FROM landing_taken")).all()
        }
    known = set(taken.values())
    out: list[NewBatch] = []
    copies: list[dict[str, object]] = []
    for batch in list_batches(data_dir):
        relative = str(batch.path.relative_to(data_dir))
        if relative in taken:
            continue
        digest = batch.sha256()
        if digest in known:
            copies.append({"path": relative, "sha": digest})
            continue
        known.add(digest)
        out.append(NewBatch(relative, digest, batch))
    if copies:
        with state.transaction() as conn:
            conn.execute(
                sa.text(
                    "INSERT INTO landing_taken (batch_path, sha256, rows_in) VALUES (:path, :sha, 0) "
                    "ON CONFLICT (batch_path) DO NOTHING"
                ),
                copies,
            )
    return out


def run_ingest(
    data_dir: Path,
    state: StateStore,
    *,
    settings: Settings,
    now: dt.datetime | None = None,
    vee: VeeConfig | None = None,
    executor: Executor | None = None,
) -> IngestReport:
    """Take every new landing batch (idempotent by path and checksum) through VEE, store,
    estimate, aggregate the touched days and publish `daily` and `register_reads`."""
    with run_lock(data_dir):
        return ingest_batches(
            data_dir, state, new_batches(data_dir, state), settings=settings, now=now, vee=vee,
            executor=executor,
        )


def reaggregate(
    data_dir: Path,
    state: StateStore,
    days: Iterable[PartitionKey],
    *,
    settings: Settings,
    now: dt.datetime | None = None,
    executor: Executor | None = None,
) -> IngestReport:
    """Recompute partitions (after a review decision) without new batches."""
    with run_lock(data_dir):
        return ingest_batches(
            data_dir, state, [], settings=settings, now=now, recompute=set(days), executor=executor
        )


@dataclass
class _Run:
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
        files: list[Path] = []
        for b in buckets:
            pending = self.pending.get((day, b))
            files.extend([pending] if pending else self.files(READINGS, date=day, bucket=b))
        if not files:
            return pl.LazyFrame(schema=READINGS_SCHEMA)
        return pl.scan_parquet(files)

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
        keyed = frame.join(own, on=key, how="left")
        unknown = keyed.filter(pl.col("bucket").is_null())
        if unknown.height:
            ids = (
                unknown.select("meter_id")
                .unique()
                .with_columns(bucket_expr("meter_id", self.buckets).alias("_b"))
            )
            keyed = (
                keyed.join(ids, on="meter_id", how="left")
                .with_columns(bucket=pl.coalesce("bucket", "_b"))
                .drop("_b")
            )
        return keyed

    def readings_days(self, bucket: int) -> set[dt.date]:
        days = {d for d, b in self.pending if b == bucket}
        for path in self.manifests().manifest(READINGS).matching(bucket=bucket):
            days.add(dt.date.fromisoformat(partition_values(path)["date"]))
        return days

    def meters(self, buckets: list[int]) -> pl.LazyFrame:
        return self.registry.lazy().filter(pl.col("bucket").is_in(buckets))

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


def _load_decisions(state: StateStore, days: set[dt.date]) -> pl.DataFrame:
    if not days:
        return pl.DataFrame(schema=DECISIONS_SCHEMA)
    query = sa.text(
        "SELECT meter_id, quantity, ts, action, value, scale, new_value, local_date, id "
        "FROM ingest_decisions WHERE local_date >= :first AND local_date <= :last ORDER BY id"
    )
    with state.read() as conn:
        rows = conn.execute(query, {"first": min(days).isoformat(), "last": max(days).isoformat()}).all()
    frame = pl.DataFrame(
        [r[:7] for r in rows],
        orient="row",
        schema={
            "meter_id": pl.String(),
            "quantity": pl.String(),
            "ts": pl.String(),
            "action": pl.String(),
            "value": pl.Int64(),
            "scale": pl.Int8(),
            "new_value": pl.Int64(),
        },
    )
    # the latest decision per reading key and value wins
    return (
        frame.with_columns(ts=pl.col("ts").str.to_datetime(time_unit="us", time_zone="UTC"))
        .unique(["meter_id", "quantity", "ts"], keep="last", maintain_order=True)
        .select(list(DECISIONS_SCHEMA))
    )


def _load_day_decisions(state: StateStore, days: set[dt.date]) -> pl.DataFrame:
    """The latest reject or edit per meter-day in review (an accept changes no data)."""
    if not days:
        return pl.DataFrame(schema=DAY_DECISIONS_SCHEMA)
    query = sa.text(
        "SELECT meter_id, local_date, action, energy_mwh FROM ingest_day_decisions "
        "WHERE local_date >= :first AND local_date <= :last AND action IN ('reject', 'edit') ORDER BY id"
    )
    with state.read() as conn:
        rows = conn.execute(query, {"first": min(days).isoformat(), "last": max(days).isoformat()}).all()
    frame = pl.DataFrame(
        [(m, dt.date.fromisoformat(str(d)[:10]), a, e) for m, d, a, e in rows],
        orient="row",
        schema=DAY_DECISIONS_SCHEMA,
    )
    return frame.unique(["meter_id", "date"], keep="last", maintain_order=True)


def ingest_batches(
    data_dir: Path,
    state: StateStore,
    batches: list[NewBatch],
    *,
    settings: Settings,
    now: dt.datetime | None = None,
    vee: VeeConfig | None = None,
    recompute: set[PartitionKey] | None = None,
    executor: Executor | None = None,
) -> IngestReport:
    """Stage, validate, estimate, store and aggregate; the caller holds the run lock.

    Without an `executor`, the one executor setting (AMR_CLUSTER) chooses where the
    buckets' tasks run."""
    data_dir = data_dir.resolve()  # tasks may run in another working directory or machine
    cfg = vee or VeeConfig.from_settings(settings)
    moment = (now or dt.datetime.now(dt.UTC)).astimezone(dt.UTC)
    report = IngestReport(run_id=f"{moment:%Y%m%dT%H%M%S}-{uuid.uuid4().hex[:8]}")
    clear_staging(data_dir)
    registry = with_limits(load_registry(state), cfg)
    clock = time.perf_counter()
    # batches of one bucket go straight to its task; the rest are split by partition here
    direct, mixed = plan_direct([item.batch for item in batches], buckets=settings.buckets, cfg=cfg)
    staged = stage_batches(
        mixed, registry, staging_root(data_dir) / report.run_id, buckets=settings.buckets, cfg=cfg
    )
    staged.direct = direct
    staged.rows_in.update({d.index: d.rows for d in direct})
    counts = {
        index: BatchCount(item.path, item.sha256, rows_in=staged.rows_in[index])
        for index, item in enumerate(batches)
    }
    touched = sorted(staged.touched() | (recompute or set()))
    report.seconds["staging"] = time.perf_counter() - clock
    run = _Run(
        data_dir=data_dir,
        cfg=cfg,
        now=moment,
        store=MeasurementStore(data_dir),
        registry=registry,
        calendars=load_calendars(),
        decisions=_load_decisions(state, {d for d, _ in touched}),
        day_decisions=_load_day_decisions(state, {d for d, _ in touched}),
        buckets=settings.buckets,
    )
    own = executor is None
    chosen = open_executor() if executor is None else executor
    try:
        works = _works(run, staged, touched, chosen.slots, set(staged.files) | (recompute or set()))
        if works:
            chosen.require_shared(data_dir)
        results = chosen.map(_task, works)
    finally:
        if own:
            chosen.close()
    methods: Counter[str] = Counter()
    replaced: list[pl.DataFrame] = []
    for result in results:
        for outcomes in result.outcomes:
            tally(counts, outcomes)
        for estimates in result.estimates:
            methods.update(dict(estimates.iter_rows()))
        replaced.extend(gone for gone in result.replaced if gone.height)
    finish(report, counts)
    report.partitions = sum(r.partitions for r in results)
    report.estimates = sum(methods.values())
    report.estimates_by_method = dict(sorted(methods.items()))
    _audit_replaced(state, replaced)
    # The coordinator commits what the tasks wrote: readings first, as before, then the aggregates.
    for name in COMMIT_ORDER:
        written = {k: v for r in results for k, v in r.written.get(name, {}).items()}
        if name == INTERVAL_SUMS:
            written = {**_stale_sums(run.table(name), _sums_cutoff(moment)), **written}
        if written or name not in SPARSE:
            run.table(name).commit(replace=written)
    report.days_aggregated = sum(r.days_aggregated for r in results)
    # task seconds summed over tasks (on a cluster, more than the wall time)
    for stage in ("vee", "aggregate", *STAGES):
        report.seconds[stage] = sum(r.seconds.get(stage, 0.0) for r in results)
    report.seconds["tasks_wall"] = time.perf_counter() - clock - report.seconds["staging"]
    with state.transaction() as conn:
        record(conn, report)
    shutil.rmtree(staged.folder, ignore_errors=True)
    return report


@dataclass(frozen=True)
class _Work:
    """One task: the touched partitions of some buckets, with the registry cut down to them."""

    run: _Run
    keys: list[PartitionKey]
    staged: Staged
    # keys with staged rows or to recompute; the others come from direct batches' day ranges
    # and are taken only when a batch has rows of that day
    sure: frozenset[PartitionKey] = frozenset()


@dataclass
class _Result:
    written: dict[str, dict[Partition, list[str]]]  # table -> partition -> new file names
    outcomes: list[pl.DataFrame]
    estimates: list[pl.DataFrame]
    replaced: list[pl.DataFrame]
    days_aggregated: int
    seconds: dict[str, float]
    partitions: int = 0  # partitions validated


def _works(
    run: _Run, staged: Staged, touched: list[PartitionKey], slots: int, sure: set[PartitionKey]
) -> list[_Work]:
    """The touched buckets dealt round-robin into one task per executor slot: a bucket's days
    depend on each other, buckets do not. One slot (in-process) is one task of every bucket."""
    buckets = sorted({b for _, b in touched})
    shares = [buckets[i :: max(1, slots)] for i in range(min(max(1, slots), len(buckets)))]
    return [
        _Work(
            run=dataclasses.replace(
                run,
                registry=run.registry.filter(pl.col("bucket").is_in(share)),
                pending={}, pending_names={}, pending_daily={}, provisional_daily={}, pending_rows={},
                stored_rows={},
                snapshot=None, direct_left={}, seconds={},
            ),
            keys=[key for key in touched if key[1] in share],
            staged=staged,
            sure=frozenset(key for key in sure if key[1] in share),
        )
        for share in shares
    ]


def _task(work: _Work) -> _Result:
    """VEE then aggregation of some buckets' touched days; writes files, commits nothing."""
    run = work.run
    started = time.perf_counter()
    outcomes: list[pl.DataFrame] = []
    estimates: list[pl.DataFrame] = []
    replaced: list[pl.DataFrame] = []
    sizes = {key: _input_rows(run, work.staged, key, work.keys) for key in work.keys}
    last_day = {b: d for d, b in sorted(work.keys)}  # the bucket's last day this task validates
    validated: list[PartitionKey] = []
    for day, group in _groups(sizes):
        later = {b for b in group if last_day[b] > day}
        done = _vee_group(run, day, group, work.staged, later=later, sure=work.sure)
        if done is None:
            continue
        found, methods, gone, buckets = done
        outcomes.append(found)
        estimates.append(methods)
        replaced.append(gone)
        validated.extend((day, b) for b in buckets)
    vee_done = time.perf_counter()
    written: dict[str, dict[Partition, list[str]]] = {
        READINGS: {partition(date=d, bucket=b): [name] for (d, b), name in run.pending_names.items()}
    }
    days_aggregated = _aggregate(run, validated, written)
    return _Result(
        written=written,
        outcomes=outcomes,
        estimates=estimates,
        replaced=replaced,
        days_aggregated=days_aggregated,
        seconds={"vee": vee_done - started, "aggregate": time.perf_counter() - vee_done, **run.seconds},
        partitions=len(validated),
    )


def _input_rows(run: _Run, staged: Staged, key: PartitionKey, keys: list[PartitionKey]) -> int:
    """Rows a partition's plan reads: its own, the day before's and its like days', stored or
    coming in this run (`keys`: the task's partitions). Groups are sized by these, not by the
    partition alone: the small day after a day's batches (a few readings stamped past
    midnight) grouped a worker's 80 buckets of a million-meter day, and its plan read their
    49 M rows of the day before at once (9.8 GB)."""
    day, bucket = key
    available = run.readings_days(bucket) | {d for d, b in keys if b == bucket}
    likes = like_days(day, available - {day}, run.cfg)

    def rows(d: dt.date) -> int:
        return staged.expected_rows((d, bucket)) + run.rows_of(d, bucket)

    return rows(day) + sum(rows(d) for d in [day - DAY, *likes]) // OTHER_DAYS_SHARE


def _groups(sizes: dict[PartitionKey, int]) -> list[tuple[dt.date, list[int]]]:
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


def _vee_group(
    run: _Run,
    day: dt.date,
    group: list[int],
    staged: Staged,
    *,
    later: set[int],
    sure: frozenset[PartitionKey],
) -> tuple[pl.DataFrame, pl.DataFrame, pl.DataFrame, list[int]] | None:
    """VEE of a day's partitions of some buckets, their files written for the commit, and
    the buckets validated: those in `sure`, and the others whose direct batches had rows of
    the day (a batch's day range is wider than its readings' days: an empty day is not
    touched, as it would not be had the batch been staged). `later`: buckets with later days
    in this task, whose history needs this day's energy."""
    new, fed = run.new_rows(staged, day, group)
    buckets = [b for b in group if b in fed or (day, b) in sure]
    if not buckets:
        return None
    available = set().union(*(run.readings_days(b) for b in buckets)) - {day}
    likes = like_days(day, available, run.cfg)
    like_frames = [run.group_readings(d, buckets).filter(pl.col("mwh").is_not_null()) for d in likes]
    empty = pl.LazyFrame(schema=READINGS_SCHEMA)
    like = pl.concat(like_frames, how="vertical_relaxed") if like_frames else empty
    inputs = VeeInputs(
        day=day,
        existing=run.group_readings(day, buckets),
        new=new,
        previous=run.group_readings(day - DAY, buckets),
        meters=run.meters(buckets),
        history=run.daily_history(day, buckets),
        like=like,
        decisions=run.decisions.filter(local_day(pl.col("ts")).is_between(day, day + DAY)),
        day_decisions=run.day_decisions.filter(pl.col("date") == day),
    )
    vee = plan(inputs, run.cfg, run.now)
    # the rules' results are collected in `plan`; what is left is the estimates, joined to
    # the partition's rows
    with run.stage(ESTIMATION):
        readings, outcomes, gone = pl.collect_all([vee.readings, vee.outcomes, vee.replaced], engine=ENGINE)
    table = run.table(READINGS)
    split = _split(run.with_bucket(readings, buckets), buckets, keep_empty=False)
    for bucket, part in split.items():
        key = (day, bucket)
        name = table.write_file(partition(date=day, bucket=bucket), part.select(list(READINGS_SCHEMA)))
        run.pending[key] = table.root / f"date={day.isoformat()}" / f"bucket={bucket:04d}" / name
        run.pending_names[key] = name
        run.pending_rows[key] = part.height
        if bucket in later:
            run.provisional_daily[key] = aggregate.interval_energy(part.lazy(), day).collect()
    # estimates by method: a row has a method exactly when it is an estimate (`vee.plan`)
    estimates = readings.get_column("method").drop_nulls().value_counts()
    return outcomes, estimates, gone, buckets


def _audit_replaced(state: StateStore, frames: list[pl.DataFrame]) -> None:
    """Estimates that measured values replaced; idempotent (a rerun adds nothing twice)."""
    if not frames:
        return
    rows = [
        {
            "meter_id": m,
            "quantity": q,
            "ts": ts.isoformat(),
            "rule": "estimate_replaced",
            "before": f"{before} mWh ({method})",
            "after": f"{after} mWh (measured)",
            "actor": "ingest",
        }
        for frame in frames
        for _, m, q, ts, before, method, after in frame.iter_rows()
    ]
    with state.transaction() as conn:
        conn.execute(
            sa.text(
                "INSERT INTO ingest_audit (meter_id, quantity, ts, rule, before_text, after_text, actor) "
                "VALUES (:meter_id, :quantity, :ts, :rule, :before, :after, :actor) "
                "ON CONFLICT (meter_id, quantity, ts, rule, before_text, after_text) DO NOTHING"
            ),
            rows,
        )


def _aggregate(
    run: _Run, touched: list[PartitionKey], written: dict[str, dict[Partition, list[str]]]
) -> int:
    # the new files go into `written` (table -> partition -> names) for the coordinator
    """Aggregate the touched days and the days either side that the store has (a day's
    register-based energy starts at the end of the day before; an estimated day end
    leans on the reads of the day after)."""
    days = set(touched)
    for day, bucket in touched:
        stored = run.readings_days(bucket)
        # the day before even without readings of its own: its end may be estimated
        days.add((day - DAY, bucket))
        if day + DAY in stored:
            days.add((day + DAY, bucket))
    new_daily: dict[tuple[str, int], list[pl.DataFrame]] = {}
    new_regs: dict[tuple[str, int], list[pl.DataFrame]] = {}
    findings: dict[Partition, pl.DataFrame] = {}
    # each partition's intervals are written as soon as they are made: held until the end,
    # a worker of a million-meter day kept 80 partitions' intervals (several GB)
    interval_table = run.table(INTERVALS)
    published: dict[Partition, list[str]] = {}
    sums_table = run.table(INTERVAL_SUMS)
    sums: dict[Partition, list[str]] = {}
    fresh = set(touched)
    for day, buckets in _groups({key: run.rows_of(*key) for key in days}):
        before, prev, cur, nxt = (run.group_readings(day + DAY * k, buckets) for k in (-2, -1, 0, 1))
        meters = run.meters(buckets)
        tou = in_force(run.calendars, day).lookup(day)
        wanted = [b for b in buckets if (day, b) in fresh]
        bases = {b: aggregate.sums_basis(run.readings_names(day, b), tou, run.cfg) for b in buckets}
        # a day whose readings are as they were (the day before a new day, aggregated again
        # for its day end) starts from its stored interval sums
        kept = None if wanted else _stored_sums(run, day, buckets, bases)
        # First what is read from the readings (the day ends, the customers' intervals, then
        # the per-meter interval sums), each collected once: Polars' collect_all does not
        # share a subplan between its outputs, and the sums feed both the daily rows and the
        # findings (computed twice, they took 0.41 s per 611,000-row partition, 0.32 s once).
        # The rest is built on these small frames. The customers' intervals are collected on
        # their own, so the report can time them (`CUSTOMER_INTERVALS`).
        first = [
            aggregate.day_ends(prev, cur, nxt, day, run.cfg),
            aggregate.day_ends(before, prev, cur, day - DAY, run.cfg),
        ]
        ends, start = pl.collect_all(first, engine=ENGINE)
        interval_rows = None
        if wanted:
            with run.stage(CUSTOMER_INTERVALS):
                interval_rows = aggregate.customer_intervals(cur, tou, run.cfg).collect(engine=ENGINE)
        if kept is None:
            # on Polars' streaming engine, whose group-by this is nearly all of: 0.084 -> 0.054 s
            # a 1.2 M-row partition (the rest above is faster in memory)
            intervals = aggregate.interval_days(cur, tou, run.cfg).collect(engine="streaming")
            # kept for the days a later run may aggregate again beside a new one
            if day >= _sums_cutoff(run.now):
                for bucket, part in _split(run.with_bucket(intervals, buckets), buckets).items():
                    key = partition(date=day, bucket=bucket)
                    sums[key] = [sums_table.write_file(key, part, metadata={SUMS_BASIS_KEY: bases[bucket]})]
        else:
            intervals = kept
        # the register advances feed both as well: collected once (a few rows per meter)
        capacity = meters.select("meter_key", "capacity_mwh")
        adv = aggregate.advances(start.lazy(), ends.lazy(), capacity).collect(engine=ENGINE)
        day_rows = aggregate.daily(intervals.lazy(), adv.lazy(), meters, day).collect(engine=ENGINE)
        found_rows = aggregate.findings(
            intervals.lazy(),
            adv.lazy(),
            day_rows.lazy(),
            run.daily_history(day, buckets),
            meters,
            day=day,
            complete=run.now >= local_midnight_utc(day + DAY),
            cfg=run.cfg,
        ).collect(engine=ENGINE)
        regs = ends.select("meter_key", *REGISTER_READS_SCHEMA)
        if interval_rows is not None:
            with run.stage(CUSTOMER_INTERVALS):
                keyed = run.with_bucket(interval_rows, buckets, key="meter_id")
                for bucket, part in _split(keyed, wanted).items():
                    key = partition(date=day, bucket=bucket)
                    published[key] = _publish_intervals(
                        interval_table, key, part.select(list(INTERVALS_SCHEMA))
                    )
        month = day.strftime("%Y-%m")
        daily_parts = _split(run.with_bucket(day_rows, buckets, key="meter_id"), buckets)
        regs_parts = _split(run.with_bucket(regs, buckets), buckets)
        found_parts = _split(run.with_bucket(found_rows, buckets), buckets)
        for bucket in buckets:
            run.pending_daily[(day, bucket)] = daily_parts[bucket].select(list(DAILY_SCHEMA))
            new_daily.setdefault((month, bucket), []).append(daily_parts[bucket].select(list(DAILY_SCHEMA)))
            new_regs.setdefault((month, bucket), []).append(
                aggregate.register_reads(regs_parts[bucket].lazy()).collect()
            )
            findings[partition(date=day, bucket=bucket)] = found_parts[bucket].select(list(FINDINGS_SCHEMA))
    written[FINDINGS] = _replace_days(run.table(FINDINGS), findings, FINDINGS_SCHEMA)
    written[INTERVALS] = published
    written[INTERVAL_SUMS] = sums
    written[REGISTER_READS], _ = _merge_months(run, REGISTER_READS, new_regs, REGISTER_READS_SCHEMA)
    written[DAILY], merged = _merge_months(run, DAILY, new_daily, DAILY_SCHEMA)
    monthly = run.table(MONTHLY)
    written[MONTHLY] = {
        key: [monthly.write_file(key, aggregate.monthly(frame.lazy(), m).collect())]
        for (m, b), frame in merged.items()
        for key in [partition(month=m, bucket=b)]
    }
    return len(days)


def _sums_cutoff(now: dt.datetime) -> dt.date:
    """The first day whose interval sums are kept (`SUMS_KEPT_DAYS` before the run's day)."""
    return local_date(now) - dt.timedelta(days=SUMS_KEPT_DAYS)


def _stale_sums(table: Table, cutoff: dt.date) -> dict[Partition, list[str]]:
    """The `interval_sums` partitions of days before `cutoff`, each with no files: committed
    so, they leave the manifest."""
    paths = table.manifest().partitions
    return {
        parse_partition(p): [] for p in paths if dt.date.fromisoformat(partition_values(p)["date"]) < cutoff
    }


def _stored_sums(run: _Run, day: dt.date, buckets: list[int], bases: dict[int, str]) -> pl.DataFrame | None:
    """The stored interval sums of a day's partitions of some buckets, if every one of them
    was made from what the partition is now (`aggregate.sums_basis`); else None."""
    files: list[Path] = []
    for bucket in buckets:
        found = run.files(INTERVAL_SUMS, date=day, bucket=bucket)
        if len(found) != 1 or pl.read_parquet_metadata(found[0]).get(SUMS_BASIS_KEY) != bases[bucket]:
            return None
        files.extend(found)
    return pl.read_parquet(files).select(pl.col(n).cast(t) for n, t in INTERVAL_SUMS_SCHEMA.items())


def _split(frame: pl.DataFrame, buckets: list[int], *, keep_empty: bool = True) -> dict[int, pl.DataFrame]:
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


def _replace_days(
    table: Table, frames: dict[Partition, pl.DataFrame], schema: dict[str, pl.DataType] | object
) -> dict[Partition, list[str]]:
    return {key: [table.write_file(key, frame)] for key, frame in frames.items()}


def _publish_intervals(table: Table, key: Partition, frame: pl.DataFrame) -> list[str]:
    """A day's interval partition, for the coordinator to commit with the rest; a day left
    without intervals (all quarantined after review, say) loses its partition rather than
    keeping stale rows."""
    return [table.write_file(key, frame)] if frame.height else []


def _merge_months(
    run: _Run,
    name: str,
    frames: dict[tuple[str, int], list[pl.DataFrame]],
    schema: dict[str, pl.DataType] | object,
) -> tuple[dict[Partition, list[str]], dict[tuple[str, int], pl.DataFrame]]:
    """Month partitions of table `name`: the rows of other days kept, the recomputed days replaced."""
    assert isinstance(schema, dict)
    table = run.table(name)
    out: dict[tuple[str, int], pl.DataFrame] = {}
    written: dict[Partition, list[str]] = {}
    for (month, bucket), parts in frames.items():
        fresh = pl.concat(parts, how="vertical_relaxed")
        days = fresh.get_column("date").unique().to_list()
        files = run.files(name, month=month, bucket=bucket)
        stored = pl.scan_parquet(files) if files else pl.LazyFrame(schema=schema)
        kept = stored.filter(~pl.col("date").is_in(days)).collect()
        columns = [pl.col(n).cast(t) for n, t in schema.items()]
        merged = _by_meter_and_date(kept.select(columns), fresh.select(columns))
        key = partition(month=month, bucket=bucket)
        written[key] = [table.write_file(key, merged)]
        out[(month, bucket)] = merged
    return written, out


def _by_meter_and_date(kept: pl.DataFrame, fresh: pl.DataFrame) -> pl.DataFrame:
    """A month's kept and recomputed rows as one frame sorted by meter and date. When the kept
    rows are so sorted (as written) and the recomputed days all follow them (a new day, the
    day before again), the two are merged instead of sorted whole: 0.055 -> 0.020 s for a
    bucket's month of 12,500 meters, paid by every run and growing through the month."""
    fresh = fresh.sort(["meter_id", "date"])
    meter, date = pl.col("meter_id"), pl.col("date")
    if kept.height and fresh.height and kept.select(date.max() < fresh.get_column("date").min()).item():
        ordered = (meter > meter.shift(1)) | ((meter == meter.shift(1)) & (date >= date.shift(1)))
        if kept.select(ordered.fill_null(True).all()).item():
            return kept.merge_sorted(fresh, key="meter_id")
    return pl.concat([kept, fresh], how="vertical_relaxed").sort(["meter_id", "date"])


__all__ = ["IngestError", "IngestReport", "reaggregate", "run_ingest"]
