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
from billing.periods import is_regular, preceding_month_days
from billing.rating import SEGMENT_COLUMNS
from billing.tariffs import RESIDENTIAL, TOU_CLASSES, TariffBook


def _boundaries(book: TariffBook, start: dt.date, end: dt.date, classes: tuple[str, ...]) -> list[dt.date]:
    found = {
        t.effective_from - dt.timedelta(days=1) for c in classes for t in book.changes_within(start, end, c)
    }
    return sorted(b for b in found if start < b < end)


def build_segments(
    book: TariffBook,
    customers: pl.LazyFrame,
    energy: pl.LazyFrame,
    registers: pl.LazyFrame,
    reads: pl.LazyFrame,
    groups: list[tuple[dt.date, dt.date]],
) -> tuple[pl.LazyFrame, bool]:
    """customers: customer_code, start, end, tariff_class, voltage, h_milli; energy: customer_energy().

    Returns the segments and whether any period was split (some customer has two segments)."""
    base = customers.join(energy, on="customer_code", how="inner")
    parts: list[pl.LazyFrame] = []
    split = False
    for start, end in groups:
        group = base.filter((pl.col("start") == start) & (pl.col("end") == end))
        regular = is_regular(start, end)
        common = {"period_end": pl.lit(end), "month_days": pl.lit(preceding_month_days(end), pl.Int64)}
        for classes in ((RESIDENTIAL,), TOU_CLASSES):
            rows = group.filter(pl.col("tariff_class").is_in(list(classes)))
            cuts = _boundaries(book, start, end, classes)
            if len(cuts) > 1:
                raise BillingError(
                    f"the period {start} to {end} holds {len(cuts)} price changes",
                    hint="bill it in two runs with an intermediate reading date",
                )
            if not cuts:
                parts.append(
                    rows.with_columns(
                        pl.lit(0, pl.Int32).alias("seg"),
                        pl.col("start").alias("seg_start"),
                        pl.col("end").alias("seg_end"),
                        pl.lit(not regular).alias("prorate"),
                        **common,
                    )
                )
                continue
            cut = cuts[0]
            split = True
            days, before = (end - start).days, (cut - start).days
            first = (
                registers.filter(
                    (pl.col("quantity") == TOTAL)
                    & (pl.col("first_date") == pl.col("start"))
                    & (pl.col("to") == pl.col("end"))
                )
                .group_by("customer_code")
                .agg(pl.col("first_wh").first(), pl.len().alias("n"))
            )
            at_cut = reads.filter((pl.col("quantity") == TOTAL) & (pl.col("date") == cut)).select(
                "meter_id", "value", "scale", "unit"
            )
            cut_frame = (
                rows.join(first.filter(pl.col("n") == 1), on="customer_code", how="left")
                .join(
                    registers.filter(pl.col("quantity") == TOTAL)
                    .select("customer_code", "meter_id", "ratio")
                    .unique("customer_code", keep="first"),
                    on="customer_code",
                    how="left",
                )
                .join(at_cut, on="meter_id", how="left")
                .with_columns(_cut_kwh(before, days).alias("kwh_before"))
            )
            for seg, (a, b) in enumerate(((start, cut), (cut, end))):
                parts.append(
                    cut_frame.with_columns(
                        pl.lit(seg, pl.Int32).alias("seg"),
                        pl.lit(a).alias("seg_start"),
                        pl.lit(b).alias("seg_end"),
                        pl.lit(True).alias("prorate"),
                        (pl.col("kwh_before") if seg == 0 else pl.col("kwh") - pl.col("kwh_before")).alias(
                            "kwh"
                        ),
                        _share("offpeak_kwh", before, days, seg).alias("offpeak_kwh"),
                        _share("peak_kwh", before, days, seg).alias("peak_kwh"),
                        **common,
                    )
                )
    columns = list(SEGMENT_COLUMNS)
    return pl.concat([p.select(columns) for p in parts], how="vertical").cast(
        pl.Schema(SEGMENT_COLUMNS)
    ), split


def _cut_kwh(before: int, days: int) -> pl.Expr:
    by_days = (2 * pl.col("kwh") * before + days) // (2 * days)
    at_register = (
        ((wh_expr(pl.col("value"), pl.col("scale"), pl.col("unit")) // 1000) - pl.col("first_wh") // 1000)
        * pl.col("ratio")
    ).clip(lower_bound=0, upper_bound=pl.col("kwh"))
    usable = (
        pl.col("value").is_not_null() & pl.col("first_wh").is_not_null() & (pl.col("basis") == "registers")
    )
    return pl.when(usable).then(at_register).otherwise(by_days)


def _share(column: str, before: int, days: int, seg: int) -> pl.Expr:
    first = (2 * pl.col(column) * before + days) // (2 * days)
    return first if seg == 0 else pl.col(column) - first
