"""The daemon's scheduled round polled through an executor (the local one here; a Dask
LocalCluster in tests/scaleout/test_daemon_on_cluster.py)."""

from __future__ import annotations

from pathlib import Path

from core.executor import LocalExecutor
from tests.headend.executor_round import scheduled_round_on


def test_a_scheduled_round_runs_by_shard_on_the_local_executor(data_dir: Path, tmp_path: Path) -> None:
    with LocalExecutor() as executor:
        scheduled_round_on(executor, data_dir, tmp_path)
