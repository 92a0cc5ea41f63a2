"""Every command has help with an example, and `amr --help` lists the command groups."""

from __future__ import annotations

from typing import Any

import pytest
import typer.main
from typer.testing import CliRunner

from amr.cli import app

runner = CliRunner()


def _commands(group: Any, prefix: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    found = [prefix]
    # typer vendors its own click, so look for sub-commands by shape, not by class
    if hasattr(group, "commands"):
        for name, command in group.commands.items():
            found.extend(_commands(command, (*prefix, name)))
    return found


ALL = _commands(typer.main.get_command(app))


def test_top_level_help_lists_the_commands() -> None:
    result = runner.invoke(app, ["--help"])
    assert result.exit_code == 0
    for name in ("demo", "meters", "read", "simulate", "headend", "ingest", "bill", "portal"):
        assert name in result.output


@pytest.mark.parametrize("path", ALL, ids=[" ".join(p) or "amr" for p in ALL])
def test_every_command_has_help_with_an_example(path: tuple[str, ...]) -> None:
    result = runner.invoke(app, [*path, "--help"])
    assert result.exit_code == 0, result.output
    assert "Example:" in result.output, f"`amr {' '.join(path)} --help` shows no example"
