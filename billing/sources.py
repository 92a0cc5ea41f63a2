"""The edges of a bill run: read contracts and meters (operational store), register reads,
daily energy and earlier bills (measurement store). Everything returns LazyFrames or small
DataFrames with declared dtypes; no billing logic here.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import polars as pl
import sqlalchemy as sa

from billing.periods import add_months, parse_period, period_bounds
from core.measurements import MeasurementStore
from core.state import StateStore
from core.tables import BILLS, BILLS_SCHEMA, DAILY, DAILY_SCHEMA, REGISTER_READS, REGISTER_READS_SCHEMA

CUSTOMER_SCHEMA: dict[str, pl.DataType] = {
    "customer_code": pl.String(),
    "name": pl.String(),
    "address": pl.String(),
    "tax_code": pl.String(),
    "tariff_class": pl.String(),
    "voltage": pl.String(),
    "households": pl.String(),
    "reading_day": pl.Int64(),
    "tou_calendar": pl.String(),
    "rate_map": pl.String(),
    "route": pl.String(),
}
ASSIGNMENT_SCHEMA: dict[str, pl.DataType] = {
    "customer_code": pl.String(),
    "meter_id": pl.String(),
    "installed_on": pl.Date(),
    "removed_on": pl.Date(),
}
RATIO_SCHEMA: dict[str, pl.DataType] = {
    "meter_id": pl.String(),
    "ct_ratio": pl.Int64(),
    "vt_ratio": pl.Int64(),
}


def _query(
    state: StateStore, sql: str, params: dict[str, Any], schema: dict[str, pl.DataType]
) -> pl.DataFrame:
    with state.read() as conn:
        result = conn.execute(sa.text(sql), params)
        rows = result.fetchall()
    frame = pl.DataFrame([tuple(r) for r in rows], schema=list(schema), orient="row")
    for name, dtype in schema.items():
        if dtype == pl.Date() and frame[name].dtype == pl.String:
            frame = frame.with_columns(pl.col(name).str.to_date())
    return frame.cast(pl.Schema(schema))


def month_end(period: str) -> dt.date:
    return period_bounds(period, 0)[1]


def customers(state: StateStore, period: str, route: str | None) -> pl.DataFrame:
    """Customers with the contract in force at the end of the period's month."""
    day = month_end(period)
    return _query(
        state,
        "SELECT c.customer_code, c.name, c.address, c.tax_code, k.tariff_class, k.voltage, k.households, "
        "k.reading_day, k.tou_calendar, k.rate_map, k.route FROM customers c JOIN contracts k "
        "ON k.customer_code = c.customer_code AND k.effective_from <= :day "
        "AND (k.effective_to IS NULL OR k.effective_to > :day) "
        "WHERE (:route IS NULL OR k.route = :route) ORDER BY c.customer_code",
        {"day": day, "route": route},
        CUSTOMER_SCHEMA,
    )


def assignments(state: StateStore, start: dt.date, end: dt.date) -> pl.DataFrame:
    return _query(
        state,
        "SELECT customer_code, meter_id, installed_on, removed_on FROM usage_point_meters "
        "WHERE installed_on <= :end AND (removed_on IS NULL OR removed_on >= :start)",
        {"start": start, "end": end},
        ASSIGNMENT_SCHEMA,
    )


def ratios(state: StateStore) -> pl.DataFrame:
    """CT and VT ratios from the meter registry (absent meters count 1 x 1)."""
    return _query(state, "SELECT meter_id, ct_ratio, vt_ratio FROM meters", {}, RATIO_SCHEMA)


def months_between(start: dt.date, end: dt.date) -> list[str]:
    out, day = [], start.replace(day=1)
    while day <= end:
        out.append(f"{day.year:04d}-{day.month:02d}")
        day = add_months(day, 1)
    return out


def register_reads(store: MeasurementStore, start: dt.date, end: dt.date) -> pl.LazyFrame:
    return store.table(REGISTER_READS).scan(REGISTER_READS_SCHEMA, month=months_between(start, end))


def daily(store: MeasurementStore, start: dt.date, end: dt.date) -> pl.LazyFrame:
    return (
        store.table(DAILY)
        .scan(DAILY_SCHEMA, month=months_between(start, end))
        .select("meter_id", "date", "energy_wh", "offpeak_wh", "normal_wh", "peak_wh", "intervals")
    )


def previous_periods(period: str, count: int) -> list[str]:
    year, month = parse_period(period)
    out = []
    for back in range(1, count + 1):
        day = add_months(dt.date(year, month, 1), -back)
        out.append(f"{day.year:04d}-{day.month:02d}")
    return out


def bills(store: MeasurementStore, periods: list[str], buckets: list[int] | None = None) -> pl.LazyFrame:
    """Every bill version of the periods (all buckets, or only those given)."""
    return (
        store.table(BILLS)
        .scan(BILLS_SCHEMA, period=periods, bucket=buckets)
        .select(list(BILLS_SCHEMA))
        .cast(pl.Schema(BILLS_SCHEMA))
    )


def latest(frame: pl.LazyFrame) -> pl.LazyFrame:
    """The latest version of each bill."""
    return frame.sort("version").group_by("bill_id").last()
