"""Cut each customer's period where a tariff changes, into the rows `billing.rating` prices.

With the meter's snapshot on the change date (read remotely), the energy is split at
that register value (Art. 12.8a); otherwise by days (Art. 12.8b). Either way each part
gets its own prices and quotas prorated by its days. Groups are the distinct
(start, end) periods of the run (one per agreed reading day), a handful; the work inside
a group is expressions over all its customers.
"""

from __future__ import annotations

import datetime as dt

import polars as pl

from billing.determinants import TOTAL, wh_expr
from billing.errors import BillingError
from billing.rating import SEGMENT_COLUMNS
from billing.tariffs import RESIDENTIAL, TOU_CLASSES, TariffBook


def _boundaries(book: TariffBook, start: dt.date, end: dt.date, classes: tuple[str, ...]) -> list[dt.date]:
    found = {
        t.effective_from - dt.timedelta(days=1) for c in classes for t in book.changes_within(start, end, c)
    }
    return sorted(b for b in found if start < b < end)


def regular_expr() -> pl.Expr:
    """`billing.periods.is_regular` as an expression over the columns start and end."""
    start, end = pl.col("start"), pl.col("end")
    plus = start.dt.offset_by("1mo")  # clipped to the month's length, like add_months
    month_ends = (start == start.dt.month_end()) & (end == end.dt.month_end()) & (plus.dt.month_end() == end)
    return (plus == end) | month_ends


def month_days_expr() -> pl.Expr:
    """T: days of the calendar month before the reading date's month."""
    return pl.col("end").dt.month_start().dt.offset_by("-1d").dt.day().cast(pl.Int64)


def _cut_expr(book: TariffBook) -> pl.Expr:
    """The day whose end splits the row's period (a tariff for its class takes effect the next day)."""
    expr: pl.Expr = pl.lit(None, pl.Date)
    for classes in ((RESIDENTIAL,), TOU_CLASSES):
        for tariff in book.tariffs:
            if not any(tariff.prices(c) for c in classes):
                continue
            boundary = tariff.effective_from - dt.timedelta(days=1)
            expr = (
                pl.when(
                    pl.col("tariff_class").is_in(list(classes))
                    & (pl.col("start") < boundary)
                    & (pl.col("end") > boundary)
                )
                .then(pl.lit(boundary))
                .otherwise(expr)
            )
    return expr


def check_groups(book: TariffBook, groups: list[tuple[dt.date, dt.date]]) -> bool:
    """Refuse periods holding two price changes; True when some period is split by one."""
    split = False
    for start, end in groups:
        for classes in ((RESIDENTIAL,), TOU_CLASSES):
            cuts = _boundaries(book, start, end, classes)
            if len(cuts) > 1:
                raise BillingError(
                    f"the period {start} to {end} holds {len(cuts)} price changes",
                    hint="bill it in two runs with an intermediate reading date",
                )
            split = split or bool(cuts)
    return split


def build_segments(
    book: TariffBook,
    customers: pl.LazyFrame,
    energy: pl.LazyFrame,
    registers: pl.LazyFrame,
    reads: pl.LazyFrame,
    groups: list[tuple[dt.date, dt.date]],
) -> tuple[pl.LazyFrame, bool]:
    """customers: customer_code, start, end, tariff_class, voltage, h_milli; energy: customer_energy().

    `groups` are the distinct (start, end) periods of the customers. Returns the segments and
    whether any period was split (some customer has two segments)."""
    split = check_groups(book, groups)
    base = customers.join(energy, on="customer_code", how="inner").with_columns(
        _cut_expr(book).alias("cut"),
        regular_expr().alias("regular"),
        month_days_expr().alias("month_days"),
        pl.col("end").alias("period_end"),
    )
    whole = base.filter(pl.col("cut").is_null()).with_columns(
        pl.lit(0, pl.Int32).alias("seg"),
        pl.col("start").alias("seg_start"),
        pl.col("end").alias("seg_end"),
        (~pl.col("regular")).alias("prorate"),
    )
    columns = list(SEGMENT_COLUMNS)
    parts = [whole.select(columns)]
    if split:
        first = (
            registers.filter(
                (pl.col("quantity") == TOTAL)
                & (pl.col("first_date") == pl.col("start"))
                & (pl.col("to") == pl.col("end"))
            )
            .group_by("customer_code")
            .agg(
                pl.col("first_wh").first(),
                pl.col("meter_id").first(),
                pl.col("ratio").first(),
                pl.len().alias("n"),
            )
            .filter(pl.col("n") == 1)
            .drop("n")
        )
        at_cut = reads.filter(pl.col("quantity") == TOTAL).select(
            "meter_id", "date", "value", "scale", "unit"
        )
        cut = (
            base.filter(pl.col("cut").is_not_null())
            .join(first, on="customer_code", how="left")
            .join(at_cut, left_on=["meter_id", "cut"], right_on=["meter_id", "date"], how="left")
            .with_columns(
                (pl.col("end") - pl.col("start")).dt.total_days().alias("days"),
                (pl.col("cut") - pl.col("start")).dt.total_days().alias("before"),
            )
            .with_columns(_cut_kwh().alias("kwh_before"))
        )
        for seg in (0, 1):
            parts.append(
                cut.with_columns(
                    pl.lit(seg, pl.Int32).alias("seg"),
                    (pl.col("start") if seg == 0 else pl.col("cut")).alias("seg_start"),
                    (pl.col("cut") if seg == 0 else pl.col("end")).alias("seg_end"),
                    pl.lit(True).alias("prorate"),
                    (pl.col("kwh_before") if seg == 0 else pl.col("kwh") - pl.col("kwh_before")).alias("kwh"),
                    _share("offpeak_kwh", seg).alias("offpeak_kwh"),
                    _share("peak_kwh", seg).alias("peak_kwh"),
                ).select(columns)
            )
    return pl.concat(parts, how="vertical").cast(pl.Schema(SEGMENT_COLUMNS)), split


def _cut_kwh() -> pl.Expr:
    days, before = pl.col("days"), pl.col("before")
    by_days = (2 * pl.col("kwh") * before + days) // (2 * days)
    at_register = (
        ((wh_expr(pl.col("value"), pl.col("scale"), pl.col("unit")) // 1000) - pl.col("first_wh") // 1000)
        * pl.col("ratio")
    ).clip(lower_bound=0, upper_bound=pl.col("kwh"))
    usable = (
        pl.col("value").is_not_null() & pl.col("first_wh").is_not_null() & (pl.col("basis") == "registers")
    )
    return pl.when(usable).then(at_register).otherwise(by_days)


def _share(column: str, seg: int) -> pl.Expr:
    days, before = pl.col("days"), pl.col("before")
    first = (2 * pl.col(column) * before + days) // (2 * days)
    return first if seg == 0 else pl.col(column) - first
