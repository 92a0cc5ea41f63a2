"""pymodbus clients for the three Modbus URL schemes, one request at a time per shared line.

    modbus+tcp      Modbus TCP (MBAP framing); meters are polled concurrently
    modbus+rtu      RTU on a serial line (pyserial), one request at a time per device path
    modbus+rtu+tcp  RTU frames through a serial gateway, one request at a time per gateway

pymodbus's own retries and automatic reconnect are off: a failed request raises at once with
a `retryable` error, and the head-end's polling policy decides whether to try again.
"""

from __future__ import annotations

import asyncio
import weakref
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from pymodbus.client import AsyncModbusSerialClient, AsyncModbusTcpClient
from pymodbus.exceptions import ConnectionException, ModbusException, ModbusIOException
from pymodbus.framer import FramerType

from core.meter_url import MeterUrl, redact
from protocols.modbus.errors import (
    LineSettingsError,
    MapMismatch,
    ModbusConnectionLost,
    ModbusCrcError,
    ModbusError,
    ModbusExceptionResponse,
    ModbusTimeout,
)
from protocols.modbus.maps import Function
from protocols.modbus.plan import ReadBlock
from protocols.modbus.responses import RawHoldingResponse, RawInputResponse, keep_wire_bytes

SCHEMES = ("modbus+tcp", "modbus+rtu", "modbus+rtu+tcp")
_EXCEPTIONS = {
    1: "illegal function", 2: "illegal data address", 3: "illegal data value",
    4: "server device failure", 5: "acknowledge (busy with a long command)", 6: "server device busy",
    8: "memory parity error", 10: "gateway path unavailable", 11: "gateway target device failed to respond",
}
_PARITY = {"NONE": "N", "EVEN": "E", "ODD": "O"}
_MAP_MISMATCH = {1, 2, 3}
_RETRYABLE = {4, 5, 6, 8, 10, 11}

# asyncio locks belong to one event loop; keep one table per loop so tests and tools that
# run several loops one after another never share a lock across loops.
_line_locks: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, dict[str, asyncio.Lock]] = (
    weakref.WeakKeyDictionary()
)


def line_lock(url: MeterUrl) -> asyncio.Lock | None:
    """The lock of the RTU line (serial device or gateway) `url` is on; None for Modbus TCP."""
    if url.scheme == "modbus+tcp":
        return None
    locks = _line_locks.setdefault(asyncio.get_running_loop(), {})
    return locks.setdefault(url.line, asyncio.Lock())


class _WireWatch:
    """Counts bytes received, so a timeout with bytes on the line can be told apart as a CRC error."""

    def __init__(self) -> None:
        self.received = 0

    def __call__(self, sending: bool, data: bytes) -> bytes:
        if not sending:
            self.received += len(data)
        return data


def _client(
    url: MeterUrl, timeout: float, watch: _WireWatch
) -> AsyncModbusTcpClient | AsyncModbusSerialClient:
    client: AsyncModbusTcpClient | AsyncModbusSerialClient
    if url.scheme == "modbus+tcp":  # TCP has no CRC, so no need to watch the bytes
        assert url.host is not None and url.port is not None
        client = AsyncModbusTcpClient(url.host, port=url.port, framer=FramerType.SOCKET, timeout=timeout,
                                      retries=0, reconnect_delay=0, reconnect_delay_max=0)
    else:
        common: dict[str, Any] = {
            "framer": FramerType.RTU, "timeout": timeout, "retries": 0, "reconnect_delay": 0,
            "reconnect_delay_max": 0, "trace_packet": watch,
        }
        if url.scheme == "modbus+rtu":
            assert url.device is not None
            client = AsyncModbusSerialClient(url.device, **_line_settings(url), **common)
        else:
            assert url.host is not None and url.port is not None
            client = AsyncModbusTcpClient(url.host, port=url.port, **common)
    keep_wire_bytes(client)
    return client


def _line_settings(url: MeterUrl) -> dict[str, Any]:
    """Serial settings from the URL, checked here so a typo is a clear error, not pyserial's."""
    parity = url.params.get("parity", "N").upper()
    settings: dict[str, Any] = {
        "baudrate": url.int_param("baud", 9600), "bytesize": url.int_param("bytesize", 8),
        "parity": _PARITY.get(parity, parity), "stopbits": url.int_param("stopbits", 1),
    }
    problems = []
    if settings["parity"] not in ("N", "E", "O"):
        problems.append(f"parity {parity!r} is not N, E or O")
    if settings["bytesize"] not in (7, 8):
        problems.append(f"bytesize {settings['bytesize']} is not 7 or 8")
    if settings["stopbits"] not in (1, 2):
        problems.append(f"stopbits {settings['stopbits']} is not 1 or 2")
    if not 300 <= settings["baudrate"] <= 921_600:
        problems.append(f"baud {settings['baudrate']} is outside 300..921600")
    if problems:
        raise LineSettingsError(
            f"{redact(str(url))}: " + "; ".join(problems),
            hint="Modbus RTU lines usually run 9600 or 19200 baud, 8 data bits, parity N or E")
    return settings


class ModbusSession:
    """An open connection to one Modbus device (a unit id behind a TCP endpoint or on a line)."""

    def __init__(self, url: MeterUrl, client: AsyncModbusTcpClient | AsyncModbusSerialClient,
                 watch: _WireWatch, timeout: float) -> None:
        self.url = url
        self.unit = url.int_param("unit", 1)
        self._client = client
        self._watch = watch
        self._timeout = timeout
        self.requests = 0

    def _where(self, block: ReadBlock) -> tuple[str, str]:
        """The meter and the request, for messages (built only when something failed)."""
        return (f"{redact(str(self.url))} unit {self.unit}",
                f"{block.function} registers {block.address}..{block.address + block.count - 1}")

    async def read(self, block: ReadBlock, *, map_name: str) -> bytes:
        """The register bytes of one request (each register big-endian, as sent); raises a
        ModbusError subclass on any failure."""
        before = self._watch.received
        self.requests += 1
        try:
            if block.function is Function.HOLDING:
                response = await self._client.read_holding_registers(
                    block.address, count=block.count, device_id=self.unit)
            else:
                response = await self._client.read_input_registers(
                    block.address, count=block.count, device_id=self.unit)
        except ConnectionException as exc:
            where, span = self._where(block)
            raise ModbusConnectionLost(f"{where}: connection lost reading {span}: {exc}",
                                       hint="check the meter or gateway is powered and reachable") from exc
        except ModbusIOException as exc:
            where, span = self._where(block)
            if self.url.scheme != "modbus+tcp" and self._watch.received > before:
                raise ModbusCrcError(
                    f"{where}: the answer to {span} failed its CRC check (noise or a wrong baud rate?)",
                    hint="check wiring, termination and the line's baud/parity settings") from exc
            raise ModbusTimeout(f"{where}: no answer to {span} within {self._timeout} s",
                                hint="check the unit id, the line settings and that the meter is powered",
                                ) from exc
        except ModbusException as exc:
            where, span = self._where(block)
            raise ModbusError(f"{where}: reading {span} failed: {exc}") from exc
        if response.isError():
            where, span = self._where(block)
            raise _exception_error(getattr(response, "exception_code", 0), where, span, map_name)
        if not isinstance(response, RawHoldingResponse | RawInputResponse):
            where, span = self._where(block)
            raise ModbusError(f"{where}: {span} was answered with {type(response).__name__}, "
                              "not a register read response")
        payload: bytes = response.payload
        if len(payload) != 2 * block.count:
            where, span = self._where(block)
            raise ModbusError(f"{where}: asked for {block.count} registers of {span}, "
                              f"got {len(payload) // 2}",
                              hint="the meter or gateway answered another request; check the unit id")
        return payload


def _exception_error(code: int, where: str, span: str, map_name: str) -> ModbusExceptionResponse:
    name = _EXCEPTIONS.get(code, "unknown exception")
    if code in _MAP_MISMATCH:
        return MapMismatch(
            f"{where}: the meter refused {span} with exception {code} ({name}): "
            f"register map {map_name!r} does not fit this meter",
            code=code, retryable=False,
            hint="check the meter's model and firmware, and set map= to the map written for it",
        )
    return ModbusExceptionResponse(
        f"{where}: the meter answered {span} with exception {code} ({name})",
        code=code, retryable=code in _RETRYABLE,
        hint="try again later" if code in _RETRYABLE else "see the meter's manual for this exception code",
    )


@asynccontextmanager
async def open_session(url: MeterUrl, *, timeout: float) -> AsyncIterator[ModbusSession]:
    """Connect to `url` (holding its line's lock for RTU) and close when done."""
    if url.scheme not in SCHEMES:
        raise ModbusError(f"{redact(str(url))} is not a Modbus URL", hint="use one of " + ", ".join(SCHEMES))
    lock = line_lock(url)
    if lock is not None:
        await lock.acquire()
    try:
        watch = _WireWatch()
        client = _client(url, timeout, watch)
        try:
            if not await client.connect():
                raise ModbusConnectionLost(
                    f"{redact(str(url))}: could not connect to {url.line} within {timeout} s",
                    hint="check the address, port or serial device, and that nothing else holds the port")
            yield ModbusSession(url, client, watch, timeout)
        finally:
            client.close()
    finally:
        if lock is not None:
            lock.release()
