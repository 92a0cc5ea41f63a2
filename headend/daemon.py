"""`amr headend run`: the scheduler daemon (APScheduler 3.11 on the asyncio loop).

Jobs live in an SQLAlchemy job store on the operational store, so schedules survive
restarts and `amr headend jobs` can list them. Every job coalesces its misfires into one
late run and has no misfire grace limit (a late job runs late, never silently not at all);
a round still running when its next turn comes is an overrun, logged as a daemon event.
Ingest and the month-end bill run are child processes, never work on the polling loop.
On SIGTERM or SIGINT the daemon stops taking work, lets its sessions finish within their
budget (or aborts them), lands what it has read, releases its lock and exits 0.

One scheduler is active per installation (a lease in the operational store, renewed while
it lives). A second daemon stands by: it retries the lease every few seconds and, once a
dead holder's lease lapses, takes over. Every scheduled run is claimed in the ledger
(`headend.ledger`) by (job, scheduled time), so a run the dead holder completed is never
repeated and one it left unfinished is resumed. With a cluster (`executor`), each round's
shards are polled on the executor's workers (`headend.shards`); the scheduler stays here.
"""

from __future__ import annotations

import asyncio
import contextvars
import datetime as dt
import logging
import signal
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from apscheduler.events import EVENT_JOB_ERROR, EVENT_JOB_MAX_INSTANCES, EVENT_JOB_MISSED, JobEvent
from apscheduler.executors.asyncio import AsyncIOExecutor
from apscheduler.jobstores.sqlalchemy import SQLAlchemyJobStore
from apscheduler.schedulers.asyncio import AsyncIOScheduler
from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.interval import IntervalTrigger

from core.clock import Clock, SystemClock
from core.config import Settings
from core.executor import Executor
from core.state import StateStore
from core.timezones import LOCAL_TZ, local_date
from headend import ledger, lock, metrics
from headend.errors import HeadendError
from headend.ledger import RunKey
from headend.limits import SCHEDULED, Limiter, PollLimits
from headend.poll import PollOptions, RoundReport, poll_meters
from headend.registry import Meter, list_meters
from headend.shards import poll_by_shard
from headend.timestamps import to_db

log = logging.getLogger("amr.headend")
JOB_TABLE = "headend_apscheduler_jobs"
DAY_MINUTES = 24 * 60
FIRST_DAILY_MINUTE = 15  # the previous day's profile is complete after local midnight


@dataclass(frozen=True, slots=True)
class DaemonOptions:
    after_round: Sequence[str] = ()  # e.g. ("amr", "ingest", "run"): a child process after each round
    month_end: Sequence[str] = ()  # e.g. ("amr", "bill", "run"): a child process on the month's last day
    intraday_minutes: float = 15  # for meters whose `intraday` attribute is set
    metrics_host: str = "127.0.0.1"
    metrics_port: int | None = None  # None: no metrics endpoint
    lock_ttl: dt.timedelta = dt.timedelta(seconds=60)  # renewed every third of it
    standby: bool = True  # another holds the lock: wait and take over (False: refuse to start)
    standby_retry: dt.timedelta = dt.timedelta(seconds=5)  # how often a standby tries the lock
    poll: PollOptions = field(default_factory=PollOptions)


@dataclass(frozen=True, slots=True)
class JobInfo:
    job_id: str
    name: str
    trigger: str
    next_run: dt.datetime | None

    def to_json(self) -> dict[str, Any]:
        return {"id": self.job_id, "name": self.name, "trigger": self.trigger,
                "next_run": to_db(self.next_run) if self.next_run else None}


def _job_defaults() -> dict[str, Any]:
    return {"coalesce": True, "misfire_grace_time": None, "max_instances": 1}


# The run a job function is executing: (job id, scheduled time). APScheduler does not pass the
# scheduled time to the job, so the executor sets it in the context the job's task copies.
_RUN: contextvars.ContextVar[RunKey | None] = contextvars.ContextVar("amr_headend_run", default=None)


class KeyedExecutor(AsyncIOExecutor):  # type: ignore[misc]
    """APScheduler's asyncio executor, handing each run its (job, scheduled time) key."""

    def _do_submit_job(self, job: Any, run_times: list[dt.datetime]) -> None:
        # coalesce=True: one run for all the missed times, named after the latest
        token = _RUN.set(RunKey(job.id, run_times[-1].astimezone(dt.UTC)))
        try:
            super()._do_submit_job(job, run_times)
        finally:
            _RUN.reset(token)


def _put_job(scheduler: Any, func: str, trigger: Any, *, job_id: str, name: str, args: list[Any]) -> None:
    """Add a job, or replace it when its schedule changed. An unchanged job is kept as stored,
    with its next run time, so a run missed while no scheduler was active still runs (late,
    coalesced) instead of being silently rescheduled away."""
    existing = scheduler.get_job(job_id)
    if existing is not None and str(existing.trigger) == str(trigger) and list(existing.args) == args:
        return
    scheduler.add_job(func, trigger, args=args, id=job_id, name=name, replace_existing=True)


def daily_minute(bucket: int, buckets: int) -> int:
    """When in the local day a bucket's daily round starts: buckets spread over the day."""
    return FIRST_DAILY_MINUTE + bucket * (DAY_MINUTES - FIRST_DAILY_MINUTE) // buckets


def install_jobs(scheduler: Any, *, buckets: int, options: DaemonOptions) -> None:
    """(Re)write the schedule: one daily job per bucket, intra-day reads, the month-end run."""
    for bucket in range(buckets):
        minute = daily_minute(bucket, buckets)
        _put_job(
            scheduler, "headend.daemon:daily_job",
            CronTrigger(hour=minute // 60, minute=minute % 60, timezone=LOCAL_TZ),
            args=[bucket], job_id=f"daily-bucket-{bucket:04d}", name=f"daily round, bucket {bucket}",
        )
    for job in scheduler.get_jobs():
        if job.id.startswith("daily-bucket-") and int(job.id.rsplit("-", 1)[1]) >= buckets:
            job.remove()
    _put_job(
        scheduler, "headend.daemon:intraday_job", IntervalTrigger(minutes=options.intraday_minutes),
        job_id="intraday", name=f"intra-day round every {options.intraday_minutes:g} min", args=[],
    )
    if options.month_end:
        _put_job(
            scheduler, "headend.daemon:month_end_job",
            CronTrigger(day="last", hour=23, minute=50, timezone=LOCAL_TZ),
            job_id="month-end", name="month-end bill run", args=[],
        )


def list_jobs(state: StateStore) -> list[JobInfo]:
    """The schedules in the job store and their next runs (without running anything)."""
    scheduler = BackgroundScheduler(
        jobstores={"default": SQLAlchemyJobStore(engine=state.engine, tablename=JOB_TABLE)}, timezone=LOCAL_TZ
    )
    scheduler.start(paused=True)
    try:
        return [
            JobInfo(j.id, j.name, str(j.trigger), _utc(j.next_run_time))
            for j in sorted(scheduler.get_jobs(), key=lambda j: j.id)
        ]
    finally:
        scheduler.shutdown(wait=False)


def _utc(when: dt.datetime | None) -> dt.datetime | None:
    return when.astimezone(dt.UTC) if when is not None else None


def record_event(state: StateStore, kind: str, *, job_id: str | None, detail: str, now: dt.datetime) -> None:
    with state.transaction() as conn:
        conn.execute(
            sa.text("INSERT INTO headend_daemon_events (at, kind, job_id, detail) VALUES (:a, :k, :j, :d)"),
            {"a": to_db(now), "k": kind, "j": job_id, "d": detail[:500]},
        )


class Daemon:
    def __init__(
        self, state: StateStore, data_dir: Path, settings: Settings, *,
        options: DaemonOptions | None = None, clock: Clock | None = None, executor: Executor | None = None,
    ) -> None:
        self.state, self.data_dir, self.settings = state, data_dir, settings
        self.options = options or DaemonOptions()
        self.clock = clock or SystemClock()
        self.executor = executor  # None: rounds poll on this process's event loop
        self.holder = lock.new_holder()
        self.stop = asyncio.Event()
        self.rounds: set[asyncio.Task[Any]] = set()
        self.children: set[asyncio.Task[Any]] = set()  # child processes' and resumed runs' tasks
        self.running_keys: set[RunKey] = set()  # ledger runs in progress in this process
        self.limiter = Limiter(PollLimits(
            concurrency=settings.headend.concurrency, per_line=settings.headend.per_line,
            per_cell=self.options.poll.per_cell,
        ))
        self.reports: list[RoundReport] = []

    # -- jobs ----------------------------------------------------------------------------

    async def poll_round(
        self, kind: str, *, bucket: int | None = None, intraday: bool = False, key: RunKey | None = None
    ) -> None:
        """One round; under a ledger `key`, claimed first and marked done when it completes."""
        if self.stop.is_set() or key in self.running_keys:
            return  # a resumed run and its job firing late for the same time: one of them runs
        task = asyncio.current_task()
        assert task is not None
        self.rounds.add(task)
        if key is not None:
            self.running_keys.add(key)
        try:
            round_id, skip, meters = None, set(), []
            if key is not None:
                claim = await asyncio.to_thread(
                    ledger.claim, self.state, key, self.holder, now=self.clock.now()
                )
                if claim.done:
                    log.warning("%s run of %s is done already: not run again", key.job_id, key.scheduled_at)
                    record_event(self.state, "already-done", job_id=key.job_id,
                                 detail=f"run scheduled for {to_db(key.scheduled_at)}", now=self.clock.now())
                    return
                round_id = key.round_id(claim.run)
                if claim.run > 1:
                    skip = await asyncio.to_thread(ledger.meters_done, self.state, key)
                    log.info("resuming %s (run %d): %d meter(s) read before", round_id, claim.run, len(skip))
            today = local_date(self.clock.now())
            meters = [m for m in list_meters(self.state, bucket=bucket, active_on=today)
                      if m.meter_id not in skip and (not intraday or m.attributes.get("intraday"))]
            stopped = False
            if meters:
                options = PollOptions(**{**_poll_fields(self.options.poll), "kind": kind})
                reports = await self._poll(meters, options, round_id)
                self.reports.extend(reports)
                stopped = any(r.stopped for r in reports)
                log.info("round %s: %d ok, %d failed, %d readings", round_id or reports[0].round_id,
                         sum(r.ok for r in reports), sum(r.failed for r in reports),
                         sum(r.readings for r in reports))
            if key is not None and not stopped:
                await asyncio.to_thread(ledger.complete, self.state, key, now=self.clock.now())
        finally:
            self.rounds.discard(task)
            if key is not None:
                self.running_keys.discard(key)
        if meters and self.options.after_round and not self.stop.is_set():
            self._child("after-round", self.options.after_round)

    async def _poll(
        self, meters: list[Meter], options: PollOptions, round_id: str | None
    ) -> list[RoundReport]:
        if self.executor is None:
            return [await poll_meters(
                self.state, self.data_dir, meters, settings=self.settings.headend, clock=self.clock,
                options=options, limiter=self.limiter, priority=SCHEDULED, stop=self.stop, round_id=round_id,
            )]
        # The executor's workers poll a shard each; this loop only waits. A stop cannot reach
        # the workers: their shards finish within their budgets and land what they read.
        return await asyncio.to_thread(
            poll_by_shard, self.state, self.data_dir, meters, settings=self.settings.headend,
            executor=self.executor, clock=self.clock, kind=options.kind, round_id=round_id, options=options,
        )

    def _child(self, kind: str, command: Sequence[str]) -> None:
        self._keep(asyncio.get_running_loop().create_task(self._run_child(kind, command)))

    def _keep(self, task: asyncio.Task[Any]) -> asyncio.Task[Any]:
        """Hold a reference until the task ends (the loop keeps only weak ones)."""
        self.children.add(task)
        task.add_done_callback(self.children.discard)
        return task

    async def _run_child(self, kind: str, command: Sequence[str]) -> None:
        try:
            process = await asyncio.create_subprocess_exec(*command)
        except OSError as exc:
            record_event(self.state, f"{kind}-failed", job_id=None, detail=f"{command[0]}: {exc}",
                         now=self.clock.now())
            return
        code = await process.wait()
        record_event(self.state, kind, job_id=None, detail=f"{' '.join(command)} exited {code}",
                     now=self.clock.now())

    async def month_end(self, key: RunKey | None = None) -> None:
        if not self.options.month_end or self.stop.is_set():
            return
        if key is not None:
            # At most once: the bill run is a child process that outlives a dead scheduler.
            claim = await asyncio.to_thread(ledger.claim, self.state, key, self.holder, now=self.clock.now())
            if claim.run > 1 or claim.done:
                return
            await asyncio.to_thread(ledger.complete, self.state, key, now=self.clock.now())
        self._child("month-end", self.options.month_end)

    def run_job(self, key: RunKey) -> asyncio.Task[Any]:
        """Start the job `key.job_id` as a run scheduled at `key.scheduled_at` (resumption)."""
        loop = asyncio.get_running_loop()
        if key.job_id.startswith("daily-bucket-"):
            bucket = int(key.job_id.rsplit("-", 1)[1])
            return self._keep(loop.create_task(self.poll_round("daily", bucket=bucket, key=key)))
        if key.job_id == "intraday":
            return self._keep(loop.create_task(self.poll_round("intraday", intraday=True, key=key)))
        if key.job_id == "month-end":
            return self._keep(loop.create_task(self.month_end(key)))
        raise HeadendError(f"the ledger names job {key.job_id!r}, which this head-end does not know",
                           hint="a newer head-end wrote it; run that version, or mark the run done")

    # -- the daemon ----------------------------------------------------------------------

    def _on_event(self, event: JobEvent) -> None:
        kinds = {EVENT_JOB_MAX_INSTANCES: "overrun", EVENT_JOB_MISSED: "missed", EVENT_JOB_ERROR: "job-error"}
        kind = kinds.get(event.code, "event")
        detail = f"job {event.job_id} scheduled for {getattr(event, 'scheduled_run_time', '?')}"
        if kind == "job-error":
            detail += f": {getattr(event, 'exception', '')!r}"
        log.warning("%s: %s", kind, detail)
        record_event(self.state, kind, job_id=event.job_id, detail=detail, now=self.clock.now())

    def request_stop(self) -> None:
        if not self.stop.is_set():
            log.info("stop requested: finishing sessions and landing what was read")
            self.stop.set()

    async def _wait_stop(self, seconds: float) -> bool:
        """Wait up to `seconds`; True when a stop was requested meanwhile."""
        try:
            await asyncio.wait_for(self.stop.wait(), timeout=seconds)
        except TimeoutError:
            return False
        return True

    async def _take_lock(self) -> str | None:
        """Hold the scheduler lock, standing by while another lives; returns the holder taken over
        from ('' when the lock was free), or None when stopped while standing by."""
        ttl, waited_for = self.options.lock_ttl, ""
        while True:
            lease = await asyncio.to_thread(
                lock.try_acquire, self.state, self.holder, ttl=ttl, now=dt.datetime.now(dt.UTC)
            )
            if lease.holder == self.holder:
                return waited_for
            if not self.options.standby:
                lock.acquire(self.state, self.holder, ttl=ttl, now=dt.datetime.now(dt.UTC))  # raises
            if lease.holder != waited_for:
                waited_for = lease.holder
                detail = f"{lease.holder} holds the scheduler lock until {to_db(lease.expires_at)}"
                log.info("standing by: %s", detail)
                record_event(self.state, "standby", job_id=None, detail=detail, now=self.clock.now())
            if await self._wait_stop(self.options.standby_retry.total_seconds()):
                return None

    async def _renew_lock(self) -> None:
        ttl = self.options.lock_ttl
        while not await self._wait_stop(ttl.total_seconds() / 3):
            try:
                lease = await asyncio.to_thread(
                    lock.try_acquire, self.state, self.holder, ttl=ttl, now=dt.datetime.now(dt.UTC)
                )
            except sa.exc.DBAPIError as exc:
                log.warning("cannot renew the scheduler lock (will retry): %s", exc.orig)
                continue
            if lease.holder != self.holder:
                # Our lease lapsed (a stall longer than its ttl) and a standby took over: two
                # active schedulers must not go on, so this one stops.
                detail = f"{lease.holder} took the scheduler lock over; stopping"
                log.error(detail)
                record_event(self.state, "lock-lost", job_id=None, detail=detail, now=self.clock.now())
                self.request_stop()

    async def run(self, *, ready: asyncio.Event | None = None) -> int:
        global _CURRENT
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, self.request_stop)
        scheduler = None
        server = None
        try:
            previous = await self._take_lock()
            if previous is None:
                return 0  # stopped while standing by
            scheduler = AsyncIOScheduler(
                jobstores={"default": SQLAlchemyJobStore(engine=self.state.engine, tablename=JOB_TABLE)},
                executors={"default": KeyedExecutor()},
                job_defaults=_job_defaults(), timezone=LOCAL_TZ, event_loop=loop,
            )
            scheduler.add_listener(
                self._on_event, EVENT_JOB_MAX_INSTANCES | EVENT_JOB_MISSED | EVENT_JOB_ERROR
            )
            _CURRENT = self
            scheduler.start(paused=True)
            install_jobs(scheduler, buckets=self.settings.buckets, options=self.options)
            detail = self.holder + (f", taking over from {previous}" if previous else "")
            record_event(self.state, "started", job_id=None, detail=detail, now=self.clock.now())
            for key in ledger.unfinished(self.state):
                log.info("resuming %s's run scheduled for %s", key.job_id, to_db(key.scheduled_at))
                record_event(self.state, "resumed", job_id=key.job_id,
                             detail=f"run scheduled for {to_db(key.scheduled_at)}", now=self.clock.now())
                self.run_job(key)
            scheduler.resume()
            if self.options.metrics_port is not None:
                server = await metrics.serve(
                    self.options.metrics_host, self.options.metrics_port,
                    lambda: metrics.render(self.state, now=self.clock.now()),
                )
            renew = loop.create_task(self._renew_lock())
            if ready is not None:
                ready.set()
            await self.stop.wait()
            scheduler.pause()
            grace = self.settings.headend.session_timeout_s + 10
            if self.rounds:
                await asyncio.wait(set(self.rounds), timeout=grace)
            await renew
            record_event(self.state, "stopped", job_id=None, detail=self.holder, now=self.clock.now())
            return 0
        finally:
            for sig in (signal.SIGTERM, signal.SIGINT):
                loop.remove_signal_handler(sig)
            if server is not None:
                server.close()
            if scheduler is not None and scheduler.running:
                scheduler.shutdown(wait=False)
            _CURRENT = None
            lock.release(self.state, self.holder)


def _poll_fields(options: PollOptions) -> dict[str, Any]:
    return {name: getattr(options, name) for name in PollOptions.__dataclass_fields__}


_CURRENT: Daemon | None = None


def _daemon() -> Daemon:
    if _CURRENT is None:
        raise HeadendError("a head-end job ran outside `amr headend run`", hint="start the daemon")
    return _CURRENT


async def daily_job(bucket: int) -> None:
    await _daemon().poll_round("daily", bucket=bucket, key=_RUN.get())


async def intraday_job() -> None:
    await _daemon().poll_round("intraday", intraday=True, key=_RUN.get())


async def month_end_job() -> None:
    await _daemon().month_end(_RUN.get())
