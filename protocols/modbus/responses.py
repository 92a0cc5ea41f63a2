"""Read-register responses that keep the wire bytes, and the pymodbus decoder that makes them.

pymodbus's own responses unpack every register into a Python int, one `struct` call each,
and our decoder then packs them back into bytes to unpack whole values. These responses keep
the register bytes as they came (each register big-endian), so a block is decoded with one
`struct.unpack_from`. Exception responses (function code | 0x80) are pymodbus's own.

One decoder serves every client (pymodbus's `register` copies its whole table per client,
which costs more than the read it would speed up); decoding keeps no state, so sharing is safe.
"""

from __future__ import annotations

from typing import Any

from pymodbus.client import AsyncModbusSerialClient, AsyncModbusTcpClient
from pymodbus.exceptions import ModbusIOException
from pymodbus.pdu import DecodePDU
from pymodbus.pdu.register_message import ReadHoldingRegistersResponse, ReadInputRegistersResponse


def _keep_bytes(pdu: Any, data: bytes) -> None:
    """`data` is the PDU after the function code: a byte count, then that many bytes."""
    count = data[0]
    if count >= len(data) or count % 2:
        raise ModbusIOException(f"byte count {count} does not fit a response of {len(data)} bytes",
                                function_code=pdu.function_code)
    pdu.payload = data[1:1 + count]


class RawHoldingResponse(ReadHoldingRegistersResponse):  # type: ignore[misc]
    """Function 03's answer: `payload` holds the registers' bytes."""

    payload: bytes = b""

    def decode(self, data: bytes) -> None:
        _keep_bytes(self, data)

    def __str__(self) -> str:
        # pymodbus formats every decoded response for a debug line, even with debug off
        return f"{type(self).__name__}(dev_id={self.dev_id}, registers={len(self.payload) // 2})"


class RawInputResponse(ReadInputRegistersResponse):  # type: ignore[misc]
    """Function 04's answer: `payload` holds the registers' bytes."""

    payload: bytes = b""

    def decode(self, data: bytes) -> None:
        _keep_bytes(self, data)

    def __str__(self) -> str:
        return f"{type(self).__name__}(dev_id={self.dev_id}, registers={len(self.payload) // 2})"


def _decoder() -> DecodePDU:
    decoder = DecodePDU(False)
    decoder.register(RawHoldingResponse)
    decoder.register(RawInputResponse)
    return decoder


CLIENT_DECODER = _decoder()


def keep_wire_bytes(client: AsyncModbusTcpClient | AsyncModbusSerialClient) -> None:
    """Make `client` answer register reads with `RawHoldingResponse` / `RawInputResponse`."""
    # `client.register(...)` does this too, but copies pymodbus's table for every client
    client.ctx.framer.decoder = CLIENT_DECODER
