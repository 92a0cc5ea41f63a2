"""A round run again under the same id (an executor retrying a dead worker's task) takes its
row over; what it reads again is an identical repeat, which ingest counts as a duplicate."""

from __future__ import annotations

import asyncio
import datetime as dt
from pathlib import Path

import polars as pl

from core.clock import VirtualClock
from core.config import HeadendSettings
from core.landing import list_batches
from core.obis import ACTIVE_IMPORT_TOTAL
from core.state import StateStore
from headend.poll import poll_meters
from headend.registry import import_fleet, list_meters
from protocols.modbus.simulator import ModbusFleetSimulator

START = dt.datetime(2026, 3, 10, 3, 0, tzinfo=dt.UTC)


def test_the_same_round_id_twice_is_one_round(data_dir: Path, tmp_path: Path) -> None:
    clock = VirtualClock(START)
    settings = HeadendSettings(concurrency=16, session_timeout_s=5.0, retries=1, backoff_s=0.0)

    async def main() -> tuple[StateStore, list[int]]:
        async with ModbusFleetSimulator(meters=6, seed=5, clock=clock) as sim:
            state = StateStore.open(data_dir)
            assert import_fleet(state, sim.write_fleet_file(tmp_path / "fleet.csv"), buckets=2).applied
            meters = list_meters(state)
            oks = []
            for _ in range(2):
                report = await poll_meters(state, data_dir, meters, settings=settings, clock=clock,
                                           round_id="daily-0001-b0000")
                oks.append(report.ok)
            return state, oks

    state, oks = asyncio.run(asyncio.wait_for(main(), timeout=60))
    assert oks == [6, 6]
    with state.read() as conn:
        rounds = conn.exec_driver_sql("SELECT round_id, meters, ok, outcome FROM headend_rounds").all()
        attempts = conn.exec_driver_sql(
            "SELECT count(*) FROM headend_comm_log WHERE round_id = 'daily-0001-b0000'"
        ).scalar_one()
    assert [tuple(r) for r in rounds] == [("daily-0001-b0000", 6, 6, "done")]
    assert attempts == 12  # both runs' attempts are logged under the round
    landed = pl.concat([b.read() for b in list_batches(data_dir)])
    totals = landed.filter(pl.col("quantity") == ACTIVE_IMPORT_TOTAL)
    # registers are snapshots (no watermark): read again at the same instant, the same values
    assert totals.unique(["meter_id", "quantity", "ts", "value"]).height == totals["meter_id"].n_unique() == 6
    state.dispose()
