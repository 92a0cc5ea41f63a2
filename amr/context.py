"""What every command shares: settings, stores, the console, and turning errors into messages."""

from __future__ import annotations

import functools
import json
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, ParamSpec, TypeVar

import typer
from rich.console import Console
from rich.markup import escape

from core.config import Settings, load_settings
from core.errors import AmrError
from core.executor import CLUSTER_ENV
from core.measurements import MeasurementStore
from core.paths import ensure_data_dir
from core.state import StateStore

console = Console()
err_console = Console(stderr=True)

P = ParamSpec("P")
R = TypeVar("R")

_overrides: dict[str, Any] = {}


def set_global_options(data_dir: Path | None, cluster: str | None = None) -> Callable[[], None]:
    """Options of this invocation; each invocation sets them afresh (tests run many in one process).

    `--cluster` is passed on as AMR_CLUSTER, the one executor setting every room's
    `open_executor()` reads, so no command needs an option of its own for it. The returned
    function puts AMR_CLUSTER back as it was; the CLI calls it when the command ends.
    """
    _overrides.clear()
    if data_dir is not None:
        _overrides["data_dir"] = data_dir
    before = os.environ.get(CLUSTER_ENV)
    if cluster:
        os.environ[CLUSTER_ENV] = cluster

    def restore() -> None:
        if before is None:
            os.environ.pop(CLUSTER_ENV, None)
        else:
            os.environ[CLUSTER_ENV] = before

    return restore


def settings() -> Settings:
    return load_settings(**_overrides)


def data_dir() -> Path:
    return ensure_data_dir(settings().data_dir)


def state() -> StateStore:
    return StateStore.open(data_dir())


def measurements() -> MeasurementStore:
    return MeasurementStore(data_dir())


def print_json(payload: Any) -> None:
    sys.stdout.write(json.dumps(payload, ensure_ascii=False, indent=2, default=str) + "\n")


def fail(message: str, hint: str | None = None, code: int = 1) -> typer.Exit:
    # soft_wrap: an error stays one line however narrow the terminal, so it can be grepped
    err_console.print(f"[bold red]error:[/] {escape(message)}", highlight=False, soft_wrap=True)
    if hint:
        err_console.print(f"[yellow]hint:[/] {escape(hint)}", highlight=False, soft_wrap=True)
    return typer.Exit(code)


def handle_errors(func: Callable[P, R]) -> Callable[P, R]:
    """Turn the product's expected errors into a one-line message and exit code 1."""

    @functools.wraps(func)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return func(*args, **kwargs)
        except AmrError as exc:
            raise fail(str(exc), exc.hint) from None

    return wrapper
