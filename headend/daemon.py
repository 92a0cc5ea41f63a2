"""`amr headend run`: the scheduler daemon (APScheduler 3.11 on the asyncio loop).

Jobs live in an SQLAlchemy job store on the operational store, so schedules survive
restarts and `amr headend jobs` can list them. Every job coalesces its misfires into one
late run and has no misfire grace limit (a late job runs late, never silently not at all);
a round still running when its next turn comes is an overrun, logged as a daemon event.
Ingest and the month-end bill run are child processes, never work on the polling loop.
On SIGTERM or SIGINT the daemon stops taking work, lets its sessions finish within their
budget (or aborts them), lands what it has read, releases its lock and exits 0.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import signal
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from apscheduler.events import EVENT_JOB_ERROR, EVENT_JOB_MAX_INSTANCES, EVENT_JOB_MISSED, JobEvent
from apscheduler.jobstores.sqlalchemy import SQLAlchemyJobStore
from apscheduler.schedulers.asyncio import AsyncIOScheduler
from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.interval import IntervalTrigger

from core.clock import Clock, SystemClock
from core.config import Settings
from core.state import StateStore
from core.timezones import LOCAL_TZ, local_date
from headend import lock, metrics
from headend.errors import HeadendError
from headend.limits import SCHEDULED, Limiter, PollLimits
from headend.poll import PollOptions, RoundReport, poll_meters
from headend.registry import list_meters
from headend.timestamps import to_db

log = logging.getLogger("amr.headend")
JOB_TABLE = "headend_apscheduler_jobs"
DAY_MINUTES = 24 * 60
FIRST_DAILY_MINUTE = 15  # the previous day's profile is complete after local midnight


@dataclass(frozen=True, slots=True)
class DaemonOptions:
    after_round: Sequence[str] = ()  # e.g. ("amr", "ingest", "run"): a child process after each round
    month_end: Sequence[str] = ()  # e.g. ("amr", "bill", "run"): a child process on the month's last day
    intraday_minutes: int = 15  # for meters whose `intraday` attribute is set
    metrics_host: str = "127.0.0.1"
    metrics_port: int | None = None  # None: no metrics endpoint
    lock_ttl: dt.timedelta = dt.timedelta(seconds=60)
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


def daily_minute(bucket: int, buckets: int) -> int:
    """When in the local day a bucket's daily round starts: buckets spread over the day."""
    return FIRST_DAILY_MINUTE + bucket * (DAY_MINUTES - FIRST_DAILY_MINUTE) // buckets


def install_jobs(scheduler: Any, *, buckets: int, options: DaemonOptions) -> None:
    """(Re)write the schedule: one daily job per bucket, intra-day reads, the month-end run."""
    for bucket in range(buckets):
        minute = daily_minute(bucket, buckets)
        scheduler.add_job(
            "headend.daemon:daily_job", CronTrigger(hour=minute // 60, minute=minute % 60, timezone=LOCAL_TZ),
            args=[bucket], id=f"daily-bucket-{bucket:04d}", name=f"daily round, bucket {bucket}",
            replace_existing=True,
        )
    for job in scheduler.get_jobs():
        if job.id.startswith("daily-bucket-") and int(job.id.rsplit("-", 1)[1]) >= buckets:
            job.remove()
    scheduler.add_job(
        "headend.daemon:intraday_job", IntervalTrigger(minutes=options.intraday_minutes),
        id="intraday", name=f"intra-day round every {options.intraday_minutes} min", replace_existing=True,
    )
    if options.month_end:
        scheduler.add_job(
            "headend.daemon:month_end_job", CronTrigger(day="last", hour=23, minute=50, timezone=LOCAL_TZ),
            id="month-end", name="month-end bill run", replace_existing=True,
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
        options: DaemonOptions | None = None, clock: Clock | None = None,
    ) -> None:
        self.state, self.data_dir, self.settings = state, data_dir, settings
        self.options = options or DaemonOptions()
        self.clock = clock or SystemClock()
        self.holder = lock.new_holder()
        self.stop = asyncio.Event()
        self.rounds: set[asyncio.Task[Any]] = set()
        self.children: set[asyncio.Task[Any]] = set()
        self.limiter = Limiter(PollLimits(
            concurrency=settings.headend.concurrency, per_line=settings.headend.per_line,
            per_cell=self.options.poll.per_cell,
        ))
        self.reports: list[RoundReport] = []

    # -- jobs ----------------------------------------------------------------------------

    async def poll_round(self, kind: str, *, bucket: int | None = None, intraday: bool = False) -> None:
        if self.stop.is_set():
            return
        today = local_date(self.clock.now())
        meters = list_meters(self.state, bucket=bucket, active_on=today)
        if intraday:
            meters = [m for m in meters if m.attributes.get("intraday")]
        if not meters:
            return
        task = asyncio.current_task()
        assert task is not None
        self.rounds.add(task)
        try:
            options = PollOptions(**{**_poll_fields(self.options.poll), "kind": kind})
            report = await poll_meters(
                self.state, self.data_dir, meters, settings=self.settings.headend, clock=self.clock,
                options=options, limiter=self.limiter, priority=SCHEDULED, stop=self.stop,
            )
            self.reports.append(report)
            log.info("round %s: %d ok, %d failed, %d readings", report.round_id, report.ok, report.failed,
                     report.readings)
        finally:
            self.rounds.discard(task)
        if self.options.after_round and not self.stop.is_set():
            self._child("after-round", self.options.after_round)

    def _child(self, kind: str, command: Sequence[str]) -> None:
        task = asyncio.get_running_loop().create_task(self._run_child(kind, command))
        self.children.add(task)
        task.add_done_callback(self.children.discard)

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

    def month_end(self) -> None:
        if self.options.month_end and not self.stop.is_set():
            self._child("month-end", self.options.month_end)

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

    async def _renew_lock(self) -> None:
        ttl = self.options.lock_ttl
        while not self.stop.is_set():
            try:
                await asyncio.wait_for(self.stop.wait(), timeout=ttl.total_seconds() / 3)
            except TimeoutError:
                lock.acquire(self.state, self.holder, ttl=ttl, now=dt.datetime.now(dt.UTC))

    async def run(self, *, ready: asyncio.Event | None = None) -> int:
        global _CURRENT
        lock.acquire(self.state, self.holder, ttl=self.options.lock_ttl, now=dt.datetime.now(dt.UTC))
        loop = asyncio.get_running_loop()
        scheduler = AsyncIOScheduler(
            jobstores={"default": SQLAlchemyJobStore(engine=self.state.engine, tablename=JOB_TABLE)},
            job_defaults=_job_defaults(), timezone=LOCAL_TZ, event_loop=loop,
        )
        scheduler.add_listener(self._on_event, EVENT_JOB_MAX_INSTANCES | EVENT_JOB_MISSED | EVENT_JOB_ERROR)
        server = None
        _CURRENT = self
        try:
            scheduler.start(paused=True)
            install_jobs(scheduler, buckets=self.settings.buckets, options=self.options)
            scheduler.resume()
            for sig in (signal.SIGTERM, signal.SIGINT):
                loop.add_signal_handler(sig, self.request_stop)
            if self.options.metrics_port is not None:
                server = await metrics.serve(
                    self.options.metrics_host, self.options.metrics_port,
                    lambda: metrics.render(self.state, now=self.clock.now()),
                )
            record_event(self.state, "started", job_id=None, detail=self.holder, now=self.clock.now())
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
            if scheduler.running:
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
    await _daemon().poll_round("daily", bucket=bucket)


async def intraday_job() -> None:
    await _daemon().poll_round("intraday", intraday=True)


async def month_end_job() -> None:
    _daemon().month_end()
