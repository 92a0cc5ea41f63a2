"""The daemon: its lock, its schedule, and SIGTERM in the middle of a round (a real process)."""

from __future__ import annotations

import datetime as dt
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import polars as pl
import pytest

from core.landing import list_batches
from core.state import StateStore
from headend import lock
from headend.daemon import DaemonOptions, daily_minute, install_jobs, list_jobs
from headend.errors import SchedulerLocked

NOW = dt.datetime(2026, 3, 10, 3, 0, tzinfo=dt.UTC)


def test_one_scheduler_holds_the_lock(data_dir: Path) -> None:
    state = StateStore.open(data_dir)
    ttl = dt.timedelta(seconds=60)
    lock.acquire(state, "a", ttl=ttl, now=NOW)
    lock.acquire(state, "a", ttl=ttl, now=NOW + dt.timedelta(seconds=30))  # renewal
    with pytest.raises(SchedulerLocked, match=r"\(a\) holds the lock"):
        lock.acquire(state, "b", ttl=ttl, now=NOW + dt.timedelta(seconds=60))
    lock.acquire(state, "b", ttl=ttl, now=NOW + dt.timedelta(seconds=91))  # a's lease ran out
    lock.release(state, "b")
    lock.acquire(state, "c", ttl=ttl, now=NOW)


def test_daily_rounds_spread_over_the_day_and_are_listed(data_dir: Path) -> None:
    from apscheduler.jobstores.sqlalchemy import SQLAlchemyJobStore
    from apscheduler.schedulers.background import BackgroundScheduler

    minutes = [daily_minute(b, 16) for b in range(16)]
    assert minutes == sorted(set(minutes)) and minutes[0] >= 15 and minutes[-1] < 24 * 60
    state = StateStore.open(data_dir)
    scheduler = BackgroundScheduler(jobstores={"default": SQLAlchemyJobStore(
        engine=state.engine, tablename="headend_apscheduler_jobs")})
    scheduler.start(paused=True)
    install_jobs(scheduler, buckets=4, options=DaemonOptions(month_end=("true",)))
    install_jobs(scheduler, buckets=3, options=DaemonOptions(month_end=("true",)))  # fewer buckets
    scheduler.shutdown(wait=False)
    jobs = {j.job_id: j for j in list_jobs(state)}
    daily = {f"daily-bucket-{b:04d}" for b in range(3)}
    assert set(jobs) == daily | {"intraday", "month-end"}
    assert all(j.next_run is not None for j in jobs.values())


DAEMON = textwrap.dedent("""
    import asyncio, sys, datetime as dt
    from pathlib import Path
    from core.config import Settings, HeadendSettings
    from core.state import StateStore
    from headend.daemon import Daemon, DaemonOptions
    from headend import poll

    data_dir = Path(sys.argv[1])
    state = StateStore.open(data_dir)
    settings = Settings(data_dir=data_dir, buckets=1,
                        headend=HeadendSettings(concurrency=2, per_line=2, session_timeout_s=5))

    async def main() -> int:
        daemon = Daemon(state, data_dir, settings, options=DaemonOptions())
        ready = asyncio.Event()
        runner = asyncio.create_task(daemon.run(ready=ready))
        await ready.wait()
        # Start a round at once, as the scheduler would at the bucket's minute.
        asyncio.create_task(daemon.poll_round("daily", bucket=0))
        code = await runner
        print("REPORTS", [(r.ok, r.not_started, r.stopped) for r in daemon.reports], flush=True)
        return code

    sys.exit(asyncio.run(main()))
""")


@pytest.mark.slow
@pytest.mark.timeout(60)
def test_sigterm_in_the_middle_of_a_round_lands_and_exits_zero(data_dir: Path, tmp_path: Path) -> None:
    # The simulator runs in its own process, so the daemon's process holds only the head-end.
    sim_script = tmp_path / "sim.py"
    sim_script.write_text(textwrap.dedent("""
        import asyncio, sys
        from pathlib import Path
        from protocols.modbus.simulator import ModbusFleetSimulator
        async def main():
            async with ModbusFleetSimulator(meters=120, seed=5, transport="rtu+tcp") as sim:
                sim.write_fleet_file(Path(sys.argv[1]))
                print("READY", flush=True)
                await asyncio.Event().wait()
        asyncio.run(main())
    """))
    fleet = tmp_path / "fleet.csv"
    sim = subprocess.Popen([sys.executable, str(sim_script), str(fleet)], stdout=subprocess.PIPE, text=True)
    try:
        assert sim.stdout is not None and sim.stdout.readline().strip() == "READY"
        from headend.registry import import_fleet

        state = StateStore.open(data_dir)
        assert import_fleet(state, fleet, buckets=1).applied
        daemon_script = tmp_path / "daemon.py"
        daemon_script.write_text(DAEMON)
        daemon = subprocess.Popen([sys.executable, str(daemon_script), str(data_dir)], stdout=subprocess.PIPE,
                                  stderr=subprocess.PIPE, text=True, cwd=tmp_path)
        # Wait until the round has logged some attempts (the gateway takes one request at a time).
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            with state.read() as conn:
                started = conn.exec_driver_sql("SELECT COUNT(*) FROM headend_rounds").scalar()
            if started:
                break
            time.sleep(0.05)
        assert started, "the round never started"
        daemon.send_signal(signal.SIGTERM)
        out, err = daemon.communicate(timeout=30)
        assert daemon.returncode == 0, err
        assert "REPORTS [(" in out and "True)]" in out, out
    finally:
        sim.send_signal(signal.SIGTERM)
        sim.wait(10)
    with state.read() as conn:
        lock_rows = conn.exec_driver_sql("SELECT COUNT(*) FROM headend_scheduler_lock").scalar()
        kinds = [r[0] for r in conn.exec_driver_sql("SELECT kind FROM headend_daemon_events ORDER BY id")]
        pending = conn.exec_driver_sql(
            "SELECT COUNT(*) FROM headend_landings WHERE state = 'pending'"
        ).scalar()
    assert lock_rows == 0 and kinds == ["started", "stopped"] and pending == 0
    frames = [b.read() for b in list_batches(data_dir)]
    assert frames, f"nothing landed: {out}"
    landed = pl.concat(frames)
    assert landed.select(pl.struct("meter_id", "quantity", "ts").is_duplicated().sum()).item() == 0
    assert not list((data_dir / "landing").glob("*/.tmp-*"))
