"""Bytes on the wire per attempt, counted where the event loop opens TCP connections.

The protocol clients open their own sockets (asyncio streams for DLMS, pymodbus's transport
for Modbus), and both go through `loop.create_connection`. `instrument` wraps that method on
the head-end's loop once: a connection opened while a `tally()` is active in the current task
gets a counting protocol and transport around the real ones, so every byte written and
received is added to that attempt's tally. Connections opened outside a tally pass through
untouched. Serial lines do not go through `create_connection` and are not counted.
"""

from __future__ import annotations

import asyncio
import contextvars
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

_ACTIVE: contextvars.ContextVar[Tally | None] = contextvars.ContextVar("amr_headend_wire_tally", default=None)
_MARK = "_amr_wire_counting"


@dataclass(slots=True)
class Tally:
    sent: int = 0
    received: int = 0

    @property
    def total(self) -> int:
        return self.sent + self.received


class _CountingTransport:
    """The real transport, with writes counted; everything else is the real transport's."""

    __slots__ = ("_inner", "_tally")

    def __init__(self, inner: asyncio.BaseTransport, tally: Tally) -> None:
        self._inner, self._tally = inner, tally

    def write(self, data: bytes | bytearray | memoryview) -> None:
        self._tally.sent += len(data)
        self._inner.write(data)  # type: ignore[attr-defined]

    def writelines(self, chunks: Any) -> None:
        for chunk in chunks:
            self.write(chunk)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)


class _CountingProtocol(asyncio.Protocol):
    """The client's protocol, seeing the counting transport; received bytes are counted."""

    def __init__(self, inner: asyncio.Protocol, tally: Tally) -> None:
        self.inner, self.tally = inner, tally
        self.transport: _CountingTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = _CountingTransport(transport, self.tally)
        self.inner.connection_made(self.transport)  # type: ignore[arg-type]

    def data_received(self, data: bytes) -> None:
        self.tally.received += len(data)
        self.inner.data_received(data)

    def eof_received(self) -> bool | None:
        return self.inner.eof_received()

    def connection_lost(self, exc: Exception | None) -> None:
        self.inner.connection_lost(exc)

    def pause_writing(self) -> None:
        self.inner.pause_writing()

    def resume_writing(self) -> None:
        self.inner.resume_writing()


def instrument(loop: asyncio.AbstractEventLoop) -> None:
    """Count the bytes of connections opened on `loop` under a tally (idempotent)."""
    if getattr(loop, _MARK, False):
        return
    original: Callable[..., Any] = loop.create_connection

    async def create_connection(protocol_factory: Callable[[], Any], *args: Any, **kwargs: Any) -> Any:
        tally = _ACTIVE.get()
        if tally is None:
            return await original(protocol_factory, *args, **kwargs)
        counting: list[_CountingProtocol] = []

        def factory() -> _CountingProtocol:
            counting.append(_CountingProtocol(protocol_factory(), tally))
            return counting[0]

        await original(factory, *args, **kwargs)
        # The caller keeps the transport it is given (asyncio streams build their writer on
        # it), so it gets the counting one, and the protocol it made.
        return counting[0].transport, counting[0].inner

    loop.create_connection = create_connection  # type: ignore[method-assign]
    setattr(loop, _MARK, True)


@contextmanager
def tally() -> Iterator[Tally]:
    """Count the bytes of connections the current task opens inside this block."""
    counted = Tally()
    token = _ACTIVE.set(counted)
    try:
        yield counted
    finally:
        _ACTIVE.reset(token)
