"""The head-end's event loop: the kind asked for, and the collector's settings restored after."""

from __future__ import annotations

import asyncio
import gc

import pytest

from headend.loop import YOUNG_GENERATION_ALLOCATIONS, loop_name, run


async def _inside() -> tuple[str, tuple[int, int, int], int]:
    loop = asyncio.get_running_loop()
    return type(loop).__module__, gc.get_threshold(), gc.get_freeze_count()


def test_uvloop_round_runs_on_libuv_with_a_quiet_collector() -> None:
    pytest.importorskip("uvloop")
    before = gc.get_threshold()
    module, during, frozen = run(_inside(), "uvloop")
    assert module.startswith("uvloop") and loop_name("uvloop") == "uvloop"
    assert during[0] == max(before[0], YOUNG_GENERATION_ALLOCATIONS) and frozen > 0
    assert gc.get_threshold() == before and gc.get_freeze_count() == 0


def test_asyncio_round_runs_on_the_standard_loop() -> None:
    module, _, _ = run(_inside(), "asyncio")
    assert module.startswith("asyncio") and loop_name("asyncio") == "asyncio"


def test_settings_are_restored_when_the_round_fails() -> None:
    before = gc.get_threshold()

    async def failing() -> None:
        raise RuntimeError("a round that fails")

    with pytest.raises(RuntimeError, match="a round that fails"):
        run(failing(), "asyncio")
    assert gc.get_threshold() == before and gc.get_freeze_count() == 0
