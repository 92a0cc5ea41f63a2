"""Client sessions against the simulator over real sockets and pseudo-terminals."""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import pytest

from core.clock import VirtualClock
from core.meter_url import MeterUrl
from core.reading import ReadingColumns, to_frame
from protocols.dlms.errors import (
    AccessDenied,
    DlmsAuthenticationFailed,
    DlmsLocalError,
)
from protocols.dlms.session import open_session
from protocols.dlms.settings import DlmsMeterSettings
from protocols.dlms.simulator.fleet import DlmsFleetSimulator
from protocols.errors import ConnectionLost
from protocols.simulation.household import HouseholdLoad

from .conftest import START

T = TypeVar("T")
DAY_START = START - dt.timedelta(days=1)


def run(coro: Awaitable[T], limit: float = 30.0) -> T:
    async def bounded() -> T:
        async with asyncio.timeout(limit):
            return await coro

    return asyncio.run(bounded())


async def _with_fleet(body: Callable[[DlmsFleetSimulator], Awaitable[T]], **options: Any) -> T:
    async with DlmsFleetSimulator(1, clock=options.pop("clock"), **options) as fleet:
        return await body(fleet)


TRANSPORTS = [
    ("wrapper", "none", False),
    ("hdlc", "none", False),
    ("hdlc", "lls", True),
    ("wrapper", "lls", False),
    ("wrapper", "hls-gmac", False),
    ("hdlc", "hls-gmac", False),
    ("hdlc", "hls-gmac", True),
]


@pytest.mark.parametrize(("framing", "auth", "pty"), TRANSPORTS)
def test_clock_registers_and_a_day_of_profile(
    framing: str, auth: str, pty: bool, clock: VirtualClock
) -> None:
    async def body(fleet: DlmsFleetSimulator) -> None:
        meter = fleet.meters[0]
        url = MeterUrl.parse(meter.url)
        async with open_session(
            url, secrets=fleet.secrets, timeout=5, clock=clock, meter_id=meter.meter_id
        ) as s:
            meter_clock = await s.read_clock()
            assert meter_clock.meter_time == START and meter_clock.deviation == -420
            assert meter_clock.offset_seconds == 0
            readings = await s.read_registers(
                ["1.0.1.8.0.255", "1.0.1.8.1.255", "1.0.32.7.0.255", "1.0.1.6.0.255"]
            )
            profile = await s.read_profile("1.0.99.1.0.255", DAY_START, START)
        load = HouseholdLoad(meter.meter_id, 1)
        by_code = {r.quantity: r for r in readings}
        assert by_code["1.0.1.8.0.255"].decimal == load.register_wh(START)
        assert by_code["1.0.1.8.0.255"].unit == "Wh" and by_code["1.0.1.8.0.255"].snapshot
        assert by_code["1.0.32.7.0.255"].scale == -1 and by_code["1.0.32.7.0.255"].unit == "V"
        assert not by_code["1.0.1.6.0.255"].snapshot and by_code["1.0.1.6.0.255"].ts <= START
        deltas = [r for r in profile if r.quantity == "1.0.1.29.0.255"]
        assert len(deltas) == 96
        assert [d.ts for d in deltas] == [DAY_START + dt.timedelta(minutes=15 * i) for i in range(1, 97)]
        assert all(d.value == load.interval_wh(d.ts) for d in deltas)
        assert sum(d.value for d in deltas) == load.register_wh(START) - load.register_wh(DAY_START)
        # handed over as columns: the same rows whether iterated or made into the landing frame
        assert isinstance(profile, ReadingColumns) and profile.meter_id == meter.meter_id
        assert profile.to_frame().equals(to_frame(list(profile)))

    run(_with_fleet(body, clock=clock, framing=framing, auth=auth, pty=pty))


def test_hdlc_segments_both_ways(clock: VirtualClock) -> None:
    async def body(fleet: DlmsFleetSimulator) -> None:
        url = MeterUrl.parse(fleet.meters[0].url)
        settings = DlmsMeterSettings(hdlc_max_info=32)
        async with open_session(url, timeout=5, clock=clock, settings=settings) as s:
            readings = await s.read_registers(
                [
                    "1.0.1.8.0.255",
                    "1.0.1.8.1.255",
                    "1.0.1.8.2.255",
                    "1.0.1.8.3.255",
                    "1.0.1.8.4.255",
                    "1.0.2.8.0.255",
                ]
            )
            assert len(readings) == 6
            rates = sum(
                r.value
                for r in readings
                if r.quantity.startswith("1.0.1.8.") and r.quantity != "1.0.1.8.0.255"
            )
            assert rates == next(r.value for r in readings if r.quantity == "1.0.1.8.0.255")

    run(_with_fleet(body, clock=clock, framing="hdlc"))


def test_wrong_lls_password_is_rejected_in_the_aare(clock: VirtualClock) -> None:
    async def body(fleet: DlmsFleetSimulator) -> None:
        with pytest.raises(DlmsAuthenticationFailed, match="authentication failed") as caught:
            async with open_session(
                MeterUrl.parse(fleet.meters[0].url), secrets=lambda _: b"wrong-pw", timeout=5, clock=clock
            ):
                pass
        assert "wrong-pw" not in str(caught.value) and not caught.value.retryable

    run(_with_fleet(body, clock=clock, auth="lls"))


def test_wrong_hls_key_fails_at_reply_to_hls(clock: VirtualClock) -> None:
    async def body(fleet: DlmsFleetSimulator) -> None:
        with pytest.raises(DlmsAuthenticationFailed, match="reply_to_HLS"):
            async with open_session(
                MeterUrl.parse(fleet.meters[0].url), secrets=lambda _: bytes(32), timeout=5, clock=clock
            ):
                pass

    run(_with_fleet(body, clock=clock, auth="hls-gmac"))


def test_service_specific_ciphering(clock: VirtualClock) -> None:
    async def body(fleet: DlmsFleetSimulator) -> None:
        url = MeterUrl.parse(fleet.meters[0].url + "&cipher=service")
        async with open_session(url, secrets=fleet.secrets, timeout=5, clock=clock) as s:
            assert (await s.read_registers(["1.0.1.8.0.255"]))[0].value > 0

    run(_with_fleet(body, clock=clock, auth="hls-gmac"))


def test_set_clock_and_shift_time(clock: VirtualClock) -> None:
    async def body(fleet: DlmsFleetSimulator) -> None:
        async with open_session(
            MeterUrl.parse(fleet.meters[0].url), secrets=fleet.secrets, timeout=5, clock=clock
        ) as s:
            target = START + dt.timedelta(minutes=3)
            await s.set_clock(target)
            assert (await s.read_clock()).meter_time == target
            await s.shift_time(-30)
            assert (await s.read_clock()).meter_time == target - dt.timedelta(seconds=30)
            with pytest.raises(DlmsLocalError, match="900"):
                await s.shift_time(901)

    run(_with_fleet(body, clock=clock, auth="lls"))


def test_release_happens_when_a_read_fails(clock: VirtualClock) -> None:
    async def body(fleet: DlmsFleetSimulator) -> None:
        with pytest.raises(AccessDenied, match="object-undefined"):
            async with open_session(MeterUrl.parse(fleet.meters[0].url), timeout=5, clock=clock) as s:
                await s.read_registers(["1.0.99.8.0.255"])
        assert fleet.simulated[fleet.meters[0].meter_id].releases == 1

    run(_with_fleet(body, clock=clock))


def test_public_client_reads_the_frame_counter(clock: VirtualClock) -> None:
    async def body(fleet: DlmsFleetSimulator) -> None:
        url = MeterUrl.parse(fleet.meters[0].url)
        async with open_session(url, secrets=fleet.secrets, timeout=5, clock=clock) as s:
            await s.read_clock()
        public = MeterUrl.parse(str(url).split("?")[0] + "?client=16&server=1")
        async with open_session(public, timeout=5, clock=clock) as s:
            assert await s.read_frame_counter() >= 2

    run(_with_fleet(body, clock=clock, auth="hls-gmac"))


def test_a_peer_that_closes_is_a_connection_lost_at_once() -> None:
    async def body() -> None:
        async def slam(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            writer.close()

        server = await asyncio.start_server(slam, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        async with server:
            for scheme in ("dlms+tcp", "dlms+hdlc+tcp"):
                with pytest.raises(ConnectionLost, match=r"closed|failed"):
                    async with open_session(
                        MeterUrl.parse(f"{scheme}://127.0.0.1:{port}?client=16"), timeout=30
                    ):
                        pass

    run(body(), limit=10)
