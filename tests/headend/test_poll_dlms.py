"""The issue's acceptance test: a DLMS fleet with 10% faulty meters over three rounds, on real
sockets, ends with every recoverable interval stored exactly once and every failure logged."""

from __future__ import annotations

import asyncio
import datetime as dt
from contextlib import AsyncExitStack
from pathlib import Path

import polars as pl
import pytest

from core.clock import VirtualClock
from core.config import HeadendSettings
from core.landing import list_batches
from core.state import StateStore
from core.timezones import local_date, local_midnight_utc
from headend.keystore import KeyStore, env_name
from headend.poll import poll_meters
from headend.registry import import_fleet, list_meters
from headend.sessions import ProtocolConnector
from protocols.dlms.simulator.fleet import DlmsFleetSimulator

START = dt.datetime(2026, 3, 10, 3, 0, tzinfo=dt.UTC)
PERIOD = dt.timedelta(minutes=15)
REGISTER = "1.0.1.8.0.255"
HEALTHY = 36
FAULTS = {"no-answer": ["no-answer"], "drop": ["drop-block"], "drift": ["clock-drift=600"],
          "missing": ["missing-intervals=7"]}


@pytest.mark.slow
def test_faulty_fleet_three_rounds_exactly_once(data_dir: Path, tmp_path: Path) -> None:
    clock = VirtualClock(START)
    # Generous budgets: the test shares two cores with other suites; a slow answer is retried.
    settings = HeadendSettings(concurrency=16, per_line=1, session_timeout_s=1.5, retries=2, backoff_s=0.0,
                               clock_threshold_s=10)

    async def main() -> tuple[dict[str, str], list[object]]:
        async with AsyncExitStack() as stack:
            sims = {"healthy": await stack.enter_async_context(
                DlmsFleetSimulator(HEALTHY, clock=clock, seed=7, first_meter=1))}
            for offset, (name, faults) in enumerate(FAULTS.items()):
                # The drifting meter is read through LLS: the public client may not set clocks.
                auth = "lls" if name == "drift" else "none"
                sims[name] = await stack.enter_async_context(DlmsFleetSimulator(
                    1, clock=clock, seed=7, faults=faults, first_meter=HEALTHY + 1 + offset, auth=auth))
            kinds = {m.meter_id: name for name, sim in sims.items() for m in sim.meters}
            state = StateStore.open(data_dir)
            for name, sim in sims.items():
                path = sim.write_fleet_file(tmp_path / f"{name}.csv")
                text = path.read_text().replace("registers,profile,clock", "profile,clock")
                path.write_text(text)
                assert import_fleet(state, path, buckets=4).applied
            meters = list_meters(state)
            environ = {env_name(ref.split(":", 1)[1]): f"password_hex={secret.hex()}"
                       for sim in sims.values() for m in sim.meters for ref, secret in m.secrets.items()}
            connector = ProtocolConnector(keystore=KeyStore(environ=environ), clock=clock)
            reports = []
            for day in range(3):
                reports.append(await poll_meters(state, data_dir, meters, settings=settings, clock=clock,
                                                 connector=connector))
                if day < 2:
                    clock.advance(dt.timedelta(days=1, hours=2))
            drift_offset = sims["drift"].simulated[sims["drift"].meters[0].meter_id].clock_offset
            assert abs(drift_offset.total_seconds()) < 10, drift_offset
            return kinds, reports

    kinds, reports = asyncio.run(asyncio.wait_for(main(), timeout=90))
    state = StateStore.open(data_dir)
    frame = pl.concat([b.read() for b in list_batches(data_dir)]).filter(pl.col("quantity") == REGISTER)
    assert frame.select(pl.struct("meter_id", "ts").is_duplicated().sum()).item() == 0
    first = local_midnight_utc(local_date(START) - dt.timedelta(days=1))
    last = clock_end = START + dt.timedelta(days=2, hours=4) - PERIOD
    slots = [first + PERIOD * i for i in range(1, int((last - first) / PERIOD) + 1)]
    for meter_id, kind in kinds.items():
        got = set(frame.filter(pl.col("meter_id") == meter_id)["ts"].to_list())
        if kind in ("no-answer", "drop"):
            continue  # not recoverable while the fault lasts
        expected = {ts for ts in slots if kind != "missing" or int(ts.timestamp()) // 900 % 7}
        if kind == "drift":
            # Read on the meter's own (corrected) clock: the first round stopped 600 s early.
            assert expected - got == set() or max(expected - got) < START, sorted(expected - got)[:3]
            continue
        assert got == expected, (meter_id, kind, sorted(expected ^ got)[:4])
    assert clock_end == last
    with state.read() as conn:
        failures = conn.exec_driver_sql(
            "SELECT meter_id, error_class, COUNT(*) FROM headend_comm_log WHERE outcome = 'failed'"
            " GROUP BY meter_id, error_class"
        ).all()
    faulty = {m for m, k in kinds.items() if k in ("no-answer", "drop")}
    logged = {(m, c) for m, c, n in failures if m in faulty and n == 3 * 3}  # 3 attempts x 3 rounds
    assert {m for m, _ in logged} == faulty
    assert {c for m, c in logged if kinds[m] == "no-answer"} == {"timeout"}
    assert all(c for _, c in logged)
    for report in reports:
        assert report.failed == 2 and report.ok == len(kinds) - 2  # type: ignore[attr-defined]
