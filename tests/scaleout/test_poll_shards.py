"""A polling round by shard: buckets dealt into one task per executor slot, each bucket its
own round; on a Dask LocalCluster it lands what the same round lands locally."""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Literal, TypeVar

import polars as pl
import pytest
import uvloop

from core.clock import VirtualClock
from core.config import HeadendSettings
from core.executor import DaskExecutor, LocalExecutor
from core.landing import list_batches
from core.meter_url import MeterUrl
from core.state import StateStore
from headend import shards
from headend.errors import HeadendError
from headend.poll import RoundReport
from headend.registry import Meter, import_fleet, list_meters
from headend.shards import Shard, ShardPoll, deal_shards, poll_by_shard, poll_shard
from tests.scaleout.fleets import served_fleet

T = TypeVar("T")
R = TypeVar("R")

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
        data_dir=tmp_path, shards=(Shard(0, ()),), settings=SETTINGS, at=AT, kind="on-demand",
        store="database postgresql+psycopg://amr:***@elsewhere/amr",
    )
    with pytest.raises(HeadendError, match="not the coordinator's"):
        poll_shard(task)


def _meter(number: int, bucket: int) -> Meter:
    url = MeterUrl.parse(f"modbus+tcp://127.0.0.1:{1500 + number}?unit=1&map=eastron-sdm630")
    return Meter(meter_id=f"M{number:03d}", meter_key=number, url=url, protocol="modbus", bucket=bucket)


def test_buckets_are_dealt_round_robin_into_one_group_per_slot() -> None:
    meters = [_meter(n, bucket) for n, bucket in enumerate([5, 0, 2, 0, 3, 1])]

    groups = deal_shards(meters, 2, round_id="run1")

    assert [[shard.bucket for shard in group] for group in groups] == [[0, 2, 5], [1, 3]]
    shards = {shard.bucket: shard for group in groups for shard in group}
    assert [m.meter_id for m in shards[0].meters] == ["M001", "M003"]
    assert {b: s.round_id for b, s in shards.items()} == {b: f"run1-b{b:04d}" for b in (0, 1, 2, 3, 5)}


def test_more_slots_than_buckets_gives_a_group_per_bucket_and_no_run_no_round_ids() -> None:
    groups = deal_shards([_meter(1, 7), _meter(2, 4)], 16)

    assert [[(s.bucket, s.round_id) for s in group] for group in groups] == [[(4, None)], [(7, None)]]
    assert deal_shards([], 4) == []


class TwoSlotsInProcess(LocalExecutor):
    """Two slots, so the round is dealt into two tasks, but run here, recording the tasks."""

    def __init__(self) -> None:
        super().__init__()
        self.tasks: list[object] = []

    @property
    def slots(self) -> int:
        return 2

    def map(self, func: Callable[[T], R], items: Sequence[T]) -> list[R]:
        self.tasks.extend(items)
        return [func(item) for item in items]


def test_a_task_per_slot_polls_each_of_its_buckets_as_its_own_round(fleet_file: Path, tmp_path: Path) -> None:
    state = StateStore.open(tmp_path)
    import_fleet(state, fleet_file, buckets=BUCKETS)
    meters = list_meters(state)
    buckets = sorted({m.bucket for m in meters})
    executor = TwoSlotsInProcess()

    reports = poll_by_shard(
        state, tmp_path, meters, settings=SETTINGS, executor=executor, clock=VirtualClock(AT), round_id="run1"
    )

    assert len(buckets) > 2 and len(executor.tasks) == 2
    # one report per bucket, in bucket order, each round named after the run and its bucket
    assert [r.round_id for r in reports] == [f"run1-b{b:04d}" for b in buckets]
    assert [r.ok for r in reports] == [sum(m.bucket == b for m in meters) for b in buckets]
    with state.read() as conn:
        attempts = set(conn.exec_driver_sql("SELECT meter_id, round_id FROM headend_comm_log").all())
        rounds = sorted(r[0] for r in conn.exec_driver_sql("SELECT round_id FROM headend_rounds"))
    assert attempts == {(m.meter_id, f"run1-b{m.bucket:04d}") for m in meters}
    assert rounds == [r.round_id for r in reports]
    # each bucket's readings landed in its own round's batches, under its round id
    for bucket, report in zip(buckets, reports, strict=True):
        landed = pl.concat([pl.read_parquet(path) for path in report.batches])
        assert set(landed["source"]) == {report.round_id}
        assert set(landed["meter_id"]) == {m.meter_id for m in meters if m.bucket == bucket}
    state.dispose()


@pytest.mark.parametrize("kind", ["uvloop", "asyncio"])
def test_a_task_polls_on_the_configured_event_loop(
    kind: Literal["uvloop", "asyncio"], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    loops: list[type[asyncio.AbstractEventLoop]] = []

    async def record_loop(_state: StateStore, _task: ShardPoll) -> list[RoundReport]:
        loops.append(type(asyncio.get_running_loop()))
        return []

    monkeypatch.setattr(shards, "_poll_shards", record_loop)
    store = StateStore.open(tmp_path)
    task = ShardPoll(
        data_dir=tmp_path, shards=(Shard(0, ()),), settings=HeadendSettings(event_loop=kind), at=AT,
        kind="daily", store=store.description,
    )
    store.dispose()

    poll_shard(task)

    assert loops == [uvloop.Loop if kind == "uvloop" else asyncio.SelectorEventLoop]
