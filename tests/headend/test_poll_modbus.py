"""The engine against real Modbus simulators over real sockets."""

from __future__ import annotations

import asyncio
import datetime as dt
import time
from pathlib import Path

import polars as pl
import pytest

from core.clock import VirtualClock
from core.config import HeadendSettings
from core.landing import list_batches
from core.obis import ACTIVE_IMPORT_TOTAL
from core.state import StateStore
from headend.poll import poll_meters
from headend.registry import import_fleet, list_meters
from protocols.modbus.simulator import ModbusFleetSimulator

START = dt.datetime(2026, 3, 10, 3, 0, tzinfo=dt.UTC)


@pytest.mark.slow
def test_fifty_modbus_meters_with_no_answer_faults(data_dir: Path, tmp_path: Path) -> None:
    clock = VirtualClock(START)
    # Generous budgets: the test shares two cores with other suites; a slow answer is retried.
    settings = HeadendSettings(concurrency=64, session_timeout_s=1.0, retries=2, backoff_s=0.0)

    async def main() -> tuple[object, ...]:
        async with ModbusFleetSimulator(meters=50, seed=3, clock=clock, faults=["no-answer@0.1"]) as sim:
            fleet_file = sim.write_fleet_file(tmp_path / "fleet.csv")
            state = StateStore.open(data_dir)
            report = import_fleet(state, fleet_file, buckets=4)
            assert report.applied, report.errors
            meters = list_meters(state)
            faulty = {m.meter_id for m in sim.meters if m.faults}
            reports = []
            for _ in range(3):
                began = time.perf_counter()
                reports.append(await poll_meters(state, data_dir, meters, settings=settings, clock=clock))
                print(f"round: {time.perf_counter() - began:.3f} s")
                clock.advance(dt.timedelta(days=1))
            expected = {m.meter_id: [sim.register_wh(m.meter_id, START + dt.timedelta(days=d))
                                     for d in range(3)] for m in sim.meters}
            return reports, faulty, expected, state

    reports, faulty, expected, state = asyncio.run(asyncio.wait_for(main(), timeout=60))
    assert faulty and len(faulty) < 15
    for report in reports:  # type: ignore[attr-defined]
        assert report.ok == 50 - len(faulty)
        assert set(report.failures) == faulty and set(report.failures.values()) == {"timeout"}
    frame = pl.concat([b.read() for b in list_batches(data_dir)])
    totals = frame.filter(pl.col("quantity") == ACTIVE_IMPORT_TOTAL).sort("meter_id", "ts")
    assert totals.select(pl.struct("meter_id", "ts").is_duplicated().sum()).item() == 0
    assert set(totals["meter_id"]) == set(expected) - faulty  # type: ignore[arg-type]
    # The landed register equals the simulator's own register at that moment (kWh resolution).
    for row in totals.iter_rows(named=True):
        day = (row["ts"] - START).days
        simulated = expected[row["meter_id"]][day]  # type: ignore[index]
        landed_wh = row["value"] * 10 ** (row["scale"] + (3 if row["unit"] == "kWh" else 0))
        assert abs(landed_wh - simulated) <= 10 ** max(0, row["scale"] + 3)
    with state.read() as conn:  # type: ignore[attr-defined]
        logged = conn.exec_driver_sql(
            "SELECT meter_id, COUNT(*) FROM headend_comm_log"
            " WHERE outcome = 'failed' AND error_class = 'timeout' GROUP BY meter_id"
        ).all()
    counts = dict(logged)  # type: ignore[arg-type]
    assert all(counts[m] == 3 * 3 for m in faulty)  # three attempts (two retries) per round, three rounds
