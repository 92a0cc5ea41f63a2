"""Options on `amr` itself reach every command, and never leak into the next invocation."""

from __future__ import annotations

import json
import os
from pathlib import Path

from typer.testing import CliRunner

from amr.cli import app

runner = CliRunner()


def test_cluster_option_reaches_the_command_and_is_checked(tmp_path: Path) -> None:
    result = runner.invoke(
        app, ["--data-dir", str(tmp_path), "--cluster", "not-an-address", "ingest", "run"]
    )
    assert result.exit_code == 1
    assert "not-an-address" in result.output
    assert "not a Dask scheduler address" in result.output


def test_cluster_option_does_not_outlive_its_invocation(tmp_path: Path) -> None:
    before = os.environ.get("AMR_CLUSTER")
    failed = runner.invoke(app, ["--data-dir", str(tmp_path), "--cluster", "not-an-address", "ingest", "run"])
    assert failed.exit_code == 1
    assert os.environ.get("AMR_CLUSTER") == before  # put back as soon as the command ended

    result = runner.invoke(app, ["--data-dir", str(tmp_path), "ingest", "run", "--json"])

    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["batches"] == 0
    assert os.environ.get("AMR_CLUSTER") == before
