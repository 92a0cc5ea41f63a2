"""The one place where a registry meter meets its protocol: a session adapter per protocol.

The polling engine sees only `MeterSession` (read the clock, correct it, read registers,
a profile by inclusive time range, events) and `Connector` (open a session for a meter
within a time budget). A protocol that lacks an operation says so with `capabilities`,
so the engine never asks a Modbus meter for its load profile.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import AsyncIterator, Sequence
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Any, Protocol

from core.clock import Clock, SystemClock
from core.reading import Reading
from headend.errors import UnsupportedMeter
from headend.keystore import KeyStore
from headend.registry import Meter
from protocols.modbus.client import read_modbus_meter

CLOCK = "clock"
PROFILES = "profiles"
EVENTS = "events"
REGISTERS = "registers"
SET_CLOCK = "set-clock"


class MeterSession(Protocol):
    capabilities: frozenset[str]

    async def read_clock(self) -> dt.datetime: ...

    async def shift_time(self, seconds: int) -> None: ...

    async def set_clock(self, when: dt.datetime) -> None: ...

    async def read_registers(self) -> list[Reading]: ...

    async def read_profile(self, profile: str, start: dt.datetime, end: dt.datetime) -> Sequence[Reading]:
        """Rows with start <= ts <= end (both bounds inclusive, as DLMS range selection is)."""
        ...

    async def read_events(self, since: dt.datetime) -> list[Reading]: ...


class Connector(Protocol):
    def session(
        self, meter: Meter, *, timeout: float, source: str
    ) -> AbstractAsyncContextManager[MeterSession]: ...


class ModbusSession:
    """A Modbus meter is a snapshot of registers: no clock, no profiles, no events."""

    capabilities = frozenset({REGISTERS})

    def __init__(self, meter: Meter, *, timeout: float, source: str, clock: Clock) -> None:
        self._meter, self._timeout, self._source, self._clock = meter, timeout, source, clock

    async def read_registers(self) -> list[Reading]:
        return await read_modbus_meter(
            self._meter.url, self._meter.meter_id, clock=self._clock, timeout=self._timeout,
            source=self._source,
        )

    async def read_clock(self) -> dt.datetime:
        raise UnsupportedMeter(f"meter {self._meter.meter_id}: Modbus meters have no clock")

    async def shift_time(self, seconds: int) -> None:
        raise UnsupportedMeter(f"meter {self._meter.meter_id}: Modbus meters have no clock")

    async def set_clock(self, when: dt.datetime) -> None:
        raise UnsupportedMeter(f"meter {self._meter.meter_id}: Modbus meters have no clock")

    async def read_profile(self, profile: str, start: dt.datetime, end: dt.datetime) -> list[Reading]:
        raise UnsupportedMeter(f"meter {self._meter.meter_id}: Modbus meters have no profiles")

    async def read_events(self, since: dt.datetime) -> list[Reading]:
        raise UnsupportedMeter(f"meter {self._meter.meter_id}: Modbus meters have no event log")


class ProtocolConnector:
    """Opens real protocol sessions; DLMS secrets are read from the key store only here."""

    def __init__(
        self, *, keystore: KeyStore | None = None, clock: Clock | None = None, counters: Any = None
    ) -> None:
        self.keystore = keystore or KeyStore()
        self.clock = clock or SystemClock()
        self.counters = counters  # a protocols.dlms.counters store for ciphered sessions

    def session(
        self, meter: Meter, *, timeout: float, source: str
    ) -> AbstractAsyncContextManager[MeterSession]:
        if meter.protocol == "modbus":
            return self._modbus(meter, timeout=timeout, source=source)
        if meter.protocol == "dlms":
            from headend.dlms_session import open_dlms_session

            return open_dlms_session(
                meter, timeout=timeout, source=source, clock=self.clock, keystore=self.keystore,
                counters=self.counters,
            )
        raise UnsupportedMeter(
            f"meter {meter.meter_id}: protocol {meter.protocol!r} has no session adapter",
            hint="use a dlms+... or modbus+... URL",
        )

    @asynccontextmanager
    async def _modbus(self, meter: Meter, *, timeout: float, source: str) -> AsyncIterator[MeterSession]:
        yield ModbusSession(meter, timeout=timeout, source=source, clock=self.clock)


def supported(session: MeterSession, capability: str) -> bool:
    return capability in session.capabilities

