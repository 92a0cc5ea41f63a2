"""Bill runs on the executor: each step of buckets is a task, the coordinator commits; the same
bills in-process, on a process pool, and when every task runs twice (a retry)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, TypeVar

import polars as pl
import pytest

from billing.errors import BillingError
from billing.run import run_bills
from core.executor import LocalExecutor
from tests.billing.conftest import World
from tests.billing.scenarios import bills, city

T = TypeVar("T")
R = TypeVar("R")
NOW = dt.datetime(2026, 12, 1, 8, 0, tzinfo=dt.UTC)


class RetryingExecutor(LocalExecutor):
    """Runs every task twice, as a cluster does when a worker dies after the task wrote its files."""

    def __init__(self) -> None:
        super().__init__(1)
        self.calls = 0

    @property
    def slots(self) -> int:
        return 3  # ask for three steps, as three workers would

    def map(self, func: Callable[[T], R], items: Sequence[T]) -> list[R]:
        self.calls += len(items)
        for item in items:
            func(item)  # the attempt that "died": its staged file stays behind
        return [func(item) for item in items]


def _world(root: Path) -> World:
    world = World(root)
    city(world)
    return world


def _run(world: World, **kwargs: Any) -> pl.DataFrame:
    report = run_bills(
        world.data_dir, world.state, period="2026-11", settings=world.settings, now=NOW, **kwargs
    )
    assert report.bills == 5 and report.per_class == {"business": 1, "residential": 4}
    return bills(world)


def test_retried_tasks_give_the_in_process_bills_once(tmp_path: Path) -> None:
    reference = _run(_world(tmp_path / "in-process"))
    retried = _world(tmp_path / "retried")
    executor = RetryingExecutor()
    got = _run(retried, executor=executor)
    assert executor.calls == 3  # one task per slot (four buckets)
    assert got.equals(reference)
    assert got["bill_id"].n_unique() == got.height == 5  # no bill twice
    assert not (retried.data_dir / "billing" / "staging").exists() or not any(
        (retried.data_dir / "billing" / "staging").iterdir()
    )
    assert _run(retried, executor=RetryingExecutor()).equals(reference)  # a rerun changes nothing


@pytest.mark.slow
def test_process_pool_gives_the_in_process_bills(tmp_path: Path) -> None:
    reference = _run(_world(tmp_path / "in-process"))
    with LocalExecutor(workers=2) as pool:
        assert _run(_world(tmp_path / "pool"), executor=pool, customers_per_step=2).equals(reference)


def test_no_meter_in_service_anywhere_is_still_an_error(world: Any) -> None:
    world.customers(
        [
            {
                "customer_code": "PD01000000001",
                "meter_id": "M1",
                "installed_on": "2025-01-01",
                "removed_on": "2026-09-15",  # taken away before the period
            }
        ]
    )
    with pytest.raises(BillingError, match="no customer has a meter in service"):
        run_bills(
            world.data_dir,
            world.state,
            period="2026-11",
            settings=world.settings,
            executor=RetryingExecutor(),
        )
