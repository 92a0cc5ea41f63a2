"""Store lookup benchmark: finding a partition's files in a city's year of history.

An ingest run asks the measurement store, for every bucket, which days it holds and which
files the day, the day before and the like days have. This builds the `readings` manifest
of a city's year (365 days x 448 buckets = 163,520 partitions; no data files are needed
to look them up) and times one day's questions two ways in the same run:

- baseline: `Table.files` per question, which reads and indexes the manifest each time, a
  pass over every partition (how an ingest task asked before it held a snapshot; until
  2026-11-27 it also filtered every partition's parsed path, 0.73 s a question);
- `Snapshot`: the manifest read once, each question answered through its index (how an
  ingest task asks now).

    .venv/bin/python benchmarks/store_lookup.py                # 365 days x 448 buckets
    .venv/bin/python benchmarks/store_lookup.py --quick        # 30 days x 64 buckets
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from core.measurements import MANIFEST, MeasurementStore, Snapshot, partition, partition_path  # noqa: E402

TABLE = "readings"
TODAY = dt.date(2026, 11, 10)
# the lookups of one bucket in a day's run: its days, then today, the day before and the
# day after (VEE and aggregates), and the like days (same weekday, up to three weeks back)
LOOKBACK = (0, 1, -1, 7, 14, 21)


def build(data_dir: Path, days: int, buckets: int) -> int:
    partitions = {
        partition_path(partition(date=TODAY - dt.timedelta(days=k), bucket=b)): [
            f"run-{k:04d}-{b:04d}.parquet"
        ]
        for k in range(days)
        for b in range(buckets)
    }
    root = MeasurementStore(data_dir).table(TABLE).root
    root.mkdir(parents=True, exist_ok=True)
    (root / MANIFEST).write_text(json.dumps({"version": 1, "partitions": partitions}), "utf-8")
    return len(partitions)


def questions(ask_days, ask_files, buckets: int, sample: int) -> int:  # type: ignore[no-untyped-def]
    found = 0
    for b in range(0, buckets, max(1, buckets // sample)):
        found += len(ask_days(b))
        for k in LOOKBACK:
            found += len(ask_files(TODAY - dt.timedelta(days=k), b))
    return found


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--days", type=int, default=365)
    parser.add_argument("--buckets", type=int, default=448)
    parser.add_argument("--sample", type=int, default=8, help="buckets timed with the baseline (it is slow)")
    parser.add_argument("--quick", action="store_true", help="30 days x 64 buckets, for CI")
    args = parser.parse_args()
    if args.quick:
        args.days, args.buckets = 30, 64
    with tempfile.TemporaryDirectory(prefix="amr-lookup-") as tmp:
        data_dir = Path(tmp)
        count = build(data_dir, args.days, args.buckets)
        size = (MeasurementStore(data_dir).table(TABLE).root / MANIFEST).stat().st_size
        print(
            f"manifest: {count:,} partitions ({args.days} days x {args.buckets} buckets), {size / 1e6:.1f} MB"
        )
        table = MeasurementStore(data_dir).table(TABLE)
        sampled = len(range(0, args.buckets, max(1, args.buckets // args.sample)))
        per_bucket = 1 + len(LOOKBACK)

        started = time.process_time()
        baseline_found = questions(
            lambda b: table.files(bucket=b),
            lambda d, b: table.files(date=d, bucket=b),
            args.buckets,
            args.sample,
        )
        baseline = (time.process_time() - started) / (sampled * per_bucket)

        started = time.process_time()
        snapshot = Snapshot(MeasurementStore(data_dir))
        read_once = snapshot.manifest(TABLE).matching(bucket=0)  # the read and the index, once
        first = time.process_time() - started
        started = time.process_time()
        found = questions(
            lambda b: snapshot.files(TABLE, bucket=b),
            lambda d, b: snapshot.files(TABLE, date=d, bucket=b),
            args.buckets,
            args.buckets,
        )
        indexed = (time.process_time() - started) / (args.buckets * per_bucket)
        assert read_once and found >= baseline_found
        day_questions = args.buckets * per_bucket
        print(
            f"baseline (manifest read and indexed per question): {baseline * 1000:,.1f} ms a question, "
            f"{baseline * day_questions:,.0f} CPU-s for a day's {day_questions:,} questions"
        )
        print(
            f"snapshot: {first:.2f} s to read and index once, then {indexed * 1e6:,.0f} us a question; "
            f"{first + indexed * day_questions:,.2f} CPU-s for the day"
        )
        print(f"ratio baseline / snapshot, per question: {baseline / indexed:,.0f}x")


if __name__ == "__main__":
    main()
