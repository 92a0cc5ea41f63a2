"""A bill run whose steps are tasks on a Dask LocalCluster stores the bills the in-process run stores."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from billing.run import run_bills
from core.executor import DaskExecutor
from tests.billing.conftest import World
from tests.billing.scenarios import bills, city

NOW = dt.datetime(2026, 12, 1, 8, 0, tzinfo=dt.UTC)


@pytest.mark.slow
def test_bill_run_on_a_cluster_gives_the_in_process_bills(tmp_path: Path, cluster: DaskExecutor) -> None:
    stored = []
    for name, executor in (("in-process", None), ("cluster", cluster)):
        world = World(tmp_path / name)
        city(world)
        report = run_bills(
            world.data_dir,
            world.state,
            period="2026-11",
            settings=world.settings,
            now=NOW,
            executor=executor,
            customers_per_step=2,  # several steps, so both workers get tasks
        )
        assert report.bills == 5 and report.per_class == {"business": 1, "residential": 4}
        stored.append(bills(world))
    assert stored[1].equals(stored[0])
    assert stored[1]["bill_id"].n_unique() == stored[1].height
