"""The bill run: rate every customer of a period, partition by partition, idempotently.

Same inputs give the same amounts and change nothing. A bill not yet issued is simply
replaced; an issued bill is never changed: if its re-rated amounts differ, a new version
is written (status draft) for `amr bill issue` to issue as a replacement or adjustment
invoice referencing the original.
"""

from __future__ import annotations

import datetime as dt
import os
import shutil
import time
import uuid
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path

import polars as pl

from billing import determinants as det
from billing import sources
from billing.errors import BillingError
from billing.holds import UNUSUAL_FACTOR, clear_holds, hold_reasons, record_holds, resolutions
from billing.periods import period_bounds
from billing.rating import check_priced, rate
from billing.segments import build_segments
from billing.tariffs import TariffBook, default_book
from core.buckets import bucket_expr
from core.config import Settings
from core.executor import Executor, open_executor
from core.measurements import MeasurementStore, partition
from core.state import StateStore
from core.tables import BILLS, BILLS_SCHEMA, conform_table

COMPARED = ("kwh", "amount_before_vat", "vat_rate", "vat_amount", "total_amount", "lines")


@dataclass
class BillRunReport:
    period: str
    dry_run: bool
    bills: int = 0
    held: int = 0
    estimated: int = 0
    unchanged: int = 0
    corrections: int = 0
    total_vnd: int = 0
    per_class: dict[str, int] = field(default_factory=dict)
    partitions: int = 0
    seconds: float = 0.0
    held_reasons: dict[str, int] = field(default_factory=dict)


def _prepare_customers(
    frame: pl.DataFrame, period: str
) -> tuple[pl.DataFrame, list[tuple[dt.date, dt.date]]]:
    days = sorted(set(frame["reading_day"].to_list()))
    bounds = {d: period_bounds(period, d) for d in days}
    table = pl.DataFrame(
        {"reading_day": days, "start": [bounds[d][0] for d in days], "end": [bounds[d][1] for d in days]},
        schema={"reading_day": pl.Int64, "start": pl.Date, "end": pl.Date},
    )
    out = frame.join(table, on="reading_day", how="left").with_columns(
        (pl.col("households").str.to_decimal(scale=3) * 1000).cast(pl.Int64).alias("h_milli")
    )
    return out, sorted(set(bounds.values()))


def _actual_periods(
    customers: pl.DataFrame, last_period: pl.DataFrame, assignments: pl.DataFrame
) -> tuple[pl.DataFrame, list[tuple[dt.date, dt.date]]]:
    """Each customer's period: from the previous bill's end (a changed reading day makes an
    irregular period) or the first meter's installation (a first bill), to the agreed reading
    date or the last meter's removal (a last bill)."""
    usage = assignments.group_by("customer_code").agg(
        (pl.col("installed_on").min() - pl.duration(days=1)).alias("usage_begin"),
        pl.when(pl.col("removed_on").is_null().any())
        .then(None)
        .otherwise(pl.col("removed_on").max())
        .alias("usage_end"),
    )
    adjusted = (
        customers.join(last_period.select("customer_code", "prev_end"), on="customer_code", how="left")
        .join(usage, on="customer_code", how="left")
        .with_columns(
            pl.max_horizontal(pl.coalesce("prev_end", "start"), "usage_begin").alias("start"),
            pl.min_horizontal("end", "usage_end").alias("end"),
        )
        .filter(pl.col("start") < pl.col("end"))
        .drop("prev_end", "usage_begin", "usage_end")
    )
    return adjusted, sorted(set(adjusted.select("start", "end").unique().iter_rows()))


def _no_meter_in_service() -> BillingError:
    return BillingError(
        "no customer has a meter in service during the period",
        hint="check the meters of the usage points (amr customers show CODE)",
    )


@dataclass(frozen=True)
class StateInputs:
    """What rating reads from the operational store, read once by the coordinator, so that a
    task on the executor needs only the measurement store (shared storage on a cluster)."""

    assignments: pl.DataFrame  # meters on usage points, over the run's widest window
    ratios: pl.DataFrame
    resolutions: pl.DataFrame  # staff decisions on held bills of the period


def _window(customers: pl.DataFrame, period: str) -> tuple[dt.date, dt.date]:
    """The dates whose meter assignments rating may need (as `rate_customers` asks them)."""
    _, groups = _prepare_customers(customers, period)
    return min(g[0] for g in groups) - dt.timedelta(days=62), max(g[1] for g in groups)


def read_state_inputs(state: StateStore, period: str, customers: pl.DataFrame) -> StateInputs:
    start, end = _window(customers, period)
    return StateInputs(
        assignments=sources.assignments(state, start, end),
        ratios=sources.ratios(state),
        resolutions=resolutions(state, period),
    )


def _assignments_in(frame: pl.DataFrame, start: dt.date, end: dt.date) -> pl.DataFrame:
    """`sources.assignments` for a narrower window, from a wider one already read."""
    return frame.filter(
        (pl.col("installed_on") <= end) & (pl.col("removed_on").is_null() | (pl.col("removed_on") >= start))
    )


def rate_period(
    data_dir: Path,
    state: StateStore,
    *,
    period: str,
    route: str | None = None,
    book: TariffBook | None = None,
    factor: Decimal = UNUSUAL_FACTOR,
    customers: pl.DataFrame | None = None,
) -> pl.DataFrame:
    """Fresh bills of a period (no versions yet): amounts, lines, determinants and hold reasons.

    `customers` (rows of `sources.customers`) limits the run to those, e.g. one step of buckets."""
    raw = sources.customers(state, period, route) if customers is None else customers
    if raw.height == 0:
        raise BillingError(
            f"no customer has a contract in force in {period}" + (f" on route {route}" if route else ""),
            hint="import customers with `amr customers import FILE`",
        )
    inputs = read_state_inputs(state, period, raw)
    fresh = rate_customers(data_dir, inputs, period=period, customers=raw, book=book, factor=factor)
    if fresh is None:
        raise _no_meter_in_service()
    return fresh


def rate_customers(
    data_dir: Path,
    inputs: StateInputs,
    *,
    period: str,
    customers: pl.DataFrame,
    book: TariffBook | None = None,
    factor: Decimal = UNUSUAL_FACTOR,
) -> pl.DataFrame | None:
    """`rate_period` on the measurement store alone (what a task runs); None when none of
    the customers has a meter in service during the period."""
    book = book or default_book()
    raw = customers
    customers, groups = _prepare_customers(raw, period)
    store = MeasurementStore(data_dir)
    last_period = (
        sources.latest(sources.bills(store, sources.previous_periods(period, 1)))
        .filter(pl.col("status") != "replaced")
        .select(
            "customer_code",
            pl.col("period_start").alias("prev_start"),
            pl.col("period_end").alias("prev_end"),
            pl.col("kwh").alias("prev_kwh"),
            pl.col("estimated").alias("prev_estimated"),
        )
        .collect()
    )
    assignments = _assignments_in(
        inputs.assignments, min(g[0] for g in groups) - dt.timedelta(days=62), max(g[1] for g in groups)
    )
    customers, groups = _actual_periods(customers, last_period, assignments)
    if customers.height == 0:
        return None
    first, last = min(g[0] for g in groups), max(g[1] for g in groups)
    earliest = min([first, *last_period["prev_start"].to_list()])
    reads = sources.register_reads(store, earliest, last)
    lazy_customers = customers.lazy()
    wins = det.windows(lazy_customers, assignments.lazy(), inputs.ratios.lazy())
    # materialise the shared intermediate results once: they feed several branches of the plan
    wins = wins.collect().lazy()
    registers = det.register_energy(wins, reads).collect().lazy()
    intervals = det.interval_energy(wins, sources.daily(store, first + dt.timedelta(days=1), last))
    previous = (
        sources.latest(sources.bills(store, sources.previous_periods(period, 3)))
        .filter(pl.col("status") != "replaced")
        .select(
            "customer_code",
            "kwh",
            "estimated",
            (pl.col("period_end") - pl.col("period_start")).dt.total_days().alias("days"),
        )
    )
    history = det.history_rate(previous)
    energy = det.customer_energy(lazy_customers, wins, registers, intervals, history)
    energy = det.true_up(energy, wins, reads, last_period.lazy()).collect().lazy()
    bill_ids = lazy_customers.select(
        "customer_code", (pl.lit(f"{period}-") + pl.col("customer_code")).alias("bill_id")
    )
    # staff adjustments replace the determinant of the bill version they were made on
    adjusted = inputs.resolutions.filter(pl.col("adjusted_kwh").is_not_null()).lazy()
    energy = (
        energy.join(bill_ids, on="customer_code")
        .join(adjusted.select("bill_id", "adjusted_kwh"), on="bill_id", how="left")
        .with_columns(
            pl.coalesce("adjusted_kwh", "kwh").alias("kwh"),
            pl.when(pl.col("adjusted_kwh").is_not_null())
            .then(pl.lit("adjusted"))
            .otherwise(pl.col("basis"))
            .alias("basis"),
            (pl.col("estimated") & pl.col("adjusted_kwh").is_null()).alias("estimated"),
            (pl.col("tou_mismatch") & pl.col("adjusted_kwh").is_null()).alias("tou_mismatch"),
        )
        .drop("bill_id", "adjusted_kwh")
    )
    segs, split = build_segments(book, lazy_customers, energy, registers, reads, groups)
    bills = (
        rate(segs, book, split=split)
        .join(
            lazy_customers.select("customer_code", "tariff_class", "start", "end", "route"),
            on="customer_code",
        )
        .join(energy.select("customer_code", "basis", "estimated", "tou_mismatch"), on="customer_code")
        .join(history, on="customer_code", how="left")
        .with_columns((pl.col("end") - pl.col("start")).dt.total_days().alias("period_days"))
    )
    bills = bills.with_columns(hold_reasons(bills, factor).alias("hold_reasons"))
    return check_priced(bills.collect()).with_columns(
        (pl.lit(f"{period}-") + pl.col("customer_code")).alias("bill_id"),
        pl.lit(period).alias("period"),
        pl.col("start").alias("period_start"),
        pl.col("end").alias("period_end"),
    )


def _versions(
    fresh: pl.DataFrame, existing: pl.DataFrame, released: pl.DataFrame, now: dt.datetime
) -> tuple[pl.DataFrame, int, int]:
    """Give each fresh bill its version and status against what is already stored."""
    last = (
        existing.sort("version")
        .group_by("bill_id")
        .last()
        .select(
            "bill_id",
            pl.col("version").alias("old_version"),
            pl.col("status").alias("old_status"),
            *(pl.col(c).alias(f"old_{c}") for c in COMPARED),
        )
    )
    same = pl.all_horizontal(*(pl.col(c) == pl.col(f"old_{c}") for c in COMPARED)).fill_null(False)
    issued = pl.col("old_status").is_in(["issued"]).fill_null(False)
    merged = (
        fresh.join(last, on="bill_id", how="left")
        .with_columns(
            pl.when(issued & same)
            .then(pl.lit("unchanged"))
            .when(issued)
            .then(pl.lit("correction"))
            .otherwise(pl.lit("fresh"))
            .alias("change"),
        )
        .with_columns(
            pl.when(pl.col("change") == "correction")
            .then(pl.col("old_version") + 1)
            .otherwise(pl.col("old_version").fill_null(1))
            .cast(pl.Int32)
            .alias("version"),
        )
        .join(released, on=["bill_id", "version"], how="left")
        .with_columns(
            pl.when(
                (pl.col("hold_reasons") != "")
                & ~(
                    pl.col("hold_status").is_not_null()
                    & (
                        (pl.col("released_total") == pl.col("total_amount"))
                        | (pl.col("hold_status") == "adjusted")
                    )
                )
            )
            .then(pl.lit("held"))
            .otherwise(pl.lit("draft"))
            .alias("status"),
            pl.lit(None, pl.String).alias("invoice_no"),
            pl.lit(now).dt.replace_time_zone("UTC").alias("created_at"),
        )
    )
    unchanged = merged.filter(pl.col("change") == "unchanged").height
    corrections = merged.filter(pl.col("change") == "correction").height
    return merged.filter(pl.col("change") != "unchanged"), unchanged, corrections


CUSTOMERS_PER_STEP = 1_000_000  # bounds memory: about 0.7 GiB of working set per million customers


def run_bills(
    data_dir: Path,
    state: StateStore,
    *,
    period: str,
    settings: Settings,
    route: str | None = None,
    dry_run: bool = False,
    book: TariffBook | None = None,
    now: dt.datetime | None = None,
    customers_per_step: int = CUSTOMERS_PER_STEP,
    executor: Executor | None = None,
) -> BillRunReport:
    """Rate a period's customers (optionally one route) and store the bills unless `dry_run`.

    Partition by partition: the customers' buckets are dealt into steps of at most about
    `customers_per_step` customers, and at least one step per executor slot. Each step is a
    task on the executor (`core.executor`; without one, the one executor setting AMR_CLUSTER
    chooses: this process by default): it rates its customers in one vectorised plan from
    the measurement store and inputs this process read from the operational store, and
    writes the fresh bills to a staging file named after the run and the step (a retried
    task rewrites the same file). This process (the coordinator) then commits step by step:
    versions against what is stored, `bills` partitions, holds; so a task that dies and is
    retried never doubles a bill, and a step's failure leaves the others whole."""
    started = time.perf_counter()
    data_dir = data_dir.resolve()  # tasks may run in another working directory or machine
    now = (now or dt.datetime.now(dt.UTC)).replace(tzinfo=None)
    everyone = sources.customers(state, period, route)
    if everyone.height == 0:
        raise BillingError(
            f"no customer has a contract in force in {period}" + (f" on route {route}" if route else ""),
            hint="import customers with `amr customers import FILE`",
        )
    inputs = read_state_inputs(state, period, everyone)
    everyone = everyone.with_columns(bucket_expr("customer_code", settings.buckets).alias("_bucket"))
    buckets = sorted(set(everyone["_bucket"].to_list()))
    report = BillRunReport(period=period, dry_run=dry_run)
    staging = data_dir / "billing" / "staging" / f"{period}-{now:%Y%m%dT%H%M%S}-{uuid.uuid4().hex[:8]}"
    own = executor is None
    chosen_executor = open_executor() if executor is None else executor
    try:
        steps = max(1, -(-everyone.height // max(customers_per_step, 1)), chosen_executor.slots)
        steps = min(steps, len(buckets))
        works = [
            _Step(
                data_dir=data_dir,
                period=period,
                customers=everyone.filter(pl.col("_bucket").is_in(buckets[index::steps])).drop("_bucket"),
                buckets=buckets[index::steps],
                inputs=inputs,
                book=book,
                staged=staging / f"step-{index:04d}.parquet",
            )
            for index in range(steps)
        ]
        chosen_executor.require_shared(data_dir)
        staged = chosen_executor.map(_rate_step, works)
    finally:
        if own:
            chosen_executor.close()
    try:
        if all(path is None for path in staged):
            raise _no_meter_in_service()
        for work, path in zip(works, staged, strict=True):
            if path is not None:
                _commit_step(
                    data_dir,
                    state,
                    period=period,
                    settings=settings,
                    fresh=pl.read_parquet(path),
                    buckets=work.buckets,
                    dry_run=dry_run,
                    now=now,
                    report=report,
                )
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    report.per_class = dict(sorted(report.per_class.items()))
    report.seconds = time.perf_counter() - started
    return report


@dataclass(frozen=True)
class _Step:
    """One task: some buckets' customers and everything rating them needs (picklable)."""

    data_dir: Path
    period: str
    customers: pl.DataFrame
    buckets: list[int]
    inputs: StateInputs
    book: TariffBook | None
    staged: Path


def _rate_step(step: _Step) -> Path | None:
    """Rate a step's customers and write the fresh bills to its staging file; commits nothing."""
    fresh = rate_customers(
        step.data_dir, step.inputs, period=step.period, customers=step.customers, book=step.book
    )
    if fresh is None:
        return None
    step.staged.parent.mkdir(parents=True, exist_ok=True)
    temporary = step.staged.with_name(f".tmp-{uuid.uuid4().hex}-{step.staged.name}")
    fresh.write_parquet(temporary)
    os.replace(temporary, step.staged)
    return step.staged


def _commit_step(
    data_dir: Path,
    state: StateStore,
    *,
    period: str,
    settings: Settings,
    fresh: pl.DataFrame,
    buckets: list[int],
    dry_run: bool,
    now: dt.datetime,
    report: BillRunReport,
) -> None:
    store = MeasurementStore(data_dir)
    existing = sources.bills(store, [period], buckets).collect()
    changed, unchanged, corrections = _versions(fresh, existing, resolutions(state, period), now)
    report.bills += fresh.height
    report.unchanged += unchanged
    report.corrections += corrections
    report.held += changed.filter(pl.col("status") == "held").height
    report.estimated += int(fresh["estimated"].sum())
    report.total_vnd += int(fresh["total_amount"].sum())
    for tariff_class, count in fresh.group_by("tariff_class").len().iter_rows():
        report.per_class[tariff_class] = report.per_class.get(tariff_class, 0) + count
    for reasons in changed.filter(pl.col("status") == "held")["hold_reasons"].to_list():
        for reason in reasons.split(","):
            report.held_reasons[reason] = report.held_reasons.get(reason, 0) + 1
    if dry_run or not changed.height:
        return
    rows = conform_table(changed, BILLS_SCHEMA, origin="bill run").with_columns(
        bucket_expr("customer_code", settings.buckets)
    )
    kept = existing.join(rows.select("bill_id", "version"), on=["bill_id", "version"], how="anti")
    kept = kept.with_columns(bucket_expr("customer_code", settings.buckets))
    frames: dict[tuple[tuple[str, str], ...], pl.DataFrame] = {}
    for (bucket,), part in rows.partition_by("bucket", as_dict=True).items():
        old = kept.filter(pl.col("bucket") == bucket)
        frames[partition(period=period, bucket=int(bucket))] = pl.concat(
            [old.drop("bucket"), part.drop("bucket")]
        ).sort("bill_id", "version")
    store.table(BILLS).write_partitions(frames)
    report.partitions += len(frames)
    record_holds(state, changed.filter(pl.col("status") == "held"))
    clear_holds(state, period, changed.filter(pl.col("status") == "draft"))
