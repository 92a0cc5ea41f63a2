"""One active scheduler per installation: a lease row in the operational store.

The holder renews its lease well before it expires; a holder that died leaves a lease that
expires, and the next daemon takes it over. Taking and renewing are one conditional upsert,
so two daemons starting at once cannot both win.
"""

from __future__ import annotations

import datetime as dt
import os
import socket
import uuid
from dataclasses import dataclass

import sqlalchemy as sa

from core.state import StateStore
from headend.errors import SchedulerLocked
from headend.timestamps import from_db, to_db

LOCK_NAME = "scheduler"


def new_holder() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


@dataclass(frozen=True, slots=True)
class Lease:
    holder: str
    expires_at: dt.datetime


def try_acquire(state: StateStore, holder: str, *, ttl: dt.timedelta, now: dt.datetime) -> Lease:
    """Take or renew the lease if it is free, ours or expired; returns the lease as it now stands
    (another holder's when that one is alive)."""
    with state.transaction() as conn:
        conn.execute(
            sa.text(
                "INSERT INTO headend_scheduler_lock (name, holder, expires_at) VALUES (:n, :h, :e)"
                " ON CONFLICT (name) DO UPDATE SET holder = excluded.holder, expires_at = excluded.expires_at"
                " WHERE headend_scheduler_lock.holder = excluded.holder"
                " OR headend_scheduler_lock.expires_at < :now"
            ),
            {"n": LOCK_NAME, "h": holder, "e": to_db(now + ttl), "now": to_db(now)},
        )
        row = conn.execute(
            sa.text("SELECT holder, expires_at FROM headend_scheduler_lock WHERE name = :n"), {"n": LOCK_NAME}
        ).one()
    return Lease(row.holder, from_db(row.expires_at))


def acquire(state: StateStore, holder: str, *, ttl: dt.timedelta, now: dt.datetime) -> None:
    """Take or renew the lease; raises SchedulerLocked naming the other holder."""
    lease = try_acquire(state, holder, ttl=ttl, now=now)
    if lease.holder != holder:
        raise SchedulerLocked(
            f"another head-end scheduler ({lease.holder}) holds the lock until {lease.expires_at}",
            hint="stop the other `amr headend run` first, or start this one as a standby (the default);"
            " a dead holder's lock expires by itself",
        )


def release(state: StateStore, holder: str) -> None:
    with state.transaction() as conn:
        conn.execute(
            sa.text("DELETE FROM headend_scheduler_lock WHERE name = :n AND holder = :h"),
            {"n": LOCK_NAME, "h": holder},
        )
