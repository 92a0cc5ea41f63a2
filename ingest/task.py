"""One ingest task, as a worker runs it: VEE then aggregation of some buckets' touched days
(`ingest.vee_days`, `ingest.aggregate_days`), writing files and committing nothing; the
coordinator (`ingest.run`) deals the tasks and commits what they wrote.

Kept apart from the coordinator so a worker process imports only what a task uses (not
the operational store's SQL toolkit): a worker's start is on the run's critical path."""

from __future__ import annotations

import datetime as dt
import time
from dataclasses import dataclass
from typing import Final

import polars as pl

from core.measurements import Partition, partition
from ingest.aggregate_days import aggregate_days
from ingest.estimate import estimates_due, like_days
from ingest.run_state import DAY, Run, groups
from ingest.schema import READINGS
from ingest.staging import PartitionKey, Staged
from ingest.vee_days import validate_group

# Of the other days a plan reads (the day before, like days) it takes a few columns of some
# rows (registers, meter keys): they count an eighth of their rows when sizing groups. Each
# counted whole, the small day after a day's batches got a plan per bucket (0.074 s each);
# an eighth groups about six (100,000 meters: that day's plans 1.18 -> 0.86 s; a million
# meters' run still peaks at 2.2 GB for all processes).
OTHER_DAYS_SHARE: Final = 8
# The day before, when its interval series come from the sums this task makes: its register
# rows (a day's start and end per meter of 96 intervals and 2 registers) and its sums.
REGISTERS_SHARE: Final = 48
# Input rows of the buckets a task validates and aggregates together before the next ones
# (`chunks`): about 32 buckets of 12,500 meters.
CHUNK_ROWS: Final = 40_000_000


@dataclass(frozen=True)
class Work:
    """One task: the touched partitions of some buckets, with the registry cut down to them."""

    run: Run
    keys: list[PartitionKey]
    staged: Staged
    # keys with staged rows or to recompute; the others come from direct batches' day ranges
    # and are taken only when a batch has rows of that day
    sure: frozenset[PartitionKey] = frozenset()


@dataclass
class Result:
    written: dict[str, dict[Partition, list[str]]]  # table -> partition -> new file names
    outcomes: list[pl.DataFrame]
    estimates: list[pl.DataFrame]
    replaced: list[pl.DataFrame]
    days_aggregated: int
    seconds: dict[str, float]
    partitions: int = 0  # partitions validated


def run_task(work: Work) -> Result:
    """VEE then aggregation of some buckets' touched days, a chunk of buckets at a time
    (`chunks`); writes files, commits nothing."""
    run = work.run
    outcomes: list[pl.DataFrame] = []
    estimates: list[pl.DataFrame] = []
    replaced: list[pl.DataFrame] = []
    written: dict[str, dict[Partition, list[str]]] = {}
    seconds = {"vee": 0.0, "aggregate": 0.0}
    days_aggregated = partitions = 0
    sizes = {key: _input_rows(run, work.staged, key, work.keys) for key in work.keys}
    last_day = {b: d for d, b in sorted(work.keys)}  # the bucket's last day this task validates
    for chunk in chunks(sizes):
        started = time.perf_counter()
        validated: list[PartitionKey] = []
        for day, group in groups({key: rows for key, rows in sizes.items() if key[1] in chunk}):
            later = {b for b in group if last_day[b] > day}
            done = validate_group(run, day, group, work.staged, later=later, sure=work.sure)
            if done is None:
                continue
            found, methods, gone, buckets = done
            outcomes.append(found)
            estimates.append(methods)
            replaced.append(gone)
            validated.extend((day, b) for b in buckets)
        vee_done = time.perf_counter()
        days_aggregated += aggregate_days(run, validated, written)
        run.let_go(chunk)
        partitions += len(validated)
        seconds["vee"] += vee_done - started
        seconds["aggregate"] += time.perf_counter() - vee_done
    written[READINGS] = {partition(date=d, bucket=b): [name] for (d, b), name in run.pending_names.items()}
    return Result(
        written=written,
        outcomes=outcomes,
        estimates=estimates,
        replaced=replaced,
        days_aggregated=days_aggregated,
        seconds={**seconds, **run.seconds},
        partitions=partitions,
    )


def chunks(sizes: dict[PartitionKey, int]) -> list[set[int]]:
    """The task's buckets in runs of about CHUNK_ROWS input rows (a bucket's days together,
    as they depend on each other), each validated and aggregated before the next: what a
    chunk's aggregation holds until its last day (daily rows, day ends, month merges) is
    let go, so a task's memory is a chunk's whatever its share of the meters."""
    rows: dict[int, int] = {}
    for (_, bucket), n in sorted(sizes.items(), key=lambda item: item[0][1]):
        rows[bucket] = rows.get(bucket, 0) + n
    out: list[set[int]] = []
    chunk: set[int] = set()
    total = 0
    for bucket, n in rows.items():
        if chunk and total + n > CHUNK_ROWS:
            out.append(chunk)
            chunk, total = set(), 0
        chunk.add(bucket)
        total += n
    if chunk:
        out.append(chunk)
    return out


def _input_rows(run: Run, staged: Staged, key: PartitionKey, keys: list[PartitionKey]) -> int:
    """Rows a partition's plan reads: its own, the day before's and its like days', stored or
    coming in this run (`keys`: the task's partitions). Groups are sized by these, not by the
    partition alone: the small day after a day's batches (a few readings stamped past
    midnight) grouped a worker's 80 buckets of a million-meter day, and its plan read their
    49 M rows of the day before at once (9.8 GB).

    Of the day before, a plan reads the register rows, and the meters with interval series
    from the day's interval sums when this task makes them (it validates that day first):
    then the day counts a REGISTERS_SHARE of its rows. Like days are read only for gaps due
    for estimation: a day with no slot due yet (the day after, a run just past midnight)
    reads none. Counted whole, those made each small day-after partition of a running day
    a plan of its own (30 ms of fixed cost each, 16 task-seconds for a city's 224 buckets)."""
    day, bucket = key
    available = run.readings_days(bucket) | {d for d, b in keys if b == bucket}
    likes = like_days(day, available - {day}, run.cfg) if estimates_due(day, run.cfg, run.now) else []

    def rows(d: dt.date) -> int:
        return staged.expected_rows((d, bucket)) + run.rows_of(d, bucket)

    before = rows(day - DAY) // (REGISTERS_SHARE if (day - DAY, bucket) in keys else OTHER_DAYS_SHARE)
    return rows(day) + before + sum(rows(d) for d in likes) // OTHER_DAYS_SHARE

