"""The durable outbox of bills for the city portal, in the operational store.

One row per bill version, keyed by an idempotency key derived from (bill id, version),
so a bill sent twice (after a crash, a timeout or a lost reply) carries the same key and
the portal keeps it once. States: `pending` (waiting, maybe after a failed attempt; the
last error is kept), `sent` (claimed by a publisher; if that publisher dies, the claim
lapses at `next_attempt_at` and another takes it), `acknowledged` (the portal has it), and
`failed` (the portal refused the bill itself; the reason says why; never retried alone).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import sqlalchemy as sa

from core.state import StateStore
from portal_api.errors import InvalidRequest

STATES = ("pending", "sent", "acknowledged", "failed")
BATCH = 1000


def idempotency_key(bill_id: str, version: int) -> str:
    return f"amr-bill-{bill_id}-v{version}"


def stamp(when: dt.datetime) -> str:
    """A fixed-width UTC text that sorts as time does (SQLite compares it as text)."""
    return when.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


@dataclass(frozen=True)
class Item:
    bill_id: str
    version: int
    idempotency_key: str
    payload: str
    attempts: int


@dataclass(frozen=True)
class NewBill:
    bill_id: str
    version: int
    customer_code: str
    period: str
    payload: str


def known_versions(state: StateStore, periods: Sequence[str]) -> set[tuple[str, int]]:
    query = sa.text("SELECT bill_id, version FROM portal_outbox WHERE period IN :periods").bindparams(
        sa.bindparam("periods", expanding=True)
    )
    if not periods:
        return set()
    with state.read() as conn:
        return {(r[0], int(r[1])) for r in conn.execute(query, {"periods": list(periods)})}


def enqueue(state: StateStore, bills: Iterable[NewBill], *, now: dt.datetime) -> int:
    """Add bills not yet in the outbox (a racing publisher's rows are left alone); returns the count."""
    insert = sa.text(
        "INSERT INTO portal_outbox (bill_id, version, customer_code, period, idempotency_key, payload, "
        "state, next_attempt_at) VALUES (:b, :v, :c, :p, :k, :payload, 'pending', :now) "
        "ON CONFLICT DO NOTHING"
    )
    added = 0
    batch: list[dict[str, object]] = []

    def flush() -> int:
        if not batch:
            return 0
        with state.transaction() as conn:
            count = sum(conn.execute(insert, row).rowcount or 0 for row in batch)
        batch.clear()
        return count

    for bill in bills:
        batch.append({"b": bill.bill_id, "v": bill.version, "c": bill.customer_code, "p": bill.period,
                      "k": idempotency_key(bill.bill_id, bill.version), "payload": bill.payload,
                      "now": stamp(now)})
        if len(batch) >= BATCH:
            added += flush()
    return added + flush()


def claim_due(state: StateStore, *, now: dt.datetime, limit: int, lease_s: float) -> list[Item]:
    """Take up to `limit` due items (pending, or sent by a publisher whose lease lapsed)."""
    with state.transaction() as conn:
        rows = conn.execute(
            sa.text("SELECT bill_id, version, idempotency_key, payload, attempts FROM portal_outbox "
                    "WHERE state IN ('pending', 'sent') AND next_attempt_at <= :now "
                    "ORDER BY next_attempt_at, bill_id LIMIT :limit"),
            {"now": stamp(now), "limit": limit},
        ).all()
        lease = stamp(now + dt.timedelta(seconds=lease_s))
        for r in rows:
            conn.execute(
                sa.text("UPDATE portal_outbox SET state = 'sent', attempts = attempts + 1, "
                        "next_attempt_at = :lease, updated_at = :now WHERE bill_id = :b AND version = :v"),
                {"lease": lease, "now": stamp(now), "b": r.bill_id, "v": r.version},
            )
    return [Item(r.bill_id, int(r.version), r.idempotency_key, r.payload, int(r.attempts) + 1) for r in rows]


@dataclass(frozen=True)
class Outcome:
    item: Item
    state: str  # acknowledged, pending (retry later) or failed
    error: str | None = None
    retry_at: dt.datetime | None = None


def record(state: StateStore, outcomes: Sequence[Outcome], *, now: dt.datetime) -> None:
    with state.transaction() as conn:
        for o in outcomes:
            conn.execute(
                sa.text("UPDATE portal_outbox SET state = :s, last_error = :e, next_attempt_at = :next, "
                        "acknowledged_at = CASE WHEN :s = 'acknowledged' THEN :now ELSE acknowledged_at END, "
                        "updated_at = :now WHERE bill_id = :b AND version = :v"),
                {"s": o.state, "e": o.error, "next": stamp(o.retry_at) if o.retry_at else None,
                 "now": stamp(now), "b": o.item.bill_id, "v": o.item.version},
            )


def next_due(state: StateStore) -> dt.datetime | None:
    with state.read() as conn:
        value = conn.execute(
            sa.text("SELECT MIN(next_attempt_at) FROM portal_outbox WHERE state IN ('pending', 'sent')")
        ).scalar()
    return dt.datetime.strptime(value, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=dt.UTC) if value else None


@dataclass(frozen=True)
class Entry:
    bill_id: str
    version: int
    customer_code: str
    period: str
    state: str
    attempts: int
    last_error: str | None
    next_attempt_at: str | None
    acknowledged_at: str | None


def counts(state: StateStore, period: str | None = None) -> dict[str, int]:
    with state.read() as conn:
        rows = conn.execute(
            sa.text("SELECT state, COUNT(*) FROM portal_outbox WHERE (:p IS NULL OR period = :p) "
                    "GROUP BY state"),
            {"p": period},
        ).all()
    found = {r[0]: int(r[1]) for r in rows}
    return {s: found.get(s, 0) for s in STATES}


def entries(state: StateStore, *, period: str | None = None, states: Sequence[str] | None = None,
            limit: int = 50) -> list[Entry]:
    """The newest entries, filtered by period and state (the `amr portal status` listing)."""
    query = sa.text(
        "SELECT bill_id, version, customer_code, period, state, attempts, last_error, next_attempt_at, "
        "acknowledged_at FROM portal_outbox WHERE (:p IS NULL OR period = :p) AND state IN :states "
        "ORDER BY updated_at DESC, bill_id LIMIT :limit"
    ).bindparams(sa.bindparam("states", expanding=True))
    with state.read() as conn:
        rows = conn.execute(query, {"p": period, "states": list(states or STATES), "limit": limit}).all()
    return [Entry(r.bill_id, int(r.version), r.customer_code, r.period, r.state, int(r.attempts),
                  r.last_error, r.next_attempt_at, r.acknowledged_at) for r in rows]


def status(state: StateStore, *, period: str | None = None, states: Sequence[str] | None = None,
           limit: int = 50) -> tuple[dict[str, int], list[Entry]]:
    """Counts by state and the newest entries: what `amr portal status` shows."""
    unknown = sorted(set(states or ()) - set(STATES))
    if unknown:
        raise InvalidRequest(f"outbox state(s) {', '.join(unknown)} do not exist",
                             hint=f"use one of {', '.join(STATES)}")
    return counts(state, period), entries(state, period=period, states=states, limit=limit)
