"""`amr read` against a simulated Modbus meter in another process, over a real socket."""

from __future__ import annotations

import json
import os
import selectors
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path

import polars as pl
import pytest
from typer.testing import CliRunner

from amr.cli import app

runner = CliRunner()


@pytest.fixture
def simulated_meter(tmp_path: Path) -> Iterator[str]:
    """Start `amr simulate modbus` on any free port; yield the meter's URL from its fleet file."""
    fleet = tmp_path / "fleet.csv"
    process = subprocess.Popen(
        [sys.executable, "-m", "amr", "simulate", "modbus", "--port", "0", "--meters", "1",
         "--fleet-file", str(fleet)],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
    )
    assert process.stdout is not None
    selector = selectors.DefaultSelector()
    selector.register(process.stdout, selectors.EVENT_READ)
    deadline = time.monotonic() + 60
    seen = ""
    try:
        while "fleet file" not in seen:  # the simulator says so once it listens
            remaining = deadline - time.monotonic()
            assert remaining > 0 and process.poll() is None, f"simulator did not start: {seen}"
            if selector.select(timeout=remaining):
                # read the pipe itself: a buffered readline can take the rest of the output
                # into Python's buffer, where select does not see it, and wait out the deadline
                seen += os.read(process.stdout.fileno(), 65536).decode(errors="replace")
        yield str(pl.read_csv(fleet)["url"][0])
    finally:
        process.send_signal(signal.SIGINT)
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()


@pytest.mark.slow
def test_amr_read_prints_the_energy_register_as_json(simulated_meter: str) -> None:
    result = runner.invoke(app, ["read", simulated_meter, "--quantity", "1.0.1.8.0.255", "--json"])
    assert result.exit_code == 0, result.output
    readings = json.loads(result.output)
    assert [r["quantity"] for r in readings] == ["1.0.1.8.0.255"]
    energy = readings[0]
    assert Decimal(energy["value"]) > 0 and energy["unit"] in ("kWh", "Wh")
    # the value is an exact decimal string: a whole number of 10^scale steps, no exponent
    assert "e" not in energy["value"].lower()
    assert Decimal(energy["value"]) % Decimal(10).scaleb(energy["scale"] - 1) == 0
    assert energy["snapshot"] is True and energy["ts"].endswith("Z")


def test_amr_read_names_the_bad_part_of_a_url() -> None:
    result = runner.invoke(app, ["read", "modbus+tcp://127.0.0.1:5020?unit=1", "--quantity", "1.0.1.8.0.255"])
    assert result.exit_code == 1
    assert "parameter map" in result.output
