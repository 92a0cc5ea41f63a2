"""`amr simulate dlms`: help with an example, and a real run read over TCP, then stopped by a signal."""

from __future__ import annotations

import asyncio
import csv
import os
import selectors
import signal
import subprocess
import sys
import time
import tomllib
from pathlib import Path

import pytest
from typer.testing import CliRunner

from amr.commands.simulate_dlms import app
from core.meter_url import MeterUrl
from protocols.dlms.reader import read_dlms_meter

ROOT = Path(__file__).parents[4]


def test_help_has_an_example() -> None:
    result = CliRunner().invoke(app, ["dlms", "--help"])
    assert result.exit_code == 0
    assert any(line.strip().startswith("Example:") for line in result.output.splitlines())


def test_unknown_fault_is_a_message_not_a_traceback() -> None:
    result = CliRunner().invoke(app, ["dlms", "--port", "0", "--fault", "lightning"])
    assert result.exit_code == 1 and "Traceback" not in result.output


def _wait_for_line(process: subprocess.Popen[bytes], text: str, timeout: float) -> str:
    assert process.stdout is not None
    selector = selectors.DefaultSelector()
    selector.register(process.stdout, selectors.EVENT_READ)
    seen = b""
    deadline = time.monotonic() + timeout
    while text.encode() not in seen:
        remaining = deadline - time.monotonic()
        assert remaining > 0, f"simulator did not print {text!r}: {seen.decode(errors='replace')}"
        if selector.select(remaining):
            chunk = os.read(process.stdout.fileno(), 4096)
            assert chunk, f"simulator exited: {seen.decode(errors='replace')}"
            seen += chunk
    return seen.decode()


@pytest.mark.slow
def test_serves_until_interrupted(tmp_path: Path) -> None:
    fleet_file, keys_file = tmp_path / "fleet.csv", tmp_path / "keys.toml"
    command = [
        sys.executable,
        "-c",
        "from amr.commands.simulate_dlms import app; app()",
        "dlms",
        "--port",
        "0",
        "--meters",
        "2",
        "--auth",
        "lls",
        "--fleet-file",
        str(fleet_file),
        "--keys-file",
        str(keys_file),
    ]
    process = subprocess.Popen(
        command,
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        env={**os.environ, "COLUMNS": "200"},
    )
    try:
        _wait_for_line(process, "Serving", timeout=30)
        rows = list(csv.DictReader(fleet_file.open()))
        assert len(rows) == 2
        keys = tomllib.loads(keys_file.read_text())["meter-keys"]
        assert oct(keys_file.stat().st_mode & 0o777) == "0o600"
        url = MeterUrl.parse(rows[0]["url"])
        secret = bytes.fromhex(keys[rows[0]["meter_id"]]["password_hex"])
        readings = asyncio.run(read_dlms_meter(url, rows[0]["meter_id"], secrets=lambda _: secret, timeout=5))
        assert {r.quantity for r in readings} >= {"1.0.1.8.0.255", "0.0.1.0.0.255"}
    finally:
        process.send_signal(signal.SIGINT)
        assert process.wait(timeout=20) == 0
