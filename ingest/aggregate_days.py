"""Aggregation of a task's validated days: day ends, the daily, TOU and monthly energy, the
day findings, the customers' intervals for the portal and the interval sums kept for
later runs. Files are written here and committed by the coordinator (`ingest.run`)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Final

import polars as pl

from core.measurements import Partition, Table, file_label, parse_partition, partition, partition_values
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
from ingest.run_state import CUSTOMER_INTERVALS, DAY, HISTORY_RULES, Run, groups, split_by_bucket
from ingest.schema import (
    FINDINGS,
    FINDINGS_SCHEMA,
    INTERVAL_SUMS,
    INTERVAL_SUMS_SCHEMA,
    MONTHLY,
    SUMS_BASIS_KEY,
)
from ingest.staging import PartitionKey
from ingest.tou import in_force
from ingest.vee import ENGINE

# Days of `interval_sums` kept before the run's day: they are read only when a day is
# aggregated again beside a new one; an older day's are dropped from the manifest (and its
# files left to `amr store vacuum`), and computed again if ever wanted.
SUMS_KEPT_DAYS: Final = 7
# Kept day files of a month from which its monthly rows are updated (`monthly_file`) rather
# than made from the whole month: reading a few day files costs less than the update's
# fixed cost (12,500 meters: 13 against 19 ms on the 2nd, 41 against 20 ms on the 29th).
UPDATE_MONTHLY_FROM: Final = 8


def aggregate_days(
    run: Run, touched: list[PartitionKey], written: dict[str, dict[Partition, list[str]]]
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
    findings_table = run.table(FINDINGS)
    findings: dict[Partition, list[str]] = {}
    # each partition's intervals are written as soon as they are made: held until the end,
    # a worker of a million-meter day kept 80 partitions' intervals (several GB)
    interval_table = run.table(INTERVALS)
    published: dict[Partition, list[str]] = {}
    sums_table = run.table(INTERVAL_SUMS)
    sums: dict[Partition, list[str]] = {}
    fresh = set(touched)
    ends_made: dict[PartitionKey, pl.DataFrame] = {}  # day ends made, by (day, bucket)
    for day, buckets in groups({key: run.rows_of(*key) for key in days}):
        # the day ends are read from the rows that may be registers; the day's own rows for
        # its customers' intervals
        before, prev, now, nxt = (run.group_registers(day + DAY * k, buckets) for k in (-2, -1, 0, 1))
        cur = run.group_readings(day, buckets)
        meters = run.meters(buckets)
        tou = in_force(run.calendars, day).lookup(day)
        wanted = [b for b in buckets if (day, b) in fresh]
        bases = {b: aggregate.sums_basis(run.readings_names(day, b), tou, run.cfg) for b in buckets}
        # the interval sums of partitions this task validated were made as they were written;
        # a day whose readings are as they were (the day before a new day, aggregated again
        # for its day end) starts from its stored interval sums
        ready = [run.fresh_sums.pop((day, b), None) for b in buckets]
        made = pl.concat([f for f in ready if f is not None]) if all(f is not None for f in ready) else None
        kept = None if wanted or made is not None else stored_sums(run, day, buckets, bases)
        # First what is read from the readings (the day ends from the register rows, the
        # customers' intervals, and the per-meter interval sums where neither this task nor
        # the store has them), each collected once: Polars' collect_all does not share a
        # subplan between its outputs, and the sums feed both the daily rows and the findings
        # (computed twice, they took 0.41 s per 611,000-row partition, 0.32 s once). The rest
        # is built on these small frames. The customers' intervals are collected on their
        # own, so the report can time them (`CUSTOMER_INTERVALS`).
        # The day's start is the day before's end: made in this loop already when the task
        # aggregated the day before (days come in order), from the same partitions.
        made_before = [ends_made.get((day - DAY, b)) for b in buckets]
        if all(f is not None for f in made_before):
            ends = aggregate.day_ends(prev, now, nxt, day, run.cfg).collect(engine=ENGINE)
            start = pl.concat([f for f in made_before if f is not None])
        else:
            first = [
                aggregate.day_ends(prev, now, nxt, day, run.cfg),
                aggregate.day_ends(before, prev, now, day - DAY, run.cfg),
            ]
            ends, start = pl.collect_all(first, engine=ENGINE)
        ends_parts = split_by_bucket(run.with_bucket(ends, buckets), buckets)
        ends_made.update({(day, b): part for b, part in ends_parts.items()})
        interval_rows = None
        if wanted:
            with run.stage(CUSTOMER_INTERVALS):
                interval_rows = aggregate.customer_intervals(cur, tou, run.cfg).collect(engine=ENGINE)
        if kept is None:
            # on Polars' streaming engine, whose group-by this is nearly all of: 0.084 -> 0.054 s
            # a 1.2 M-row partition (the rest above is faster in memory)
            intervals = (
                made
                if made is not None
                else aggregate.interval_days(cur, tou, run.cfg).collect(engine="streaming")
            )
            # kept for the days a later run may aggregate again beside a new one
            if day >= sums_cutoff(run.now):
                for bucket, part in split_by_bucket(run.with_bucket(intervals, buckets), buckets).items():
                    key = partition(date=day, bucket=bucket)
                    sums[key] = [sums_table.write_file(key, part, metadata={SUMS_BASIS_KEY: bases[bucket]})]
        else:
            intervals = kept
        # the register advances feed both as well: collected once (a few rows per meter)
        capacity = meters.select("meter_key", "capacity_mwh")
        adv = aggregate.advances(start.lazy(), ends.lazy(), capacity).collect(engine=ENGINE)
        day_rows = aggregate.daily(intervals.lazy(), adv.lazy(), meters, day).collect(engine=ENGINE)
        complete = run.now >= local_midnight_utc(day + DAY)
        # the history rules' input, timed apart (as in VEE); used once the day is over
        usage = aggregate.usage_history(pl.LazyFrame(schema=DAILY_SCHEMA), day, run.cfg)
        if complete:
            with run.stage(HISTORY_RULES):
                history = run.daily_history(day, buckets)
                usage = aggregate.usage_history(history, day, run.cfg).collect(engine=ENGINE).lazy()
        found_rows = aggregate.findings(
            intervals.lazy(), adv.lazy(), day_rows.lazy(), usage, meters,
            day=day, complete=complete, cfg=run.cfg,
        ).collect(engine=ENGINE)
        if interval_rows is not None:
            with run.stage(CUSTOMER_INTERVALS):
                keyed = run.with_bucket(interval_rows, buckets, key="meter_id")
                for bucket, part in split_by_bucket(keyed, wanted).items():
                    key = partition(date=day, bucket=bucket)
                    published[key] = _publish_intervals(
                        interval_table, key, part.select(list(INTERVALS_SCHEMA))
                    )
        month = day.strftime("%Y-%m")
        daily_parts = split_by_bucket(run.with_bucket(day_rows, buckets, key="meter_id"), buckets)
        found_parts = split_by_bucket(run.with_bucket(found_rows, buckets), buckets)
        for bucket in buckets:
            run.pending_daily[(day, bucket)] = daily_parts[bucket].select(list(DAILY_SCHEMA))
            new_daily.setdefault((month, bucket), []).append(daily_parts[bucket].select(list(DAILY_SCHEMA)))
            new_regs.setdefault((month, bucket), []).append(
                aggregate.register_reads(ends_parts[bucket].lazy()).collect()
            )
            key = partition(date=day, bucket=bucket)
            found = found_parts[bucket].select(list(FINDINGS_SCHEMA))
            findings[key] = [findings_table.write_file(key, found)]
    monthly: dict[Partition, list[str]] = {}
    made_monthly = run.table(MONTHLY)

    def write_monthly(key: Partition, month: str, change: MonthChange) -> None:
        monthly[key] = [monthly_file(run, made_monthly, key, month, change)]

    new = {
        FINDINGS: findings,
        INTERVALS: published,
        INTERVAL_SUMS: sums,
        REGISTER_READS: merge_months(run, REGISTER_READS, new_regs, REGISTER_READS_SCHEMA),
        DAILY: merge_months(run, DAILY, new_daily, DAILY_SCHEMA, then=write_monthly),
        MONTHLY: monthly,
    }
    for name, files in new.items():
        written.setdefault(name, {}).update(files)
    return len(days)


def sums_cutoff(now: dt.datetime) -> dt.date:
    """The first day whose interval sums are kept (`SUMS_KEPT_DAYS` before the run's day)."""
    return local_date(now) - dt.timedelta(days=SUMS_KEPT_DAYS)


def stale_sums(table: Table, cutoff: dt.date) -> dict[Partition, list[str]]:
    """The `interval_sums` partitions of days before `cutoff`, each with no files: committed
    so, they leave the manifest."""
    paths = table.manifest().partitions
    return {
        parse_partition(p): [] for p in paths if dt.date.fromisoformat(partition_values(p)["date"]) < cutoff
    }


def stored_sums(run: Run, day: dt.date, buckets: list[int], bases: dict[int, str]) -> pl.DataFrame | None:
    """The stored interval sums of a day's partitions of some buckets, if every one of them
    was made from what the partition is now (`aggregate.sums_basis`); else None."""
    files: list[Path] = []
    for bucket in buckets:
        found = run.files(INTERVAL_SUMS, date=day, bucket=bucket)
        if len(found) != 1 or pl.read_parquet_metadata(found[0]).get(SUMS_BASIS_KEY) != bases[bucket]:
            return None
        files.extend(found)
    return pl.read_parquet(files).select(pl.col(n).cast(t) for n, t in INTERVAL_SUMS_SCHEMA.items())




def _publish_intervals(table: Table, key: Partition, frame: pl.DataFrame) -> list[str]:
    """A day's interval partition, for the coordinator to commit with the rest; a day left
    without intervals (all quarantined after review, say) loses its partition rather than
    keeping stale rows."""
    return [table.write_file(key, frame)] if frame.height else []


def merge_months(
    run: Run,
    name: str,
    frames: dict[tuple[str, int], list[pl.DataFrame]],
    schema: dict[str, pl.DataType] | object,
    then: Callable[[Partition, str, MonthChange], None] | None = None,
) -> dict[Partition, list[str]]:
    """Month partitions of table `name`, a file per day (labelled with it, sorted by meter):
    the recomputed days' files replaced, the other days' kept as they are. A month's single
    file as written before 2026-11-28 is split into day files the first time its month is
    written. `then` is given each month's change (`MonthChange`) as it is written.

    Merged into one file a month, the rows of a bucket's month were read, merged and written
    again every day: 16 ms a bucket on the 2nd, 127 ms on the 29th, which at a month's end
    is 13 s of a city day's two workers; day files take 13.6 and 21.0 ms
    (`benchmarks/month_files.py`)."""
    assert isinstance(schema, dict)
    table = run.table(name)
    columns = [pl.col(n).cast(t) for n, t in schema.items()]
    written: dict[Partition, list[str]] = {}
    for (month, bucket), parts in frames.items():
        fresh = pl.concat(parts, how="vertical_relaxed").select(columns)
        days = set(fresh.get_column("date").unique().to_list())
        kept: list[Path] = []
        replaced: list[Path] = []
        whole: list[Path] = []  # month files of before, without a day label
        for path in run.files(name, month=month, bucket=bucket):
            label = file_label(path.name)
            if label is None:
                whole.append(path)
            elif dt.date.fromisoformat(label) not in days:
                kept.append(path)
            else:
                replaced.append(path)
        if whole:
            old = pl.read_parquet(whole).select(columns).filter(~pl.col("date").is_in(list(days)))
            fresh = pl.concat([fresh, old])
        key = partition(month=month, bucket=bucket)
        names = [
            table.write_file(key, rows.sort("meter_id"), label=day.isoformat())
            for (day,), rows in sorted(fresh.partition_by("date", as_dict=True).items())  # type: ignore[type-var]
        ]
        written[key] = sorted([path.name for path in kept] + names)
        if then is not None:
            stored = pl.scan_parquet(kept).select(columns) if kept else pl.LazyFrame(schema=schema)
            gone = pl.scan_parquet(replaced).select(columns) if replaced else pl.LazyFrame(schema=schema)
            whole_month = pl.concat([stored, fresh.lazy()])
            change = MonthChange(fresh, gone, whole_month, day_files=not whole, kept_days=len(kept))
            then(key, month, change)
    return written


def monthly_file(run: Run, table: Table, key: Partition, month: str, change: MonthChange) -> str:
    """The month's `monthly` rows of a bucket after `change`, written (not committed)."""
    stored = run.files(MONTHLY, month=month, bucket=int(dict(key)["bucket"]))
    if change.day_files and len(stored) == 1 and change.kept_days >= UPDATE_MONTHLY_FROM:
        # the month's stored totals, less the replaced days', plus the new days': each a
        # sum (and a count of days), so exactly what the whole month adds up to, without
        # reading the month's every day file (28 of 41 ms a bucket on the 29th)
        rows = aggregate.monthly_updated(pl.scan_parquet(stored), change.fresh.lazy(), change.replaced, month)
    else:
        rows = aggregate.monthly(change.whole, month)
    return table.write_file(key, rows.collect())


@dataclass(frozen=True)
class MonthChange:
    """What a run changes of a month partition: the rows it wrote (`fresh`), the rows of
    those days it replaced, the whole month's rows as they now are (read only if asked),
    and whether the month was kept in day files before (else `fresh` holds the rows of a
    month file of before, and `replaced` is not all that went)."""

    fresh: pl.DataFrame
    replaced: pl.LazyFrame
    whole: pl.LazyFrame
    day_files: bool
    kept_days: int  # day files kept as they were
