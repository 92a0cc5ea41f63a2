"""Checks before issue, and the staff actions on held bills.

A bill is held when its determinants were estimated, its TOU registers disagree with
interval energy, or its consumption is far above or below the customer's history.
Staff release a hold or adjust the kWh, always with a reason; the next run honours it
(an adjusted kWh replaces the determinant; a release stands while the amount is the same).
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

import polars as pl
import sqlalchemy as sa

from billing.errors import BillingError
from core.state import StateStore

UNUSUAL_FACTOR = Decimal(3)  # kWh above 3x or below 1/3 of the history's rate is unusual
UNUSUAL_FLOOR_KWH = 30  # below this on both sides nothing is unusual


def hold_reasons(frame: pl.LazyFrame, factor: Decimal = UNUSUAL_FACTOR) -> pl.Expr:
    """A comma-separated reason list (empty: no hold). Needs kwh, estimated, tou_mismatch,
    history_wh_per_day and period_days."""
    expected = pl.col("history_wh_per_day") * pl.col("period_days") // 1000
    f_milli = int(factor * 1000)
    unusual = (
        pl.col("history_wh_per_day").is_not_null()
        & (pl.max_horizontal(pl.col("kwh"), expected) >= UNUSUAL_FLOOR_KWH)
        & ((pl.col("kwh") * 1000 > expected * f_milli) | (pl.col("kwh") * f_milli < expected * 1000))
    )
    return pl.concat_str(
        [
            pl.when(pl.col("estimated")).then(pl.lit("estimated")),
            pl.when(pl.col("tou_mismatch")).then(pl.lit("tou-mismatch")),
            pl.when(unusual & ~pl.col("estimated")).then(pl.lit("unusual-consumption")),
        ],
        separator=",",
        ignore_nulls=True,
    ).fill_null("")


def record_holds(state: StateStore, held: pl.DataFrame) -> None:
    """Open a hold per held bill version (once; reasons refreshed while open)."""
    rows = held.select(
        "bill_id", "version", "customer_code", "period", "hold_reasons", "total_amount"
    ).to_dicts()
    if not rows:
        return
    with state.transaction() as conn:
        conn.execute(
            sa.text(
                "INSERT INTO bill_holds (bill_id, version, customer_code, period, reasons, total_amount) "
                "VALUES (:bill_id, :version, :customer_code, :period, :hold_reasons, :total_amount) "
                "ON CONFLICT (bill_id, version) DO UPDATE SET reasons = excluded.reasons, "
                "total_amount = excluded.total_amount WHERE bill_holds.status = 'open'"
            ),
            rows,
        )


def resolutions(state: StateStore, period: str) -> pl.DataFrame:
    """Released or adjusted holds of a period: bill_id, version, status, adjusted_kwh, total_amount."""
    with state.read() as conn:
        rows = conn.execute(
            sa.text(
                "SELECT bill_id, version, status, adjusted_kwh, total_amount FROM bill_holds "
                "WHERE period = :period AND status != 'open'"
            ),
            {"period": period},
        ).fetchall()
    return pl.DataFrame(
        [tuple(r) for r in rows],
        orient="row",
        schema={
            "bill_id": pl.String,
            "version": pl.Int32,
            "hold_status": pl.String,
            "adjusted_kwh": pl.Int64,
            "released_total": pl.Int64,
        },
    )


def list_holds(state: StateStore, *, period: str | None = None, status: str = "open") -> list[dict[str, Any]]:
    with state.read() as conn:
        rows = (
            conn.execute(
                sa.text(
                    "SELECT bill_id, version, customer_code, period, reasons, status, total_amount, "
                    "adjusted_kwh, resolution, resolved_by, created_at, resolved_at FROM bill_holds "
                    "WHERE (:period IS NULL OR period = :period) AND (:status = 'all' OR status = :status) "
                    "ORDER BY period, bill_id, version"
                ),
                {"period": period, "status": status},
            )
            .mappings()
            .all()
        )
    return [dict(r) for r in rows]


def resolve_hold(
    state: StateStore, bill_id: str, *, reason: str, by: str, adjusted_kwh: int | None = None
) -> dict[str, Any]:
    """Release a hold (or set the kWh to bill); the next `amr bill run` applies it."""
    if not reason.strip():
        raise BillingError(f"releasing or adjusting {bill_id} needs a reason", hint='add --reason "..."')
    if adjusted_kwh is not None and adjusted_kwh < 0:
        raise BillingError(f"the adjusted kWh for {bill_id} is negative ({adjusted_kwh})")
    status = "released" if adjusted_kwh is None else "adjusted"
    with state.transaction() as conn:
        hold = conn.execute(
            sa.text(
                "SELECT version FROM bill_holds WHERE bill_id = :b AND status = 'open' "
                "ORDER BY version DESC LIMIT 1"
            ),
            {"b": bill_id},
        ).first()
        if hold is None:
            raise BillingError(f"bill {bill_id} has no open hold", hint="list them with `amr bill holds`")
        conn.execute(
            sa.text(
                "UPDATE bill_holds SET status = :s, adjusted_kwh = :k, resolution = :r, resolved_by = :by, "
                "resolved_at = :at WHERE bill_id = :b AND version = :v"
            ),
            {
                "s": status,
                "k": adjusted_kwh,
                "r": reason,
                "by": by,
                "at": dt.datetime.now(dt.UTC),
                "b": bill_id,
                "v": hold[0],
            },
        )
    return {"bill_id": bill_id, "version": hold[0], "status": status, "adjusted_kwh": adjusted_kwh}


def clear_holds(state: StateStore, period: str, drafts: pl.DataFrame) -> int:
    """Close open holds whose bill no longer needs one (e.g. the missing reading arrived)."""
    with state.read() as conn:
        open_rows = conn.execute(
            sa.text("SELECT bill_id, version FROM bill_holds WHERE period = :p AND status = 'open'"),
            {"p": period},
        ).fetchall()
    if not open_rows:
        return 0
    opened = pl.DataFrame(
        [tuple(r) for r in open_rows], orient="row", schema={"bill_id": pl.String, "version": pl.Int32}
    )
    cleared = opened.join(
        drafts.select("bill_id", pl.col("version").cast(pl.Int32)), on=["bill_id", "version"]
    )
    if cleared.height:
        with state.transaction() as conn:
            conn.execute(
                sa.text(
                    "UPDATE bill_holds SET status = 'cleared', resolution = 'no longer applies', "
                    "resolved_by = 'bill run', resolved_at = :at "
                    "WHERE bill_id = :bill_id AND version = :version AND status = 'open'"
                ),
                [{**r, "at": dt.datetime.now(dt.UTC)} for r in cleared.to_dicts()],
            )
    return cleared.height
