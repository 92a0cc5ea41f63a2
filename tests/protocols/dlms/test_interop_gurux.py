"""Our client against a DLMS server that is not ours: Gurux's (gurux-dlms), over the wrapper.

gurux-dlms 1.0.203's Python server calls a few accessors its own classes lack; the shims
below add exactly those (no behaviour of ours). Its profile range filter is broken
(it compares a datetime with 0), so profiles are checked against our simulator only.
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
from gurux_dlms import GXDateTime, GXServerReply  # noqa: E402
from gurux_dlms.enums import AccessMode, InterfaceType, MethodAccessMode, SourceDiagnostic, Unit  # noqa: E402
from gurux_dlms.objects import GXDLMSAssociationLogicalName, GXDLMSClock, GXDLMSRegister  # noqa: E402
from gurux_dlms.secure import GXDLMSSecureServer  # noqa: E402

HANOI = dt.timezone(dt.timedelta(hours=7))
NOON = dt.datetime(2026, 3, 10, 12, 0, tzinfo=HANOI)


def _shim() -> None:
    GXServerReply.setReply = lambda self, value: setattr(self, "reply", value)
    GXServerReply.getConnectionInfo = lambda self: None
    GXServerReply.connectionInfo = None


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
        for item in (clock, energy, export):
            self.items.append(item)
            association.objectList.append(item)
        self.items.append(association)
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
