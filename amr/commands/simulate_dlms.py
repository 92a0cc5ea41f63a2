"""Placeholder: filled in by the room that owns this command group."""

from __future__ import annotations

import typer

app = typer.Typer(no_args_is_help=True)
