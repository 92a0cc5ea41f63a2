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
never doubled rows. A task is `ingest.task.run_task`; its VEE is in `ingest.vee_days`, its
aggregation in `ingest.aggregate_days`, and what it knows of the run in `ingest.run_state`.
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
from dataclasses import dataclass
from pathlib import Path
from typing import Final

import polars as pl
import sqlalchemy as sa

from core.config import Settings
from core.executor import Executor, open_executor
from core.landing import LandingBatch, list_batches
from core.measurements import MeasurementStore
from core.state import StateStore
from core.tables import DAILY, INTERVALS, REGISTER_READS
from ingest.accounting import BatchCount, IngestReport, finish, record, tally
from ingest.aggregate_days import stale_sums, sums_cutoff
from ingest.config import VeeConfig
from ingest.errors import IngestError
from ingest.registry import run_registry
from ingest.run_state import STAGES, Run
from ingest.schema import FINDINGS, INTERVAL_SUMS, MONTHLY, READINGS
from ingest.staging import PartitionKey, Staged, clear_staging, plan_direct, stage_batches, staging_root
from ingest.task import Work, run_task
from ingest.tou import load_calendars
from ingest.vee import DAY_DECISIONS_SCHEMA, DECISIONS_SCHEMA

# The module a worker imports as it starts (`Executor.prepare`).
TASK_MODULE: Final = run_task.__module__
# Tables a run writes, in the order the coordinator commits them.
COMMIT_ORDER: Final = (READINGS, INTERVAL_SUMS, FINDINGS, INTERVALS, REGISTER_READS, DAILY, MONTHLY)
# Tables a run commits only where it wrote something.
SPARSE: Final = (INTERVAL_SUMS, INTERVALS)


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
        chosen = open_executor() if executor is None else executor
        try:
            # the workers start while this process finds the new batches and the run's inputs
            chosen.prepare(TASK_MODULE)
            return ingest_batches(
                data_dir, state, new_batches(data_dir, state), settings=settings, now=now, vee=vee,
                executor=chosen,
            )
        finally:
            if executor is None:
                chosen.close()


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
            "quantity": DECISIONS_SCHEMA["quantity"],
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
    registry = run_registry(state, data_dir, cfg)
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
    run = Run(
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
        results = chosen.map(run_task, works)
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
            written = {**stale_sums(run.table(name), sums_cutoff(moment)), **written}
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


def _works(
    run: Run, staged: Staged, touched: list[PartitionKey], slots: int, sure: set[PartitionKey]
) -> list[Work]:
    """The touched buckets dealt round-robin into one task per executor slot: a bucket's days
    depend on each other, buckets do not. One slot (in-process) is one task of every bucket."""
    buckets = sorted({b for _, b in touched})
    shares = [buckets[i :: max(1, slots)] for i in range(min(max(1, slots), len(buckets)))]
    return [
        Work(
            run=dataclasses.replace(
                run,
                registry=run.registry.filter(pl.col("bucket").is_in(share)),
                pending={}, pending_names={}, pending_daily={}, provisional_daily={}, pending_rows={},
                fresh_sums={},
                stored_rows={},
                snapshot=None, direct_left={}, seconds={},
            ),
            keys=[key for key in touched if key[1] in share],
            staged=staged,
            sure=frozenset(key for key in sure if key[1] in share),
        )
        for share in shares
    ]


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


__all__ = ["IngestError", "IngestReport", "reaggregate", "run_ingest"]
