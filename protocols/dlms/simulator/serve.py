"""Run a simulated DLMS fleet until interrupted: the body of `amr simulate dlms`."""

from __future__ import annotations

import asyncio
import contextlib
import signal
from collections.abc import Callable
from pathlib import Path

from core.clock import Clock
from protocols.dlms.simulator.faults import Faults
from protocols.dlms.simulator.fleet import DlmsFleetSimulator


async def serve_fleet(
    *,
    meters: int,
    framing: str,
    port: int,
    host: str = "127.0.0.1",
    seed: int = 1,
    faults: list[str] | None = None,
    auth: str = "none",
    pty: bool = False,
    fleet_file: Path | None = None,
    keys_file: Path | None = None,
    clock: Clock | None = None,
    ready: Callable[[DlmsFleetSimulator], None] | None = None,
    stop: asyncio.Event | None = None,
) -> None:
    """Start the fleet, write its fleet (and key) file, call `ready`, and serve until `stop` or a signal."""
    parsed = Faults.parse(faults or [])
    stop = stop or asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(signum, stop.set)
    async with DlmsFleetSimulator(
        meters,
        framing=framing,
        seed=seed,
        clock=clock,
        host=host,
        port=port,
        faults=parsed,
        auth=auth,
        pty=pty,
    ) as fleet:
        if fleet_file is not None:
            fleet.write_fleet_file(fleet_file)
        if keys_file is not None:
            fleet.write_key_file(keys_file)
        if ready is not None:
            ready(fleet)
        await stop.wait()


def run_fleet(**options: object) -> None:
    """`serve_fleet` on a fresh event loop (the command line's entry)."""
    asyncio.run(serve_fleet(**options))  # type: ignore[arg-type]
