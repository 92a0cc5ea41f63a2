"""A scheduled daemon round polled through an executor, shared by the local-executor test and
the LocalCluster test in tests/scaleout."""

from __future__ import annotations

import asyncio
import datetime as dt
from pathlib import Path

import polars as pl

from core.config import HeadendSettings, Settings
from core.executor import Executor
from core.landing import list_batches
from core.obis import ACTIVE_IMPORT_TOTAL
from core.state import StateStore
from headend import ledger
from headend.daemon import Daemon, DaemonOptions
from headend.ledger import RunKey
from headend.registry import import_fleet, list_meters
from protocols.modbus.simulator import ModbusFleetSimulator

BUCKETS = 4


def scheduled_round_on(executor: Executor, data_dir: Path, tmp_path: Path, meters: int = 8) -> None:
    """Run one scheduled round (a ledger key) through `executor`, then the same key again."""
    state = StateStore.open(data_dir)
    settings = Settings(data_dir=data_dir, buckets=BUCKETS,
                        headend=HeadendSettings(session_timeout_s=5, retries=1, backoff_s=0))
    key = RunKey("daily-bucket-0000", dt.datetime.now(dt.UTC).replace(microsecond=0))

    async def main() -> None:
        async with ModbusFleetSimulator(meters=meters, seed=9) as sim:
            assert import_fleet(state, sim.write_fleet_file(tmp_path / "fleet.csv"), buckets=BUCKETS).applied
            daemon = Daemon(state, data_dir, settings, options=DaemonOptions(), executor=executor)
            # the whole fleet under one key (bucket None), so it spreads over several shards
            await daemon.poll_round("daily", key=key)
            await daemon.poll_round("daily", key=key)  # a duplicate firing of the same run

    asyncio.run(asyncio.wait_for(main(), timeout=60))
    assert ledger.runs(state) == [(key, ledger.DONE, 1, ledger.runs(state)[0][3])]
    with state.read() as conn:
        rounds = [r[0] for r in conn.exec_driver_sql(
            "SELECT DISTINCT round_id FROM headend_comm_log WHERE outcome = 'ok'")]
        kinds = [r[0] for r in conn.exec_driver_sql("SELECT kind FROM headend_daemon_events")]
    buckets = {m.bucket for m in list_meters(state)}
    assert len(buckets) > 1
    # one round per shard, named after the run, so the ledger finds them all
    assert sorted(rounds) == sorted(f"{key.round_id(1)}-b{b:04d}" for b in buckets)
    assert ledger.meters_done(state, key) == {m.meter_id for m in list_meters(state)}
    assert kinds == ["already-done"]
    landed = pl.concat([b.read() for b in list_batches(data_dir)])
    totals = landed.filter(pl.col("quantity") == ACTIVE_IMPORT_TOTAL)
    assert totals.height == meters and totals["meter_id"].n_unique() == meters  # once each, not twice
    state.dispose()
