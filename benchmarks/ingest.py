"""Ingest (VEE) benchmark: a synthetic landing area with faults injected at known rates.

Prints readings per second for the full run (staging, validation, estimation, history
rules, store, daily/TOU/monthly aggregates, customers' intervals) and for its core (the run
less its estimation, history rules and customers' intervals stages), its stages, peak memory (all the
run's processes together, and the largest alone), the precision and recall of fault
detection against what was injected, and, in the same run, the time of a plain scan of the
same Parquet files (the floor) with the ratio.

    .venv/bin/python benchmarks/ingest.py            # 100,000 meters x 96 intervals, 1 day
    .venv/bin/python benchmarks/ingest.py --quick    # 5,000 meters
    .venv/bin/python benchmarks/ingest.py --meters 1000000   # 97.6 M readings, 80 buckets

The generator makes the landing a batch's meters at a time, so its memory is a batch's
whatever the meters (a city day, 2.8 million, fits); the timed run is measured in a process
of its own.

Synthetic data is generated with Polars hashes (deterministic per Polars version).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import math
import os
import resource
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from core.allocator import configure_allocator  # noqa: E402

configure_allocator()  # as the `amr` command line does, before Polars loads

import polars as pl  # noqa: E402
import sqlalchemy as sa  # noqa: E402

from core.buckets import bucket_expr  # noqa: E402
from core.config import Settings  # noqa: E402
from core.landing import PreparedBatch, prepare_batch, write_batch  # noqa: E402
from core.obis import ACTIVE_IMPORT_INTERVAL, ACTIVE_IMPORT_TOTAL  # noqa: E402
from core.reading import READING_COLUMNS  # noqa: E402
from core.state import StateStore  # noqa: E402
from core.timezones import local_midnight_utc  # noqa: E402
from ingest.registry import refresh_snapshot  # noqa: E402

DAY = dt.date(2026, 11, 10)
METERS_PER_BUCKET = 12_500  # x 97.6 readings a day: 1.22 M readings a partition
STEP = dt.timedelta(minutes=15)
# fault -> share of interval rows (the expected reason code is the fault's name)
FAULTS = {
    "duplicate": 0.005,
    "conflict": 0.001,
    "spike_rated": 0.0005,
    "negative": 0.0005,
    "off_grid": 0.0005,
    "data_not_valid": 0.0005,
    "gap": 0.01,
}
FULL_GOAL_S, CORE_GOAL_S = 150, 90  # a city day on the 2-core machine (issue #6)
UNKNOWN_METERS = 0.001  # share of meters not in the registry
RATED_WH = 100 * 230 * 15 // 60  # default limits: 100 A x 230 V x 15 min


def _shape() -> list[int]:
    weights = []
    for slot in range(96):
        hour = slot / 4
        w = (
            0.35
            + 0.9 * math.exp(-(((hour - 6.5) / 1.0) ** 2))
            + 1.8 * math.exp(-(((hour - 20.0) / 1.8) ** 2))
        )
        weights.append(int(w * 1000))
    return weights


def _unit(expr: pl.Expr, seed: int) -> pl.Expr:
    return (expr.hash(seed) % 1_000_000).cast(pl.Float64) / 1_000_000


def meter_ids(meters: int, seed: int) -> pl.DataFrame:
    """Every synthetic meter: its number `m`, id, daily energy, register at the start, and
    whether the registry leaves it out."""
    return pl.DataFrame({"m": pl.int_range(meters, eager=True)}).with_columns(
        meter_id=pl.format("M{}", pl.col("m").cast(pl.String).str.zfill(7)),
        daily_wh=(2000 + _unit(pl.col("m"), seed) * 14000).cast(pl.Int64),
        reg0=(_unit(pl.col("m"), seed + 1) * 5_000_000).cast(pl.Int64),
        unknown=_unit(pl.col("m") + 1, seed + 3) < UNKNOWN_METERS,
    )


def generate(ids: pl.DataFrame, days: int, seed: int) -> tuple[pl.DataFrame, pl.DataFrame]:
    """(readings with a `fault` column, dropped slots) of these meters (rows of `meter_ids`):
    every value is a hash of the meter's number, its slot and its day, so a meter's readings
    are the same whichever meters it is generated with."""
    shape = pl.DataFrame({"slot": list(range(1, 97)), "w": _shape()})
    total_w = sum(_shape())
    frames, dropped = [], []
    for d in range(days):
        day = DAY + dt.timedelta(days=d)
        start = local_midnight_utc(day)
        iv = ids.join(shape, how="cross").with_columns(
            ts=pl.lit(start) + pl.duration(minutes=pl.col("slot") * 15),
            value=(
                pl.col("daily_wh") * pl.col("w") // total_w
                + (_unit(pl.col("m") * 1000 + pl.col("slot") + d * 97, seed) * 20).cast(pl.Int64)
            ),
            row=pl.col("m") * 96 + pl.col("slot"),
        )
        day_sum = iv.group_by("m").agg(s=pl.col("value").sum())
        u = _unit(pl.col("row") + d * 10**9, seed + 7)
        edges, acc = [], 0.0
        for name, share in FAULTS.items():
            edges.append((name, acc, acc + share))
            acc += share
        fault = pl.lit(None, pl.String)
        for name, lo, hi in reversed(edges):
            fault = pl.when((u >= lo) & (u < hi)).then(pl.lit(name)).otherwise(fault)
        iv = iv.with_columns(fault=fault)
        dropped.append(iv.filter(pl.col("fault") == "gap").select("meter_id", "ts"))
        iv = iv.filter(pl.col("fault").fill_null("") != "gap")
        status = pl.when(pl.col("fault") == "data_not_valid").then(4).otherwise(0)
        value = (
            pl.when(pl.col("fault") == "spike_rated")
            .then(RATED_WH + 1000 + pl.col("value"))
            .when(pl.col("fault") == "negative")
            .then(-pl.col("value") - 1)
            .otherwise(pl.col("value"))
        )
        ts = (
            pl.when(pl.col("fault") == "off_grid").then(pl.col("ts") + pl.duration(minutes=7)).otherwise("ts")
        )
        base = iv.select(
            "meter_id",
            quantity=pl.lit(ACTIVE_IMPORT_INTERVAL),
            ts=ts,
            value=value,
            scale=pl.lit(0, pl.Int8),
            unit=pl.lit("Wh"),
            status=status.cast(pl.Int32),
            snapshot=pl.lit(False),
            source=pl.lit("bench"),
            read_at=pl.lit(start + dt.timedelta(days=1, hours=1)),
            fault=pl.col("fault"),
        )
        repeats = base.filter(pl.col("fault") == "duplicate")
        conflicts = base.filter(pl.col("fault") == "conflict").with_columns(pl.col("value") + 1)
        # the first copy of a duplicate is a clean reading, the repeat is the fault
        base = base.with_columns(fault=pl.when(pl.col("fault") == "duplicate").then(None).otherwise("fault"))
        before = ids.join(day_sum, on="m")
        regs = before.select(
            "meter_id",
            quantity=pl.lit(ACTIVE_IMPORT_TOTAL),
            ts=pl.lit(start + dt.timedelta(days=1)),
            value=pl.col("reg0") + pl.col("s") * (d + 1),
            scale=pl.lit(0, pl.Int8),
            unit=pl.lit("Wh"),
            status=pl.lit(0, pl.Int32),
            snapshot=pl.lit(False),
            source=pl.lit("bench"),
            read_at=pl.lit(start + dt.timedelta(days=1, hours=1)),
            fault=pl.lit(None, pl.String),
        )
        if d == 0:
            regs = pl.concat(
                [
                    regs,
                    regs.with_columns(
                        pl.col("ts") - dt.timedelta(days=1), value=pl.col("value") - before.get_column("s")
                    ),
                ]
            )
        frames.append(pl.concat([base, repeats, conflicts, regs], how="vertical_relaxed"))
    readings = pl.concat(frames).with_columns(
        fault=pl.when(pl.col("meter_id").is_in(ids.filter("unknown").get_column("meter_id").implode()))
        .then(pl.lit("unknown_meter"))
        .otherwise("fault")
    )
    return readings, pl.concat(dropped)


def register(state: StateStore, ids: pl.DataFrame, buckets: int) -> None:
    """The known meters into the registry, a bucket's worth of rows at a time."""
    known = ids.filter(~pl.col("unknown")).select("meter_id", meter_key=pl.col("m") + 1)
    known = known.with_columns(bucket_expr("meter_id", buckets))
    insert = sa.text(
        "INSERT INTO meters (meter_id, meter_key, url, protocol, route, bucket, installed_on) "
        "VALUES (:meter_id, :meter_key, 'dlms+tcp://10.0.0.1:4059', 'dlms', :route, :bucket, '2026-01-01')"
    )
    with state.transaction() as conn:
        for chunk in known.iter_slices(METERS_PER_BUCKET):
            conn.execute(
                insert,
                [dict(r, route=f"R{r['meter_key'] % 50:02d}") for r in chunk.iter_rows(named=True)],
            )


def setup(
    data_dir: Path,
    meters: int,
    days: int,
    buckets: int,
    seed: int,
    batches: int,
    history: int = 0,
    by_bucket: bool = True,
) -> tuple[dict[str, int], list[PreparedBatch]]:
    """Registry, truth and landing batches of `history + days` days, made a landing batch's
    meters at a time (memory stays that of one batch, whatever the meters). The history's
    batches are landed (prefix `hist`); the timed days' are written but not yet published
    (a run skips them), to publish after the history is taken.
    `by_bucket`: a batch per bucket saying so, as the head-end's shard rounds land them;
    else `batches` batches that mix every bucket (as imports do)."""
    ids = meter_ids(meters, seed)
    state = StateStore.open(data_dir)
    register(state, ids, buckets)
    # as `amr meters import` does: a run reads the registry from its snapshot (made again by
    # the first run after any change to the registry, 1.4 s for a million meters)
    refresh_snapshot(state, data_dir)
    # a day's readings are read (polled) an hour after its end; the history is what was read
    # before the timed days' polls
    polled_history = local_midnight_utc(DAY + dt.timedelta(days=history)) + dt.timedelta(hours=1)
    old = pl.col("read_at") <= polled_history
    split = bucket_expr("meter_id", buckets) if by_bucket else pl.col("meter_id").hash(seed) % batches
    groups = ids.with_columns(split.alias("_b")).partition_by("_b", as_dict=True)
    made = dict.fromkeys(["rows", "history_rows", "injected", "dropped"], 0)
    now = dt.datetime(2026, 11, 11, 2, tzinfo=dt.UTC)
    timed = []
    for (key,), group in sorted(groups.items()):  # type: ignore[type-var]
        readings, dropped = generate(group.drop("_b"), history + days, seed)
        truth = readings.filter(pl.col("fault").is_not_null()).select("meter_id", "ts", "value", "fault")
        for name, frame in (("truth", truth), ("dropped", dropped)):
            (data_dir / name).mkdir(exist_ok=True)
            frame.write_parquet(data_dir / name / f"part-{key:05d}.parquet")
        bucket = int(key) if by_bucket else None  # type: ignore[call-overload]
        hist, bench = (readings.filter(rows).drop("fault").select(READING_COLUMNS) for rows in (old, ~old))
        if hist.height:
            write_batch(data_dir, hist, prefix="hist", now=now, bucket=bucket)
        timed.append(prepare_batch(data_dir, bench, prefix="bench", now=now, bucket=bucket))
        made["rows"] += bench.height
        made["history_rows"] += hist.height
        made["injected"] += truth.height
        made["dropped"] += dropped.height
    return made, timed


def ingest_child(data_dir: Path, buckets: int, days: int, workers: int) -> dict[str, Any]:
    """The ingest phase in a child process (its memory its own); `days` sets the run's clock."""
    child = subprocess.run(
        [
            sys.executable,
            __file__,
            "--phase",
            "ingest",
            "--data-dir",
            str(data_dir),
            "--buckets",
            str(buckets),
            "--days",
            str(days),
            "--workers",
            str(workers),
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    if child.returncode != 0:
        print(child.stdout, child.stderr, file=sys.stderr)
        raise SystemExit(child.returncode)
    result: dict[str, Any] = json.loads(child.stdout.strip().splitlines()[-1])
    return result


def tree_memory_mb(root: int) -> tuple[float, float]:
    """Resident memory of `root` and every process below it together, and the largest
    high-water mark among them (VmHWM, which a new program starts afresh, unlike getrusage's
    maxrss: that keeps the forking parent's, and the benchmark's parent holds the synthetic
    data), from /proc (Linux)."""
    page = os.sysconf("SC_PAGE_SIZE")
    parent: dict[int, int] = {}
    resident: dict[int, int] = {}
    high: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            statm = (entry / "statm").read_text()
            status = (entry / "status").read_text()
        except OSError:  # the process ended while we looked
            continue
        pid = int(entry.name)
        parent[pid] = int(stat.rsplit(")", 1)[1].split()[1])
        resident[pid] = int(statm.split()[1]) * page
        hwm = [line.split()[1] for line in status.splitlines() if line.startswith("VmHWM:")]
        high[pid] = int(hwm[0]) * 1024 if hwm else 0
    tree = {root}
    while True:
        below = {pid for pid, ppid in parent.items() if ppid in tree} - tree
        if not below:
            break
        tree |= below
    return (
        sum(resident.get(pid, 0) for pid in tree) / 2**20,
        max((high.get(pid, 0) for pid in tree), default=0) / 2**20,
    )


class TreePeak(threading.Thread):
    """The peak of all the run's processes together (coordinator and workers), sampled every
    quarter second: the machine's memory, where each process's own peak under-counts; and the
    largest process's own peak (its high-water mark, as last seen)."""

    def __init__(self) -> None:
        super().__init__(daemon=True)
        self.peak_mb = 0.0
        self.largest_mb = 0.0
        self._stop_event = threading.Event()

    def sample(self) -> None:
        together, largest = tree_memory_mb(os.getpid())
        self.peak_mb = max(self.peak_mb, together)
        self.largest_mb = max(self.largest_mb, largest)

    def run(self) -> None:
        while not self._stop_event.wait(0.25):
            self.sample()

    def stop(self) -> tuple[float, float]:
        self._stop_event.set()
        self.join()
        self.sample()
        return self.peak_mb, self.largest_mb


def ingest_phase(data_dir: Path, buckets: int, days: int, workers: int) -> None:
    """Run in a child process so its peak memory is its own (with workers, the largest of the
    coordinator and its worker processes)."""
    from core.executor import LocalExecutor
    from ingest.run import run_ingest

    state = StateStore.open(data_dir)
    # the run's clock: just after the last synthetic day, so the next day (which an
    # off-grid reading past midnight touches) has nothing due for estimation yet
    now = local_midnight_utc(DAY + dt.timedelta(days=days)) + dt.timedelta(minutes=30)
    sampler = TreePeak()
    sampler.start()
    started = time.perf_counter()
    with LocalExecutor(workers) as executor:
        report = run_ingest(
            data_dir, state, settings=Settings(data_dir=data_dir, buckets=buckets), now=now, executor=executor
        )
    elapsed = time.perf_counter() - started
    tree_peak_mb, largest_mb = sampler.stop()
    # CPU seconds of the run (this process and its workers): steadier than wall time on a
    # machine that others share
    usage = [resource.getrusage(who) for who in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN)]
    cpu_s = sum(u.ru_utime + u.ru_stime for u in usage)
    result = {
        "elapsed": elapsed,
        "cpu_s": cpu_s,
        "peak_mb": largest_mb,
        "tree_peak_mb": tree_peak_mb,
        "report": report.to_json(),
    }
    print(json.dumps(result))


def score(data_dir: Path) -> dict[str, float]:
    from core.measurements import MeasurementStore

    readings = MeasurementStore(data_dir).table("readings").scan()
    truth = pl.read_parquet(data_dir / "truth").filter(pl.col("fault") != "duplicate")
    quarantined = (
        readings.filter(pl.col("state") == "quarantined")
        .select("meter_id", "ts", "value", pl.col("reason").cast(pl.String))
        .collect()
    )
    # a conflict's both values are quarantined: the clean twin counts as a true conflict too
    conflict_keys = truth.filter(pl.col("fault") == "conflict").select("meter_id", "ts")
    expected = pl.concat(
        [
            truth.select("meter_id", "ts", "value", reason="fault"),
            quarantined.join(conflict_keys, on=["meter_id", "ts"]).select(
                "meter_id", "ts", "value", reason=pl.lit("conflict")
            ),
        ]
    ).unique()
    hits = quarantined.join(expected, on=["meter_id", "ts", "value", "reason"]).height
    precision = hits / max(quarantined.height, 1)
    recall = hits / max(expected.height, 1)
    dropped = pl.read_parquet(data_dir / "dropped")
    estimated = readings.filter(pl.col("state") == "estimated").select("meter_id", "ts").collect()
    gap_recall = dropped.join(estimated, on=["meter_id", "ts"]).height / max(dropped.height, 1)
    return {"precision": precision, "recall": recall, "gap_recall": gap_recall}


def core_seconds(seconds: dict[str, float], elapsed: float) -> float:
    """The run's wall time less what its estimation, history rules and customers' intervals
    stages took, by their share of the tasks' seconds (the stages run inside the tasks, on
    every worker). The issue's core is validation, store and the daily and TOU aggregates;
    the history rules' comparisons stay in it, only their history's read and averages go."""
    from ingest.run_state import STAGES  # estimation, history rules, customers' intervals

    tasks = seconds["vee"] + seconds["aggregate"]
    extra = sum(seconds[stage] for stage in STAGES)
    return elapsed - seconds["tasks_wall"] * extra / tasks


def plain_scan(data_dir: Path) -> tuple[float, int]:
    files = [str(p) for p in (data_dir / "landing").rglob("bench-*.parquet")]
    started = time.perf_counter()
    out = pl.scan_parquet(files).select(pl.len(), pl.col("value").sum(), pl.col("ts").max()).collect()
    return time.perf_counter() - started, int(out.item(0, 0))


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--meters", type=int, default=100_000)
    parser.add_argument("--days", type=int, default=1)
    parser.add_argument(
        "--history-days",
        type=int,
        default=0,
        help="days taken by an untimed run first, so the timed run is a day of a running system "
        "(like days, history rules, the day before re-aggregated)",
    )
    parser.add_argument(
        "--buckets",
        type=int,
        help="meter buckets (default: one per 12,500 meters, about 1.2 M readings a partition, "
        "as docs/ingest.md advises)",
    )
    parser.add_argument(
        "--landing",
        choices=["by-bucket", "mixed"],
        default="by-bucket",
        help="by-bucket: a batch per bucket that says so, as the head-end's shard rounds land them "
        "(ingest's tasks take them directly); mixed: --batches batches of every bucket, split by "
        "partition first (staging), as imports are",
    )
    parser.add_argument("--batches", type=int, default=8, help="landing batches with --landing mixed")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument(
        "--workers", type=int, default=1, help="local processes for the partitions' tasks (1: in-process)"
    )
    parser.add_argument("--quick", action="store_true", help="5,000 meters, for CI")
    parser.add_argument("--data-dir", type=Path, help="keep the data here (default: a temporary folder)")
    parser.add_argument("--phase", choices=["all", "ingest"], default="all", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.phase == "ingest":
        ingest_phase(args.data_dir, args.buckets, args.days, args.workers)
        return
    meters = 5_000 if args.quick else args.meters
    args.buckets = args.buckets or max(1, round(meters / METERS_PER_BUCKET))
    with tempfile.TemporaryDirectory(prefix="amr-bench-") as tmp:
        data_dir = args.data_dir or Path(tmp)
        data_dir.mkdir(parents=True, exist_ok=True)
        started = time.perf_counter()
        history = args.history_days
        made, timed = setup(
            data_dir, meters, args.days, args.buckets, args.seed, args.batches, history,
            by_bucket=args.landing == "by-bucket",
        )
        print(
            f"synthetic landing ({args.landing}): {meters:,} meters x {args.days} day(s) in "
            f"{args.buckets} buckets: "
            f"{made['rows']:,} readings, "
            f"{made['injected']:,} injected faults, {made['dropped']:,} dropped intervals "
            f"({time.perf_counter() - started:.1f} s to make)"
        )
        if history:
            started = time.perf_counter()
            ingest_child(data_dir, args.buckets, history, args.workers)
            print(
                f"history: {history} day(s), {made['history_rows']:,} readings taken by an untimed run "
                f"({time.perf_counter() - started:.1f} s)"
            )
        for batch in timed:
            batch.publish()
        # the setup's files (landing, the history run's store) written out before the timing:
        # left to the kernel's writeback, it ran during the timed run and cost it 5 % (500,000
        # meters with history: 24.3-24.6 s against 23.1-23.2 s)
        os.sync()
        scan_s, scanned = plain_scan(data_dir)
        result = ingest_child(data_dir, args.buckets, history + args.days, args.workers)
        report, elapsed = result["report"], result["elapsed"]
        rate = report["readings_in"] / elapsed
        quality = score(data_dir)
        print(
            f"ingest run ({args.workers} worker(s)): {report['readings_in']:,} readings in {elapsed:.1f} s "
            f"= {rate:,.0f} readings/s "
            f"(stages: {report['seconds']}); CPU {result.get('cpu_s', 0):.1f} s "
            f"= {report['readings_in'] / max(result.get('cpu_s', 0), 1e-9):,.0f} readings/CPU-s; "
            f"peak memory {result['tree_peak_mb']:.0f} MB for all its processes together "
            f"(the largest alone {result['peak_mb']:.0f} MB)"
        )
        print(
            f"  stored {report['stored']:,}, duplicates {report['duplicates']:,}, quarantined "
            f"{report['quarantined']:,} {report['quarantined_by_reason']}, "
            f"estimates {report['estimates']:,}; "
            f"balanced: {report['balanced']}"
        )
        print(
            f"fault detection: precision {quality['precision']:.4f}, recall {quality['recall']:.4f}; "
            f"dropped intervals estimated: {quality['gap_recall']:.4f}"
        )
        print(
            f"plain scan of the same Parquet ({scanned:,} rows): {scan_s:.2f} s = "
            f"{scanned / scan_s:,.0f} rows/s"
        )
        print(f"ratio ingest / plain scan: {elapsed / scan_s:.1f}x")
        city = 2_800_000 * 96
        how = "measured: this run is a city day;" if meters >= 2_800_000 else "extrapolated"
        print(
            f"{how} a city day ({city:,} readings) at this rate: {city / rate:,.0f} s "
            f"(goal {FULL_GOAL_S} s; linear: partitions are independent, memory is per partition)"
        )
        core_s = core_seconds(report["seconds"], elapsed)
        core_rate = report["readings_in"] / core_s
        print(
            f"core (validation, store, daily/TOU/monthly aggregates): {core_s:.1f} s "
            f"= {core_rate:,.0f} readings/s, a city day {city / core_rate:,.0f} s "
            f"(goal {CORE_GOAL_S} s); the run less its estimation, history rules and customers' "
            f"intervals, by their share of the task seconds"
        )


if __name__ == "__main__":
    main()
