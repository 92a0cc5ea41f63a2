"""The head-end's event loop: uvloop where it is installed, else the standard library's.

Polling is the event loop's work more than ours: thousands of sockets, a timer per wait,
a callback per frame. On libuv's loop the same round costs 12-20 % less CPU per meter-day
(benchmarks/fleet_poll.py, 1,000 meters, both loops in one run: 2.11-2.18 against 2.40-2.67
ms). `[headend] event_loop = "asyncio"` keeps the standard loop (the protocol tests run serial
lines on pseudo-terminals there; see docs/dlms.md on uvloop and pseudo-terminals).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine
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


def run(coro: Coroutine[Any, Any, T], kind: LoopKind) -> T:
    """Run `coro` to completion on a new loop of `kind`, as `asyncio.run` does."""
    with asyncio.Runner(loop_factory=loop_factory(kind)) as runner:
        return runner.run(coro)
