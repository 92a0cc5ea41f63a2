"""Payment notices from the city portal: idempotent by notice id, one payment per bill."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass

import sqlalchemy as sa

from core.state import StateStore
from portal_api.errors import Conflict, InvalidRequest
from portal_api.reading import StoreReader


@dataclass(frozen=True)
class PaymentResult:
    notice_id: str
    bill_id: str
    amount: int
    paid_at: dt.datetime
    duplicate: bool  # the same notice had been recorded before


def record_payment(
    state: StateStore, *, notice_id: str, bill_id: str, amount: int, total_amount: int,
    paid_at: dt.datetime, client_id: str,
) -> PaymentResult:
    """Mark the bill paid once; the same notice again changes nothing and says so."""
    if amount != total_amount:
        raise InvalidRequest(
            f"payment {notice_id} of {amount} VND does not match the total of bill {bill_id}, "
            f"{total_amount} VND",
            hint="notify the full amount of the bill's latest version",
        )
    with state.transaction() as conn:
        seen = conn.execute(
            sa.text("SELECT notice_id, bill_id, amount, paid_at FROM portal_payments "
                    "WHERE notice_id = :n OR bill_id = :b"),
            {"n": notice_id, "b": bill_id},
        ).first()
        if seen is not None:
            if seen.notice_id == notice_id and seen.bill_id == bill_id and seen.amount == amount:
                return PaymentResult(notice_id, bill_id, amount, _aware(seen.paid_at), duplicate=True)
            if seen.notice_id == notice_id:
                raise Conflict(
                    f"notice {notice_id} was recorded before for bill {seen.bill_id} and {seen.amount} VND",
                    hint="a notice id names one payment; use a new id for a different payment",
                )
            raise Conflict(
                f"bill {bill_id} was paid already by notice {seen.notice_id}",
                hint="refund the second payment; a bill is paid once",
            )
        conn.execute(
            sa.text("INSERT INTO portal_payments (notice_id, bill_id, amount, paid_at, client_id) "
                    "VALUES (:n, :b, :a, :p, :c)"),
            {"n": notice_id, "b": bill_id, "a": amount, "p": paid_at.astimezone(dt.UTC).isoformat(),
             "c": client_id},
        )
    return PaymentResult(notice_id, bill_id, amount, paid_at, duplicate=False)


def paid_bills(reader: StoreReader, bill_ids: Iterable[str]) -> set[str]:
    """Which of these bills are paid."""
    ids = sorted(set(bill_ids))
    if not ids:
        return set()
    # One placeholder per id; the SQL text depends only on how many there are.
    names = {f"b{i}": bill_id for i, bill_id in enumerate(ids)}
    sql = f"SELECT bill_id FROM portal_payments WHERE bill_id IN ({', '.join(':' + n for n in names)})"  # noqa: S608
    return {row[0] for row in reader.rows(sql, names)}


def _aware(value: object) -> dt.datetime:
    when = value if isinstance(value, dt.datetime) else dt.datetime.fromisoformat(str(value))
    return when if when.tzinfo else when.replace(tzinfo=dt.UTC)
