"""Kill -9 in the middle of a round, restart: nothing lost, nothing twice (real processes)."""

from __future__ import annotations

import asyncio
import datetime as dt
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import polars as pl
import pytest

from core.config import HeadendSettings
from core.landing import list_batches
from core.state import StateStore
from core.timezones import local_date, local_midnight_utc
from headend.poll import poll_meters
from headend.registry import import_fleet, list_meters

SIMULATOR = textwrap.dedent("""
    import asyncio, sys
    from pathlib import Path
    from protocols.dlms.simulator.fleet import DlmsFleetSimulator
    async def main():
        async with DlmsFleetSimulator(40, faults=["latency=0.01"], seed=9) as sim:
            sim.write_fleet_file(Path(sys.argv[1]))
            print("READY", flush=True)
            await asyncio.Event().wait()
    asyncio.run(main())
""")
POLLER = textwrap.dedent("""
    import asyncio, sys
    from pathlib import Path
    from core.config import HeadendSettings
    from core.state import StateStore
    from headend.poll import PollOptions, poll_meters
    from headend.registry import list_meters
    data_dir = Path(sys.argv[1])
    state = StateStore.open(data_dir)
    settings = HeadendSettings(concurrency=4, per_line=1, session_timeout_s=30)
    # Small landing units, so the kill finds some batches landed and some meters unread.
    asyncio.run(poll_meters(state, data_dir, list_meters(state), settings=settings,
                            options=PollOptions(flush_rows=300)))
""")


@pytest.mark.slow
@pytest.mark.timeout(90)
def test_sigkill_mid_round_then_restart_is_exactly_once(data_dir: Path, tmp_path: Path) -> None:
    fleet = tmp_path / "fleet.csv"
    sim = subprocess.Popen([sys.executable, "-c", SIMULATOR, str(fleet)], stdout=subprocess.PIPE, text=True)
    try:
        assert sim.stdout is not None and sim.stdout.readline().strip() == "READY"
        text = fleet.read_text().replace("registers,profile,clock", "profile")
        fleet.write_text(text)
        state = StateStore.open(data_dir)
        assert import_fleet(state, fleet, buckets=2).applied
        poller = subprocess.Popen([sys.executable, "-c", POLLER, str(data_dir)], cwd=tmp_path)
        deadline = time.monotonic() + 40
        while time.monotonic() < deadline and len(list(list_batches(data_dir))) < 2:
            time.sleep(0.02)
        assert poller.poll() is None, "the round ended before it could be killed"
        poller.send_signal(signal.SIGKILL)
        poller.wait(10)
        landed_before = len(list(list_batches(data_dir)))
        assert landed_before >= 2
        settings = HeadendSettings(concurrency=8, per_line=1, session_timeout_s=30)
        report = asyncio.run(asyncio.wait_for(
            poll_meters(state, data_dir, list_meters(state), settings=settings), timeout=60))
        assert report.ok == 40, report.failures
    finally:
        sim.send_signal(signal.SIGTERM)
        sim.wait(10)
    frame = pl.concat([b.read() for b in list_batches(data_dir)])
    frame = frame.filter(pl.col("quantity") == "1.0.1.8.0.255")
    assert frame.select(pl.struct("meter_id", "ts").is_duplicated().sum()).item() == 0
    now = dt.datetime.now(dt.UTC)
    for meter_id, group in frame.sort("ts").group_by("meter_id"):
        ts = group["ts"]
        assert ts.diff().drop_nulls().unique().to_list() == [dt.timedelta(minutes=15)], meter_id
        assert now - ts.max() < dt.timedelta(minutes=35)
        first = local_midnight_utc(local_date(now) - dt.timedelta(days=1))
        assert ts.min() == first + dt.timedelta(minutes=15)
    assert frame["meter_id"].n_unique() == 40
