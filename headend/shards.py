"""A polling round spread over an executor: one task per meter shard (bucket).

Each task runs an asyncio poll of its shard on its worker (`poll_meters`, with the
round's instant as a fixed clock) and lands what it reads there: a landing unit commits
its batch and watermarks together (see `headend.landings`), so a task that dies and is
run again re-reads from the last committed watermark and lands nothing twice. Workers
must reach the coordinator's operational store (PostgreSQL through their own
AMR_STATE_URL with a cluster); a task checks that, since no secret travels with it.
"""

from __future__ import annotations

import asyncio
import datetime as dt
from dataclasses import dataclass, replace
from pathlib import Path

from core.clock import Clock, SystemClock, VirtualClock
from core.config import HeadendSettings
from core.executor import Executor
from core.state import StateStore
from headend.errors import HeadendError
from headend.poll import PollOptions, RoundReport, poll_meters
from headend.registry import Meter


@dataclass(frozen=True)
class ShardPoll:
    data_dir: Path
    bucket: int
    meters: tuple[Meter, ...]
    settings: HeadendSettings
    at: dt.datetime  # the round's instant: the worker's clock for this task
    kind: str
    store: str  # the coordinator's store description (password masked), to compare
    round_id: str | None = None  # the shard's round id (the scheduler's run key and the bucket)
    options: PollOptions | None = None  # the daemon's breaker and limits; None: the defaults


def poll_shard(task: ShardPoll) -> RoundReport:
    """Run on a worker: poll one shard in its own event loop and land its readings."""
    state = StateStore.open(task.data_dir)
    try:
        if state.description != task.store:
            raise HeadendError(
                f"shard {task.bucket}: this worker's operational store is {state.description}, "
                f"not the coordinator's {task.store}",
                hint="set the same AMR_STATE_URL in every worker's environment (see docs/scale-out.md)",
            )
        return asyncio.run(
            poll_meters(
                state, task.data_dir, list(task.meters), settings=task.settings,
                clock=VirtualClock(task.at),
                options=replace(task.options or PollOptions(), kind=task.kind), round_id=task.round_id,
            )
        )
    finally:
        state.dispose()


def poll_by_shard(
    state: StateStore,
    data_dir: Path,
    meters: list[Meter],
    *,
    settings: HeadendSettings,
    executor: Executor,
    clock: Clock | None = None,
    kind: str = "on-demand",
    round_id: str | None = None,
    options: PollOptions | None = None,
) -> list[RoundReport]:
    """One round per shard of `meters`, run on `executor`; the shards' reports in bucket order.

    With `round_id`, shard b's round is `<round_id>-b<b>`, so the scheduler's ledger finds
    every shard's attempts under its run's prefix.
    """
    at = (clock or SystemClock()).now()
    shards: dict[int, list[Meter]] = {}
    for meter in meters:
        shards.setdefault(meter.bucket, []).append(meter)
    tasks = [
        ShardPoll(
            data_dir=data_dir, bucket=bucket, meters=tuple(group), settings=settings, at=at, kind=kind,
            store=state.description, round_id=f"{round_id}-b{bucket:04d}" if round_id else None,
            options=options,
        )
        for bucket, group in sorted(shards.items())
    ]
    if tasks:
        executor.require_shared(data_dir)
    return executor.map(poll_shard, tasks)
