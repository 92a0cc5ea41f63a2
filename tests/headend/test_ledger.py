"""The scheduler's ledger and standby: runs by (job, scheduled time), claimed, resumed, never
repeated once done; a standby waits for the lease; an unchanged schedule keeps its next run."""

from __future__ import annotations

import asyncio
import datetime as dt
from pathlib import Path

import pytest

from core.config import Settings
from core.state import StateStore
from headend import ledger, lock
from headend.commlog import Attempt, insert
from headend.daemon import Daemon, DaemonOptions, install_jobs
from headend.errors import SchedulerLocked
from headend.ledger import RunKey

T0 = dt.datetime(2026, 3, 10, 3, 0, tzinfo=dt.UTC)
NOW = T0 + dt.timedelta(seconds=2)


def test_a_run_is_claimed_once_resumed_and_never_repeated_when_done(data_dir: Path) -> None:
    state = StateStore.open(data_dir)
    key = RunKey("intraday", T0)
    first = ledger.claim(state, key, "a", now=NOW)
    assert (first.run, first.done) == (1, False)
    assert ledger.unfinished(state) == [key]
    resumed = ledger.claim(state, key, "b", now=NOW)  # a died: b resumes the same run
    assert (resumed.run, resumed.done) == (2, False)
    ledger.complete(state, key, now=NOW)
    again = ledger.claim(state, key, "c", now=NOW)
    assert again.done and ledger.unfinished(state) == []
    assert ledger.runs(state) == [(key, ledger.DONE, 2, "b")]


def test_only_the_latest_unfinished_run_of_a_job_is_resumed(data_dir: Path) -> None:
    state = StateStore.open(data_dir)
    old, new = RunKey("daily-bucket-0001", T0), RunKey("daily-bucket-0001", T0 + dt.timedelta(days=1))
    other = RunKey("intraday", T0)
    for key in (old, new, other):
        ledger.claim(state, key, "a", now=NOW)
    ledger.complete(state, new, now=NOW)
    assert ledger.unfinished(state) == [other]  # `old` is superseded by the later, completed run


def test_meters_done_are_those_landed_ok_under_the_runs_prefix(data_dir: Path) -> None:
    state = StateStore.open(data_dir)
    key = RunKey("daily-bucket-0000", T0)

    def attempt(round_id: str, meter: str, outcome: str) -> Attempt:
        return Attempt(round_id, meter, "dlms", None, NOW, NOW, outcome)

    with state.transaction() as conn:
        insert(conn, [
            attempt(key.round_id(1), "M1", "ok"), attempt(key.round_id(1), "M2", "failed"),
            attempt(f"{key.round_id(1)}-b0003", "M3", "ok"),  # a shard of the run
            attempt(RunKey("daily-bucket-0000", T0 + dt.timedelta(days=1)).round_id(1), "M4", "ok"),
            attempt("poll-20260310T030000-abcdef", "M5", "ok"),
        ])
    assert ledger.meters_done(state, key) == {"M1", "M3"}


def test_a_standby_waits_for_the_lease_and_stops_cleanly(data_dir: Path) -> None:
    state = StateStore.open(data_dir)
    lock.acquire(state, "other", ttl=dt.timedelta(hours=1), now=dt.datetime.now(dt.UTC))
    settings = Settings(data_dir=data_dir, buckets=1)
    options = DaemonOptions(standby_retry=dt.timedelta(seconds=0.05))

    async def main() -> int:
        daemon = Daemon(state, data_dir, settings, options=options)
        runner = asyncio.create_task(daemon.run())
        deadline = asyncio.get_running_loop().time() + 10
        while not _kinds(state) and asyncio.get_running_loop().time() < deadline:
            await asyncio.sleep(0.02)
        daemon.request_stop()
        return await asyncio.wait_for(runner, timeout=10)

    assert asyncio.run(main()) == 0
    assert _kinds(state) == ["standby"]  # announced once however often it tried, never started
    lease = lock.try_acquire(state, "x", ttl=dt.timedelta(seconds=1), now=dt.datetime.now(dt.UTC))
    assert lease.holder == "other"


def test_without_standby_a_second_daemon_refuses(data_dir: Path) -> None:
    state = StateStore.open(data_dir)
    lock.acquire(state, "other", ttl=dt.timedelta(hours=1), now=dt.datetime.now(dt.UTC))
    daemon = Daemon(state, data_dir, Settings(data_dir=data_dir, buckets=1),
                    options=DaemonOptions(standby=False))
    with pytest.raises(SchedulerLocked, match=r"\(other\) holds the lock"):
        asyncio.run(daemon.run())


def test_an_unchanged_schedule_keeps_its_next_run(data_dir: Path) -> None:
    from apscheduler.jobstores.sqlalchemy import SQLAlchemyJobStore
    from apscheduler.schedulers.background import BackgroundScheduler

    state = StateStore.open(data_dir)

    def installed(options: DaemonOptions) -> dict[str, dt.datetime]:
        scheduler = BackgroundScheduler(jobstores={"default": SQLAlchemyJobStore(
            engine=state.engine, tablename="headend_apscheduler_jobs")})
        scheduler.start(paused=True)
        install_jobs(scheduler, buckets=2, options=options)
        found = {j.id: j.next_run_time for j in scheduler.get_jobs()}
        scheduler.shutdown(wait=False)
        return found

    first = installed(DaemonOptions(intraday_minutes=15))
    # A takeover re-installs the same schedule: the stored next runs stand (a run missed while
    # no scheduler was active then runs late instead of being rescheduled away).
    assert installed(DaemonOptions(intraday_minutes=15)) == first
    changed = installed(DaemonOptions(intraday_minutes=5))
    assert changed["intraday"] != first["intraday"]
    assert changed["daily-bucket-0000"] == first["daily-bucket-0000"]


def _kinds(state: StateStore) -> list[str]:
    with state.read() as conn:
        return [r[0] for r in conn.exec_driver_sql("SELECT kind FROM headend_daemon_events ORDER BY id")]
