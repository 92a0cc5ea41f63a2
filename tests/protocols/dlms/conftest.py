"""Shared helpers for the DLMS tests: the published vectors and a virtual clock."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any

import pytest

from core.clock import VirtualClock

VECTORS = json.loads((Path(__file__).parents[3] / "fixtures" / "dlms" / "vectors.json").read_text())
START = dt.datetime(2026, 3, 10, 5, 0, tzinfo=dt.UTC)  # 12:00 in Hanoi


def vectors(kind: str) -> list[dict[str, Any]]:
    return list(VECTORS[kind])


@pytest.fixture
def clock() -> VirtualClock:
    return VirtualClock(START)
