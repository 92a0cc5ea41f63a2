"""Shared test fixtures: every test gets its own data directory and a clean AMR_* environment."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest


@pytest.fixture(autouse=True)
def _isolated_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[None]:
    import os

    for name in list(os.environ):
        if name.startswith("AMR_"):
            monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(tmp_path)  # so no stray amr.toml is read
    # the CLI keeps this invocation's global options (--data-dir) in a module; tests invoke many
    # commands in one process, some without the top-level app, so start each test without them
    from amr.context import set_global_options

    set_global_options(None)
    yield


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    path = tmp_path / "amr-data"
    path.mkdir()
    return path
