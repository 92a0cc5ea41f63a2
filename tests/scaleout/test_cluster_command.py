"""`amr cluster up` and `amr cluster status`, and the library calls behind them."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import threading

import pytest
from typer.testing import CliRunner

from amr.commands import cluster as cluster_cmd
from core.executor import DaskExecutor, ExecutorError, cluster_workers, run_local_cluster

runner = CliRunner()


def test_every_command_has_an_example() -> None:
    for name in ("up", "status"):
        result = runner.invoke(cluster_cmd.app, [name, "--help"])
        assert result.exit_code == 0
        assert "Example: amr cluster " + name in result.stdout


def test_status_lists_the_workers(cluster: DaskExecutor) -> None:
    address = cluster.client.scheduler.address
    result = runner.invoke(cluster_cmd.app, ["status", "--cluster", address, "--json"])
    assert result.exit_code == 0, result.stdout
    workers = json.loads(result.stdout)
    assert len(workers) == 2 and all(w["threads"] == 1 for w in workers)
    table = runner.invoke(cluster_cmd.app, ["status", "--cluster", address])
    assert "2 worker(s)" in table.stdout


def test_status_without_a_cluster_says_how_to_name_one() -> None:
    result = runner.invoke(cluster_cmd.app, ["status"])
    assert result.exit_code == 1
    assert "AMR_CLUSTER" in result.stderr


def test_run_local_cluster_until_stopped() -> None:
    stop = threading.Event()
    ready: list[str] = []
    failed: list[BaseException] = []

    def serve() -> None:
        try:
            run_local_cluster(workers=0, port=0, on_ready=lambda a: (ready.append(a), stop.set()), stop=stop)
        except BaseException as exc:  # reported to the test thread below
            failed.append(exc)
            stop.set()

    # on_ready sets stop at once: the cluster must then shut down cleanly by itself.
    thread = threading.Thread(target=serve)
    thread.start()
    thread.join(90)
    assert not thread.is_alive() and not failed, failed
    assert ready and ready[0].startswith("tcp://127.0.0.1:")


def test_bad_sizes_are_refused() -> None:
    with pytest.raises(ExecutorError, match="zero or more workers"):
        run_local_cluster(workers=-1)
    with pytest.raises(ExecutorError, match="at least one thread"):
        run_local_cluster(workers=1, threads=0)
    with pytest.raises(ExecutorError, match="no cluster named"):
        cluster_workers(None)


@pytest.mark.slow
def test_up_serves_until_interrupted() -> None:
    """The real command in its own process: prints the address, serves, stops on Ctrl-C."""
    code = "from amr.commands.cluster import app; app()"
    process = subprocess.Popen(
        [sys.executable, "-c", code, "up", "--workers", "1", "--port", "0"],
        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
        env={**os.environ, "COLUMNS": "200"},
    )
    try:
        assert process.stdout is not None
        line = process.stdout.readline()  # blocks until the cluster is up (timeout below)
        match = re.search(r"tcp://127\.0\.0\.1:\d+", line)
        assert match, line
        assert len(cluster_workers(match.group(0))) == 1
        process.send_signal(signal.SIGINT)
        assert process.wait(timeout=60) == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(10)
