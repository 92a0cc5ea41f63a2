"""A polling round by shard on a Dask LocalCluster lands what the same round lands locally."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from pathlib import Path

import polars as pl
import pytest

from core.clock import VirtualClock
from core.config import HeadendSettings
from core.executor import DaskExecutor, LocalExecutor
from core.landing import list_batches
from core.state import StateStore
from headend.errors import HeadendError
from headend.registry import import_fleet, list_meters
from headend.shards import ShardPoll, poll_by_shard, poll_shard
from tests.scaleout.fleets import served_fleet

AT = dt.datetime(2026, 11, 1, 17, 0, tzinfo=dt.UTC)
BUCKETS = 4
SETTINGS = HeadendSettings(session_timeout_s=5.0, retries=1)


@pytest.fixture(scope="module")
def fleet_file(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """Simulated Modbus meters on loopback, held at one instant, served from a thread."""
    from protocols.modbus.simulator import ModbusFleetSimulator

    folder = tmp_path_factory.mktemp("fleet")
    with served_fleet(
        lambda: ModbusFleetSimulator(meters=8, seed=5, clock=VirtualClock(AT)), folder / "fleet.csv"
    ) as path:
        yield path


def _landed(data_dir: Path) -> pl.DataFrame:
    frames = [batch.read() for batch in list_batches(data_dir)]
    return pl.concat(frames).drop("source").sort(["meter_id", "quantity", "ts"])


def _round(data_dir: Path, fleet: Path, executor: LocalExecutor | DaskExecutor) -> int:
    state = StateStore.open(data_dir)
    import_fleet(state, fleet, buckets=BUCKETS)
    meters = list_meters(state)
    reports = poll_by_shard(
        state, data_dir, meters, settings=SETTINGS, executor=executor, clock=VirtualClock(AT)
    )
    assert sum(r.ok for r in reports) == len(meters) == 8
    assert len(reports) == len({m.bucket for m in meters}) > 1
    state.dispose()
    return sum(r.readings for r in reports)


@pytest.mark.slow
def test_shards_on_cluster_land_what_a_local_round_lands(
    cluster: DaskExecutor, fleet_file: Path, tmp_path: Path
) -> None:
    local = _round(tmp_path / "local", fleet_file, LocalExecutor())
    spread = _round(tmp_path / "cluster", fleet_file, cluster)
    assert local == spread > 0
    assert _landed(tmp_path / "local").equals(_landed(tmp_path / "cluster"))


def test_a_worker_on_another_store_is_refused(tmp_path: Path) -> None:
    task = ShardPoll(
        data_dir=tmp_path, bucket=0, meters=(), settings=SETTINGS, at=AT, kind="on-demand",
        store="database postgresql+psycopg://amr:***@elsewhere/amr",
    )
    with pytest.raises(HeadendError, match="not the coordinator's"):
        poll_shard(task)
