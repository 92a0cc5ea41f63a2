"""`amr simulate modbus`: help with an example, and a run that writes the fleet file."""

from __future__ import annotations

import asyncio
import threading
from pathlib import Path

import typer
from typer.testing import CliRunner

from amr.commands import simulate_modbus
from protocols.modbus import simulator


def _app() -> typer.Typer:
    app = typer.Typer()
    app.command()(simulate_modbus.modbus)
    return app


def test_help_has_an_example() -> None:
    result = CliRunner().invoke(_app(), ["--help"])
    assert result.exit_code == 0
    assert "Example: amr simulate modbus" in result.output


def test_runs_a_fleet_and_writes_its_file(tmp_path: Path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    started = threading.Event()
    original = simulator.run_fleet

    def run_until_ready(sim, *, fleet_file, on_ready=None, stop=None):  # type: ignore[no-untyped-def]
        done = asyncio.Event()

        def ready(fleet):  # type: ignore[no-untyped-def]
            on_ready(fleet)
            started.set()
            done.set()  # stop as soon as the fleet is up: the test only checks the start
        original(sim, fleet_file=fleet_file, on_ready=ready, stop=done)

    monkeypatch.setattr(simulate_modbus, "run_fleet", run_until_ready)
    fleet_file = tmp_path / "fleet.csv"
    result = CliRunner().invoke(_app(), ["--port", "0", "--meters", "3", "--map", "eastron-sdm120",
                                         "--fleet-file", str(fleet_file), "--fault", "no-answer@0.5"])
    assert result.exit_code == 0, result.output
    assert started.is_set()
    assert fleet_file.read_text(encoding="utf-8").count("modbus+tcp://127.0.0.1:") == 3
    assert "3 simulated eastron-sdm120 meter(s)" in result.output


def test_bad_fault_is_a_message_not_a_traceback(tmp_path: Path) -> None:
    result = CliRunner().invoke(_app(), ["--fault", "smoke", "--fleet-file", str(tmp_path / "f.csv")])
    assert result.exit_code == 1
    assert "smoke" in result.output and "hint" in result.output
