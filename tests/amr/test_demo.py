"""`amr demo` end to end over real sockets: meters read, readings stored, bills published."""

from __future__ import annotations

import json
from pathlib import Path

import polars as pl
import pytest
from typer.testing import CliRunner

from amr.cli import app
from core.measurements import MeasurementStore
from core.tables import BILLS

runner = CliRunner()


def _bills(data_dir: Path) -> pl.DataFrame:
    return MeasurementStore(data_dir).table(BILLS).scan().collect().sort("customer_code")


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_demo_runs_end_to_end_and_again_gives_the_same_bills(tmp_path: Path) -> None:
    data_dir = tmp_path / "amr-data"
    args = ["--data-dir", str(data_dir), "demo", "--meters", "12", "--period", "2026-10"]
    first = runner.invoke(app, args)
    assert first.exit_code == 0, first.output
    assert "bills" in first.output and "amr portal serve" in first.output
    bills = _bills(data_dir)
    assert bills.height == 12
    assert (bills["total_amount"] > 0).all()
    # every bill's total is its amount before VAT plus the VAT line, in whole VND
    assert (bills["amount_before_vat"] + bills["vat_amount"] == bills["total_amount"]).all()
    assert set(bills["vat_rate"].to_list()) == {"0.08"}
    for lines in bills["lines"].to_list():
        assert sum(line["amount"] for line in json.loads(lines)) > 0

    second = runner.invoke(app, args)
    assert second.exit_code == 0, second.output
    again = _bills(data_dir)
    key = ["customer_code", "kwh", "amount_before_vat", "vat_amount", "total_amount"]
    assert again.select(key).unique().sort("customer_code").equals(bills.select(key).sort("customer_code"))
