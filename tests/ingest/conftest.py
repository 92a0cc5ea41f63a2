"""Ingest test fixtures."""

from __future__ import annotations

from pathlib import Path

import pytest

from core.state import StateStore


@pytest.fixture
def state(data_dir: Path) -> StateStore:
    return StateStore.open(data_dir)
