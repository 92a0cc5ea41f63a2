"""Modbus errors: each subclasses the protocol error that says who is at fault and whether to retry.

The head-end's polling policy reads `retryable`; nothing in this package retries.
"""

from __future__ import annotations

from protocols.errors import (
    BadValue,
    ConnectionLost,
    LocalProtocolError,
    MeterTimeout,
    ProtocolError,
    RemoteProtocolError,
)


class ModbusError(ProtocolError):
    """The base of every Modbus error (a ProtocolError, so an AmrError)."""


class MapError(ModbusError, LocalProtocolError):
    """A register map that is missing or malformed: names the file, the entry and the reason."""

    error_class = "map"


class LineSettingsError(ModbusError, LocalProtocolError):
    """Serial line settings in a meter URL that no Modbus line uses (parity, data bits, stop bits, baud)."""

    error_class = "line-settings"


class SimulatorError(ModbusError, LocalProtocolError):
    """A simulated fleet asked for something it cannot be (no meters, too many on one line)."""

    error_class = "simulator"


class ModbusExceptionResponse(ModbusError, RemoteProtocolError):
    """The meter answered with a Modbus exception code."""

    error_class = "modbus-exception"

    def __init__(self, message: str, *, code: int, retryable: bool, hint: str | None = None) -> None:
        super().__init__(message, retryable=retryable, hint=hint)
        self.code = code


class MapMismatch(ModbusExceptionResponse):
    """Illegal function / data address / data value: the map does not fit this meter."""

    error_class = "map-mismatch"


class ModbusTimeout(ModbusError, MeterTimeout):
    """No answer within the timeout (retryable)."""


class ModbusCrcError(ModbusError, RemoteProtocolError):
    """Bytes came back but never formed a frame with a good CRC (noise on the line; retryable)."""

    error_class = "crc"

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        super().__init__(message, retryable=True, hint=hint)


class ModbusConnectionLost(ModbusError, ConnectionLost):
    """The TCP connection or the serial port could not be opened or dropped (retryable)."""


class ModbusBadValue(ModbusError, BadValue):
    """A register decoded to NaN, infinity or outside the map's declared range."""
