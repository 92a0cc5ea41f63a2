"""The head-end's event loop: uvloop where it is installed, else the standard library's, with
the garbage collector kept off what was there before the round.

Polling is the event loop's work more than ours: thousands of sockets, a timer per wait,
a callback per frame. On libuv's loop the same round costs 12-20 % less CPU per meter-day
(benchmarks/fleet_poll.py, 1,000 meters, both loops in one run: 2.11-2.18 against 2.40-2.67
ms). `[headend] event_loop = "asyncio"` keeps the standard loop (the protocol tests run serial
lines on pseudo-terminals there; see docs/dlms.md on uvloop and pseudo-terminals).

A round allocates many short-lived objects (frames, futures, decoded values) while thousands
of sessions are alive, so CPython's collector runs often and its full passes walk every
object the process holds (modules, the registry). Freezing what exists before the round and
collecting the youngest generation every 10,000 allocations instead of 700 saves 5-15 % of
the round's CPU (same benchmark, same run); the settings are restored after the round.
"""

from __future__ import annotations

import asyncio
import gc
from collections.abc import Callable, Coroutine, Iterator
from contextlib import contextmanager
from typing import Any, Literal, TypeVar

T = TypeVar("T")
LoopKind = Literal["uvloop", "asyncio"]


def loop_factory(kind: LoopKind) -> Callable[[], asyncio.AbstractEventLoop] | None:
    """The factory of the loop asked for; None (the standard loop) when uvloop is absent."""
    if kind == "uvloop":
        try:
            import uvloop
        except ImportError:  # not installed (Windows): the standard loop does the same work
            return None
        return uvloop.new_event_loop
    return None


def loop_name(kind: LoopKind) -> str:
    return "uvloop" if loop_factory(kind) is not None else "asyncio"


YOUNG_GENERATION_ALLOCATIONS = 10_000


@contextmanager
def quiet_collector() -> Iterator[None]:
    """The collector leaves the objects that exist now alone, and runs less often, until exit."""
    thresholds = gc.get_threshold()
    gc.freeze()
    gc.set_threshold(max(thresholds[0], YOUNG_GENERATION_ALLOCATIONS), *thresholds[1:])
    try:
        yield
    finally:
        gc.set_threshold(*thresholds)
        gc.unfreeze()


def run(coro: Coroutine[Any, Any, T], kind: LoopKind) -> T:
    """Run `coro` to completion on a new loop of `kind`, as `asyncio.run` does."""
    with quiet_collector(), asyncio.Runner(loop_factory=loop_factory(kind)) as runner:
        return runner.run(coro)
