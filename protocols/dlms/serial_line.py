"""A serial line (or pseudo-terminal) on the event loop: pyserial configures, the loop reads.

pyserial sets baud rate, parity and stop bits on the device; the file descriptor is then
handed to the event loop as a pair of pipes, so thousands of waits share one thread and none
blocks. The client connects the pipes to its `FramedLine`; the simulator uses streams.
"""

from __future__ import annotations

import asyncio
import io
import os
from typing import Any

import serial

from protocols.dlms.line import FramedLine
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


class _WriteSide(asyncio.Protocol):
    """The write pipe's protocol: flow control and loss go to the line that reads."""

    def __init__(self, line: FramedLine[Any]) -> None:
        self._line = line

    def pause_writing(self) -> None:
        self._line.pause_writing()

    def resume_writing(self) -> None:
        self._line.resume_writing()

    def connection_lost(self, exc: Exception | None) -> None:
        if exc is not None:
            self._line.connection_lost(exc)


async def open_serial(
    device: str,
    line: FramedLine[Any],
    *,
    baudrate: int = 9600,
    bytesize: int = 8,
    parity: str = "N",
    stopbits: int = 1,
) -> None:
    """Open `device` with its line settings and connect both directions to `line`."""
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
    loop = asyncio.get_running_loop()
    try:
        # Duplicated descriptors keep the line open with its settings after pyserial lets go.
        await loop.connect_read_pipe(lambda: line, io.FileIO(os.dup(port.fileno()), "rb", closefd=True))
        writer, _ = await loop.connect_write_pipe(
            lambda: _WriteSide(line), io.FileIO(os.dup(port.fileno()), "wb", closefd=True)
        )
        line.attach_writer(writer)
    except BaseException:
        await line.close()
        raise
    finally:
        port.close()
