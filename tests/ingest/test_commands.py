"""The `amr ingest` and `amr quality` command groups, through typer's runner."""

from __future__ import annotations

import json
from pathlib import Path

import polars as pl
import pytest
import typer
from typer.testing import CliRunner

from amr.commands import ingest as ingest_commands
from amr.commands import quality as quality_commands
from core.state import StateStore
from tests.ingest.builders import BUCKETS, DAY, frame, interval_day, land, register

runner = CliRunner()


@pytest.mark.parametrize("app", [ingest_commands.app, quality_commands.app])
def test_every_command_has_an_example(app: typer.Typer) -> None:
    for command in app.registered_commands:
        assert command.callback is not None
        assert "Example: amr " in (command.callback.__doc__ or ""), command.name


def test_run_report_show_and_log(data_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AMR_DATA_DIR", str(data_dir))
    monkeypatch.setenv("AMR_BUCKETS", str(BUCKETS))
    state = StateStore.open(data_dir)
    register(state, ["M1"])
    land(data_dir, interval_day("M1", DAY))
    result = runner.invoke(ingest_commands.app, ["run", "--json"])
    assert result.exit_code == 0, result.output
    payload = json.loads(result.output)
    assert payload["balanced"] and payload["readings_in"] == 98
    result = runner.invoke(quality_commands.app, ["report", "--date", DAY.isoformat(), "--json"])
    assert result.exit_code == 0 and json.loads(result.output)["by_state"] == {"valid": 97}
    result = runner.invoke(quality_commands.app, ["show", "M1", "--date", DAY.isoformat()])
    assert result.exit_code == 0 and "M1: " in result.output
    result = runner.invoke(ingest_commands.app, ["log", "--json"])
    assert result.exit_code == 0 and json.loads(result.output)[0]["rows_in"] == 98
    result = runner.invoke(quality_commands.app, ["review"])
    assert result.exit_code == 0 and "review queue: 0 shown" in result.output
    assert "day findings: 0 shown" in result.output
    result = runner.invoke(quality_commands.app, ["review", "--json"])
    assert result.exit_code == 0 and json.loads(result.output) == {"readings": [], "days": []}
    result = runner.invoke(
        quality_commands.app,
        ["decide-day", "M1", "--date", DAY.isoformat(), "--rule", "gap", "--action", "accept",
         "--reason", "ok", "--by", "lan"],
    )
    assert result.exit_code == 1 and "no 'gap' finding" in result.output and "hint:" in result.output


def test_a_refused_import_is_a_message_with_a_hint(
    data_dir: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("AMR_DATA_DIR", str(data_dir))
    bad = tmp_path / "bad.csv"
    bad.write_text("meter_id,value\nM1,1\n")
    result = runner.invoke(ingest_commands.app, ["import", str(bad)])
    assert result.exit_code == 1
    assert "missing column(s)" in result.output and "hint:" in result.output


def test_a_half_hourly_import_is_refused_unless_gappy(
    data_dir: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("AMR_DATA_DIR", str(data_dir))
    monkeypatch.setenv("AMR_BUCKETS", str(BUCKETS))
    register(StateStore.open(data_dir), ["M1"])
    readings = frame(interval_day("M1", DAY))
    path = tmp_path / "half-hourly.parquet"
    readings.filter(pl.col("ts").dt.minute().is_in([0, 30])).write_parquet(path)
    result = runner.invoke(ingest_commands.app, ["import", str(path)])
    assert result.exit_code == 1
    assert "30 minutes apart" in result.output and "interval_minutes = 30" in result.output
    result = runner.invoke(ingest_commands.app, ["import", str(path), "--gappy", "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["balanced"]
