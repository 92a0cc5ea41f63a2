from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any

import polars as pl
import pytest

from billing.errors import BillingError
from billing.exports import export_bills
from billing.run import run_bills

TOTAL = "1.0.1.8.0.255"


def test_exports_round_trip_in_three_formats(world: Any, tmp_path: Path) -> None:
    world.customers(
        [{"customer_code": f"PD01{i:09d}", "meter_id": f"M{i}", "installed_on": "2025-01-01"} for i in (1, 2)]
    )
    world.reads(
        [
            (f"M{i}", d, TOTAL, v * i)
            for i in (1, 2)
            for d, v in ((dt.date(2026, 10, 31), 0), (dt.date(2026, 11, 30), 150_000))
        ]
    )
    run_bills(world.data_dir, world.state, period="2026-11", settings=world.settings)
    assert export_bills(world.data_dir, period="2026-11", out=tmp_path / "b.parquet") == 2
    assert export_bills(world.data_dir, period="2026-11", out=tmp_path / "b.csv") == 2
    assert export_bills(world.data_dir, period="2026-11", out=tmp_path / "b.json") == 2
    parquet = pl.read_parquet(tmp_path / "b.parquet")
    csv = pl.read_csv(tmp_path / "b.csv")
    rows = json.loads((tmp_path / "b.json").read_text("utf-8"))
    assert (
        parquet["total_amount"].to_list()
        == csv["total_amount"].to_list()
        == [r["total_amount"] for r in rows]
    )
    assert sum(line["kwh"] for line in rows[1]["lines"]) == rows[1]["kwh"] == 300
    with pytest.raises(BillingError, match="xlsx"):
        export_bills(world.data_dir, period="2026-11", out=tmp_path / "b.xlsx")
    with pytest.raises(BillingError, match="no bills for 2026-10"):
        export_bills(world.data_dir, period="2026-10", out=tmp_path / "c.csv")
