"""Task functions the executor tests send to workers (importable there by module name)."""

from __future__ import annotations

import os
import signal
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import polars as pl

from core.measurements import MeasurementStore, partition

TABLE = "scaleout_probe"


def square(value: int) -> int:
    return value * value


def worker_pid(_: int) -> int:
    return os.getpid()


def polars_threads(_: int) -> int:
    return pl.thread_pool_size()


def fail_on(value: int) -> int:
    if value == 3:
        raise ValueError(f"task {value} fails on purpose")
    return value


def write_partition(job: tuple[str, int, int]) -> tuple[int, str]:
    """Write one bucket's rows as an immutable file; return the name for the coordinator."""
    data_dir, bucket, rows = job
    frame = pl.DataFrame({"bucket": [bucket] * rows, "n": list(range(rows))})
    table = MeasurementStore(Path(data_dir)).table(TABLE)
    return bucket, table.write_file(partition(bucket=bucket), frame)


def first_to_claim(marker: str) -> bool:
    """True for the one task, in any worker, that creates `marker` (holding its pid)."""
    try:
        fd = os.open(marker, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
    except FileExistsError:
        return False
    os.write(fd, str(os.getpid()).encode())
    os.close(fd)
    return True


def write_then_die_once(job: tuple[str, int, int, str]) -> tuple[int, str]:
    """Write the partition's file, then (the first time any task gets here) kill this worker
    before it can report: the worst moment, as the file exists but no one committed it."""
    data_dir, bucket, rows, marker = job
    result = write_partition((data_dir, bucket, rows))
    if first_to_claim(marker):
        os.kill(os.getpid(), signal.SIGKILL)
    return result


def run_then_die_once(func: Callable[[Any], Any], marker: str, item: Any) -> Any:
    """Run a real task to its end (its files written), then kill this worker the first time
    any task gets here, before the result reaches the coordinator."""
    result = func(item)
    if first_to_claim(marker):
        os.kill(os.getpid(), signal.SIGKILL)
    return result


def run_killed_midway_once(func: Callable[[Any], Any], marker: str, after_s: float, item: Any) -> Any:
    """Run a real task, and (the first time any task gets here) kill this worker `after_s`
    seconds into it, whatever it is doing then: sessions open, batches half-written."""
    if not first_to_claim(marker):
        return func(item)
    timer = threading.Timer(after_s, os.kill, (os.getpid(), signal.SIGKILL))
    timer.daemon = True
    timer.start()
    result = func(item)
    Path(marker + ".finished").touch()  # the kill came too late: the test must say so
    return result
