"""Shared helpers: run a coroutine with a deadline, a fixed virtual clock."""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import Coroutine
from typing import Any, TypeVar

import pytest

from core.clock import VirtualClock

T = TypeVar("T")
DEADLINE = 20.0


def run(coroutine: Coroutine[Any, Any, T]) -> T:
    """Run a test coroutine on a fresh loop; never wait longer than DEADLINE seconds."""
    return asyncio.run(asyncio.wait_for(coroutine, DEADLINE))


@pytest.fixture
def clock() -> VirtualClock:
    return VirtualClock(dt.datetime(2026, 3, 10, 12, 30, tzinfo=dt.UTC))  # 19:30 in Hanoi
