"""The daemon's scheduled round on a Dask LocalCluster: each shard is polled on a worker, the
ledger records the run once, and a duplicate firing of the same run reads nothing again."""

from __future__ import annotations

from pathlib import Path

import pytest

from core.executor import DaskExecutor
from tests.headend.executor_round import scheduled_round_on


@pytest.mark.slow
def test_a_scheduled_round_runs_by_shard_on_a_cluster(
    cluster: DaskExecutor, data_dir: Path, tmp_path: Path
) -> None:
    scheduled_round_on(cluster, data_dir, tmp_path)
