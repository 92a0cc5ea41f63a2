"""Every simulator fault ends in a classified error or a good answer.

Never a hang, never a partial profile returned as complete.
"""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import Awaitable
from typing import TypeVar

import pytest

from core.clock import VirtualClock
from core.meter_url import MeterUrl
from core.reading import ReadingColumns
from protocols.dlms.errors import DlmsLocalError, FrameError, IncompleteProfile
from protocols.dlms.session import open_session
from protocols.dlms.settings import DlmsMeterSettings
from protocols.dlms.simulator.faults import Faults
from protocols.dlms.simulator.fleet import DlmsFleetSimulator
from protocols.errors import MeterTimeout, RemoteProtocolError

START = dt.datetime(2026, 3, 10, 5, 0, tzinfo=dt.UTC)
DAY = dt.timedelta(days=1)
T = TypeVar("T")


def run(coro: Awaitable[T], limit: float = 30.0) -> T:
    async def bounded() -> T:
        async with asyncio.timeout(limit):
            return await coro

    return asyncio.run(bounded())


def _profile(fault: str, framing: str = "wrapper", timeout: float = 5.0) -> ReadingColumns:
    async def body() -> ReadingColumns:
        clock = VirtualClock(START)
        async with DlmsFleetSimulator(1, framing=framing, clock=clock, faults=[fault]) as fleet:
            url = MeterUrl.parse(fleet.meters[0].url)
            async with open_session(url, timeout=timeout, clock=clock) as session:
                return await session.read_profile("1.0.99.1.0.255", START - DAY, START)

    return run(body())


def test_latency_within_the_timeout_still_reads() -> None:
    rows = _profile("latency=0.05")
    assert len([r for r in rows if r.quantity == "1.0.1.29.0.255"]) == 96


@pytest.mark.parametrize("framing", ["wrapper", "hdlc"])
def test_latency_beyond_the_timeout_is_a_timeout(framing: str) -> None:
    with pytest.raises(MeterTimeout):
        _profile("latency=1", framing=framing, timeout=0.3)


@pytest.mark.parametrize("framing", ["wrapper", "hdlc"])
def test_no_answer_is_a_timeout(framing: str) -> None:
    with pytest.raises(MeterTimeout) as caught:
        _profile("no-answer", framing=framing, timeout=0.3)
    assert caught.value.retryable


@pytest.mark.parametrize("framing", ["wrapper", "hdlc"])
def test_dropped_in_the_middle_of_a_block_transfer_is_an_incomplete_profile(framing: str) -> None:
    with pytest.raises(IncompleteProfile) as caught:
        _profile("drop-block", framing=framing)
    assert caught.value.retryable


@pytest.mark.parametrize("framing", ["wrapper", "hdlc"])
def test_corrupted_checksum_is_a_frame_error(framing: str) -> None:
    with pytest.raises(FrameError):
        _profile("bad-checksum", framing=framing)


def test_missing_intervals_are_absent_not_invented() -> None:
    rows = _profile("missing-intervals=7")
    registers = [r for r in rows if r.quantity == "1.0.1.8.0.255"]
    deltas = [r for r in rows if r.quantity == "1.0.1.29.0.255"]
    assert 80 < len(registers) < 97
    assert len(deltas) < len(registers)
    present = {r.ts for r in registers}
    # every delta spans two consecutive rows that are both present
    assert all(d.ts - dt.timedelta(minutes=15) in present for d in deltas)


def test_register_rollover_gives_no_negative_delta() -> None:
    rows = _profile("rollover=5")
    assert all(r.value < 10**5 for r in rows if r.quantity == "1.0.1.8.0.255")
    assert all(r.value >= 0 for r in rows if r.quantity == "1.0.1.29.0.255")


def test_clock_drift_shows_in_the_offset() -> None:
    async def body() -> float:
        clock = VirtualClock(START)
        async with (
            DlmsFleetSimulator(1, clock=clock, faults=["clock-drift=120"]) as fleet,
            open_session(MeterUrl.parse(fleet.meters[0].url), timeout=5, clock=clock) as session,
        ):
            return (await session.read_clock()).offset_seconds

    assert run(body()) == 120


def test_a_small_pdu_forces_many_blocks_and_still_reads_everything() -> None:
    async def body() -> tuple[int, list]:  # type: ignore[type-arg]
        clock = VirtualClock(START)
        async with DlmsFleetSimulator(1, clock=clock) as fleet:
            url = MeterUrl.parse(fleet.meters[0].url)
            async with open_session(
                url, timeout=5, clock=clock, settings=DlmsMeterSettings(max_pdu=128)
            ) as s:
                rows = await s.read_profile("1.0.99.1.0.255", START - DAY, START)
            return fleet.simulated[fleet.meters[0].meter_id].releases, rows

    releases, rows = run(body())
    assert releases == 1
    # import and export registers for 97 rows, and their 96 interval deltas each
    assert len(rows) == 97 * 2 + 96 * 2


def test_unknown_fault_names_the_known_ones() -> None:
    with pytest.raises(DlmsLocalError, match="lightning") as caught:
        Faults.parse(["lightning"])
    assert caught.value.hint is not None and "drop-block" in caught.value.hint


def test_every_fault_error_is_a_remote_protocol_error() -> None:
    for cls in (MeterTimeout, FrameError, IncompleteProfile):
        assert issubclass(cls, RemoteProtocolError)
