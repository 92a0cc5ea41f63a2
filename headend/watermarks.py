"""Watermarks: per meter and profile, the last interval stored. A round reads from here."""

from __future__ import annotations

import datetime as dt
from collections.abc import Collection, Iterable, Mapping

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from core.state import StateStore
from headend.meter_rows import select_for_meters
from headend.timestamps import from_db, to_db

WatermarkKey = tuple[str, str]  # (meter_id, profile)


def load(state: StateStore, meter_ids: Collection[str] | None = None) -> dict[WatermarkKey, dt.datetime]:
    with state.read() as conn:
        rows = select_for_meters(conn, "SELECT meter_id, profile, last_ts FROM headend_watermarks", meter_ids)
    return {(r.meter_id, r.profile): from_db(r.last_ts) for r in rows}


def apply(conn: Connection, marks: Mapping[WatermarkKey, dt.datetime]) -> None:
    """Move watermarks forward (never back) inside the caller's transaction."""
    if not marks:
        return
    conn.execute(
        sa.text(
            "INSERT INTO headend_watermarks (meter_id, profile, last_ts, updated_at)"
            " VALUES (:m, :p, :ts, CURRENT_TIMESTAMP)"
            " ON CONFLICT (meter_id, profile) DO UPDATE SET last_ts = excluded.last_ts,"
            " updated_at = CURRENT_TIMESTAMP WHERE excluded.last_ts > headend_watermarks.last_ts"
        ),
        [{"m": m, "p": p, "ts": to_db(ts)} for (m, p), ts in marks.items()],
    )


def encode(marks: Mapping[WatermarkKey, dt.datetime]) -> list[list[str]]:
    return [[m, p, to_db(ts)] for (m, p), ts in sorted(marks.items())]


def decode(rows: Iterable[list[str]]) -> dict[WatermarkKey, dt.datetime]:
    return {(m, p): from_db(ts) for m, p, ts in rows}
