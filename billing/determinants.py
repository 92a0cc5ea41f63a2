"""Billing determinants: how much energy each customer used in the period, and how we know.

Pure LazyFrame transforms (I/O lives in `billing.sources`). The source of truth is the
meter's own register at the end of each reading day (`register_reads`). For every meter
the usage point had during the period (a window), energy is last register - first
register, in whole kWh as the meter displays them, times CT x VT. A window that starts
at the period start needs the snapshot of the start date; one that ends at the period
end needs the end date's; an exchanged meter contributes its final read, the new meter
counts from its initial read. A window without its snapshots falls back to the sum of
validated daily intervals (flagged estimated); without those either, the customer has
no usable data and is estimated from the history of previous bills (flagged).
"""

from __future__ import annotations

from decimal import Decimal

import polars as pl

from billing.calendars import DEFAULT_CALENDAR

TOTAL = "1.0.1.8.0.255"
RATES = {n: f"1.0.1.8.{n}.255" for n in range(1, 5)}
BANDS = ("offpeak", "normal", "peak")
TOU_TOLERANCE = Decimal("0.02")  # relative difference between rate registers and intervals
TOU_TOLERANCE_KWH = 1  # and an absolute floor, for small bands


def wh_expr(value: pl.Expr, scale: pl.Expr, unit: pl.Expr) -> pl.Expr:
    """value x 10^scale in the given unit, as whole Wh (exact; sub-Wh truncated)."""
    exponent = scale.cast(pl.Int32) + pl.when(unit.str.to_lowercase() == "kwh").then(3).otherwise(0)
    out: pl.Expr = pl.lit(None, pl.Int64)
    for e in range(-6, 10):
        factor = 10 ** abs(e)
        scaled = value * factor if e >= 0 else value // factor
        out = pl.when(exponent == e).then(scaled).otherwise(out)
    return out


def windows(customers: pl.LazyFrame, assignments: pl.LazyFrame, ratios: pl.LazyFrame) -> pl.LazyFrame:
    """One row per (customer, meter) the usage point had during (start, end]."""
    return (
        customers.select("customer_code", "start", "end", "rate_map", "tou_calendar")
        .join(assignments, on="customer_code", how="inner")
        .with_columns(
            pl.max_horizontal(pl.col("start"), pl.col("installed_on") - pl.duration(days=1)).alias("from"),
            pl.min_horizontal(pl.col("end"), pl.col("removed_on").fill_null(pl.col("end"))).alias("to"),
        )
        .filter(pl.col("from") < pl.col("to"))
        .join(ratios, on="meter_id", how="left")
        .with_columns((pl.col("ct_ratio").fill_null(1) * pl.col("vt_ratio").fill_null(1)).alias("ratio"))
        .select(
            "customer_code", "meter_id", "from", "to", "start", "end", "ratio", "rate_map", "tou_calendar"
        )
    )


def register_energy(wins: pl.LazyFrame, reads: pl.LazyFrame) -> pl.LazyFrame:
    """Per window and register quantity: kWh between the first and last read, and validity."""
    band_of_rate: pl.Expr = pl.lit(None, pl.String)
    for n, code in RATES.items():
        band_of_rate = (
            pl.when(pl.col("quantity") == code)
            .then(pl.col("rate_map").str.extract(rf"(?:^|,){n}=(\w+)"))
            .otherwise(band_of_rate)
        )
    return (
        wins.join(
            reads.select("meter_id", "date", "ts", "quantity", "value", "scale", "unit", "estimated"),
            on="meter_id",
            how="inner",
        )
        .filter(pl.col("date").is_between(pl.col("from"), pl.col("to")))
        .with_columns(wh_expr(pl.col("value"), pl.col("scale"), pl.col("unit")).alias("wh"))
        .sort("date", "ts")
        .group_by("customer_code", "meter_id", "quantity")
        .agg(
            pl.col("from", "to", "start", "end", "ratio", "rate_map").first(),
            pl.col("date").first().alias("first_date"),
            pl.col("date").last().alias("last_date"),
            pl.col("wh").first().alias("first_wh"),
            pl.col("wh").last().alias("last_wh"),
            pl.col("estimated").any().alias("reads_estimated"),
        )
        .with_columns(
            (((pl.col("last_wh") // 1000) - (pl.col("first_wh") // 1000)) * pl.col("ratio")).alias("kwh"),
            # the snapshots the window needs: the start date's unless the meter came in later,
            # the end date's unless it left earlier (then its initial or final read stands)
            (
                ((pl.col("from") > pl.col("start")) | (pl.col("first_date") == pl.col("from")))
                & ((pl.col("to") < pl.col("end")) | (pl.col("last_date") == pl.col("to")))
            ).alias("complete"),
            band_of_rate.alias("band"),
        )
    )


def interval_energy(wins: pl.LazyFrame, daily: pl.LazyFrame) -> pl.LazyFrame:
    """Per window: the sum of validated daily energy over (from, to], and its coverage."""
    return (
        wins.join(daily, on="meter_id", how="inner")
        .filter((pl.col("date") > pl.col("from")) & (pl.col("date") <= pl.col("to")))
        .group_by("customer_code", "meter_id", "from")
        .agg(
            pl.len().alias("days_covered"),
            (pl.col("intervals") > 0).all().alias("all_intervals"),
            *(pl.col(f"{band}_wh").sum() for band in BANDS),
            pl.col("energy_wh").sum().alias("energy_wh"),
            pl.col("ratio").first(),
        )
    )


def customer_energy(
    customers: pl.LazyFrame,
    wins: pl.LazyFrame,
    registers: pl.LazyFrame,
    intervals: pl.LazyFrame,
    history: pl.LazyFrame,
) -> pl.LazyFrame:
    """Per customer: kwh, offpeak/peak kWh, basis, estimated, tou_mismatch."""
    total = registers.filter(pl.col("quantity") == TOTAL).select(
        "customer_code", "meter_id", "from", pl.col("kwh").alias("reg_kwh"), "complete", "reads_estimated"
    )
    bands = (
        registers.filter(pl.col("band").is_not_null())
        .group_by("customer_code", "meter_id", "from")
        .agg(
            *(pl.col("kwh").filter(pl.col("band") == b).sum().alias(f"reg_{b}") for b in BANDS),
            pl.col("complete").all().alias("bands_complete"),
            pl.len().alias("rate_registers"),
        )
    )
    per_window = (
        wins.select("customer_code", "meter_id", "from", "to", "tou_calendar")
        .join(total, on=["customer_code", "meter_id", "from"], how="left")
        .join(bands, on=["customer_code", "meter_id", "from"], how="left")
        .join(intervals, on=["customer_code", "meter_id", "from"], how="left")
        .with_columns((pl.col("to") - pl.col("from")).dt.total_days().alias("days"))
        .with_columns(
            (pl.col("complete").fill_null(False) & ~pl.col("reads_estimated").fill_null(False)).alias(
                "by_reg"
            ),
            (pl.col("days_covered").fill_null(0) == pl.col("days")).alias("by_int"),
            (pl.col("energy_wh") * pl.col("ratio")).alias("int_wh"),
        )
        .with_columns(
            pl.when(pl.col("by_reg"))
            .then(pl.col("reg_kwh"))
            .when(pl.col("by_int"))
            .then((2 * pl.col("int_wh") + 1000) // 2000)
            .otherwise(None)
            .alias("kwh"),
            pl.when(pl.col("by_reg"))
            .then(pl.lit("registers"))
            .when(pl.col("by_int"))
            .then(pl.lit("intervals"))
            .otherwise(pl.lit("none"))
            .alias("basis"),
            _mismatch().alias("tou_mismatch"),
        )
    )
    summed = per_window.group_by("customer_code").agg(
        pl.col("kwh").sum(),
        pl.col("kwh").is_null().any().alias("missing"),
        (pl.col("basis") != "registers").any().alias("estimated"),
        pl.col("basis").unique().sort().str.join("+").alias("basis"),
        pl.col("reg_offpeak").sum().alias("offpeak_kwh"),
        pl.col("reg_peak").sum().alias("peak_kwh"),
        (pl.col("rate_registers").fill_null(0) > 0).all().alias("has_rates"),
        pl.col("tou_mismatch").fill_null(False).any(),
    )
    return (
        customers.select("customer_code", "start", "end", "tariff_class")
        .join(summed, on="customer_code", how="left")
        .join(history, on="customer_code", how="left")
        .with_columns((pl.col("end") - pl.col("start")).dt.total_days().alias("period_days"))
        .with_columns(
            pl.col("missing").fill_null(True).alias("missing"),
        )
        .with_columns(
            pl.when(pl.col("missing"))
            .then((2 * pl.col("history_wh_per_day").fill_null(0) * pl.col("period_days") + 1000) // 2000)
            .otherwise(pl.col("kwh"))
            .alias("kwh"),
            pl.when(pl.col("missing")).then(pl.lit("history")).otherwise(pl.col("basis")).alias("basis"),
            (pl.col("missing") | pl.col("estimated").fill_null(True)).alias("estimated"),
            # TOU bands only from rate registers of every window; otherwise all at the normal price
            pl.when(pl.col("has_rates").fill_null(False) & ~pl.col("missing"))
            .then(pl.col("offpeak_kwh"))
            .otherwise(0)
            .alias("offpeak_kwh"),
            pl.when(pl.col("has_rates").fill_null(False) & ~pl.col("missing"))
            .then(pl.col("peak_kwh"))
            .otherwise(0)
            .alias("peak_kwh"),
            pl.col("tou_mismatch").fill_null(False),
        )
        .select("customer_code", "kwh", "offpeak_kwh", "peak_kwh", "basis", "estimated", "tou_mismatch")
    )


def _mismatch() -> pl.Expr:
    """Rate registers disagree with interval energy bucketed by the TOU calendar."""
    checks = []
    for band in BANDS:
        reg = pl.col(f"reg_{band}")
        ints = (pl.col(f"{band}_wh") * pl.col("ratio") + 500) // 1000
        allowed = pl.max_horizontal(
            pl.lit(TOU_TOLERANCE_KWH, pl.Int64),
            (reg.abs() * int(TOU_TOLERANCE * 1000)) // 1000,
        )
        checks.append((reg - ints).abs() > allowed)
    # daily bands are bucketed by the calendar in force; a meter still on another calendar
    # (reprogramming window) cannot be compared with them
    comparable = (pl.col("tou_calendar") == DEFAULT_CALENDAR) & (
        (pl.col("rate_registers").fill_null(0) > 0)
        & pl.col("all_intervals").fill_null(False)
        & (pl.col("days_covered").fill_null(0) == pl.col("days"))
    )
    return comparable & pl.any_horizontal(*checks)


def history_rate(previous_bills: pl.LazyFrame) -> pl.LazyFrame:
    """Average Wh per day over previous non-estimated bills (input: customer_code, kwh, days, estimated)."""
    return (
        previous_bills.filter(~pl.col("estimated"))
        .group_by("customer_code")
        .agg(
            ((pl.col("kwh").sum() * 1000) // pl.col("days").sum().clip(lower_bound=1)).alias(
                "history_wh_per_day"
            )
        )
    )


def true_up(
    energy: pl.LazyFrame, wins: pl.LazyFrame, reads: pl.LazyFrame, previous: pl.LazyFrame
) -> pl.LazyFrame:
    """Correct last period's estimate now that the meter reads again.

    For a customer whose previous bill was estimated and who has no start snapshot now
    (the same missing read), but whose single meter has both the previous period's start
    snapshot and this period's end snapshot: kWh = (end - previous start) - kWh already
    billed on the estimate. previous: customer_code, prev_start, prev_kwh, prev_estimated.
    An over-estimate larger than this period's use bills 0 kWh and is held for staff.
    """
    single = (
        wins.group_by("customer_code")
        .agg(pl.len().alias("n"), pl.col("meter_id", "end", "ratio").first())
        .filter(pl.col("n") == 1)
        .join(previous.filter(pl.col("prev_estimated")), on="customer_code", how="inner")
    )
    totals = (
        reads.filter(pl.col("quantity") == TOTAL)
        .with_columns((wh_expr(pl.col("value"), pl.col("scale"), pl.col("unit")) // 1000).alias("reg_kwh"))
        .select("meter_id", "date", "ts", "reg_kwh")
    )

    def at(column: str, name: str) -> pl.LazyFrame:
        return (
            single.join(totals, left_on=["meter_id", column], right_on=["meter_id", "date"], how="inner")
            .sort("ts")
            .group_by("customer_code")
            .agg(pl.col("reg_kwh").last().alias(name))
        )

    trued = (
        single.join(at("prev_start", "reg_prev"), on="customer_code", how="inner")
        .join(at("end", "reg_end"), on="customer_code", how="inner")
        .select(
            "customer_code",
            ((pl.col("reg_end") - pl.col("reg_prev")) * pl.col("ratio") - pl.col("prev_kwh")).alias("trued"),
        )
    )
    return (
        energy.join(trued, on="customer_code", how="left")
        .with_columns(usable=pl.col("trued").is_not_null() & (pl.col("basis") != "registers"))
        .with_columns(
            pl.when(pl.col("usable"))
            .then(pl.col("trued").clip(lower_bound=0))
            .otherwise(pl.col("kwh"))
            .alias("kwh"),
            pl.when(pl.col("usable"))
            .then(pl.lit("registers+true-up"))
            .otherwise(pl.col("basis"))
            .alias("basis"),
            pl.when(pl.col("usable"))
            .then(pl.col("trued") < 0)
            .otherwise(pl.col("estimated"))
            .alias("estimated"),
            # TOU bands cannot be trued up from the total alone: all at the normal price
            pl.when(pl.col("usable")).then(0).otherwise(pl.col("offpeak_kwh")).alias("offpeak_kwh"),
            pl.when(pl.col("usable")).then(0).otherwise(pl.col("peak_kwh")).alias("peak_kwh"),
        )
        .drop("trued", "usable")
    )
