"""A polling round by shard on a Dask LocalCluster whose worker is killed in the middle of
its sessions still ends, after ingest, with every reading stored exactly once: the task is
run again elsewhere and continues from the watermarks the dead attempt committed."""

from __future__ import annotations

import datetime as dt
import functools
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any, TypeVar

import pytest

from core.clock import VirtualClock
from core.config import HeadendSettings, Settings
from core.executor import DaskExecutor, Executor, LocalExecutor
from core.state import StateStore
from headend.registry import import_fleet, list_meters
from headend.shards import poll_by_shard
from ingest.run import run_ingest
from tests.scaleout import tasks
from tests.scaleout.fleets import served_fleet
from tests.scaleout.store_compare import contents, differences

T = TypeVar("T")
R = TypeVar("R")
AT = dt.datetime(2026, 11, 1, 17, 0, tzinfo=dt.UTC)  # local midnight of 2 November
METERS = 8
BUCKETS = 2
LATENCY_S = 0.2  # per answer, so a shard's round (some 10 exchanges a session) outlasts the kill
KILL_AFTER_S = 0.6
SETTINGS = HeadendSettings(session_timeout_s=20.0, retries=2, backoff_s=0.0, concurrency=4)


class KillOneWorkerMidway(DaskExecutor):
    """A cluster executor whose first task's worker is killed while the task runs."""

    def __init__(self, inner: DaskExecutor, marker: Path) -> None:
        super().__init__(inner.client, retries=inner.retries)
        self.marker = marker

    def map(self, func: Callable[[T], R], items: Sequence[T]) -> list[R]:
        wrapped: Callable[[Any], Any] = functools.partial(
            tasks.run_killed_midway_once, func, str(self.marker), KILL_AFTER_S
        )
        return super().map(wrapped, items)

    def close(self) -> None:
        """The test's cluster outlives this executor."""


@pytest.fixture(scope="module")
def fleet_file(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """Simulated DLMS meters (history from a seed, slow answers) served from a thread."""
    from protocols.dlms.simulator.fleet import DlmsFleetSimulator

    folder = tmp_path_factory.mktemp("dlms-fleet")
    with served_fleet(
        lambda: DlmsFleetSimulator(METERS, clock=VirtualClock(AT), seed=11, faults=[f"latency={LATENCY_S}"]),
        folder / "fleet.csv",
    ) as path:
        yield path


def _round_then_ingest(data_dir: Path, fleet: Path, executor: Executor) -> dict[str, Any]:
    state = StateStore.open(data_dir)
    try:
        import_fleet(state, fleet, buckets=BUCKETS)
        meters = list_meters(state)
        reports = poll_by_shard(
            state, data_dir, meters, settings=SETTINGS, executor=executor, clock=VirtualClock(AT)
        )
        assert sum(r.ok for r in reports) == METERS, [r.failures for r in reports]
        ingest = run_ingest(
            data_dir, state, settings=Settings(data_dir=data_dir, buckets=BUCKETS),
            now=AT + dt.timedelta(hours=1),
        )
        assert ingest.balanced and ingest.stored > METERS * 96
    finally:
        state.dispose()
    return contents(data_dir)


@pytest.mark.slow
def test_worker_killed_mid_round_stores_every_reading_once(
    cluster: DaskExecutor, fleet_file: Path, tmp_path: Path
) -> None:
    local = _round_then_ingest(tmp_path / "local", fleet_file, LocalExecutor())
    marker = tmp_path / "killed.pid"

    killed = _round_then_ingest(tmp_path / "killed", fleet_file, KillOneWorkerMidway(cluster, marker))

    assert marker.exists(), "no worker was killed, so the test proved nothing"
    assert not Path(f"{marker}.finished").exists(), "the worker was killed after its task ended"
    assert differences(local, killed) == []
    readings = killed["readings"]
    assert readings.select("meter_id", "quantity", "ts").is_unique().all()
    cluster.client.wait_for_workers(2, timeout=60)  # the nanny restarts the killed worker
