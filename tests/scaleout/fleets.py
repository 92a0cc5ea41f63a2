"""Simulated fleets served from a thread of the test process, so Dask workers (other
processes) reach them over loopback while the test drives the coordinator."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable, Iterator
from contextlib import AbstractAsyncContextManager, contextmanager
from pathlib import Path
from typing import Any


@contextmanager
def served_fleet(make: Callable[[], AbstractAsyncContextManager[Any]], fleet_file: Path) -> Iterator[Path]:
    """Run the simulator `make()` gives until the block ends; yield its fleet file."""
    ready, done = threading.Event(), threading.Event()

    async def serve() -> None:
        async with make() as simulator:
            simulator.write_fleet_file(fleet_file)
            ready.set()
            await asyncio.to_thread(done.wait)

    thread = threading.Thread(target=lambda: asyncio.run(serve()), daemon=True)
    thread.start()
    assert ready.wait(30), "the simulated fleet did not start"
    try:
        yield fleet_file
    finally:
        done.set()
        thread.join(10)
