"""Vectorised rating: determinants in, bill amounts and tier lines out, as Polars expressions.

Input: one row per (customer, segment) where a segment is a stretch of the period under
one tariff (a price change inside the period makes two). The arithmetic is the one of
`billing.tiers` (the one-customer reference the tests compare with), in integers:
quota = round_half_up(norm x N x h / T) = (2a + b) // 2b with a = norm x N x h_milli and
b = T x 1000; each line's amount is kWh x price (whole kWh on bills); VAT is
round_half_up(amount x rate). No Python runs per customer: loops here are over tariffs
and tiers (a handful), each adding expressions.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import polars as pl

from billing.errors import BillingError
from billing.tariffs import DEFAULT_VOLTAGE, RESIDENTIAL, TariffBook

SEGMENT_COLUMNS: dict[str, pl.DataType] = {
    "customer_code": pl.String(),
    "seg": pl.Int32(),
    "seg_start": pl.Date(),
    "seg_end": pl.Date(),
    "period_end": pl.Date(),
    "tariff_class": pl.String(),
    "voltage": pl.String(),
    "h_milli": pl.Int64(),  # households x 1000 (tenants: persons / 4, exact in thousandths)
    "prorate": pl.Boolean(),  # irregular period, or a period split by a price change
    "month_days": pl.Int64(),  # T: days of the month before the reading date
    "kwh": pl.Int64(),
    "offpeak_kwh": pl.Int64(),
    "peak_kwh": pl.Int64(),
}
RESULT_COLUMNS = (
    "customer_code",
    "kwh",
    "amount_before_vat",
    "vat_rate",
    "vat_amount",
    "total_amount",
    "lines",
)


def _div_half_up(numerator: pl.Expr, denominator: pl.Expr | int) -> pl.Expr:
    return (2 * numerator + denominator) // (2 * denominator)


def _tariff_index(book: TariffBook, tariff_class: str) -> pl.Expr:
    """Index into book.tariffs of the tariff pricing the class on each segment's end date."""
    expr: pl.Expr = pl.lit(None, dtype=pl.Int32)
    for index, tariff in enumerate(book.tariffs):  # oldest first: later ones win
        if tariff.prices(tariff_class):
            expr = (
                pl.when(pl.col("seg_end") >= tariff.effective_from)
                .then(pl.lit(index, pl.Int32))
                .otherwise(expr)
            )
    return expr


def _line_text(tier_json: str, quota: pl.Expr, kwh: pl.Expr, price: pl.Expr, amount: pl.Expr) -> pl.Expr:
    return pl.format(
        '{{"tier":{},"quota_kwh":{},"kwh":{},"price":{},"amount":{}}}',
        pl.lit(tier_json),
        quota.cast(pl.String).fill_null("null"),
        kwh,
        price.cast(pl.String).fill_null("null"),
        amount,
    )


def _segment_result(part: pl.LazyFrame, lines: list[tuple[str, pl.Expr, pl.Expr, pl.Expr]]) -> pl.LazyFrame:
    """One row per segment: its kWh, amount, lines JSON (without brackets) and unpriced lines.

    Wide, not long: each tier is a few columns of the same row, so no explode or sort is needed.
    """
    amounts = [kwh * price for _, _, kwh, price in lines]
    return part.select(
        "customer_code",
        "seg",
        "period_end",
        pl.sum_horizontal(*(kwh for _, _, kwh, _ in lines)).alias("kwh"),
        pl.sum_horizontal(*amounts).alias("amount_before_vat"),
        pl.sum_horizontal(*(price.is_null().cast(pl.Int32) for *_, price in lines)).alias("unpriced"),
        pl.concat_str(
            [_line_text(t, q, k, p, a) for (t, q, k, p), a in zip(lines, amounts, strict=True)], separator=","
        ).alias("lines"),
    )


def _residential(frame: pl.LazyFrame, book: TariffBook) -> list[pl.LazyFrame]:
    days = (pl.col("seg_end") - pl.col("seg_start")).dt.total_days()
    out: list[pl.LazyFrame] = []
    for index, tariff in enumerate(book.tariffs):
        if not tariff.tiers:
            continue
        before: pl.Expr = pl.lit(0, pl.Int64)
        lines: list[tuple[str, pl.Expr, pl.Expr, pl.Expr]] = []
        for number, tier in enumerate(tariff.tiers, start=1):
            if tier.norm_kwh is None:
                quota: pl.Expr = pl.lit(None, pl.Int64)
                take = (pl.col("kwh") - before).clip(lower_bound=0)
            else:
                quota = (
                    pl.when(pl.col("prorate"))
                    .then(_div_half_up(tier.norm_kwh * days * pl.col("h_milli"), pl.col("month_days") * 1000))
                    .otherwise(_div_half_up(tier.norm_kwh * pl.col("h_milli"), 1000))
                )
                take = (pl.col("kwh") - before).clip(lower_bound=0, upper_bound=quota)
                before = before + quota
            lines.append((str(number), quota, take, pl.lit(tier.price, pl.Int64)))
        out.append(_segment_result(frame.filter(pl.col("tariff_index") == index), lines))
    return out


def _tou(frame: pl.LazyFrame, book: TariffBook) -> pl.LazyFrame:
    rows = [
        {
            "tariff_index": index,
            "tariff_class": cls,
            "voltage": voltage,
            "normal": p.normal,
            "offpeak": p.offpeak,
            "peak": p.peak,
        }
        for index, tariff in enumerate(book.tariffs)
        for cls, levels in tariff.tou.items()
        for voltage, p in levels.items()
    ]
    prices = pl.LazyFrame(
        rows,
        schema={
            "tariff_index": pl.Int32,
            "tariff_class": pl.String,
            "voltage": pl.String,
            "normal": pl.Int64,
            "offpeak": pl.Int64,
            "peak": pl.Int64,
        },
    )
    priced = frame.join(prices, on=["tariff_index", "tariff_class", "voltage"], how="left")
    none = pl.lit(None, pl.Int64)
    lines = [
        ('"normal"', none, pl.col("kwh") - pl.col("offpeak_kwh") - pl.col("peak_kwh"), pl.col("normal")),
        ('"offpeak"', none, pl.col("offpeak_kwh"), pl.col("offpeak")),
        ('"peak"', none, pl.col("peak_kwh"), pl.col("peak")),
    ]
    return _segment_result(priced, lines)


def _vat_basis_points(book: TariffBook) -> pl.Expr:
    expr = pl.lit(int(book.default_vat * 10000), pl.Int64)
    for window in book.vat_windows:
        expr = (
            pl.when(pl.col("period_end").is_between(window.start, window.end))
            .then(pl.lit(int(window.rate * 10000), pl.Int64))
            .otherwise(expr)
        )
    return expr


def rate(segments: pl.LazyFrame, book: TariffBook, *, split: bool = True) -> pl.LazyFrame:
    """Bills (one row per customer) from determinant segments; see SEGMENT_COLUMNS.

    `split=False` promises one segment per customer (no price change inside any period),
    which skips the per-customer aggregation.
    """
    frame = segments.with_columns(
        pl.col("voltage").fill_null(DEFAULT_VOLTAGE),
        pl.when(pl.col("tariff_class") == RESIDENTIAL)
        .then(_tariff_index(book, RESIDENTIAL))
        .when(pl.col("tariff_class") == "business")
        .then(_tariff_index(book, "business"))
        .otherwise(_tariff_index(book, "production"))
        .alias("tariff_index"),
    )
    residential = frame.filter(pl.col("tariff_class") == RESIDENTIAL)
    tou = frame.filter(pl.col("tariff_class") != RESIDENTIAL)
    parts = pl.concat([*_residential(residential, book), _tou(tou, book)], how="vertical")
    if split:
        parts = (
            parts.sort("customer_code", "seg")
            .group_by("customer_code")
            .agg(
                pl.col("kwh").sum(),
                pl.col("amount_before_vat").sum(),
                pl.col("unpriced").sum(),
                pl.col("lines").str.join(","),
                pl.col("period_end").max(),
            )
        )
    bp = _vat_basis_points(book)
    return (
        parts.with_columns(
            bp.alias("vat_bp"), pl.concat_str(pl.lit("["), pl.col("lines"), pl.lit("]")).alias("lines")
        )
        .with_columns(
            _div_half_up(pl.col("amount_before_vat") * pl.col("vat_bp"), 10000).alias("vat_amount"),
            pl.col("vat_bp").replace_strict(_vat_texts(book), return_dtype=pl.String).alias("vat_rate"),
        )
        .with_columns((pl.col("amount_before_vat") + pl.col("vat_amount")).alias("total_amount"))
        .select(*RESULT_COLUMNS, "unpriced")
    )


def _vat_texts(book: TariffBook) -> dict[int, str]:
    rates = [book.default_vat, *(w.rate for w in book.vat_windows)]
    return {int(r * 10000): str(r) for r in rates}


def check_priced(bills: pl.DataFrame) -> pl.DataFrame:
    """Refuse a run where some customer has no price (unknown voltage, class without tariff)."""
    bad = bills.filter(pl.col("unpriced") > 0)
    if bad.height:
        codes = ", ".join(bad["customer_code"].head(5).to_list())
        raise BillingError(
            f"{bad.height} customer(s) have no TOU price for their voltage level, e.g. {codes}",
            hint="fix the contracts' voltage (amr customers show CODE) or add the prices to "
            "fixtures/tariffs/",
        )
    return bills.drop("unpriced")


def single_segment(
    customer_code: str,
    kwh: int,
    *,
    start: dt.date,
    end: dt.date,
    tariff_class: str = RESIDENTIAL,
    households: Decimal = Decimal(1),
    voltage: str | None = None,
    prorate: bool = False,
    month_days: int = 30,
    offpeak_kwh: int = 0,
    peak_kwh: int = 0,
) -> dict[str, object]:
    """One segment row (tests and staff adjustments build frames from these)."""
    return {
        "customer_code": customer_code,
        "seg": 0,
        "seg_start": start,
        "seg_end": end,
        "period_end": end,
        "tariff_class": tariff_class,
        "voltage": voltage,
        "h_milli": int(households * 1000),
        "prorate": prorate,
        "month_days": month_days,
        "kwh": kwh,
        "offpeak_kwh": offpeak_kwh,
        "peak_kwh": peak_kwh,
    }
