"""Registry set-up shared by the head-end tests."""

from __future__ import annotations

from pathlib import Path

from core.state import StateStore
from headend.registry import Meter, import_fleet, list_meters


def register(state: StateStore, tmp: Path, rows: list[dict[str, str]], *, buckets: int = 4) -> list[Meter]:
    columns = sorted({k for r in rows for k in r})
    lines = [",".join(columns)] + [",".join(r.get(c, "") for c in columns) for r in rows]
    path = tmp / "fleet.csv"
    path.write_text("\n".join(lines) + "\n")
    report = import_fleet(state, path, buckets=buckets)
    assert report.applied, report.errors
    return list_meters(state)


def dlms_rows(
    count: int, *, gateways: int = 2, cells: int = 2, read: str = "profile"
) -> list[dict[str, str]]:
    return [
        {
            "meter_id": f"M{i:04d}",
            "url": f"dlms+tcp://gw{i % gateways}.example:4059?client=16&server={i + 1}",
            "route": f"R{i % 2}",
            "cell": f"cell{i % cells}",
            "read": f'"{read}"',
        }
        for i in range(count)
    ]
