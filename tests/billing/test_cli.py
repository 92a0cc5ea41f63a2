"""The `amr bill` and `amr customers` command groups, through typer's runner."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any

import pytest
import typer
from typer.testing import CliRunner

from amr.commands import bill, customers

runner = CliRunner()
TOTAL = "1.0.1.8.0.255"


@pytest.mark.parametrize("group", [bill.app, customers.app])
def test_every_command_has_an_example(group: typer.Typer) -> None:
    for command in group.registered_commands:
        assert command.callback is not None and "Example: amr " in (command.callback.__doc__ or "")


def test_quote_json_contract() -> None:
    result = runner.invoke(
        bill.app, ["quote", "--kwh", "410", "--from", "2015-05-31", "--to", "2015-06-30", "--json"]
    )
    assert result.exit_code == 0, result.output
    payload = json.loads(result.output)
    assert payload["total_amount"] == 912_802 and payload["vat_rate"] == "0.10"
    assert payload["lines"][5] == {"tier": 6, "quota_kwh": None, "kwh": 10, "price": 2587, "amount": 25_870}
    table = runner.invoke(bill.app, ["quote", "--kwh", "410", "--from", "2015-05-31", "--to", "2015-06-30"])
    assert "912.802" in table.output
    bad = runner.invoke(bill.app, ["quote", "--kwh", "lots"])
    assert bad.exit_code == 1 and "--kwh 'lots' is not a number" in bad.output


def test_import_run_holds_issue_export(world: Any, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("AMR_DATA_DIR", str(world.data_dir))
    monkeypatch.setenv("AMR_BUCKETS", "4")
    fleet = tmp_path / "fleet.csv"
    fleet.write_text(
        "meter_id,customer_code,url,households,tariff_class,route\n"
        "M1,PD01000000001,dlms+tcp://127.0.0.1:4059,1,residential,R1\n"
        "M2,PD01000000002,dlms+tcp://127.0.0.1:4060,2,residential,R1\n",
        encoding="utf-8",
    )
    result = runner.invoke(customers.app, ["import", str(fleet)])
    assert result.exit_code == 0, result.output
    shown = runner.invoke(customers.app, ["show", "PD01000000002", "--json"])
    assert json.loads(shown.output)["contracts"][0]["households"] == "2"
    world.reads([("M1", dt.date(2026, 10, 31), TOTAL, 0), ("M1", dt.date(2026, 11, 30), TOTAL, 300_000)])
    result = runner.invoke(bill.app, ["run", "--period", "2026-11", "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["held"] == 1  # M2 has no data
    held = json.loads(runner.invoke(bill.app, ["holds", "--json"]).output)
    assert [h["bill_id"] for h in held] == ["2026-11-PD01000000002"]
    assert runner.invoke(bill.app, ["release", "2026-11-PD01000000002", "--reason", ""]).exit_code == 1
    issued = runner.invoke(bill.app, ["issue", "--period", "2026-11", "--date", "2026-12-01", "--json"])
    assert json.loads(issued.output)["issued"] == 1
    written = world.data_dir / "documents" / "2026-11" / "2026-11-PD01000000001-v1.xml"
    assert written.is_file()
    archived = runner.invoke(bill.app, ["documents", "--period", "2026-11", "--archive"])
    assert archived.exit_code == 0 and "einvoices" in archived.output, archived.output
    taken = runner.invoke(
        bill.app, ["invoice", "2026-11-PD01000000001", "--period", "2026-11", "--out", str(tmp_path)]
    )
    assert taken.exit_code == 0, taken.output
    assert (tmp_path / "2026-11-PD01000000001-v1.xml").read_bytes() == written.read_bytes()  # unsigned: same
    missing = runner.invoke(bill.app, ["invoice", "2026-11-PD01000000002", "--period", "2026-11"])
    assert missing.exit_code == 1 and "no archived e-invoice" in missing.output
    out = tmp_path / "bills.csv"
    assert runner.invoke(bill.app, ["export", "--period", "2026-11", "--out", str(out)]).exit_code == 0
    assert out.read_text("utf-8").count("2026-11-PD") == 2
