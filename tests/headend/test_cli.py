"""The command groups through typer's runner: help examples, import errors, poll, status, metrics."""

from __future__ import annotations

import asyncio
import json
import threading
from pathlib import Path

import polars as pl
import pytest
import typer
from typer.testing import CliRunner

from amr.commands import headend as headend_cmd
from amr.commands import meters as meters_cmd
from amr.context import set_global_options
from ingest.registry import SNAPSHOT

runner = CliRunner()


@pytest.mark.parametrize("group", [meters_cmd.app, headend_cmd.app], ids=["meters", "headend"])
def test_every_command_has_an_example(group: typer.Typer) -> None:
    for command in group.registered_commands:
        doc = command.callback.__doc__ or ""  # type: ignore[union-attr]
        assert any(line.strip().startswith("Example: amr ") for line in doc.splitlines()), command.name


def test_import_reports_bad_rows_and_imports_nothing(data_dir: Path, tmp_path: Path) -> None:
    set_global_options(data_dir)
    fleet = tmp_path / "fleet.csv"
    fleet.write_text(
        "meter_id,url,customer_code\n"
        "M1,modbus+tcp://127.0.0.1:5020?unit=1&map=eastron-sdm630,PD01000000001\n"
        "M2,modbus+tcp://127.0.0.1:5021?unit=1,PD01000000002\n"
        "M3,modbus+tcp://127.0.0.1:5022?unit=1&map=eastron-sdm630,XX1\n"
    )
    result = runner.invoke(meters_cmd.app, ["import", str(fleet), "--json"])
    assert result.exit_code == 1
    report = json.loads(result.stdout[: result.stdout.rindex("}") + 1])
    assert {(e["line"], e["column"]) for e in report["errors"]} == {(3, "url"), (4, "customer_code")}
    assert not report["applied"]
    assert not (data_dir / SNAPSHOT).exists()
    assert json.loads(runner.invoke(meters_cmd.app, ["list", "--json"]).stdout) == []
    result = runner.invoke(meters_cmd.app, ["import", str(fleet), "--good-rows"])
    assert result.exit_code == 0, result.stdout
    listed = json.loads(runner.invoke(meters_cmd.app, ["list", "--json"]).stdout)
    assert [m["meter_id"] for m in listed] == ["M1"]
    # the import makes ingest's registry snapshot, so the next run need not
    assert pl.read_parquet(data_dir / SNAPSHOT).get_column("meter_id").to_list() == ["M1"]


def test_poll_status_and_metrics_against_a_simulated_fleet(data_dir: Path, tmp_path: Path) -> None:
    from protocols.modbus.simulator import ModbusFleetSimulator

    set_global_options(data_dir)
    ready = threading.Event()
    done = threading.Event()
    holder: dict[str, object] = {}

    async def serve() -> None:
        async with ModbusFleetSimulator(meters=5, seed=4, faults=["no-answer@0.3"]) as sim:
            holder["path"] = sim.write_fleet_file(tmp_path / "fleet.csv")
            holder["faulty"] = {m.meter_id for m in sim.meters if m.faults}
            ready.set()
            while not done.is_set():
                await asyncio.sleep(0.02)

    thread = threading.Thread(target=lambda: asyncio.run(serve()), daemon=True)
    thread.start()
    try:
        assert ready.wait(10)
        assert runner.invoke(meters_cmd.app, ["import", str(holder["path"])]).exit_code == 0
        (tmp_path / "amr.toml").write_text("[headend]\nsession_timeout_s = 0.5\nretries = 0\n")
        result = runner.invoke(headend_cmd.app, ["poll", "--all", "--json"])
        assert result.exit_code == 0, result.stdout
        report = json.loads(result.stdout)
        assert report["ok"] + report["failed"] == 5
        assert set(report["failures"]) == holder["faulty"]
    finally:
        done.set()
        thread.join(10)
    status = json.loads(runner.invoke(headend_cmd.app, ["status", "--json"]).stdout)
    assert {f["meter_id"] for f in status["failing"]} == holder["faulty"]
    assert sum(r["meters"] for r in status["rates"]) == 5
    text = runner.invoke(headend_cmd.app, ["metrics"]).stdout
    assert "# TYPE amr_headend_attempts_total counter" in text
    assert 'amr_headend_attempts_total{protocol="modbus",outcome="ok",error_class=""}' in text
    assert runner.invoke(headend_cmd.app, ["poll"]).exit_code == 1  # no selection


def test_run_without_standby_refuses_while_another_scheduler_lives(data_dir: Path) -> None:
    import datetime as dt

    from core.state import StateStore
    from headend import lock

    set_global_options(data_dir)
    lock.acquire(StateStore.open(data_dir), "other-host:1:abc", ttl=dt.timedelta(hours=1),
                 now=dt.datetime.now(dt.UTC))
    result = runner.invoke(headend_cmd.app, ["run", "--no-standby", "--after-round", ""])
    assert result.exit_code == 1
    assert "other-host:1:abc" in result.output and "standby" in result.output


def test_runs_lists_the_ledger(data_dir: Path) -> None:
    import datetime as dt

    from core.state import StateStore
    from headend import ledger

    set_global_options(data_dir)
    state = StateStore.open(data_dir)
    at = dt.datetime(2026, 3, 10, 3, 0, tzinfo=dt.UTC)
    for minutes in (0, 15):
        ledger.claim(state, ledger.RunKey("intraday", at + dt.timedelta(minutes=minutes)), "h1", now=at)
    ledger.complete(state, ledger.RunKey("intraday", at), now=at)
    result = runner.invoke(headend_cmd.app, ["runs", "--json", "--limit", "5"])
    assert result.exit_code == 0, result.output
    listed = json.loads(result.stdout)
    assert [(r["scheduled_at"], r["state"]) for r in listed] == [
        ("2026-03-10T03:00:00+00:00", "done"), ("2026-03-10T03:15:00+00:00", "running")]
