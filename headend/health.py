"""Meter health: consecutive failures and the circuit breaker's state per meter."""

from __future__ import annotations

import datetime as dt
from collections.abc import Collection, Mapping
from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from core.state import StateStore
from headend.meter_rows import select_for_meters
from headend.policy import BreakerPolicy
from headend.timestamps import from_db, to_db


@dataclass(frozen=True, slots=True)
class Health:
    failures: int = 0
    open_until: dt.datetime | None = None

    def open_at(self, now: dt.datetime) -> bool:
        return self.open_until is not None and now < self.open_until


@dataclass(frozen=True, slots=True)
class Outcome:
    ok: bool
    at: dt.datetime
    error_class: str | None = None
    error: str | None = None


def load(state: StateStore, meter_ids: Collection[str]) -> dict[str, Health]:
    with state.read() as conn:
        rows = select_for_meters(
            conn, "SELECT meter_id, consecutive_failures, open_until FROM headend_meter_health", meter_ids
        )
    return {
        r.meter_id: Health(r.consecutive_failures, from_db(r.open_until) if r.open_until else None)
        for r in rows
    }


def record(
    conn: Connection, outcomes: Mapping[str, Outcome], before: Mapping[str, Health], policy: BreakerPolicy
) -> None:
    rows = []
    for meter_id, outcome in outcomes.items():
        failures = 0 if outcome.ok else before.get(meter_id, Health()).failures + 1
        until = None if outcome.ok else policy.open_until(failures, outcome.at)
        rows.append({
            "m": meter_id, "f": failures, "u": to_db(until) if until else None,
            "c": outcome.error_class, "e": (outcome.error or "")[:300] or None,
            "ok": to_db(outcome.at) if outcome.ok else None, "at": to_db(outcome.at),
        })
    if rows:
        conn.execute(
            sa.text(
                "INSERT INTO headend_meter_health (meter_id, consecutive_failures, open_until,"
                " last_error_class, last_error, last_ok_at, updated_at)"
                " VALUES (:m, :f, :u, :c, :e, :ok, :at)"
                " ON CONFLICT (meter_id) DO UPDATE SET consecutive_failures = excluded.consecutive_failures,"
                " open_until = excluded.open_until,"
                " last_error_class ="
                " COALESCE(excluded.last_error_class, headend_meter_health.last_error_class),"
                " last_error = COALESCE(excluded.last_error, headend_meter_health.last_error),"
                " last_ok_at = COALESCE(excluded.last_ok_at, headend_meter_health.last_ok_at),"
                " updated_at = excluded.updated_at"
            ),
            rows,
        )
