"""The polling engine: one asyncio round over a set of meters.

Each meter gets a session within its time budget, behind the gateway, cell and global
limits; retryable failures are tried again after an exponential backoff with jitter; a
meter whose breaker is open is skipped. Inside a session the engine reads the clock (and
corrects it), catches each profile up from its watermark in chunks of at most one day,
reads events and registers. Completed meters are landed in batches together with their
watermarks, attempts and health (see `headend.landings`), so a stop or a kill at any
moment loses nothing and duplicates nothing.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import random
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from core.clock import Clock, SystemClock
from core.config import HeadendSettings
from core.errors import AmrError
from core.state import StateStore
from core.timezones import local_date, local_midnight_utc
from headend import clocksync, commlog, health, landings, watermarks, wire
from headend.clocksync import ClockAction, ClockEvent, ClockPolicy
from headend.commlog import Attempt
from headend.dlms_session import counter_store
from headend.frames import Chunk, landing_frame, within
from headend.keystore import KeyStore
from headend.limits import SCHEDULED, Limiter, PollLimits
from headend.policy import BreakerPolicy, RetryPolicy, error_class, retryable
from headend.registry import Meter
from headend.sessions import CLOCK, EVENTS, PROFILES, REGISTERS, Connector, MeterSession, ProtocolConnector
from headend.timestamps import to_db
from headend.watermarks import WatermarkKey
from protocols.errors import RemoteProtocolError

CHUNK = dt.timedelta(days=1)
log = logging.getLogger("amr.headend")


class _Stopped(Exception):
    """The round was stopped while this meter waited for its turn."""
EVENTS_KEY = "events"
_ABORTED = {"aborted": "stopped"}


@dataclass(frozen=True, slots=True)
class PollOptions:
    """The engine's knobs beyond `HeadendSettings` (which holds the installation's)."""

    per_cell: int = 64
    breaker: BreakerPolicy = field(default_factory=BreakerPolicy)
    max_clock_corrections_per_day: int = 2
    flush_rows: int = 200_000
    stop_grace_s: float | None = None  # after a stop, how long sessions may finish; None: session budget
    kind: str = "on-demand"

    @classmethod
    def from_settings(cls, settings: HeadendSettings, *, kind: str = "on-demand") -> PollOptions:
        """The installation's configured limits, breaker and correction cap."""
        return cls(
            per_cell=settings.per_cell,
            breaker=BreakerPolicy(
                threshold=settings.breaker_threshold,
                cooldown=dt.timedelta(seconds=settings.breaker_cooldown_s),
            ),
            max_clock_corrections_per_day=settings.max_clock_corrections_per_day,
            kind=kind,
        )


@dataclass(slots=True)
class RoundReport:
    round_id: str
    kind: str
    meters: int = 0
    ok: int = 0
    failed: int = 0
    skipped: int = 0  # breaker open
    not_started: int = 0  # stopped before their turn
    readings: int = 0
    attempts: int = 0
    clock_corrections: int = 0
    batches: list[Path] = field(default_factory=list)
    failures: dict[str, str] = field(default_factory=dict)  # meter -> error class
    stopped: bool = False
    peaks: dict[str, int] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {
            "round_id": self.round_id, "kind": self.kind, "meters": self.meters, "ok": self.ok,
            "failed": self.failed, "skipped": self.skipped, "not_started": self.not_started,
            "readings": self.readings, "attempts": self.attempts,
            "clock_corrections": self.clock_corrections, "batches": [str(p) for p in self.batches],
            "failures": dict(self.failures), "stopped": self.stopped,
        }


@dataclass(slots=True)
class _Job:
    """What one meter produced this round; kept across its attempts."""

    meter: Meter
    chunks: list[Chunk] = field(default_factory=list)  # as the session gave them (see frames.py)
    rows: int = 0
    marks: dict[WatermarkKey, dt.datetime] = field(default_factory=dict)
    attempts: list[Attempt] = field(default_factory=list)
    clock_events: list[ClockEvent] = field(default_factory=list)
    registers_done: bool = False
    clock_done: bool = False
    outcome: health.Outcome | None = None

    def add(self, chunk: Chunk) -> None:
        if chunk:
            self.chunks.append(chunk)
            self.rows += len(chunk)


class _Round:
    def __init__(
        self,
        state: StateStore,
        data_dir: Path,
        *,
        settings: HeadendSettings,
        options: PollOptions,
        clock: Clock,
        since: dt.datetime | None,
        connector: Connector,
        limiter: Limiter,
        priority: int,
        stop: asyncio.Event,
        progress: Callable[[int, int], None] | None,
        total: int,
        round_id: str | None = None,
    ) -> None:
        self.state, self.data_dir, self.settings, self.options = state, data_dir, settings, options
        self.clock, self.since, self.connector, self.limiter = clock, since, connector, limiter
        self.priority, self.stop, self.progress, self.total = priority, stop, progress, total
        self.started = clock.now()
        self.round_id = round_id or f"poll-{self.started:%Y%m%dT%H%M%S}-{uuid.uuid4().hex[:6]}"
        self.report = RoundReport(self.round_id, options.kind, meters=total)
        self.retry = RetryPolicy(retries=settings.retries, backoff_s=settings.backoff_s)
        self.clock_policy = ClockPolicy(settings.clock_threshold_s, options.max_clock_corrections_per_day)
        self.marks: dict[WatermarkKey, dt.datetime] = {}
        self.health: dict[str, health.Health] = {}
        self.corrections: dict[str, int] = {}
        self.done: list[_Job] = []
        self.done_rows = 0
        self.finished = 0
        self.flush_lock = asyncio.Lock()

    # -- reading one meter -------------------------------------------------------------

    def _start_of(self, meter: Meter, key: WatermarkKey, job: _Job) -> dt.datetime:
        if key in job.marks:
            return job.marks[key]
        if self.since is not None:
            return self.since
        if key in self.marks:
            return self.marks[key]
        # A new meter: from the start of yesterday (local), or its installation if later.
        start = local_midnight_utc(local_date(self.started) - dt.timedelta(days=1))
        if meter.installed_on is not None:
            start = max(start, local_midnight_utc(meter.installed_on))
        return start

    async def _sync_clock(self, job: _Job, session: MeterSession) -> dt.datetime:
        meter_clock = await session.read_clock()
        if job.clock_done:
            return meter_clock
        now = self.clock.now()
        drift = (meter_clock - now).total_seconds()
        used = self.corrections.get(job.meter.meter_id, 0)
        action = clocksync.decide(drift, used, self.clock_policy)
        try:
            if action is ClockAction.SHIFT:
                await session.shift_time(-round(drift))
            elif action is ClockAction.SET:
                await session.set_clock(self.clock.now())
        except RemoteProtocolError as exc:
            if exc.retryable:
                raise
            # A refused correction is an event to act on, not a reason to leave the data unread.
            log.warning("meter %s refused a clock correction of %.0f s: %s", job.meter.meter_id, drift, exc)
            action = ClockAction.REFUSED
        if action is not ClockAction.NONE:
            job.clock_events.append(ClockEvent(job.meter.meter_id, now, drift, action))
        job.clock_done = True
        return meter_clock

    async def _catch_up(self, job: _Job, session: MeterSession, profile: str, limit: dt.datetime) -> None:
        key = (job.meter.meter_id, profile)
        mark = self._start_of(job.meter, key, job)
        while mark < limit:
            end = min(mark + CHUNK, limit)
            rows = await session.read_profile(profile, mark, end)
            # Both bounds are inclusive: the row at `mark` was stored by the previous chunk.
            job.add(within(rows, mark, end))
            job.marks[key] = mark = end
            if self.stop.is_set():
                return

    async def _read(self, job: _Job, session: MeterSession) -> None:
        meter, model, reads = job.meter, job.meter.meter_model, job.meter.reads
        caps = session.capabilities
        meter_clock = self.clock.now()
        if CLOCK in caps and model.has_clock:
            meter_clock = await self._sync_clock(job, session)
        if PROFILES in caps and model.has_profiles:
            # Never past the meter's own clock minus one capture period: a lagging clock
            # has not captured the later intervals yet, and skipping them would lose them.
            limit = meter_clock - model.capture_period
            for item, profile in (("profile", model.load_profile), ("daily", model.daily_profile)):
                if item in reads and not self.stop.is_set():
                    await self._catch_up(job, session, profile, limit)
        if "events" in reads and EVENTS in caps and not self.stop.is_set():
            key = (meter.meter_id, EVENTS_KEY)
            since = self._start_of(meter, key, job)
            events = [r for r in await session.read_events(since) if r.ts > since]
            job.add(events)
            if events:
                job.marks[key] = max(r.ts for r in events)
        if "registers" in reads and REGISTERS in caps and not job.registers_done:
            try:
                job.add(await session.read_registers())
            except AmrError as exc:
                # A partial read (some values out of range) still lands its good values.
                partial = getattr(exc, "readings", None)
                if isinstance(partial, list) and partial:
                    job.add(partial)
                    job.registers_done = True
                raise
            job.registers_done = True

    async def _attempt(self, job: _Job, attempt: int) -> BaseException | None:
        meter = job.meter
        budget = self.settings.session_timeout_s
        async with self.limiter.slot(meter, self.priority):
            if self.stop.is_set():
                raise _Stopped
            started = self.clock.now()
            before = job.rows
            error: BaseException | None = None
            outcome = "ok"
            counted = wire.Tally()
            try:
                with wire.tally() as counted:
                    async with (
                        asyncio.timeout(budget),
                        self.connector.session(meter, timeout=budget, source=self.round_id) as session,
                    ):
                        await self._read(job, session)
            except (AmrError, TimeoutError, OSError) as exc:
                error, outcome = exc, "failed"
            except asyncio.CancelledError:
                outcome = "aborted"
                raise
            finally:
                job.attempts.append(Attempt(
                    round_id=self.round_id, meter_id=meter.meter_id, protocol=meter.protocol,
                    route=meter.route, started_at=started, ended_at=self.clock.now(), outcome=outcome,
                    error_class=error_class(error) if error else _ABORTED.get(outcome),
                    error=str(error) if error else None, retries=attempt,
                    bytes=counted.total,
                    readings=job.rows - before,
                ))
        return error

    async def poll_one(self, job: _Job) -> None:
        meter = job.meter
        rng = random.Random(f"{meter.meter_id}|{to_db(self.started)}")
        try:
            attempt = 0
            error: BaseException | None = None
            while True:
                try:
                    error = await self._attempt(job, attempt)
                except _Stopped:
                    if error is not None:  # stopped while waiting to retry: the failure stands
                        job.outcome = health.Outcome(False, self.clock.now(), error_class(error), str(error))
                    break
                if error is None:
                    job.outcome = health.Outcome(True, self.clock.now())
                    break
                if attempt >= self.retry.retries or not retryable(error) or self.stop.is_set():
                    job.outcome = health.Outcome(False, self.clock.now(), error_class(error), str(error))
                    break
                attempt += 1
                await asyncio.sleep(self.retry.delay(attempt - 1, rng))
        finally:
            if job.attempts:
                self.done.append(job)
                self.done_rows += job.rows
            self.finished += 1
            if self.progress is not None:
                self.progress(self.finished, self.total)
        if self.done_rows >= self.options.flush_rows:
            await self.flush(in_thread=True)

    # -- landing -----------------------------------------------------------------------

    def _land(self, jobs: list[_Job]) -> None:
        frame = landing_frame((chunk for job in jobs for chunk in job.chunks), self.round_id)
        marks: dict[WatermarkKey, dt.datetime] = {}
        for job in jobs:
            marks.update(job.marks)
        outcomes = {j.meter.meter_id: j.outcome for j in jobs if j.outcome is not None}
        attempts = [a for job in jobs for a in job.attempts]
        events = [e for job in jobs for e in job.clock_events]

        def extra(conn: Connection) -> None:
            commlog.insert(conn, attempts)
            health.record(conn, outcomes, self.health, self.options.breaker)
            clocksync.record(conn, events)

        buckets = {job.meter.bucket for job in jobs}  # one when polled by shard, as rounds are
        landed = landings.land(
            self.state, self.data_dir, round_id=self.round_id, frame=frame, marks=marks,
            now=self.clock.now(), extra=extra, bucket=buckets.pop() if len(buckets) == 1 else None,
        )
        if landed.batch_path is not None:
            self.report.batches.append(landed.batch_path)
        self.report.readings += landed.rows
        self.report.attempts += len(attempts)
        self.report.clock_corrections += sum(e.action in (ClockAction.SHIFT, ClockAction.SET) for e in events)
        for job in jobs:
            if job.outcome is None:
                continue
            if job.outcome.ok:
                self.report.ok += 1
            else:
                self.report.failed += 1
                self.report.failures[job.meter.meter_id] = job.outcome.error_class or "unknown"

    async def flush(self, *, in_thread: bool) -> None:
        async with self.flush_lock:
            jobs, self.done, self.done_rows = self.done, [], 0
            if not jobs:
                return
            if in_thread:
                await asyncio.to_thread(self._land, jobs)
            else:
                self._land(jobs)

    # -- the round -----------------------------------------------------------------------

    def prepare(self, meters: Sequence[Meter]) -> None:
        landings.recover(self.state, self.data_dir)
        ids = [m.meter_id for m in meters]
        self.marks = watermarks.load(self.state, ids)
        self.health = health.load(self.state, ids)
        self.corrections = clocksync.corrections_on(self.state, ids, local_date(self.started))
        with self.state.transaction() as conn:
            # A round run again under its id (an executor retrying the task of a worker that
            # died) takes its row over: it re-reads from the watermarks the first run committed.
            conn.execute(
                sa.text(
                    "INSERT INTO headend_rounds (round_id, kind, started_at, meters)"
                    " VALUES (:r, :k, :s, :n)"
                    " ON CONFLICT (round_id) DO UPDATE SET kind = excluded.kind,"
                    " started_at = excluded.started_at, meters = excluded.meters, ended_at = NULL,"
                    " ok = 0, failed = 0, skipped = 0, readings = 0, outcome = NULL"
                ),
                {"r": self.round_id, "k": self.options.kind, "s": to_db(self.started), "n": len(meters)},
            )

    def finish(self) -> None:
        report = self.report
        outcome = "stopped" if report.stopped else "done"
        with self.state.transaction() as conn:
            conn.execute(
                sa.text(
                    "UPDATE headend_rounds SET ended_at = :e, ok = :ok, failed = :f, skipped = :s,"
                    " readings = :n, outcome = :o WHERE round_id = :r"
                ),
                {"e": to_db(self.clock.now()), "ok": report.ok, "f": report.failed, "s": report.skipped,
                 "n": report.readings, "o": outcome, "r": self.round_id},
            )
        report.peaks = self.limiter.peaks()


async def poll_meters(
    state: StateStore,
    data_dir: Path,
    meters: Sequence[Meter],
    *,
    settings: HeadendSettings,
    clock: Clock | None = None,
    since: dt.datetime | None = None,
    progress: Callable[[int, int], None] | None = None,
    options: PollOptions | None = None,
    connector: Connector | None = None,
    limiter: Limiter | None = None,
    priority: int = SCHEDULED,
    stop: asyncio.Event | None = None,
    round_id: str | None = None,
) -> RoundReport:
    """Poll the meters once, land what they hold beyond their watermarks, and report.

    `round_id` names the round (the scheduler's ledger gives one per scheduled run); by
    default a fresh one.
    """
    clock = clock or SystemClock()
    options = options or PollOptions.from_settings(settings)
    stop = stop or asyncio.Event()
    connector = connector or ProtocolConnector(
        keystore=KeyStore(settings.key_file), clock=clock, counters=counter_store(state)
    )
    limiter = limiter or Limiter(
        PollLimits(concurrency=settings.concurrency, per_line=settings.per_line, per_cell=options.per_cell)
    )
    run = _Round(
        state, data_dir, settings=settings, options=options, clock=clock, since=since, connector=connector,
        limiter=limiter, priority=priority, stop=stop, progress=progress, total=len(meters),
        round_id=round_id,
    )
    wire.instrument(asyncio.get_running_loop())
    await asyncio.to_thread(run.prepare, meters)
    now = run.started
    jobs = []
    for meter in meters:
        state_now = run.health.get(meter.meter_id)
        if state_now is not None and state_now.open_at(now):
            run.report.skipped += 1
            run.finished += 1
            continue
        jobs.append(_Job(meter))
    tasks = [asyncio.create_task(_guarded(run, job)) for job in jobs]
    # One waiter for all the meters (waiting on the pending set again after each completion
    # would cost the whole set per meter: quadratic in the round's size).
    everything = asyncio.gather(*tasks, return_exceptions=True)
    stop_wait = asyncio.create_task(stop.wait())
    try:
        waiters: set[asyncio.Future[Any]] = {everything, stop_wait}
        await asyncio.wait(waiters, return_when=asyncio.FIRST_COMPLETED)
        if stop.is_set():
            run.report.stopped = True
            grace = settings.session_timeout_s if options.stop_grace_s is None else options.stop_grace_s
            pending = {task for task in tasks if not task.done()}
            if pending:
                _, late = await asyncio.wait(pending, timeout=grace)
                for task in late:
                    task.cancel()
            await everything
        for task in tasks:
            failure = task.exception() if task.done() and not task.cancelled() else None
            if failure is not None:
                raise failure
    finally:
        stop_wait.cancel()
        if not everything.done():
            everything.cancel()  # this round was cancelled itself: so are its meters
        await run.flush(in_thread=True)
        run.report.not_started = sum(1 for job in jobs if not job.attempts)
        await asyncio.to_thread(run.finish)
    return run.report


async def _guarded(run: _Round, job: _Job) -> None:
    if run.stop.is_set():
        return
    await run.poll_one(job)
