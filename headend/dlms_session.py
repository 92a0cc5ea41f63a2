"""The DLMS session adapter: a `protocols.dlms.session` session as the engine's MeterSession.

The meter model's named settings (profile codes, clock-sign quirk) become the protocol's
`DlmsMeterSettings`; secrets come from the key store only when the session opens, and the
invocation counters of ciphered sessions live in the operational store.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager

from core.clock import Clock
from core.reading import Reading
from core.state import StateStore
from headend.errors import KeyStoreError
from headend.keystore import KeyStore
from headend.registry import Meter
from headend.sessions import CLOCK, EVENTS, PROFILES, REGISTERS, SET_CLOCK, MeterSession
from protocols.dlms.counters import InvocationCounterStore, StateCounterStore
from protocols.dlms.session import DlmsSession, open_session
from protocols.dlms.settings import DlmsMeterSettings


def secrets_for(meter: Meter, keystore: KeyStore) -> Callable[[str], bytes]:
    """The protocol's secret lookup: a password for LLS, encryption then authentication key for HLS."""
    auth = meter.url.params.get("auth", "none")

    def lookup(reference: str) -> bytes:
        secrets = keystore.resolve(reference)
        if auth == "lls":
            if secrets.password is None:
                raise KeyStoreError(f"key {reference} has no password for meter {meter.meter_id}'s LLS",
                                    hint="add password = ... to the key entry")
            return secrets.password
        if secrets.encryption_key is None or secrets.authentication_key is None:
            raise KeyStoreError(f"key {reference} lacks akey or ekey for meter {meter.meter_id}'s HLS",
                                hint="add akey = HEX and ekey = HEX to the key entry")
        return secrets.encryption_key + secrets.authentication_key

    return lookup


def settings_for(meter: Meter) -> DlmsMeterSettings:
    model = meter.meter_model
    return DlmsMeterSettings(
        deviation_inverted=model.clock_deviation_inverted, load_profile=model.load_profile,
        daily_profile=model.daily_profile, event_log=model.event_log,
    )


class DlmsMeterSession:
    capabilities = frozenset({CLOCK, PROFILES, EVENTS, REGISTERS, SET_CLOCK})

    def __init__(self, meter: Meter, session: DlmsSession) -> None:
        self._meter = meter
        self._session = session

    async def read_clock(self) -> dt.datetime:
        return (await self._session.read_clock()).meter_time

    async def shift_time(self, seconds: int) -> None:
        await self._session.shift_time(seconds)

    async def set_clock(self, when: dt.datetime) -> None:
        await self._session.set_clock(when)

    async def read_registers(self) -> list[Reading]:
        model = self._meter.meter_model
        return await self._session.read_registers([model.total_register, *model.tou_registers.values()])

    async def read_profile(self, profile: str, start: dt.datetime, end: dt.datetime) -> Sequence[Reading]:
        return await self._session.read_profile(profile, start, end)

    async def read_events(self, since: dt.datetime) -> list[Reading]:
        return await self._session.read_events(since, since + dt.timedelta(days=400))


@asynccontextmanager
async def open_dlms_session(
    meter: Meter, *, timeout: float, source: str, clock: Clock, keystore: KeyStore,
    counters: InvocationCounterStore | None = None,
) -> AsyncIterator[MeterSession]:
    async with open_session(
        # counters=None takes the protocol's process-wide store: a fresh store per session
        # would reuse invocation counters, which a meter refuses as a replay
        meter.url, secrets=secrets_for(meter, keystore), counters=counters,
        timeout=timeout, settings=settings_for(meter), meter_id=meter.meter_id, source=source, clock=clock,
    ) as session:
        yield DlmsMeterSession(meter, session)


def counter_store(state: StateStore) -> InvocationCounterStore:
    return StateCounterStore(state)
