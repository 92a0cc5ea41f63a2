"""Two head-end daemons on one operational store: the active one is killed (SIGKILL) in the
middle of a round; the standby takes over within the lease and a margin, resumes the
unfinished round without reading again what was landed, and goes on with the schedule. On
SQLite and, where a PostgreSQL server can be started, on PostgreSQL."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import polars as pl
import pytest

from core.landing import list_batches
from core.state import StateStore
from headend import ledger
from headend.registry import import_fleet

METERS = 12
LEASE_S = 3.0
RETRY_S = 0.5
MARGIN_S = 10.0  # two shared cores under other suites: generous, the bound is what matters

SIMULATOR = textwrap.dedent("""
    import asyncio, sys
    from pathlib import Path
    from protocols.dlms.simulator.fleet import DlmsFleetSimulator
    async def main():
        async with DlmsFleetSimulator(int(sys.argv[1]), faults=["latency=0.05"], seed=4) as sim:
            sim.write_fleet_file(Path(sys.argv[2]))
            print("READY", flush=True)
            await asyncio.Event().wait()
    asyncio.run(main())
""")

DAEMON = textwrap.dedent("""
    import asyncio, datetime as dt, logging, sys
    from pathlib import Path
    from core.config import HeadendSettings, Settings
    from core.state import StateStore
    from headend.daemon import Daemon, DaemonOptions
    from headend.poll import PollOptions

    logging.basicConfig(level=logging.INFO)
    data_dir = Path(sys.argv[1])
    settings = Settings(data_dir=data_dir, buckets=1, headend=HeadendSettings(
        concurrency=2, per_line=1, session_timeout_s=10, retries=1, backoff_s=0))
    options = DaemonOptions(
        intraday_minutes=4 / 60, lock_ttl=dt.timedelta(seconds=float(sys.argv[2])),
        standby_retry=dt.timedelta(seconds=float(sys.argv[3])),
        poll=PollOptions(flush_rows=1, kind="scheduled"),  # land after each meter
    )
    daemon = Daemon(StateStore.open(data_dir), data_dir, settings, options=options)
    print("HOLDER", daemon.holder, flush=True)
    sys.exit(asyncio.run(daemon.run()))
""")


def _wait(what: str, check: Callable[[], Any], timeout: float = 60) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = check()
        if found:
            return found
        time.sleep(0.05)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")


@pytest.fixture
def simulated_fleet(tmp_path: Path) -> Iterator[Path]:
    script = tmp_path / "sim.py"
    script.write_text(SIMULATOR)
    fleet = tmp_path / "fleet.csv"
    sim = subprocess.Popen([sys.executable, str(script), str(METERS), str(fleet)], stdout=subprocess.PIPE,
                           text=True)
    try:
        assert sim.stdout is not None and sim.stdout.readline().strip() == "READY"
        lines = fleet.read_text().splitlines()
        # every meter in the intra-day job, which the test runs every 4 seconds
        fleet.write_text("\n".join([lines[0] + ",intraday"] + [line + ",1" for line in lines[1:]]) + "\n")
        yield fleet
    finally:
        sim.send_signal(signal.SIGTERM)
        sim.wait(10)


class Daemons:
    def __init__(self, tmp_path: Path, data_dir: Path) -> None:
        self.script = tmp_path / "daemon.py"
        self.script.write_text(DAEMON)
        self.data_dir, self.tmp_path = data_dir, tmp_path
        self.procs: list[subprocess.Popen[str]] = []

    def start(self) -> tuple[subprocess.Popen[str], str]:
        # Output to files, not pipes: a daemon logging into a full pipe nobody reads would block.
        out = self.tmp_path / f"daemon-{len(self.procs)}.out"
        with out.open("w") as stdout, out.with_suffix(".err").open("w") as stderr:
            proc = subprocess.Popen(
                [sys.executable, str(self.script), str(self.data_dir), str(LEASE_S), str(RETRY_S)],
                stdout=stdout, stderr=stderr, text=True, cwd=self.tmp_path, env=dict(os.environ),
            )
        self.procs.append(proc)
        first = _wait("the daemon's holder id",
                      lambda: out.read_text().split("\n", 1)[0].split() if "\n" in out.read_text() else None)
        assert first[:1] == ["HOLDER"], first
        return proc, str(first[1])

    def errors(self, proc: subprocess.Popen[str]) -> str:
        return (self.tmp_path / f"daemon-{self.procs.index(proc)}.err").read_text()[-2000:]

    def close(self) -> None:
        for proc in self.procs:
            if proc.poll() is None:
                proc.kill()
                proc.wait(10)


def _lock_holder(state: StateStore) -> str | None:
    with state.read() as conn:
        row = conn.exec_driver_sql("SELECT holder FROM headend_scheduler_lock").one_or_none()
    return row[0] if row else None


def _ok_attempts(state: StateStore) -> pl.DataFrame:
    with state.read() as conn:
        rows = conn.exec_driver_sql(
            "SELECT round_id, meter_id FROM headend_comm_log WHERE outcome = 'ok'"
        ).all()
    return pl.DataFrame([tuple(r) for r in rows], schema=["round_id", "meter_id"], orient="row")


def _takeover(tmp_path: Path, data_dir: Path, fleet: Path) -> None:
    state = StateStore.open(data_dir)
    assert import_fleet(state, fleet, buckets=1).applied
    daemons = Daemons(tmp_path, data_dir)
    try:
        active, active_id = daemons.start()
        _wait("the active daemon's first completed round",
              lambda: any(s == ledger.DONE for _, s, _, _ in ledger.runs(state, "intraday")))
        standby, standby_id = daemons.start()
        _wait("the standby to say it stands by", lambda: _events(state, "standby"))
        assert _lock_holder(state) == active_id and standby.poll() is None

        def interrupted() -> ledger.RunKey | None:
            # a run of the active daemon that has landed some meters and not all
            for key, run_state, _, holder in ledger.runs(state, "intraday"):
                done = ledger.meters_done(state, key)
                if run_state == ledger.RUNNING and holder == active_id and 0 < len(done) < METERS - 3:
                    return key
            return None

        key = _wait("a round in the middle", interrupted)
        active.send_signal(signal.SIGKILL)
        killed_at = time.monotonic()
        active.wait(10)
        landed_before = ledger.meters_done(state, key)
        _wait("the standby to take the lock", lambda: _lock_holder(state) == standby_id,
              timeout=LEASE_S + RETRY_S + MARGIN_S)
        assert time.monotonic() - killed_at <= LEASE_S + RETRY_S + MARGIN_S

        def resumed_and_went_on() -> bool:
            runs = {k: (s, n, h) for k, s, n, h in ledger.runs(state, "intraday")}
            later = [k for k, (s, _, h) in runs.items()
                     if k.scheduled_at > key.scheduled_at and s == ledger.DONE and h == standby_id]
            return runs[key][0] == ledger.DONE and len(later) >= 1

        _wait("the interrupted round resumed and a later round done", resumed_and_went_on)
        standby.send_signal(signal.SIGTERM)
        assert standby.wait(60) == 0, daemons.errors(standby)
    finally:
        daemons.close()

    runs = {k: (s, n, h) for k, s, n, h in ledger.runs(state, "intraday")}
    assert runs[key][1:] == (2, standby_id)  # run twice: begun by the active, finished by the standby
    attempts = _ok_attempts(state).with_columns(
        key=pl.col("round_id").str.extract(r"^(intraday_.+_run)\d+$"),
        run=pl.col("round_id").str.extract(r"_run(\d+)$").cast(pl.Int32),
    )
    # Neither doubled nor lost: in every completed run each meter was read once, and in the
    # interrupted one the resumed run read exactly the meters the killed daemon had not landed.
    completed = {k.round_prefix for k, (s, _, _) in runs.items() if s == ledger.DONE}
    per_run = attempts.filter(pl.col("key").is_in(list(completed))).group_by("key", "meter_id").len()
    assert per_run["len"].max() == 1
    assert per_run.group_by("key").len()["len"].to_list() == [METERS] * len(completed)
    mine = attempts.filter(pl.col("key") == key.round_prefix)
    assert set(mine.filter(pl.col("run") == 1)["meter_id"]) == landed_before
    assert set(mine.filter(pl.col("run") == 2)["meter_id"]) == {
        f"SIM{i:06d}" for i in range(1, METERS + 1)} - landed_before
    # Landing is exactly-once: no interval twice across both daemons' batches.
    landed = pl.concat([b.read() for b in list_batches(data_dir)])
    assert landed.height > 0
    assert landed.select(pl.struct("meter_id", "quantity", "ts").is_duplicated().sum()).item() == 0
    events = _events(state)
    assert "already-done" not in events and events.count("resumed") == 1
    state.dispose()


def _events(state: StateStore, kind: str | None = None) -> list[str]:
    with state.read() as conn:
        kinds = [r[0] for r in conn.exec_driver_sql("SELECT kind FROM headend_daemon_events ORDER BY id")]
    return [k for k in kinds if kind is None or k == kind]


@pytest.mark.slow
@pytest.mark.timeout(180)
def test_standby_takes_over_on_sqlite(tmp_path: Path, data_dir: Path, simulated_fleet: Path) -> None:
    _takeover(tmp_path, data_dir, simulated_fleet)


@pytest.mark.slow
@pytest.mark.timeout(180)
def test_standby_takes_over_on_postgres(
    tmp_path: Path, data_dir: Path, simulated_fleet: Path, pg_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AMR_STATE_URL", pg_url)
    _takeover(tmp_path, data_dir, simulated_fleet)
