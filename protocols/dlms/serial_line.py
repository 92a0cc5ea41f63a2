"""A serial line (or pseudo-terminal) as asyncio streams: pyserial configures, the loop reads.

pyserial sets baud rate, parity and stop bits on the device; the file descriptor is then
handed to the event loop as a pipe, so thousands of waits share one thread and none blocks.
"""

from __future__ import annotations

import asyncio
import io
import os

import serial

from protocols.errors import ConnectionLost


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
    loop = asyncio.get_running_loop()
    read_end = io.FileIO(os.dup(port.fileno()), "rb", closefd=True)
    write_end = io.FileIO(os.dup(port.fileno()), "wb", closefd=True)
    port.close()  # the duplicated descriptors keep the line open with its settings
    reader = asyncio.StreamReader(limit=1 << 16)
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), read_end)
    transport, protocol = await loop.connect_write_pipe(asyncio.streams.FlowControlMixin, write_end)
    writer = asyncio.StreamWriter(transport, protocol, reader, loop)
    return reader, writer
