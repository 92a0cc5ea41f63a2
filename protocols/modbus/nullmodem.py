"""A null-modem cable between two pseudo-terminals, for RTU over "serial" without hardware.

Two pty pairs; the bridge copies bytes between their master sides on the event loop, so a
simulator opens one slave device and a client the other, each as it would a USB-RS485
adapter.
"""

from __future__ import annotations

import asyncio
import os
import tty
from contextlib import suppress
from types import TracebackType


class PtyNullModem:
    def __init__(self) -> None:
        self._fds: list[int] = []
        self.server_path = ""
        self.client_path = ""
        self._loop: asyncio.AbstractEventLoop | None = None

    async def __aenter__(self) -> PtyNullModem:
        self._loop = asyncio.get_running_loop()
        server_master, server_slave = os.openpty()
        client_master, client_slave = os.openpty()
        self._fds = [server_master, server_slave, client_master, client_slave]
        for fd in (server_slave, client_slave):
            tty.setraw(fd)  # no echo, no line editing: bytes pass as they are
        for fd in (server_master, client_master):
            os.set_blocking(fd, False)
        self.server_path = os.ttyname(server_slave)
        self.client_path = os.ttyname(client_slave)
        self._loop.add_reader(server_master, self._pump, server_master, client_master)
        self._loop.add_reader(client_master, self._pump, client_master, server_master)
        return self

    def _pump(self, source: int, target: int) -> None:
        try:
            data = os.read(source, 4096)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:  # the other end closed (EIO on a pty master): nothing more to carry
            assert self._loop is not None
            self._loop.remove_reader(source)
            return
        with suppress(BlockingIOError):  # a full buffer drops bytes, as a real line would
            os.write(target, data)

    async def __aexit__(self, kind: type[BaseException] | None, exc: BaseException | None,
                        tb: TracebackType | None) -> None:
        if self._loop is not None:
            for fd in (self._fds[0], self._fds[2]):
                self._loop.remove_reader(fd)
        for fd in self._fds:
            os.close(fd)
        self._fds = []
