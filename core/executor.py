"""Where per-partition work runs: in this process (the default), a local process pool,
or a Dask cluster (`--cluster tcp://host:8786` or `AMR_CLUSTER`).

Every stage is a list of independent, idempotent tasks, one per partition. A task reads
immutable inputs and writes immutable files; it returns what it wrote, and the caller
(the coordinator) commits the results, so a task that dies and is run again leaves at
most unreferenced files behind, never partial or doubled data. The executor only runs
the tasks and hands the results back in the order of the inputs.

Dask is imported only when a cluster is asked for, so the local path needs nothing more.
"""

from __future__ import annotations

import contextlib
import importlib
import multiprocessing
import os
import re
import signal
import threading
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any, TypeVar

from core.errors import AmrError

if TYPE_CHECKING:
    from distributed import Client, LocalCluster

T = TypeVar("T")
R = TypeVar("R")

CLUSTER_ENV = "AMR_CLUSTER"
# A Dask scheduler address; tls:// for clusters across untrusted networks.
_ADDRESS = re.compile(r"^(tcp|tls|inproc)://[^\s/]+(:\d+)?$")
CONNECT_TIMEOUT_S = 10


class ExecutorError(AmrError):
    """An executor that cannot be reached or used."""


class Executor:
    """Runs `func` on each item and returns the results in the items' order."""

    description = "executor"

    @property
    def slots(self) -> int:
        """How many tasks run at once; callers split work into about this many tasks."""
        return 1

    def map(self, func: Callable[[T], R], items: Sequence[T]) -> list[R]:
        raise NotImplementedError

    def require_shared(self, path: Path) -> None:
        """Raise unless every worker sees `path` (measurement data must be on shared storage)."""

    def prepare(self, module: str) -> None:
        """Start the workers now, each importing `module` (where the tasks' function lives), so
        their start overlaps the caller's own work before `map`; nothing where there are no
        workers to start."""

    def close(self) -> None:
        """Release workers and connections."""

    def __enter__(self) -> Executor:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()


class LocalExecutor(Executor):
    """In this process (`workers=1`, the default) or a pool of local processes."""

    def __init__(self, workers: int = 1) -> None:
        if workers < 1:
            raise ExecutorError(
                f"a local executor needs at least one worker, not {workers}",
                hint="pass --workers 1 or more",
            )
        self.workers = workers
        self.description = "in-process" if workers == 1 else f"local process pool ({workers} workers)"
        self._pool: ProcessPoolExecutor | None = None

    @property
    def slots(self) -> int:
        return self.workers

    def map(self, func: Callable[[T], R], items: Sequence[T]) -> list[R]:
        if self.workers == 1 or len(items) <= 1:
            return [func(item) for item in items]
        # the pool starts its processes as tasks are submitted, with this process's
        # environment: each gets its share of the cores for Polars, as a Dask worker does
        # (with every core each, two workers' threads took turns on two cores: ingest
        # benchmark 3-5 % slower, its aggregates a third)
        with _environment(worker_env(self.workers)):
            pool = self._started()
            futures = [pool.submit(func, item) for item in items]
        return [future.result() for future in futures]

    def prepare(self, module: str) -> None:
        if self.workers == 1 or self._pool is not None:
            return
        # a process starts on each submit while none is idle: one no-op per worker starts
        # them all; each imports the module as it starts (a worker took 0.6 s from a run's
        # start to its task's, most of it the imports, while the coordinator read its inputs)
        with _environment(worker_env(self.workers)):
            pool = self._started(module)
            for _ in range(self.workers):
                pool.submit(int)

    def _started(self, module: str | None = None) -> ProcessPoolExecutor:
        if self._pool is None:
            # spawn: Polars and DuckDB hold threads that a forked child would inherit broken
            context = multiprocessing.get_context("spawn")
            if module is None:
                self._pool = ProcessPoolExecutor(self.workers, mp_context=context)
            else:
                self._pool = ProcessPoolExecutor(
                    self.workers, mp_context=context, initializer=importlib.import_module, initargs=(module,)
                )
        return self._pool

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown()
            self._pool = None


class DaskExecutor(Executor):
    """Tasks on a Dask distributed cluster; a worker that dies has its tasks run elsewhere."""

    def __init__(self, client: Client, *, cluster: LocalCluster | None = None, retries: int = 2) -> None:
        self.client = client
        self.retries = retries
        self._cluster = cluster
        self.description = f"Dask cluster at {client.scheduler.address if client.scheduler else '?'}"

    @classmethod
    def connect(cls, address: str, *, retries: int = 2, timeout_s: float = CONNECT_TIMEOUT_S) -> DaskExecutor:
        """Connect to a running scheduler such as `tcp://10.0.0.5:8786`."""
        check_address(address)
        from distributed import Client

        try:
            client = Client(address, timeout=timeout_s, set_as_default=False)  # type: ignore[no-untyped-call]
        except (OSError, TimeoutError) as exc:
            raise ExecutorError(
                f"the Dask scheduler at {address} cannot be reached: {exc}",
                hint="start one with `amr cluster up` (or `dask scheduler` and `dask worker` on each "
                "machine), or unset AMR_CLUSTER to run locally",
            ) from exc
        return cls(client, retries=retries)

    @classmethod
    def local_cluster(cls, workers: int = 2, *, threads: int = 1, retries: int = 2) -> DaskExecutor:
        """A throw-away cluster of worker processes on loopback (tests, benchmarks, trying it out)."""
        from distributed import Client, LocalCluster

        cluster = LocalCluster(  # type: ignore[no-untyped-call]
            n_workers=workers,
            threads_per_worker=threads,
            processes=True,
            host="127.0.0.1",
            dashboard_address=None,
            env=worker_env(workers),
        )
        return cls(Client(cluster, set_as_default=False), cluster=cluster, retries=retries)  # type: ignore[no-untyped-call]

    @property
    def slots(self) -> int:
        workers: dict[str, dict[str, Any]] = self.client.scheduler_info(n_workers=-1)["workers"]
        return max(1, sum(int(info.get("nthreads", 1)) for info in workers.values()))

    def map(self, func: Callable[[T], R], items: Sequence[T]) -> list[R]:
        if not items:
            return []
        # pure=False: each call is its own task even with equal arguments (tasks write files)
        futures = self.client.map(func, list(items), pure=False, retries=self.retries)
        results: list[R] = self.client.gather(futures)  # type: ignore[no-untyped-call]
        return results

    def require_shared(self, path: Path) -> None:
        where = str(path.resolve())
        seen: dict[str, Any] = self.client.run(os.path.isdir, where)
        missing = sorted(worker for worker, ok in seen.items() if not ok)
        if missing:
            raise ExecutorError(
                f"the data directory {where} is not visible on Dask workers {', '.join(missing)}",
                hint="mount the same shared filesystem at the same path on every worker "
                "(see docs/scale-out.md)",
            )

    def close(self) -> None:
        self.client.close()  # type: ignore[no-untyped-call]
        if self._cluster is not None:
            self._cluster.close()


@contextlib.contextmanager
def _environment(values: dict[str, str]) -> Iterator[None]:
    """Set variables for processes started inside, keeping any the operator set."""
    added = {k: v for k, v in values.items() if k not in os.environ}
    os.environ.update(added)
    try:
        yield
    finally:
        for key in added:
            os.environ.pop(key, None)


def worker_env(workers: int) -> dict[str, str]:
    """Environment of a local worker process: its share of the machine's cores for Polars
    (whose thread pool is one per process, shared by the worker's task threads), so workers
    on one machine do not each take every core."""
    return {"POLARS_MAX_THREADS": str(max(1, (os.cpu_count() or 1) // max(1, workers)))}


def check_address(address: str) -> str:
    if not _ADDRESS.match(address):
        raise ExecutorError(
            f"cluster address {address!r} is not a Dask scheduler address",
            hint="use the form tcp://host:8786 (the address `amr cluster up` prints)",
        )
    return address


def open_executor(cluster: str | None = None, *, workers: int = 1) -> Executor:
    """The one executor setting: `cluster` (or AMR_CLUSTER) names a Dask scheduler; without
    one, work runs locally, in this process or in `workers` local processes."""
    address = cluster or os.environ.get(CLUSTER_ENV) or None
    if address:
        return DaskExecutor.connect(address)
    return LocalExecutor(workers)


@dataclass(frozen=True)
class WorkerInfo:
    address: str
    name: str
    threads: int
    memory_limit: int  # bytes; 0 when unlimited


def cluster_workers(cluster: str | None = None) -> list[WorkerInfo]:
    """The workers a scheduler (`cluster` or AMR_CLUSTER) has now."""
    address = cluster or os.environ.get(CLUSTER_ENV)
    if not address:
        raise ExecutorError(
            "no cluster named: give --cluster tcp://host:8786 or set AMR_CLUSTER",
            hint="`amr cluster up` prints the address of a local cluster",
        )
    executor = DaskExecutor.connect(address)
    try:
        workers: dict[str, dict[str, Any]] = executor.client.scheduler_info(n_workers=-1)["workers"]
    finally:
        executor.close()
    return sorted(
        (
            WorkerInfo(
                address=address,
                name=str(info.get("name", "")),
                threads=int(info.get("nthreads", 0)),
                memory_limit=int(info.get("memory_limit") or 0),
            )
            for address, info in workers.items()
        ),
        key=lambda w: w.address,
    )


def run_local_cluster(
    *,
    workers: int = 2,
    threads: int = 1,
    host: str = "127.0.0.1",
    port: int = 8786,
    on_ready: Callable[[str], None] = lambda _: None,
    stop: threading.Event | None = None,
) -> None:
    """Run a Dask scheduler and `workers` worker processes (none: a scheduler alone) on this
    machine until `stop` is set (or Ctrl-C, SIGTERM); `on_ready` gets the scheduler's address
    once the workers have joined."""
    from distributed import Client, LocalCluster

    if workers < 0 or threads < 1:
        raise ExecutorError(
            f"a cluster needs zero or more workers of at least one thread, not {workers} x {threads}",
            hint="pass --workers 0 (a scheduler alone, for other machines' workers) or more, "
            "and --threads 1 or more",
        )
    try:
        cluster = LocalCluster(  # type: ignore[no-untyped-call]
            n_workers=workers,
            threads_per_worker=threads,
            processes=True,
            host=host,
            scheduler_port=port,
            dashboard_address=None,
            env=worker_env(workers),
        )
    except OSError as exc:
        raise ExecutorError(
            f"cannot start a Dask scheduler on {host}:{port}: {exc}",
            hint="choose a free port with --port (0 picks one), or stop the cluster already running",
        ) from exc
    stop = stop or threading.Event()
    previous: dict[signal.Signals, Any] = {}
    if threading.current_thread() is threading.main_thread():
        # Dask's own handlers would swallow Ctrl-C; SIGINT and SIGTERM stop the cluster cleanly.
        for number in (signal.SIGINT, signal.SIGTERM):
            previous[number] = signal.signal(number, lambda *_: stop.set())
    try:
        if workers:
            with Client(cluster, set_as_default=False) as client:  # type: ignore[no-untyped-call]
                client.wait_for_workers(workers, timeout=60)
        on_ready(str(cluster.scheduler_address))
        stop.wait()
    finally:
        for number, handler in previous.items():
            signal.signal(number, handler)
        cluster.close()  # type: ignore[no-untyped-call]
