"""Ingest's per-bucket tasks on a Dask LocalCluster give the local executor's store, even
when a worker is killed after writing its files and before reporting them."""

from __future__ import annotations

import datetime as dt
import functools
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, TypeVar

import pytest

from core.executor import DaskExecutor, LocalExecutor
from core.state import StateStore
from ingest.run import run_ingest
from tests.ingest.builders import AFTER, DAY, interval_day, land, register, settings_for, snapshot_day_end
from tests.scaleout import tasks
from tests.scaleout.store_compare import contents, differences

T = TypeVar("T")
R = TypeVar("R")
METERS = [f"M{n:03d}" for n in range(8)]  # spread over the builders' 4 buckets


class KillOneWorker(DaskExecutor):
    """A cluster executor whose first finished task kills its worker before reporting."""

    def __init__(self, inner: DaskExecutor, marker: Path) -> None:
        super().__init__(inner.client, retries=inner.retries)
        self.marker = marker

    def map(self, func: Callable[[T], R], items: Sequence[T]) -> list[R]:
        wrapped: Callable[[Any], Any] = functools.partial(tasks.run_then_die_once, func, str(self.marker))
        return super().map(wrapped, items)

    def close(self) -> None:
        """The test's cluster outlives this executor."""


def _landed(data_dir: Path) -> StateStore:
    state = StateStore.open(data_dir)
    register(state, METERS)
    for day in (DAY - dt.timedelta(days=1), DAY):
        records: list[dict[str, object]] = []
        for meter in METERS:
            records += interval_day(meter, day)
        records += snapshot_day_end(METERS[0], day)
        land(data_dir, records)
    return state


def _ingest(data_dir: Path, executor: Any) -> dict[str, Any]:
    state = _landed(data_dir)
    report = run_ingest(data_dir, state, settings=settings_for(data_dir), now=AFTER, executor=executor)
    assert report.balanced and report.partitions >= 4
    state.dispose()
    return contents(data_dir)


@pytest.mark.slow
def test_cluster_store_equals_local_store(cluster: DaskExecutor, tmp_path: Path) -> None:
    local = _ingest(tmp_path / "local", LocalExecutor())
    on_cluster = _ingest(tmp_path / "cluster", cluster)
    assert local["readings"].height >= len(METERS) * 2 * 96
    assert differences(local, on_cluster) == []


@pytest.mark.slow
def test_killed_worker_stores_every_reading_once(cluster: DaskExecutor, tmp_path: Path) -> None:
    marker = tmp_path / "killed.pid"
    local = _ingest(tmp_path / "local", LocalExecutor())
    killed = _ingest(tmp_path / "killed", KillOneWorker(cluster, marker))
    assert marker.exists(), "no worker was killed, so the test proved nothing"
    assert differences(local, killed) == []
    readings = killed["readings"]
    assert readings.select("meter_id", "quantity", "ts").is_unique().all()
    cluster.client.wait_for_workers(2, timeout=60)  # the nanny restarts the killed worker
