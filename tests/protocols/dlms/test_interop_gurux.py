"""Our client against a DLMS server that is not ours: Gurux's (gurux-dlms), over the wrapper.

gurux-dlms 1.0.203's Python server calls a few accessors its own classes lack; the shims
below add exactly those (no behaviour of ours). Its selective access by range is broken
(`tm >= start >= 0` compares its GXDateTime with 0 and raises), and no setting reaches that
code, so the profile test configures the Gurux meter *without* selective access in its
conformance: our client must then read the whole buffer (with block transfer) and pick the
rows of the range itself, which is what a conformant client does toward such a meter.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import socket
import threading
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import pytest

from core.meter_url import MeterUrl
from protocols.dlms.session import open_session

gurux = pytest.importorskip("gurux_dlms")
from gurux_dlms import GXDateTime, GXDLMSSettings, GXServerReply  # noqa: E402
from gurux_dlms.enums import (  # noqa: E402
    AccessMode,
    Conformance,
    InterfaceType,
    MethodAccessMode,
    SourceDiagnostic,
    Unit,
)
from gurux_dlms.GXDLMSLongTransaction import GXDLMSLongTransaction  # noqa: E402
from gurux_dlms.objects import (  # noqa: E402
    GXDLMSAssociationLogicalName,
    GXDLMSClock,
    GXDLMSProfileGeneric,
    GXDLMSRegister,
)
from gurux_dlms.secure import GXDLMSSecureServer  # noqa: E402

HANOI = dt.timezone(dt.timedelta(hours=7))
NOON = dt.datetime(2026, 3, 10, 12, 0, tzinfo=HANOI)
PERIOD = dt.timedelta(minutes=15)
# The Gurux meter's load profile: a day and a half of 15-minute rows ending at noon, energy
# rising by a different amount each interval (Wh, scaler 0), one interval missing.
PROFILE_ROWS = 144
MISSING_ROW = 100


def _profile_time(index: int) -> dt.datetime:
    return NOON - (PROFILE_ROWS - 1 - index) * PERIOD


def _profile_energy(index: int) -> int:
    return 5_000_000 + sum(100 + (i * 37) % 250 for i in range(index))


def _shim() -> None:
    GXServerReply.setReply = lambda self, value: setattr(self, "reply", value)
    GXServerReply.getConnectionInfo = lambda self: None
    GXServerReply.connectionInfo = None
    # Its GET-NEXT handler reads a misspelt setting (gbtWndowSize) for the window it calls gbtWindowSize.
    GXDLMSSettings.gbtWndowSize = property(lambda self: self.gbtWindowSize)
    # ... and stores the rest of a long answer through a setter its transaction class lacks.
    GXDLMSLongTransaction.setData = lambda self, value: setattr(self, "data", value)


class _GuruxMeter(GXDLMSSecureServer):  # type: ignore[misc]
    def __init__(self) -> None:
        association = GXDLMSAssociationLogicalName()
        super().__init__(association, InterfaceType.WRAPPER)
        clock = GXDLMSClock("0.0.1.0.0.255")
        clock.time = GXDateTime(NOON)
        clock.timeZone = -420
        energy = GXDLMSRegister("1.0.1.8.0.255")
        energy.value, energy.scaler, energy.unit = 123456, 10, Unit.ACTIVE_ENERGY
        export = GXDLMSRegister("1.0.2.8.0.255")
        export.value, export.scaler, export.unit = 789, 0.1, Unit.ACTIVE_ENERGY
        profile_energy = GXDLMSRegister("1.0.1.8.1.255")
        profile_energy.value, profile_energy.scaler, profile_energy.unit = 0, 10, Unit.ACTIVE_ENERGY
        profile = GXDLMSProfileGeneric("1.0.99.1.0.255")
        profile.addCaptureObject(clock, 2, 0)
        profile.addCaptureObject(profile_energy, 2, 0)
        profile.capturePeriod = int(PERIOD.total_seconds())
        rows = [i for i in range(PROFILE_ROWS) if i != MISSING_ROW]
        profile.buffer = [[GXDateTime(_profile_time(i)), _profile_energy(i)] for i in rows]
        profile.entriesInUse = profile.profileEntries = len(profile.buffer)
        for item in (clock, energy, export, profile_energy, profile):
            self.items.append(item)
            association.objectList.append(item)
        self.items.append(association)
        # Its range filter cannot work (see the module's docstring): the meter offers no
        # selective access, and a conformant client reads the whole buffer.
        self.conformance &= ~Conformance.SELECTIVE_ACCESS
        self.initialize()

    def isTarget(self, server: Any, client: Any) -> bool:
        return True

    def onValidateAuthentication(self, authentication: Any, password: Any) -> Any:
        return SourceDiagnostic.NONE

    def onGetAttributeAccess(self, arg: Any) -> Any:
        return AccessMode.READ_WRITE

    def onGetMethodAccess(self, arg: Any) -> Any:
        return MethodAccessMode.ACCESS

    def onPostRead(self, args: Any = None) -> None:
        return None

    def notifyRead(self, *args: Any) -> None:
        return None

    def notifyConnected(self, *args: Any) -> None:
        return None

    def getTransaction(self) -> Any:
        return self.transaction

    def setTransaction(self, value: Any) -> None:
        self.transaction = value

    def _nothing(self, *args: Any) -> None:
        return None

    onFindObject = onPreGet = onPostGet = onPreRead = onPreWrite = onPostWrite = _nothing
    onConnected = onInvalidConnection = onDisconnected = onPreAction = onPostAction = _nothing


@pytest.fixture
def gurux_port() -> Iterator[int]:
    _shim()
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen()

    def serve() -> None:
        while True:
            try:
                connection, _ = listener.accept()
            except OSError:
                return
            meter = _GuruxMeter()
            with connection:
                connection.settimeout(10)
                while data := connection.recv(4096):
                    reply = GXServerReply(data)
                    meter.handleRequest(reply)
                    if reply.reply:
                        connection.sendall(bytes(reply.reply))

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    yield listener.getsockname()[1]
    with contextlib.suppress(OSError):
        listener.shutdown(socket.SHUT_RDWR)  # wakes the blocked accept()
    listener.close()
    thread.join(timeout=5)


@pytest.mark.slow
def test_clock_and_registers_from_a_gurux_meter(gurux_port: int) -> None:
    async def body() -> tuple[Any, list[Any]]:
        url = MeterUrl.parse(f"dlms+tcp://127.0.0.1:{gurux_port}?client=16&server=1")
        async with asyncio.timeout(20), open_session(url, timeout=5) as session:
            clock = await session.read_clock()
            readings = await session.read_registers(["1.0.1.8.0.255", "1.0.2.8.0.255"])
            return clock, readings

    clock, readings = asyncio.run(body())
    assert clock.meter_time == NOON.astimezone(dt.UTC) and clock.deviation == -420
    by_code = {r.quantity: r for r in readings}
    assert (by_code["1.0.1.8.0.255"].value, by_code["1.0.1.8.0.255"].scale) == (123456, 1)
    assert by_code["1.0.1.8.0.255"].decimal == 1234560 and by_code["1.0.1.8.0.255"].unit == "Wh"
    assert by_code["1.0.2.8.0.255"].decimal == Decimal("78.9") and by_code["1.0.2.8.0.255"].scale == -1


@pytest.mark.slow
def test_load_profile_from_a_gurux_meter_without_selective_access(gurux_port: int) -> None:
    start, end = _profile_time(90), _profile_time(130)

    async def body() -> list[Any]:
        url = MeterUrl.parse(f"dlms+tcp://127.0.0.1:{gurux_port}?client=16&server=1")
        async with asyncio.timeout(20), open_session(url, timeout=5) as session:
            assert not session._association.conformance.selective_access
            return await session.read_profile("1.0.99.1.0.255", start.astimezone(dt.UTC), end)

    readings = asyncio.run(body())
    wanted = [i for i in range(90, 131) if i != MISSING_ROW]
    values = {r.ts: r for r in readings if r.quantity == "1.0.1.8.1.255"}
    assert sorted(values) == [_profile_time(i).astimezone(dt.UTC) for i in wanted]
    for i in wanted:
        reading = values[_profile_time(i).astimezone(dt.UTC)]
        # scaler 1: the meter's count of 10 Wh units, kept exactly as value x 10^1
        assert (reading.value, reading.scale, reading.unit) == (_profile_energy(i), 1, "Wh")
    deltas = {r.ts: r.decimal for r in readings if r.quantity == "1.0.1.29.1.255"}
    # An interval inside the range whose previous row is there; none across the missing row.
    expected = {
        _profile_time(i).astimezone(dt.UTC): Decimal(_profile_energy(i) - _profile_energy(i - 1)) * 10
        for i in range(91, 131)
        if MISSING_ROW not in (i, i - 1)
    }
    assert deltas == expected
