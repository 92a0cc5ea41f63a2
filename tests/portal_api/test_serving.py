"""The serving snapshot follows the manifests; runs and the portal never block each other."""

from __future__ import annotations

import datetime as dt
import multiprocessing
from pathlib import Path

import pytest
from portal_world import ALICE, BUCKETS, bill_row, daily_rows, publish_bills, publish_daily

from core.buckets import bucket_of
from portal_api.serving import ServingSnapshot


def test_refresh_builds_changed_partitions_only_and_keeps_reading(tmp_path: Path) -> None:
    publish_daily(tmp_path, daily_rows("M1", dt.date(2026, 10, 1), 31, 1000, "intervals")
                  + daily_rows("M2", dt.date(2026, 10, 1), 31, 2000, "registers"))
    publish_bills(tmp_path, [bill_row(ALICE, "2026-10")])
    serving = ServingSnapshot(tmp_path)
    first = serving.refresh()
    assert first.built >= 2 and first.reused == 0
    assert serving.refresh().built == 0
    month = serving.month_of_days("M1", bucket_of("M1", BUCKETS), "2026-10")
    assert month is not None and month.columns["d"] == list(range(1, 32))
    assert month.columns["e"][0] == 1000 and month.columns["t"] == [1] * 31
    # A new run of M1's partition: one new serving file, the old answer until the swap.
    publish_daily(tmp_path, daily_rows("M1", dt.date(2026, 10, 1), 31, 5000, "intervals"))
    unchanged = serving.month_of_days("M1", bucket_of("M1", BUCKETS), "2026-10")
    assert unchanged is not None and unchanged.columns["e"][0] == 1000
    assert serving.refresh().built == 1
    changed = serving.month_of_days("M1", bucket_of("M1", BUCKETS), "2026-10")
    assert changed is not None and changed.columns["e"][0] == 5000
    assert serving.month_of_days("nobody", 0, "2026-10") is None
    assert serving.bills(ALICE, bucket_of(ALICE, BUCKETS))[0]["total_amount"] == 500_000


def _publisher(data_dir: str, runs: int) -> None:
    for run in range(runs):
        rows = daily_rows("M1", dt.date(2026, 10, 1), 31, 1000 * (run + 2), "intervals")
        publish_daily(Path(data_dir), rows)


@pytest.mark.slow
def test_reads_stay_whole_while_another_process_publishes(tmp_path: Path) -> None:
    publish_daily(tmp_path, daily_rows("M1", dt.date(2026, 10, 1), 31, 1000, "intervals"))
    serving = ServingSnapshot(tmp_path)
    serving.refresh()
    child = multiprocessing.get_context("spawn").Process(target=_publisher, args=(str(tmp_path), 4))
    child.start()
    seen = set()
    while child.is_alive() or not seen:
        serving.refresh()
        month = serving.month_of_days("M1", bucket_of("M1", BUCKETS), "2026-10")
        assert month is not None and len(month.columns["d"]) == 31
        first = month.columns["e"][0]
        # Every day of the month comes from the same run: day i is first + 100 i.
        assert month.columns["e"] == [first + 100 * i for i in range(31)]
        seen.add(first)
        child.join(timeout=0.01)
    child.join(timeout=30)
    assert child.exitcode == 0
    serving.refresh()
    last = serving.month_of_days("M1", bucket_of("M1", BUCKETS), "2026-10")
    assert last is not None and last.columns["e"][0] == 5000


def test_a_repeated_meter_day_counts_once_and_the_last_row_wins(tmp_path: Path) -> None:
    rows = daily_rows("M1", dt.date(2026, 10, 1), 3, 1000, "intervals")
    again = dict(rows[1], energy_wh=7777)
    publish_daily(tmp_path, [*rows, again])
    serving = ServingSnapshot(tmp_path)
    serving.refresh()
    month = serving.month_of_days("M1", bucket_of("M1", BUCKETS), "2026-10")
    assert month is not None and month.columns["d"] == [1, 2, 3]
    assert month.columns["e"] == [1000, 7777, 1200]
