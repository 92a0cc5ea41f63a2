from __future__ import annotations

import asyncio
import datetime as dt
from pathlib import Path

import pytest

from core.clock import VirtualClock
from core.meter_url import MeterUrl
from core.state import StateStore
from core.timezones import LOCAL_TZ
from protocols.dlms.counters import MemoryCounterStore, StateCounterStore
from protocols.dlms.errors import DlmsAuthenticationFailed, DlmsLocalError
from protocols.dlms.reader import DEFAULT_QUANTITIES, read_dlms_meter, recover_invocation_counter
from protocols.dlms.simulator.fleet import DlmsFleetSimulator

START = dt.datetime(2026, 3, 10, 5, 0, tzinfo=dt.UTC)


def _read(**options: object) -> list:  # type: ignore[type-arg]
    async def body() -> list:  # type: ignore[type-arg]
        clock = VirtualClock(START)
        async with DlmsFleetSimulator(1, clock=clock, faults=["clock-drift=-5"]) as fleet:
            return await read_dlms_meter(
                MeterUrl.parse(fleet.meters[0].url), "M1", clock=clock, timeout=5, source="test", **options
            )  # type: ignore[arg-type]

    return asyncio.run(body())


def test_clock_only_is_the_offset_in_milliseconds() -> None:
    (reading,) = _read(clock_only=True)
    assert reading.quantity == "0.0.1.0.0.255" and reading.value == -5000 and reading.scale == -3


def test_default_reads_the_billing_registers() -> None:
    readings = _read()
    assert {r.quantity for r in readings[1:]} == set(DEFAULT_QUANTITIES)
    assert all(r.meter_id == "M1" and r.source == "test" for r in readings)


def test_profile_by_alias_and_events() -> None:
    daily = _read(profile="daily", start=START - dt.timedelta(days=3), end=START)
    assert {r.quantity for r in daily[1:]} == {f"1.0.1.8.{rate}.255" for rate in range(5)}
    midnights = sorted({r.ts for r in daily[1:]})
    assert [t.astimezone(LOCAL_TZ).hour for t in midnights] == [0, 0, 0]
    events = _read(profile="events", start=START - dt.timedelta(days=9), end=START)
    assert events[1:] and all(r.quantity == "0.0.96.11.0.255" for r in events[1:])


def test_naive_range_is_refused() -> None:
    with pytest.raises(DlmsLocalError, match="time zone"):
        _read(profile="load", start=dt.datetime(2026, 3, 9), end=dt.datetime(2026, 3, 10))


def test_lost_counter_is_recovered_from_the_meter() -> None:
    async def body() -> tuple[int, int]:
        clock = VirtualClock(START)
        async with DlmsFleetSimulator(1, clock=clock, auth="hls-gmac") as fleet:
            meter = fleet.meters[0]
            url = MeterUrl.parse(meter.url)
            first = MemoryCounterStore(block=50)
            await read_dlms_meter(
                url, "M1", clock=clock, secrets=fleet.secrets, counters=first, clock_only=True
            )
            lost = MemoryCounterStore()  # the store was lost: counters would restart at 1
            assert meter.key_id is not None
            seen = await recover_invocation_counter(url, meter.key_id, lost, timeout=5)
            await read_dlms_meter(
                url, "M1", clock=clock, secrets=fleet.secrets, counters=lost, clock_only=True
            )
            return seen, lost.next_counter(meter.key_id)

    seen, after = asyncio.run(body())
    assert seen >= 2 and after > seen


def _inverted_meter_read(model: str) -> list:  # type: ignore[type-arg]
    async def body() -> list:  # type: ignore[type-arg]
        clock = VirtualClock(START)
        async with DlmsFleetSimulator(1, clock=clock, faults=["inverted-deviation"]) as fleet:
            url = MeterUrl.parse(fleet.meters[0].url + f"&model={model}")
            return await read_dlms_meter(
                url,
                "M1",
                clock=clock,
                timeout=5,
                profile="billing",
                start=START - dt.timedelta(days=70),
                end=START,
            )

    return asyncio.run(body())


def test_a_meter_that_inverts_the_deviation_is_read_right_with_its_named_model() -> None:
    readings = _inverted_meter_read("deviation-inverted")
    assert readings[0].value == 0  # the clock agrees with the head-end
    # billing snapshots at local month starts (00:00 in Hanoi = 17:00 UTC the day before)
    snapshots = [r for r in readings[1:] if r.quantity == "1.0.1.8.0.255"]
    assert [r.ts for r in snapshots] == [
        dt.datetime(2025, 12, 31, 17, tzinfo=dt.UTC),
        dt.datetime(2026, 1, 31, 17, tzinfo=dt.UTC),
        dt.datetime(2026, 2, 28, 17, tzinfo=dt.UTC),
    ]
    assert {r.quantity for r in readings[1:]} >= {"1.0.1.8.1.255", "1.0.1.6.0.255"}


def test_without_the_setting_the_inverted_clock_is_off_by_fourteen_hours() -> None:
    readings = _inverted_meter_read("generic")
    assert readings[0].value == 14 * 3600 * 1000


def test_a_restarted_head_end_never_reuses_a_counter(tmp_path: Path) -> None:
    async def body() -> None:
        clock = VirtualClock(START)
        async with DlmsFleetSimulator(1, clock=clock, auth="hls-gmac") as fleet:
            url = MeterUrl.parse(fleet.meters[0].url)
            for _ in range(2):  # each pass is a fresh process's store on the same state.db
                durable = StateCounterStore(StateStore.open(tmp_path), block=10)
                await read_dlms_meter(
                    url, "M1", clock=clock, secrets=fleet.secrets, counters=durable, clock_only=True
                )
            # A store that forgets (counters from 1 again) is refused by the meter as a replay.
            with pytest.raises(DlmsAuthenticationFailed):
                await read_dlms_meter(
                    url,
                    "M1",
                    clock=clock,
                    secrets=fleet.secrets,
                    counters=MemoryCounterStore(),
                    clock_only=True,
                )

    asyncio.run(body())
