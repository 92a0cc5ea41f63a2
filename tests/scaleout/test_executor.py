"""core.executor: the local executor and a Dask LocalCluster give the same results."""

from __future__ import annotations

import json
import os
import socket
import time
from pathlib import Path

import polars as pl
import pytest

from core.executor import (
    DaskExecutor,
    ExecutorError,
    LocalExecutor,
    check_address,
    open_executor,
    worker_env,
)
from core.measurements import MeasurementStore, partition
from tests.scaleout import tasks


def test_in_process_keeps_order() -> None:
    assert LocalExecutor().map(tasks.square, [3, 1, 2]) == [9, 1, 4]


@pytest.mark.slow
def test_process_pool_matches_in_process() -> None:
    items = list(range(20))
    with LocalExecutor(workers=2) as pool:
        assert pool.map(tasks.square, items) == LocalExecutor().map(tasks.square, items)


@pytest.mark.slow
def test_prepared_workers_start_before_any_task_with_the_module_imported(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AMR_TEST_PRELOAD_DIR", str(tmp_path))
    monkeypatch.delenv("POLARS_MAX_THREADS", raising=False)
    with LocalExecutor(workers=2) as pool:
        pool.prepare("tests.scaleout.preloaded")
        deadline = time.monotonic() + 60
        while len(list(tmp_path.glob("*.json"))) < 2 and time.monotonic() < deadline:
            time.sleep(0.05)
        started = {int(p.stem): json.loads(p.read_text()) for p in tmp_path.glob("*.json")}
        assert len(started) == 2  # both workers up, no task sent yet
        # with their share of the cores, as the tasks' workers would have
        assert {v["polars_threads"] for v in started.values()} == {worker_env(2)["POLARS_MAX_THREADS"]}
        pool.prepare("tests.scaleout.preloaded")  # workers already up: nothing more starts
        pids = set(pool.map(tasks.worker_pid, list(range(8))))
    assert pids <= set(started) and len(list(tmp_path.glob("*.json"))) == 2
    LocalExecutor().prepare("tests.scaleout.no_such_module")  # in-process: nothing to start


def test_local_executor_needs_a_worker() -> None:
    with pytest.raises(ExecutorError, match="at least one worker"):
        LocalExecutor(workers=0)


def test_cluster_matches_local(cluster: DaskExecutor) -> None:
    items = list(range(40))
    assert cluster.map(tasks.square, items) == LocalExecutor().map(tasks.square, items)
    assert cluster.map(tasks.square, []) == []


def test_cluster_has_two_worker_processes(cluster: DaskExecutor) -> None:
    workers = cluster.client.scheduler_info()["workers"]
    assert len(workers) == 2
    assert all(address.startswith("tcp://127.0.0.1:") for address in workers)
    assert cluster.slots == 2


def test_local_slots() -> None:
    assert LocalExecutor().slots == 1
    assert LocalExecutor(workers=3).slots == 3


def test_local_workers_share_the_cores_for_polars() -> None:
    cores = os.cpu_count() or 1
    assert worker_env(1) == {"POLARS_MAX_THREADS": str(cores)}
    assert worker_env(cores * 2) == {"POLARS_MAX_THREADS": "1"}


@pytest.mark.slow
def test_local_pool_workers_get_their_share_of_the_cores(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("POLARS_MAX_THREADS", raising=False)
    with LocalExecutor(workers=2) as pool:
        assert pool.map(tasks.polars_threads, [0, 1]) == [int(worker_env(2)["POLARS_MAX_THREADS"])] * 2
    assert "POLARS_MAX_THREADS" not in os.environ  # set for the workers only
    # a value the operator chose is kept
    monkeypatch.setenv("POLARS_MAX_THREADS", "3")
    with LocalExecutor(workers=2) as pool:
        assert pool.map(tasks.polars_threads, [0, 1]) == [3, 3]


def test_task_error_reaches_the_coordinator(cluster: DaskExecutor) -> None:
    with pytest.raises(ValueError, match="task 3 fails on purpose"):
        cluster.map(tasks.fail_on, [1, 2, 3])


def _commit_and_read(data_dir: Path, written: list[tuple[int, str]]) -> pl.DataFrame:
    table = MeasurementStore(data_dir).table(tasks.TABLE)
    table.commit(replace={partition(bucket=b): [name] for b, name in written})
    return table.scan().collect().sort(["bucket", "n"])


def test_partition_files_committed_by_coordinator_match(cluster: DaskExecutor, tmp_path: Path) -> None:
    jobs = [(b, 10 + b) for b in range(6)]
    local_dir, dask_dir = tmp_path / "local", tmp_path / "dask"
    local = LocalExecutor().map(tasks.write_partition, [(str(local_dir), b, n) for b, n in jobs])
    remote = cluster.map(tasks.write_partition, [(str(dask_dir), b, n) for b, n in jobs])
    assert _commit_and_read(local_dir, local).equals(_commit_and_read(dask_dir, remote))


@pytest.mark.slow
def test_killed_worker_loses_and_doubles_nothing(tmp_path: Path) -> None:
    marker = tmp_path / "killed.pid"
    jobs = [(str(tmp_path), b, 5) for b in range(8)]
    with DaskExecutor.local_cluster(workers=2) as executor:
        written = executor.map(tasks.write_then_die_once, [(*job, str(marker)) for job in jobs])
    assert marker.exists(), "no worker was killed, so the test proved nothing"
    frame = _commit_and_read(tmp_path, written)
    assert frame.height == 8 * 5
    assert frame.select("bucket", "n").is_unique().all()
    # the killed attempt's file exists on disk but the manifest never names it
    table = MeasurementStore(tmp_path).table(tasks.TABLE)
    on_disk = list(table.root.rglob("*.parquet"))
    assert len(on_disk) > len(table.files())


def test_require_shared(cluster: DaskExecutor, tmp_path: Path) -> None:
    cluster.require_shared(tmp_path)
    with pytest.raises(ExecutorError, match="not visible on Dask workers"):
        cluster.require_shared(tmp_path / "absent")


@pytest.mark.parametrize("address", ["localhost:8786", "http://h:8786", "tcp://", "tcp://a b:1"])
def test_bad_addresses_are_refused(address: str) -> None:
    with pytest.raises(ExecutorError, match="not a Dask scheduler address"):
        check_address(address)


def test_unreachable_scheduler_names_it() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    address = f"tcp://127.0.0.1:{port}"
    with pytest.raises(ExecutorError, match="cannot be reached") as info:
        DaskExecutor.connect(address, timeout_s=1)
    assert address in str(info.value) and info.value.hint


def test_one_setting_picks_the_executor(cluster: DaskExecutor, monkeypatch: pytest.MonkeyPatch) -> None:
    assert isinstance(open_executor(), LocalExecutor)
    monkeypatch.setenv("AMR_CLUSTER", cluster.client.scheduler.address)
    with open_executor() as chosen:
        assert isinstance(chosen, DaskExecutor)
        assert chosen.map(tasks.square, [4]) == [16]
