"""The DLMS session adapter: wraps protocols.dlms sessions in the engine's MeterSession."""

from __future__ import annotations

from contextlib import AbstractAsyncContextManager

from core.clock import Clock
from headend.errors import UnsupportedMeter
from headend.keystore import KeyStore
from headend.registry import Meter
from headend.sessions import MeterSession


def open_dlms_session(
    meter: Meter, *, timeout: float, source: str, clock: Clock, keystore: KeyStore
) -> AbstractAsyncContextManager[MeterSession]:
    raise UnsupportedMeter(
        f"meter {meter.meter_id}: DLMS sessions are not wired in this build yet",
        hint="poll Modbus meters, or update the head-end once protocols.dlms.session exists",
    )
