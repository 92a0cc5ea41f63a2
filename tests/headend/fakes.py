"""An in-memory meter fleet behind the engine's `Connector` interface, for engine unit tests.

It keeps a 15-minute load profile per meter (one row per interval end, value 100 + slot),
a clock offset, and fault modes; it counts sessions in flight per line and cell.
"""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field

from core.clock import Clock
from core.obis import ACTIVE_IMPORT_INTERVAL, ACTIVE_IMPORT_TOTAL
from core.reading import Reading
from headend.registry import Meter
from headend.sessions import CLOCK, PROFILES, REGISTERS, MeterSession
from protocols.errors import ConnectionLost, MeterTimeout

PERIOD = dt.timedelta(minutes=15)


@dataclass
class FakeMeter:
    meter_id: str
    clock_offset: dt.timedelta = dt.timedelta(0)
    fault: str | None = None  # "silent", "drop", "flaky" (first attempt drops)
    missing: set[dt.datetime] = field(default_factory=set)
    memory: dt.timedelta = dt.timedelta(days=40)
    sessions: int = 0


class FakeSession:
    capabilities = frozenset({CLOCK, PROFILES, REGISTERS})

    def __init__(self, fleet: FakeFleet, meter: FakeMeter) -> None:
        self.fleet, self.meter = fleet, meter

    def _meter_now(self) -> dt.datetime:
        return self.fleet.clock.now() + self.meter.clock_offset

    async def read_clock(self) -> dt.datetime:
        await asyncio.sleep(0)
        return self._meter_now()

    async def shift_time(self, seconds: int) -> None:
        self.meter.clock_offset += dt.timedelta(seconds=seconds)
        self.fleet.corrections.append((self.meter.meter_id, "shift", seconds))

    async def set_clock(self, when: dt.datetime) -> None:
        self.meter.clock_offset = when - self.fleet.clock.now()
        self.fleet.corrections.append((self.meter.meter_id, "set", 0))

    async def read_registers(self) -> list[Reading]:
        now = self.fleet.clock.now()
        return [Reading(self.meter.meter_id, ACTIVE_IMPORT_TOTAL, now, 12345, 0, "Wh", snapshot=True,
                        read_at=now)]

    async def read_profile(self, profile: str, start: dt.datetime, end: dt.datetime) -> list[Reading]:
        await asyncio.sleep(0)
        if self.meter.fault == "drop-mid":
            raise ConnectionLost(f"{self.meter.meter_id}: peer closed during profile read")
        now = self._meter_now()
        oldest = now - self.meter.memory
        rows = []
        ts = start - (start - EPOCH) % PERIOD
        if ts < start:
            ts += PERIOD
        while ts <= end:
            if ts <= now and ts >= oldest and ts not in self.meter.missing:
                slot = int((ts - EPOCH) / PERIOD) % 96
                rows.append(Reading(self.meter.meter_id, ACTIVE_IMPORT_INTERVAL, ts, 100 + slot, 0, "Wh",
                                    read_at=self.fleet.clock.now()))
            ts += PERIOD
        return rows


EPOCH = dt.datetime(2020, 1, 1, tzinfo=dt.UTC)


class FakeFleet:
    def __init__(self, clock: Clock, meters: list[FakeMeter]) -> None:
        self.clock = clock
        self.meters = {m.meter_id: m for m in meters}
        self.corrections: list[tuple[str, str, int]] = []
        self.in_flight: dict[str, int] = {}
        self.peak: dict[str, int] = {}
        self.attempts: dict[str, int] = {}
        self.down = False

    def _enter(self, key: str) -> None:
        self.in_flight[key] = self.in_flight.get(key, 0) + 1
        self.peak[key] = max(self.peak.get(key, 0), self.in_flight[key])

    @asynccontextmanager
    async def session(self, meter: Meter, *, timeout: float, source: str) -> AsyncIterator[MeterSession]:
        fake = self.meters[meter.meter_id]
        self.attempts[meter.meter_id] = self.attempts.get(meter.meter_id, 0) + 1
        keys = ["global", f"line:{meter.url.line}"] + ([f"cell:{meter.cell}"] if meter.cell else [])
        for key in keys:
            self._enter(key)
        try:
            await asyncio.sleep(0.001)
            if self.down or fake.fault == "silent":
                raise MeterTimeout(f"{meter.meter_id}: no answer within {timeout} s")
            if fake.fault == "drop" or (fake.fault == "flaky" and self.attempts[meter.meter_id] % 2 == 1):
                raise ConnectionLost(f"{meter.meter_id}: connection dropped")
            yield FakeSession(self, fake)
        finally:
            for key in keys:
                self.in_flight[key] -= 1
