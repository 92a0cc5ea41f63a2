"""A line to a meter on asyncio: bytes from the event loop go straight into a frame decoder,
and the session waits for whole frames.

An `asyncio.Protocol` rather than streams: each chunk the loop reads is cut into frames at
once (by the wrapper's or HDLC's length field), so a request costs one write and one wake-up,
instead of a StreamReader read, a drain and two timeout contexts. The timeout of each wait is
a deadline checked by one timer per line, which re-arms itself when it fires early, rather
than a timer made and cancelled per wait. The same class serves a TCP socket and the two
pipes of a serial line or pseudo-terminal.

Every wait has a timeout (`MeterTimeout`), a peer that closes or fails raises
`ConnectionLost` at once, and bytes that do not frame raise the decoder's `FrameError`.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Callable
from typing import Generic, TypeVar, cast

from protocols.dlms.errors import DlmsRemoteError
from protocols.errors import ConnectionLost, MeterTimeout

F = TypeVar("F")
_TIMED_OUT = object()
CLOSE_WAIT_S = 1.0  # how long close() waits for the loop to let the descriptor go


def _settle(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_result(None)


class FramedLine(asyncio.Protocol, Generic[F]):
    """One meter line: `write` bytes out, `await frame()` for the next whole frame in."""

    def __init__(self, feed: Callable[[bytes], list[F]], *, where: str, timeout: float) -> None:
        self._feed = feed
        self.where = where
        self.timeout = timeout
        self._loop = asyncio.get_running_loop()
        self._frames: deque[F] = deque()
        self._waiter: asyncio.Future[object] | None = None
        self._failure: Exception | None = None  # raised by the next frame() once frames run out
        self._read_transport: asyncio.BaseTransport | None = None
        self._write_transport: asyncio.WriteTransport | None = None
        self._writable: asyncio.Future[object] | None = None  # set while the kernel buffer is full
        self._lost: asyncio.Future[None] = self._loop.create_future()
        self._deadline = 0.0  # loop time by which the current wait must end
        self._timer: asyncio.TimerHandle | None = None

    # --- asyncio.Protocol ---------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._read_transport = transport
        if hasattr(transport, "write"):  # a socket: one transport both ways (uvloop's too)
            self._write_transport = cast(asyncio.WriteTransport, transport)

    def data_received(self, data: bytes) -> None:
        if self._failure is not None:
            return
        try:
            self._frames.extend(self._feed(data))
        except DlmsRemoteError as exc:  # the decoder's precise FrameError
            self._fail(exc)
            return
        if self._frames:
            self._wake(None)

    def eof_received(self) -> bool:
        self._fail(
            ConnectionLost(
                f"{self.where}: the meter closed the connection",
                hint="the meter or its gateway dropped the session; it may be retried",
            )
        )
        return False  # let the transport close

    def connection_lost(self, exc: Exception | None) -> None:
        if exc is not None:
            self._fail(ConnectionLost(f"{self.where}: the line failed: {exc}"))
        else:
            self._fail(ConnectionLost(f"{self.where}: the line was closed"))
        if not self._lost.done():
            self._lost.set_result(None)
        if self._writable is not None and not self._writable.done():
            self._writable.set_result(None)

    def pause_writing(self) -> None:
        if self._writable is None or self._writable.done():
            self._writable = self._loop.create_future()

    def resume_writing(self) -> None:
        if self._writable is not None and not self._writable.done():
            self._writable.set_result(None)

    # --- the session's side ------------------------------------------------------------

    def attach_writer(self, transport: asyncio.WriteTransport) -> None:
        """The write half of a line whose two directions are separate pipes (serial)."""
        self._write_transport = transport

    def _fail(self, exc: Exception) -> None:
        if self._failure is None:
            self._failure = exc
        self._wake(None)

    def _wake(self, value: object) -> None:
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(value)

    def _check_deadline(self) -> None:
        self._timer = None
        if self._waiter is None or self._waiter.done():
            return  # no wait in progress: the next one arms the timer again
        if self._loop.time() >= self._deadline:
            self._wake(_TIMED_OUT)
        else:  # a later wait moved the deadline on
            self._timer = self._loop.call_at(self._deadline, self._check_deadline)

    async def _wait(self, future: asyncio.Future[object], what: str) -> None:
        self._waiter = future
        self._deadline = deadline = self._loop.time() + self.timeout
        timer = self._timer
        if timer is None or timer.when() > deadline:  # none yet, or the timeout was shortened
            if timer is not None:
                timer.cancel()
            self._timer = self._loop.call_at(deadline, self._check_deadline)
        try:
            if await future is _TIMED_OUT:
                raise MeterTimeout(
                    f"{self.where}: {what} within {self.timeout:g} s",
                    hint="the meter may be busy or unreachable; raise timeout= if the line is slow",
                )
        finally:
            self._waiter = None

    async def write(self, data: bytes) -> None:
        if isinstance(self._failure, ConnectionLost):
            raise self._failure
        if self._write_transport is None or self._write_transport.is_closing():
            raise ConnectionLost(f"{self.where}: the line is closed: cannot send {len(data)} bytes")
        self._write_transport.write(data)
        writable = self._writable
        if writable is not None and not writable.done():  # only when the kernel's buffer is full
            await self._wait(writable, f"the line did not take {len(data)} bytes")

    async def frame(self) -> F:
        """The next whole frame; raises the line's failure once every frame before it is read."""
        while not self._frames:
            if self._failure is not None:
                raise self._failure
            await self._wait(self._loop.create_future(), "no answer")
        return self._frames.popleft()

    async def close(self) -> None:
        """Close both directions and wait (briefly) until the loop has let the descriptor go."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        for transport in (self._write_transport, self._read_transport):
            if transport is not None:
                transport.close()
        lost = self._lost
        if self._read_transport is None or lost.done():
            return
        timer = self._loop.call_later(CLOSE_WAIT_S, _settle, lost)
        try:
            await lost
        finally:
            timer.cancel()
