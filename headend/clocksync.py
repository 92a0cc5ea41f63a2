"""Clock synchronisation: when a meter's clock drifts past a threshold, correct it.

Within +/-900 s the Blue Book's `shift_time` method moves the clock without breaking the
profile's interval boundaries; beyond that the clock is set. Automatic corrections are
capped per meter and local day, and each one (or each refusal by the cap) is an event.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from enum import StrEnum

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from core.state import StateStore
from core.timezones import local_date
from headend.timestamps import to_db

SHIFT_LIMIT_S = 900


class ClockAction(StrEnum):
    NONE = "none"
    SHIFT = "shift"
    SET = "set"
    CAPPED = "capped"  # drift above threshold, but today's corrections are used up
    REFUSED = "refused"  # the meter refused the correction (e.g. the client may not write the clock)


@dataclass(frozen=True, slots=True)
class ClockPolicy:
    threshold_s: int = 10
    max_per_day: int = 2


@dataclass(frozen=True, slots=True)
class ClockEvent:
    meter_id: str
    at: dt.datetime
    drift_s: float
    action: ClockAction


def decide(drift_s: float, corrections_today: int, policy: ClockPolicy) -> ClockAction:
    if abs(drift_s) <= policy.threshold_s:
        return ClockAction.NONE
    if corrections_today >= policy.max_per_day:
        return ClockAction.CAPPED
    return ClockAction.SHIFT if abs(drift_s) <= SHIFT_LIMIT_S else ClockAction.SET


def corrections_on(state: StateStore, meter_ids: Iterable[str], day: dt.date) -> dict[str, int]:
    wanted = set(meter_ids)
    with state.read() as conn:
        rows = conn.execute(
            sa.text(
                "SELECT meter_id, COUNT(*) AS n FROM headend_clock_events"
                " WHERE local_day = :d AND action IN ('shift', 'set') GROUP BY meter_id"
            ),
            {"d": day.isoformat()},
        ).all()
    return {r.meter_id: r.n for r in rows if r.meter_id in wanted}


def record(conn: Connection, events: Sequence[ClockEvent]) -> None:
    if not events:
        return
    conn.execute(
        sa.text(
            "INSERT INTO headend_clock_events (meter_id, at, local_day, drift_s, action)"
            " VALUES (:m, :at, :d, :drift, :a)"
        ),
        [
            {"m": e.meter_id, "at": to_db(e.at), "d": local_date(e.at).isoformat(), "drift": e.drift_s,
             "a": str(e.action)}
            for e in events
        ],
    )
