"""A serial line (or pseudo-terminal) as asyncio streams: pyserial configures, the loop reads.

pyserial sets baud rate, parity and stop bits on the device; the file descriptor is then
handed to the event loop as a pipe, so thousands of waits share one thread and none blocks.
"""

from __future__ import annotations

import asyncio
import io
import os
from typing import Any

import serial

from protocols.errors import ConnectionLost


class _WriteProtocol(asyncio.streams.FlowControlMixin):
    """Flow control plus the close waiter that StreamWriter.wait_closed needs on a pipe."""

    def __init__(self) -> None:
        super().__init__()
        self._closed: asyncio.Future[None] = asyncio.get_running_loop().create_future()

    def connection_lost(self, exc: Exception | None) -> None:
        super().connection_lost(exc)
        if not self._closed.done():
            self._closed.set_result(None)

    def _get_close_waiter(self, stream: Any) -> asyncio.Future[None]:
        return self._closed


class PipeWriter(asyncio.StreamWriter):
    """A writer that also closes the read half, so one close ends the whole line."""

    def __init__(
        self,
        transport: asyncio.WriteTransport,
        protocol: _WriteProtocol,
        reader: asyncio.StreamReader,
        read_transport: asyncio.ReadTransport,
    ) -> None:
        super().__init__(transport, protocol, reader, asyncio.get_running_loop())
        self._read_transport = read_transport

    def close(self) -> None:
        self._read_transport.close()
        super().close()


async def pipe_streams(fd: int) -> tuple[asyncio.StreamReader, PipeWriter]:
    """Streams over a terminal file descriptor (duplicated: the caller keeps and closes `fd`)."""
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader(limit=1 << 16)
    read_transport, _ = await loop.connect_read_pipe(
        lambda: asyncio.StreamReaderProtocol(reader), io.FileIO(os.dup(fd), "rb", closefd=True)
    )
    write_transport, protocol = await loop.connect_write_pipe(
        _WriteProtocol, io.FileIO(os.dup(fd), "wb", closefd=True)
    )
    return reader, PipeWriter(write_transport, protocol, reader, read_transport)


async def open_serial(
    device: str, *, baudrate: int = 9600, bytesize: int = 8, parity: str = "N", stopbits: int = 1
) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    try:
        port = serial.Serial(
            device,
            baudrate=baudrate,
            bytesize=bytesize,
            parity=parity,
            stopbits=stopbits,
            timeout=0,
            exclusive=True,
        )
    except (serial.SerialException, ValueError, OSError) as exc:
        raise ConnectionLost(
            f"serial line {device} cannot be opened: {exc}",
            hint="check the device path, its permissions and that no other program holds it",
        ) from None
    try:
        return await pipe_streams(port.fileno())
    finally:
        port.close()  # the duplicated descriptors keep the line open with its settings
