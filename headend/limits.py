"""Session limits: a global one, and one per gateway or serial bus (the URL's line) and per
GPRS cell (the registry's `cell` attribute), because a concentrator or a cell takes only
so many sessions at once. The global limit serves waiters by priority, so an on-demand
read goes ahead of scheduled ones.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

from headend.registry import Meter

ON_DEMAND = 0
SCHEDULED = 10


class PriorityLimiter:
    """A counting semaphore whose waiters are served lowest priority number first, FIFO within one."""

    def __init__(self, size: int) -> None:
        self.size = size
        self.in_use = 0
        self.peak = 0
        self._waiters: list[tuple[int, int, asyncio.Future[None]]] = []
        self._order = itertools.count()

    def _grant(self) -> None:
        self.in_use += 1
        self.peak = max(self.peak, self.in_use)

    async def acquire(self, priority: int = SCHEDULED) -> None:
        if self.in_use < self.size and not self._waiters:
            self._grant()
            return
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        heapq.heappush(self._waiters, (priority, next(self._order), future))
        try:
            await future
        except asyncio.CancelledError:
            if future.done() and not future.cancelled():
                self.release()  # granted just as we were cancelled: hand the slot on
            raise

    def release(self) -> None:
        self.in_use -= 1
        while self._waiters and self.in_use < self.size:
            _, _, future = heapq.heappop(self._waiters)
            if future.done():
                continue
            self._grant()
            future.set_result(None)

    @asynccontextmanager
    async def slot(self, priority: int = SCHEDULED) -> AsyncIterator[None]:
        await self.acquire(priority)
        try:
            yield
        finally:
            self.release()


@dataclass(frozen=True, slots=True)
class PollLimits:
    concurrency: int = 512
    per_line: int = 1
    per_cell: int = 64


class Limiter:
    """All limits of one process; share one between rounds so on-demand reads jump the queue."""

    def __init__(self, limits: PollLimits) -> None:
        self.limits = limits
        self.global_slots = PriorityLimiter(limits.concurrency)
        self.lines: dict[str, PriorityLimiter] = {}
        self.cells: dict[str, PriorityLimiter] = {}

    def _line(self, key: str) -> PriorityLimiter:
        return self.lines.setdefault(key, PriorityLimiter(self.limits.per_line))

    def _cell(self, key: str) -> PriorityLimiter:
        return self.cells.setdefault(key, PriorityLimiter(self.limits.per_cell))

    @asynccontextmanager
    async def slot(self, meter: Meter, priority: int = SCHEDULED) -> AsyncIterator[None]:
        # Narrow limits first, the global one last, so a meter waiting on a busy gateway
        # does not hold a global slot that another gateway's meter could use. Plain acquire
        # and release (not one context manager per limit): this runs for every attempt.
        cell = meter.cell
        limits = [self._line(meter.url.line)] + ([self._cell(cell)] if cell else []) + [self.global_slots]
        taken: list[PriorityLimiter] = []
        try:
            for limit in limits:
                await limit.acquire(priority)
                taken.append(limit)
            yield
        finally:
            for limit in reversed(taken):
                limit.release()

    def peaks(self) -> dict[str, int]:
        out = {"global": self.global_slots.peak}
        out.update({f"line:{k}": v.peak for k, v in self.lines.items()})
        out.update({f"cell:{k}": v.peak for k, v in self.cells.items()})
        return out
