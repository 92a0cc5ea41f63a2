"""Gateway and cell limits over real sockets: counting proxies stand in front of the simulators
(as a concentrator or a GPRS cell would) and count the sessions open through them at once."""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
from pathlib import Path

import polars as pl
import pytest

from core.clock import VirtualClock
from core.config import HeadendSettings
from core.state import StateStore
from headend.poll import PollOptions, poll_meters
from headend.registry import import_fleet, list_meters
from protocols.dlms.simulator.fleet import DlmsFleetSimulator
from protocols.modbus.simulator import ModbusFleetSimulator

START = dt.datetime(2026, 3, 10, 3, 0, tzinfo=dt.UTC)


class CountingProxy:
    """Forwards each accepted connection to one target and counts open connections per group."""

    def __init__(self) -> None:
        self.open: dict[str, int] = {}
        self.peak: dict[str, int] = {}
        self.servers: list[asyncio.Server] = []

    async def add(self, group: str, target: tuple[str, int]) -> int:
        async def pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            with contextlib.suppress(ConnectionError):
                while data := await reader.read(65536):
                    writer.write(data)
                    await writer.drain()
            writer.close()

        async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            self.open[group] = self.open.get(group, 0) + 1
            self.peak[group] = max(self.peak.get(group, 0), self.open[group])
            try:
                up_reader, up_writer = await asyncio.open_connection(*target)
                await asyncio.gather(pipe(reader, up_writer), pipe(up_reader, writer))
            finally:
                self.open[group] -= 1

        server = await asyncio.start_server(handle, "127.0.0.1", 0)
        self.servers.append(server)
        return int(server.sockets[0].getsockname()[1])

    def close(self) -> None:
        for server in self.servers:
            server.close()


@pytest.mark.slow
def test_gateway_and_cell_limits_are_never_exceeded(data_dir: Path, tmp_path: Path) -> None:
    clock = VirtualClock(START)
    settings = HeadendSettings(concurrency=50, per_line=2, session_timeout_s=10, retries=1, backoff_s=0.0)

    async def main() -> CountingProxy:
        proxy = CountingProxy()
        async with (
            ModbusFleetSimulator(meters=12, seed=8, clock=clock, transport="rtu+tcp") as gateway,
            DlmsFleetSimulator(12, clock=clock, seed=8, faults=["latency=0.02"]) as dlms,
        ):
            rows = []
            assert gateway.gateway_port is not None
            gateway_port = await proxy.add("gateway", ("127.0.0.1", gateway.gateway_port))
            for m in gateway.meters:
                url = m.url.replace(f":{gateway.gateway_port}?", f":{gateway_port}?")
                rows.append({"meter_id": m.meter_id, "url": url, "route": "G", "read": "registers"})
            for index, m in enumerate(dlms.meters):
                cell = f"cell{index % 3}"
                host_port = m.url.split("//", 1)[1].split("?", 1)[0]
                host, port = host_port.rsplit(":", 1)
                local = await proxy.add(cell, (host, int(port)))
                rows.append({"meter_id": m.meter_id, "url": m.url.replace(host_port, f"127.0.0.1:{local}"),
                             "route": "C", "cell": cell, "read": "profile,registers"})
            path = tmp_path / "fleet.csv"
            pl.DataFrame(rows).write_csv(path)
            state = StateStore.open(data_dir)
            assert import_fleet(state, path, buckets=2).applied
            report = await poll_meters(state, data_dir, list_meters(state), settings=settings, clock=clock,
                                       options=PollOptions(per_cell=2))
            assert report.ok == 24, report.failures
        proxy.close()
        return proxy

    proxy = asyncio.run(asyncio.wait_for(main(), timeout=60))
    assert 1 <= proxy.peak["gateway"] <= 2
    assert all(1 <= proxy.peak[f"cell{c}"] <= 2 for c in range(3))
    assert max(proxy.peak[f"cell{c}"] for c in range(3)) == 2  # the limit was reached, not just kept
