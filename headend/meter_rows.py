"""Reading per-meter rows (watermarks, health) for the meters of one round only.

A round covers one bucket of a city's fleet, while these tables hold every meter, so the
rows are selected by meter id in chunks of bound parameters instead of reading the whole
table and filtering in Python.
"""

from __future__ import annotations

from collections.abc import Collection
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

CHUNK = 5000  # bound parameters per query: well under SQLite's limit of 32,766


def select_for_meters(conn: Connection, select: str, meter_ids: Collection[str] | None) -> list[Any]:
    """Rows of `select` (a constant `SELECT ... FROM table` with a meter_id column) for
    `meter_ids`, or all of them when None."""
    if meter_ids is None:
        return list(conn.execute(sa.text(select)).all())
    ids = sorted(set(meter_ids))
    statement = sa.text(f"{select} WHERE meter_id IN :ids").bindparams(sa.bindparam("ids", expanding=True))
    rows: list[Any] = []
    for start in range(0, len(ids), CHUNK):
        rows.extend(conn.execute(statement, {"ids": ids[start : start + CHUNK]}).all())
    return rows
