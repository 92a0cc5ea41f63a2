"""The communication log: one row per attempt at a meter, written in batches."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import asdict, dataclass

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
    rows = []
    for attempt in attempts:
        row = asdict(attempt)
        row["started_at"] = to_db(attempt.started_at)
        row["ended_at"] = to_db(attempt.ended_at)
        if attempt.error is not None:
            row["error"] = attempt.error[:MAX_ERROR_TEXT]
        rows.append(row)
    conn.execute(
        sa.text(
            "INSERT INTO headend_comm_log (round_id, meter_id, protocol, route, started_at, ended_at,"
            " outcome, error_class, error, retries, bytes, readings) VALUES (:round_id, :meter_id,"
            " :protocol, :route, :started_at, :ended_at, :outcome, :error_class, :error, :retries,"
            " :bytes, :readings)"
        ),
        rows,
    )
