"""Scale-out benchmark: the ingest benchmark's synthetic city day, ingested on the local
executor (in this process) and on a Dask LocalCluster on the same machine, in one run.

Prints the times (best of `--repeat` interleaved runs: the machine may be shared), the
ratio cluster / local (the goal is at most 1.20 on one machine, so that every machine
added is pure gain), a local process pool for reference, readings per second per core,
and checks that all runs stored the same rows. The default cluster is what one node of a
real cluster runs: one worker with a thread per core.

    .venv/bin/python benchmarks/scale_out.py             # 20,000 meters x 96 intervals
    .venv/bin/python benchmarks/scale_out.py --quick     # 1,000 meters in 4 buckets, for CI
    .venv/bin/python benchmarks/scale_out.py --workers 2 --threads 1   # two single-thread workers

The operational store is SQLite here (ingest's tasks never touch it; only the coordinator
does). Cluster start-up is timed separately and left out of the ratio: a cluster is
started once and runs for months.
"""

from __future__ import annotations

import argparse
import datetime as dt
import importlib.util
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path
from types import ModuleType

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from core.allocator import configure_allocator  # noqa: E402

configure_allocator()  # as the `amr` command line does, before Polars loads

import polars as pl  # noqa: E402

from core.config import Settings  # noqa: E402
from core.executor import DaskExecutor, Executor, LocalExecutor  # noqa: E402
from core.measurements import MeasurementStore  # noqa: E402
from core.state import StateStore  # noqa: E402
from core.timezones import local_midnight_utc  # noqa: E402


def _ingest_benchmark() -> ModuleType:
    """The ingest benchmark's generator, so both benchmarks read the same city day."""
    spec = importlib.util.spec_from_file_location("ingest_benchmark", REPO / "benchmarks" / "ingest.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _run(data_dir: Path, buckets: int, executor: Executor, day: dt.date) -> tuple[float, int]:
    from ingest.run import run_ingest

    state = StateStore.open(data_dir)
    now = local_midnight_utc(day + dt.timedelta(days=1)) + dt.timedelta(minutes=30)
    started = time.perf_counter()
    report = run_ingest(
        data_dir, state, settings=Settings(data_dir=data_dir, buckets=buckets), now=now, executor=executor
    )
    elapsed = time.perf_counter() - started
    state.dispose()
    return elapsed, report.readings_in


def _fingerprint(data_dir: Path) -> tuple[int, int, int]:
    store = MeasurementStore(data_dir)
    readings = store.table("readings").scan().select(pl.len(), pl.col("mwh").sum()).collect()
    daily = store.table("daily").scan().select(pl.col("energy_wh").sum()).collect()
    return int(readings.item(0, 0)), int(readings.item(0, 1) or 0), int(daily.item(0, 0) or 0)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--meters", type=int, default=20_000)
    parser.add_argument("--buckets", type=int, default=16)
    parser.add_argument("--batches", type=int, default=8)
    parser.add_argument("--workers", type=int, default=1, help="LocalCluster worker processes")
    parser.add_argument(
        "--threads", type=int, default=os.cpu_count() or 1, help="threads per worker (default: the cores)"
    )
    parser.add_argument("--repeat", type=int, default=2, help="runs of each executor; the best counts")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--quick", action="store_true", help="1,000 meters in 4 buckets, for CI")
    args = parser.parse_args()
    meters = 1_000 if args.quick else args.meters
    if args.quick:
        args.buckets, args.batches, args.repeat = 4, 2, 1
    bench = _ingest_benchmark()

    root = Path(tempfile.mkdtemp(prefix="amr-scale-out-"))
    try:
        source = root / "source"
        source.mkdir()
        started = time.perf_counter()
        shape, timed = bench.setup(source, meters, 1, args.buckets, args.seed, args.batches)
        for batch in timed:  # written, not yet landed: landed now, as there is no history
            batch.publish()
        print(f"city day: {meters:,} meters, {shape['rows']:,} readings in {args.batches} landing batches, "
              f"{args.buckets} buckets (generated in {time.perf_counter() - started:.1f} s)")
        cores = os.cpu_count() or 1
        best: dict[str, float] = {}
        dirs: dict[str, Path] = {}
        started = time.perf_counter()
        with DaskExecutor.local_cluster(workers=args.workers, threads=args.threads) as cluster:
            startup = time.perf_counter() - started
            executors: dict[str, Executor] = {"local": LocalExecutor(), "cluster": cluster}
            with LocalExecutor(workers=cores) as pool:
                executors["pool"] = pool
                # interleaved repeats, best of each: the machine may be shared and noisy
                for repeat in range(args.repeat):
                    for name, executor in executors.items():
                        dirs[name] = root / f"{name}-{repeat}"
                        shutil.copytree(source, dirs[name])
                        seconds, rows = _run(dirs[name], args.buckets, executor, bench.DAY)
                        best[name] = min(best.get(name, seconds), seconds)
        local_s, pool_s, cluster_s = best["local"], best["pool"], best["cluster"]
        cluster_rows = rows
        print(f"best of {args.repeat} run(s) each, interleaved")
        for label, seconds in (
            ("local executor (in-process)", local_s),
            (f"local process pool ({cores} processes)", pool_s),
            (f"Dask LocalCluster ({args.workers} x {args.threads} threads)", cluster_s),
        ):
            print(f"{label + ':':42}{seconds:8.2f} s  {rows / seconds:12,.0f} readings/s")
        print(f"(cluster start-up {startup:.1f} s, once, not counted)")
        print(f"ratio cluster / local: {cluster_s / local_s:.2f}  (goal <= 1.20)")
        print(f"ratio cluster / local process pool: {cluster_s / pool_s:.2f}")
        print(f"per core ({cores} cores): local {rows / local_s / cores:,.0f}, "
              f"cluster {cluster_rows / cluster_s / cores:,.0f} readings/s")
        # a city day is 96 intervals + registers per meter; what one node ingests in an hour
        per_meter = rows / meters
        hourly = cluster_rows / cluster_s * 3600 / per_meter
        print(f"meter-days per node per hour of ingest (cluster path): {hourly:,.0f}")
        same = _fingerprint(dirs["local"]) == _fingerprint(dirs["cluster"]) == _fingerprint(dirs["pool"])
        print(f"same rows, energy and daily totals on all three: {'yes' if same else 'NO'}")
        if not same:
            sys.exit(1)
    finally:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
