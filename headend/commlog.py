"""The communication log: one row per attempt at a meter, written in batches."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from headend.timestamps import to_db

MAX_ERROR_TEXT = 300


@dataclass(frozen=True, slots=True)
class Attempt:
    round_id: str
    meter_id: str
    protocol: str
    route: str | None
    started_at: dt.datetime
    ended_at: dt.datetime
    outcome: str  # ok, failed, aborted
    error_class: str | None = None
    error: str | None = None
    retries: int = 0
    bytes: int = 0
    readings: int = 0


def insert(conn: Connection, attempts: Sequence[Attempt]) -> None:
    if not attempts:
        return
    # Rows spelled out: dataclasses.asdict deep-copies every field and cost more than the insert.
    rows = [
        {
            "round_id": a.round_id, "meter_id": a.meter_id, "protocol": a.protocol, "route": a.route,
            "started_at": to_db(a.started_at), "ended_at": to_db(a.ended_at), "outcome": a.outcome,
            "error_class": a.error_class, "error": a.error[:MAX_ERROR_TEXT] if a.error is not None else None,
            "retries": a.retries, "bytes": a.bytes, "readings": a.readings,
        }
        for a in attempts
    ]
    conn.execute(
        sa.text(
            "INSERT INTO headend_comm_log (round_id, meter_id, protocol, route, started_at, ended_at,"
            " outcome, error_class, error, retries, bytes, readings) VALUES (:round_id, :meter_id,"
            " :protocol, :route, :started_at, :ended_at, :outcome, :error_class, :error, :retries,"
            " :bytes, :readings)"
        ),
        rows,
    )
