"""Month partitions written a day at a time: what a run pays to write a bucket's daily and
register-read months (and the monthly rows) on the 2nd, the 15th and the 29th of a month.

`ingest.aggregate_days.merge_months` keeps a file per day and writes only the days a run
recomputed (a new day and the day before); the baseline, measured in the same run, is the
way it was done before: the bucket's month read, merged with the recomputed days and
written again whole, so its cost grows through the month.

    .venv/bin/python benchmarks/month_files.py            # 12,500 meters (a bucket)
    .venv/bin/python benchmarks/month_files.py --quick    # 1,000 meters
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
os.environ.setdefault("POLARS_MAX_THREADS", "1")  # as a worker of two on two cores

import polars as pl  # noqa: E402

from core.measurements import MeasurementStore, partition  # noqa: E402
from core.tables import DAILY, DAILY_SCHEMA, REGISTER_READS, REGISTER_READS_SCHEMA  # noqa: E402
from ingest import aggregate  # noqa: E402
from ingest.aggregate_days import MonthChange, merge_months, monthly_file  # noqa: E402
from ingest.config import VeeConfig  # noqa: E402
from ingest.run_state import Run  # noqa: E402

MONTH = "2026-11"
BUCKET = 7


def day_rows(meters: int, days: list[dt.date], schema: dict[str, pl.DataType]) -> pl.DataFrame:
    ids = pl.DataFrame({"meter_id": [f"M{i:07d}" for i in range(meters)]})
    frame = ids.join(pl.DataFrame({"date": days}), how="cross").with_columns(
        n=pl.int_range(pl.len(), dtype=pl.Int64)
    )
    filled = {
        name: (pl.col("n") * 7 % 9_000).cast(dtype) if dtype.is_integer() else pl.lit("intervals").cast(dtype)
        for name, dtype in schema.items()
        if name not in ("meter_id", "date")
    }
    filled.update(
        scale=pl.lit(0), quantity=pl.lit("1.0.1.8.0.255"), unit=pl.lit("Wh"), estimated=pl.lit(False),
        ts=pl.lit(dt.datetime(2026, 11, 1, tzinfo=dt.UTC)),
    )
    return frame.with_columns(**{k: v for k, v in filled.items() if k in schema}).select(
        pl.col(n).cast(t) for n, t in schema.items()
    ).sort("meter_id", "date")


def day_files(data_dir: Path, meters: int, day: int) -> float:
    """Seconds for a run on `day` of the month: days 1..day-2 stored as day files."""
    store = MeasurementStore(data_dir)
    run = Run(
        data_dir=data_dir, cfg=VeeConfig(), now=dt.datetime.now(dt.UTC), store=store,
        registry=pl.DataFrame(), calendars=[], decisions=pl.DataFrame(), day_decisions=pl.DataFrame(),
    )
    days = [dt.date(2026, 11, d) for d in range(1, day + 1)]
    key = partition(month=MONTH, bucket=BUCKET)
    fresh = {}
    for name, schema in ((DAILY, DAILY_SCHEMA), (REGISTER_READS, REGISTER_READS_SCHEMA)):
        table = store.table(name)
        stored = [
            table.write_file(key, day_rows(meters, [d], dict(schema)), label=d.isoformat()) for d in days[:-2]
        ]
        table.commit(replace={key: stored})
        fresh[name] = day_rows(meters, days[-2:], dict(schema))
        if name == DAILY:  # the month's totals as the run before left them
            totals = aggregate.monthly(day_rows(meters, days[:-2], dict(schema)).lazy(), MONTH).collect()
            store.table("monthly").commit(replace={key: [store.table("monthly").write_file(key, totals)]})
    run.snapshot = None
    monthly = store.table("monthly")

    def then(key: tuple[tuple[str, str], ...], month: str, change: MonthChange) -> None:
        monthly_file(run, monthly, key, month, change)

    started = time.perf_counter()
    merge_months(run, REGISTER_READS, {(MONTH, BUCKET): [fresh[REGISTER_READS]]}, REGISTER_READS_SCHEMA)
    merge_months(run, DAILY, {(MONTH, BUCKET): [fresh[DAILY]]}, DAILY_SCHEMA, then=then)
    return time.perf_counter() - started


def whole_month(data_dir: Path, meters: int, day: int) -> float:
    """The baseline: the month's one file read, merged with the recomputed days, written."""
    days = [dt.date(2026, 11, d) for d in range(1, day + 1)]
    elapsed = 0.0
    for name, schema in ((DAILY, DAILY_SCHEMA), (REGISTER_READS, REGISTER_READS_SCHEMA)):
        path = data_dir / f"{name}.parquet"
        day_rows(meters, days[:-2], dict(schema)).write_parquet(path, compression="zstd", compression_level=1)
        fresh = day_rows(meters, days[-2:], dict(schema))
        started = time.perf_counter()
        kept = pl.scan_parquet(path).filter(~pl.col("date").is_in(days[-2:])).collect()
        merged = kept.merge_sorted(fresh, key="meter_id") if kept.height else fresh
        merged.write_parquet(data_dir / f"{name}-new.parquet", compression="zstd", compression_level=1)
        if name == DAILY:
            monthly = aggregate.monthly(merged.lazy(), MONTH).collect()
            monthly.write_parquet(data_dir / "monthly-new.parquet", compression="zstd", compression_level=1)
        elapsed += time.perf_counter() - started
    return elapsed


def best_of(rounds: int, measure: object, meters: int, day: int) -> float:
    assert callable(measure)
    times = []
    for _ in range(rounds):
        with tempfile.TemporaryDirectory(prefix="amr-month-") as tmp:
            times.append(measure(Path(tmp), meters, day))
    return min(times)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--meters", type=int, default=12_500, help="meters in the bucket")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--quick", action="store_true", help="1,000 meters, for CI")
    args = parser.parse_args()
    meters = 1_000 if args.quick else args.meters
    for day in (2, 15, 29):
        files = best_of(args.rounds, day_files, meters, day)
        whole = best_of(args.rounds, whole_month, meters, day)
        print(
            f"day {day:2d} of the month, {meters:,} meters: day files {files * 1000:.1f} ms, "
            f"baseline (the month rewritten) {whole * 1000:.1f} ms, ratio {whole / files:.1f}x"
        )
    print("(a city: 224 buckets over two workers, so each ms a bucket is 0.11 s of the day's run)")


if __name__ == "__main__":
    main()
