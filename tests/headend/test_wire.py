"""Bytes per attempt: the communication log counts what really crossed the socket.

A relay on loopback sits between the head-end and each simulated meter and counts the bytes
it passes in each direction; the logged bytes of the attempt must equal its counts.
"""

from __future__ import annotations

import asyncio
import datetime as dt
from pathlib import Path

from core.clock import VirtualClock
from core.config import HeadendSettings
from core.state import StateStore
from headend import wire
from headend.poll import poll_meters
from headend.registry import import_fleet, list_meters
from headend.sessions import ProtocolConnector
from protocols.dlms.simulator.fleet import DlmsFleetSimulator
from protocols.modbus.simulator import ModbusFleetSimulator

START = dt.datetime(2026, 3, 10, 3, 0, tzinfo=dt.UTC)


class Relay:
    """Forwards one TCP endpoint and counts bytes up (client to meter) and down."""

    def __init__(self, target: tuple[str, int]) -> None:
        self.target = target
        self.up = 0
        self.down = 0
        self.pipes: set[asyncio.Task[None]] = set()
        self.server: asyncio.Server | None = None

    async def start(self) -> int:
        self.server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        return int(self.server.sockets[0].getsockname()[1])

    async def _pipe(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, up: bool) -> None:
        try:
            while data := await reader.read(65536):
                if up:
                    self.up += len(data)
                else:
                    self.down += len(data)
                writer.write(data)
                await writer.drain()
        except ConnectionError:
            pass
        finally:
            writer.close()

    async def _serve(self, client_r: asyncio.StreamReader, client_w: asyncio.StreamWriter) -> None:
        meter_r, meter_w = await asyncio.open_connection(*self.target)
        pipes = [asyncio.create_task(self._pipe(client_r, meter_w, True)),
                 asyncio.create_task(self._pipe(meter_r, client_w, False))]
        self.pipes.update(pipes)
        await asyncio.gather(*pipes)

    async def drained(self) -> None:
        """Wait until every relayed connection is closed (each byte counted)."""
        await asyncio.wait_for(asyncio.gather(*self.pipes), timeout=10)
        assert self.server is not None
        self.server.close()


async def _relayed(fleet_file: Path, host_port: str) -> Relay:
    host, port = host_port.split(":")
    relay = Relay((host, int(port)))
    relay_port = await relay.start()
    fleet_file.write_text(fleet_file.read_text().replace(host_port, f"127.0.0.1:{relay_port}"))
    return relay


def _endpoint(url: str) -> str:
    return url.split("://", 1)[1].split("?", 1)[0]


def test_logged_bytes_equal_the_bytes_on_the_socket(data_dir: Path, tmp_path: Path) -> None:
    clock = VirtualClock(START)
    settings = HeadendSettings(concurrency=4, session_timeout_s=5, retries=0)

    async def main() -> tuple[dict[str, Relay], dict[str, int]]:
        async with (
            DlmsFleetSimulator(1, clock=clock, seed=3) as dlms,
            ModbusFleetSimulator(meters=1, seed=3, clock=clock) as modbus,
        ):
            state = StateStore.open(data_dir)
            relays = {}
            for name, sim in (("dlms", dlms), ("modbus", modbus)):
                path = sim.write_fleet_file(tmp_path / f"{name}.csv")
                relays[sim.meters[0].meter_id] = await _relayed(path, _endpoint(str(sim.meters[0].url)))
                assert import_fleet(state, path, buckets=4).applied
            report = await poll_meters(
                state, data_dir, list_meters(state), settings=settings, clock=clock,
                connector=ProtocolConnector(clock=clock),
            )
            assert report.ok == 2, report.failures
            for relay in relays.values():
                await relay.drained()
            with state.read() as conn:
                logged = dict(conn.exec_driver_sql("SELECT meter_id, bytes FROM headend_comm_log").all())
            return relays, logged

    relays, logged = asyncio.run(asyncio.wait_for(main(), timeout=30))
    assert set(logged) == set(relays)
    for meter_id, relay in relays.items():
        assert relay.up > 0 and relay.down > relay.up  # a profile and registers come back
        assert logged[meter_id] == relay.up + relay.down, meter_id


def test_connections_outside_a_tally_are_not_counted() -> None:
    async def main() -> tuple[int, int]:
        async def echo(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            writer.write(await reader.read(100))
            await writer.drain()
            writer.close()

        server = await asyncio.start_server(echo, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        wire.instrument(asyncio.get_running_loop())
        wire.instrument(asyncio.get_running_loop())  # idempotent: counted once, not twice

        async def exchange(payload: bytes) -> None:
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.write(payload)
            await writer.drain()
            assert await reader.read(100) == payload
            writer.close()

        await exchange(b"outside")
        with wire.tally() as counted:
            await exchange(b"inside!!!")
        server.close()
        return counted.sent, counted.received

    assert asyncio.run(asyncio.wait_for(main(), timeout=10)) == (9, 9)
