"""What operations staff look at: success rates by route and protocol, and failing meters."""

from __future__ import annotations

import datetime as dt
from dataclasses import asdict, dataclass
from typing import Any

import sqlalchemy as sa

from core.state import StateStore
from headend.timestamps import from_db, to_db


@dataclass(frozen=True, slots=True)
class RateRow:
    route: str
    protocol: str
    meters: int
    meters_ok: int
    attempts: int
    attempts_ok: int

    @property
    def success_rate(self) -> float:
        return self.meters_ok / self.meters if self.meters else 0.0


@dataclass(frozen=True, slots=True)
class FailingMeter:
    meter_id: str
    route: str | None
    protocol: str
    failures: int
    error_class: str | None
    error: str | None
    breaker_open_until: dt.datetime | None
    last_ok_at: dt.datetime | None


@dataclass(frozen=True, slots=True)
class Status:
    since: dt.datetime
    rates: list[RateRow]
    failing: list[FailingMeter]

    def to_json(self) -> dict[str, Any]:
        return {
            "since": to_db(self.since),
            "rates": [asdict(r) | {"success_rate": round(r.success_rate, 4)} for r in self.rates],
            "failing": [
                asdict(f) | {
                    "breaker_open_until": to_db(f.breaker_open_until) if f.breaker_open_until else None,
                    "last_ok_at": to_db(f.last_ok_at) if f.last_ok_at else None,
                }
                for f in self.failing
            ],
        }


def status(state: StateStore, *, since: dt.datetime, route: str | None = None) -> Status:
    """Rates over the attempts started since `since`; a meter counts as ok if any attempt was."""
    params: dict[str, Any] = {"since": to_db(since), "route": route}
    with state.read() as conn:
        rate_rows = conn.execute(
            sa.text(
                "SELECT COALESCE(route, '') AS route, protocol, COUNT(DISTINCT meter_id) AS meters,"
                " COUNT(DISTINCT CASE WHEN outcome = 'ok' THEN meter_id END) AS meters_ok,"
                " COUNT(*) AS attempts, SUM(CASE WHEN outcome = 'ok' THEN 1 ELSE 0 END) AS attempts_ok"
                " FROM headend_comm_log WHERE started_at >= :since"
                " AND (:route IS NULL OR route = :route)"
                " GROUP BY COALESCE(route, ''), protocol ORDER BY 1, 2"
            ),
            params,
        ).all()
        failing_rows = conn.execute(
            sa.text(
                "SELECT h.meter_id, m.route, m.protocol, h.consecutive_failures, h.last_error_class,"
                " h.last_error, h.open_until, h.last_ok_at FROM headend_meter_health h"
                " JOIN meters m ON m.meter_id = h.meter_id WHERE h.consecutive_failures > 0"
                " AND (:route IS NULL OR m.route = :route)"
                " ORDER BY h.consecutive_failures DESC, h.meter_id"
            ),
            params,
        ).all()
    return Status(
        since=since,
        rates=[RateRow(r.route, r.protocol, r.meters, r.meters_ok, r.attempts, r.attempts_ok or 0)
               for r in rate_rows],
        failing=[
            FailingMeter(
                r.meter_id, r.route, r.protocol, r.consecutive_failures, r.last_error_class, r.last_error,
                from_db(r.open_until) if r.open_until else None,
                from_db(r.last_ok_at) if r.last_ok_at else None,
            )
            for r in failing_rows
        ],
    )
