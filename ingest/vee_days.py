"""VEE of a day's partitions of some buckets in one task: the plan's inputs gathered from
the store and this run's staged rows, the plan collected, the partitions' files written
(committed later by the coordinator, `ingest.run`)."""

from __future__ import annotations

import datetime as dt

import polars as pl

from core.measurements import partition
from ingest import aggregate
from ingest.aggregate_days import stored_sums
from ingest.estimate import like_days
from ingest.localtime import local_day
from ingest.quantities import register_rows
from ingest.run_state import DAY, ESTIMATION, HISTORY_RULES, Run, split_by_bucket
from ingest.schema import READINGS, READINGS_SCHEMA, REGISTER_ROWS_KEY
from ingest.staging import PartitionKey, Staged
from ingest.tou import in_force
from ingest.vee import ENGINE, VeeInputs, history_averages, plan


def validate_group(
    run: Run,
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
    meters = run.meters(buckets)
    # the history rules' input, timed apart: the issue's core (validation, store, daily and
    # TOU aggregates) leaves them to the full run
    with run.stage(HISTORY_RULES):
        history = history_averages(run.daily_history(day, buckets), meters, run.cfg).collect(engine=ENGINE)
    inputs = VeeInputs(
        day=day,
        existing=run.group_readings(day, buckets),
        new=new,
        previous=run.group_readings(day - DAY, buckets),
        previous_registers=run.group_registers(day - DAY, buckets),
        previous_series=interval_meters(run, day - DAY, buckets),
        meters=meters,
        history=history.lazy(),
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
    tou = in_force(run.calendars, day).lookup(day)
    split = split_by_bucket(run.with_bucket(readings, buckets), buckets, keep_empty=False)
    for bucket, part in split.items():
        key = (day, bucket)
        registers = register_rows(part)
        name = table.write_file(
            partition(date=day, bucket=bucket),
            part.select(list(READINGS_SCHEMA)),
            metadata=None if registers is None else {REGISTER_ROWS_KEY: str(registers)},
            statistics=False,  # see REGISTER_ROWS_KEY
        )
        run.pending[key] = table.root / f"date={day.isoformat()}" / f"bucket={bucket:04d}" / name
        run.pending_names[key] = name
        run.pending_rows[key] = part.height
        # the day's interval sums, made while its rows are in memory: aggregation read them
        # back from the file just written, and the history rules' energy of the day was a
        # group-by of its own (one thread, 8 partitions of 1.2 M rows: 0.60 -> 0.35 s)
        sums = aggregate.interval_days(part.lazy(), tou, run.cfg).collect(engine="streaming")
        run.fresh_sums[key] = sums
        if bucket in later:
            run.provisional_daily[key] = aggregate.interval_energy(sums.lazy(), day).collect()
    # estimates by method: a row has a method exactly when it is an estimate (`vee.plan`)
    estimates = readings.get_column("method").drop_nulls().value_counts()
    return outcomes, estimates, gone, buckets


def interval_meters(run: Run, day: dt.date, buckets: list[int]) -> pl.LazyFrame | None:
    """The meters with interval series on `day` (`meter_key`), from the day's interval sums
    where this task made them or the store keeps them for the readings as they are; None when
    one is not known, and the plan finds them in the day's readings (13 ms a partition,
    against 0.7 ms from its sums)."""
    frames: list[pl.DataFrame] = []
    stored: list[int] = []
    for bucket in buckets:
        made = run.fresh_sums.get((day, bucket))
        if made is not None:
            frames.append(made)
        elif run.readings_names(day, bucket):  # a partition with no readings has no series
            stored.append(bucket)
    if stored:
        tou = in_force(run.calendars, day).lookup(day)
        bases = {b: aggregate.sums_basis(run.readings_names(day, b), tou, run.cfg) for b in stored}
        kept = stored_sums(run, day, stored, bases)
        if kept is None:
            return None
        frames.append(kept)
    return pl.concat([f.select("meter_key") for f in frames]).lazy() if frames else None
