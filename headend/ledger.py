"""The scheduler's ledger: every scheduled run of a job, by (job id, scheduled time).

A run is claimed before it starts and marked done when it ends, in the operational store,
so whichever scheduler holds the lock knows what the others did: a run already done is
never started again (a job store that had not yet moved the job's next run time when its
scheduler died would otherwise fire it twice), and a run left unfinished by a killed or
stopped scheduler is resumed under the same key. A resumed polling round skips the meters
the earlier run already landed (their attempts are in the communication log under the
run's round ids), and landing is exactly-once per watermark anyway.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import sqlalchemy as sa

from core.state import StateStore
from headend.timestamps import from_db, to_db

RUNNING = "running"
DONE = "done"


@dataclass(frozen=True, slots=True)
class RunKey:
    job_id: str
    scheduled_at: dt.datetime

    @property
    def round_prefix(self) -> str:
        """The start of the round ids of every run under this key. Round ids name landing
        files, so they keep to letters, digits, `-` and `_`."""
        return f"{self.job_id}_{self.scheduled_at.astimezone(dt.UTC):%Y%m%dT%H%M%S%f}Z_run"

    def round_id(self, run: int) -> str:
        return f"{self.round_prefix}{run}"


@dataclass(frozen=True, slots=True)
class Claim:
    key: RunKey
    run: int  # 1 for a first run; more when resuming an unfinished one
    done: bool  # completed before: nothing to do


def claim(state: StateStore, key: RunKey, holder: str, *, now: dt.datetime) -> Claim:
    """Start (or resume) the run under `key`, unless it is done already."""
    params = {"j": key.job_id, "s": to_db(key.scheduled_at), "h": holder, "now": to_db(now)}
    with state.transaction() as conn:
        row = conn.execute(
            sa.text(
                "SELECT state, runs FROM headend_scheduled_rounds WHERE job_id = :j AND scheduled_at = :s"
            ),
            params,
        ).one_or_none()
        if row is None:
            conn.execute(
                sa.text(
                    "INSERT INTO headend_scheduled_rounds"
                    " (job_id, scheduled_at, state, holder, runs, started_at)"
                    " VALUES (:j, :s, 'running', :h, 1, :now)"
                ),
                params,
            )
            return Claim(key, 1, False)
        if row.state == DONE:
            return Claim(key, int(row.runs), True)
        conn.execute(
            sa.text(
                "UPDATE headend_scheduled_rounds SET holder = :h, runs = runs + 1, started_at = :now"
                " WHERE job_id = :j AND scheduled_at = :s"
            ),
            params,
        )
        return Claim(key, int(row.runs) + 1, False)


def complete(state: StateStore, key: RunKey, *, now: dt.datetime) -> None:
    with state.transaction() as conn:
        conn.execute(
            sa.text(
                "UPDATE headend_scheduled_rounds SET state = 'done', ended_at = :now"
                " WHERE job_id = :j AND scheduled_at = :s"
            ),
            {"j": key.job_id, "s": to_db(key.scheduled_at), "now": to_db(now)},
        )


def unfinished(state: StateStore) -> list[RunKey]:
    """Runs started and not done that are their job's latest (an older one is superseded)."""
    with state.read() as conn:
        rows = conn.execute(
            sa.text(
                "SELECT r.job_id, r.scheduled_at FROM headend_scheduled_rounds r WHERE r.state = 'running'"
                " AND r.scheduled_at = (SELECT MAX(l.scheduled_at) FROM headend_scheduled_rounds l"
                " WHERE l.job_id = r.job_id) ORDER BY r.scheduled_at"
            )
        ).all()
    return [RunKey(r.job_id, from_db(r.scheduled_at)) for r in rows]


def meters_done(state: StateStore, key: RunKey) -> set[str]:
    """Meters read successfully (and landed) by earlier runs under `key`."""
    prefix = key.round_prefix
    with state.read() as conn:
        rows = conn.execute(
            sa.text(
                "SELECT DISTINCT meter_id FROM headend_comm_log WHERE started_at >= :since"
                " AND substr(round_id, 1, :n) = :p AND outcome = 'ok'"
            ),
            # a run's attempts start after its scheduled time (a day's margin for clocks); uses the index
            {"since": to_db(key.scheduled_at - dt.timedelta(days=1)), "n": len(prefix), "p": prefix},
        ).all()
    return {r.meter_id for r in rows}


def runs(state: StateStore, job_id: str | None = None) -> list[tuple[RunKey, str, int, str]]:
    """(key, state, runs, holder) of every recorded run, oldest first."""
    with state.read() as conn:
        rows = conn.execute(
            sa.text(
                "SELECT job_id, scheduled_at, state, runs, holder FROM headend_scheduled_rounds"
                " WHERE (:j IS NULL OR job_id = :j) ORDER BY scheduled_at, job_id"
            ),
            {"j": job_id},
        ).all()
    return [(RunKey(r.job_id, from_db(r.scheduled_at)), r.state, int(r.runs), r.holder) for r in rows]
