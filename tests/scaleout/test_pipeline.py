"""The key check: the demo pipeline (poll, ingest, bill, issue, publish) on a Dask
LocalCluster with PostgreSQL gives the same measurements, aggregates and bills as the
local executor with SQLite."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from distributed import get_task_stream

from amr.demo import DemoSummary, run_demo
from core.config import Settings
from core.executor import DaskExecutor
from core.state import StateStore
from tests.scaleout.store_compare import contents, differences

PERIOD = "2026-10"
METERS = 4
BUCKETS = 2  # two buckets, so each of the two workers gets a task


def _demo(data_dir: Path) -> DemoSummary:
    return run_demo(Settings(data_dir=data_dir, buckets=BUCKETS), period=PERIOD, meters=METERS, seed=3)


def _invoices(data_dir: Path) -> list[tuple[Any, ...]]:
    state = StateStore.open(data_dir)
    try:
        with state.read() as conn:
            rows = conn.execute(
                sa.text("SELECT bill_id, version, series, number, total_amount FROM invoices ORDER BY 1, 2")
            ).all()
        return [tuple(r) for r in rows]
    finally:
        state.dispose()


def _set_environ(name: str, value: str | None) -> None:
    if value is None:
        os.environ.pop(name, None)
    else:
        os.environ[name] = value


@contextmanager
def workers_environment(cluster: DaskExecutor, name: str, value: str) -> Iterator[None]:
    """Set a variable in every worker's environment, as an operator does on each machine."""
    cluster.client.run(_set_environ, name, value)
    try:
        yield
    finally:
        cluster.client.run(_set_environ, name, None)


@pytest.mark.slow
@pytest.mark.timeout(600)  # a month of daily rounds, each a task per shard, on a shared machine
def test_demo_on_cluster_and_postgres_matches_local(
    cluster: DaskExecutor, pg_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    local = _demo(tmp_path / "local")
    local_invoices = _invoices(tmp_path / "local")

    monkeypatch.setenv("AMR_STATE_URL", pg_url)
    monkeypatch.setenv("AMR_CLUSTER", cluster.client.scheduler.address)
    with (
        workers_environment(cluster, "AMR_STATE_URL", pg_url),
        get_task_stream(client=cluster.client) as stream,
    ):
        spread = _demo(tmp_path / "cluster")
    ran = [str(task["key"]) for task in stream.data]
    assert sum(key.startswith("run_task-") for key in ran) >= BUCKETS, "ingest did not run on the cluster"
    assert sum(key.startswith("poll_shard-") for key in ran) >= BUCKETS, "polling did not run on the cluster"
    assert not (tmp_path / "cluster" / "state.db").exists()

    assert (spread.stored, spread.bills, spread.total_vnd) == (local.stored, local.bills, local.total_vnd)
    assert local.bills == METERS and local.total_vnd > 0
    assert differences(contents(tmp_path / "local"), contents(tmp_path / "cluster")) == []
    assert _invoices(tmp_path / "cluster") == local_invoices
