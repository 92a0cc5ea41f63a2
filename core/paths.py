"""Where things live: the data directory and the fixtures shipped with the product."""

from __future__ import annotations

from pathlib import Path

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"


def fixture(*parts: str) -> Path:
    return FIXTURES.joinpath(*parts)


def ensure_data_dir(data_dir: Path) -> Path:
    """Create the data directory (and its parents) when missing; return it resolved."""
    data_dir.mkdir(parents=True, exist_ok=True)
    return data_dir.resolve()
