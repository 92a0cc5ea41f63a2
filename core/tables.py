"""Schemas of the measurement-store tables that more than one room reads.

`ingest` writes `daily`, `register_reads` and `intervals`; `billing` reads the first two
and writes `bills`; `portal_api` reads `daily`, `intervals` and `bills`. Each is declared
here once and applied where data is written. Energy in aggregates is whole watt-hours
(kWh x 10^-3), exact.
Partitions: `daily` and `register_reads` by (month=YYYY-MM, bucket), `intervals` by
(date=YYYY-MM-DD local day, bucket) like ingest's readings (an interval belongs to the
day its start falls in, so the one ending at local midnight closes the day before),
`bills` by (period=YYYY-MM, bucket); the bucket is `core.buckets.bucket_of` of the meter
id (of the customer code for bills).
"""

from __future__ import annotations

from collections.abc import Mapping

import polars as pl

DAILY = "daily"
REGISTER_READS = "register_reads"
BILLS = "bills"
INTERVALS = "intervals"

# One row per meter and local day: the consumption snapshot the portal serves.
DAILY_SCHEMA: Mapping[str, pl.DataType] = {
    "meter_id": pl.String(),
    "date": pl.Date(),  # local day (Asia/Ho_Chi_Minh)
    "energy_wh": pl.Int64(),  # active import over the day
    "offpeak_wh": pl.Int64(),  # time-of-use split by the calendar in force (sums to energy_wh
    "normal_wh": pl.Int64(),  # when the day is covered by intervals; all zero when the day
    "peak_wh": pl.Int64(),  # is known only from register reads)
    "intervals": pl.Int32(),  # measured intervals that day
    "estimated_wh": pl.Int64(),  # part of energy_wh that was estimated
    "basis": pl.String(),  # "intervals" or "registers"
}

# The import registers at the end of each local day, as the meter stored them (or estimated).
REGISTER_READS_SCHEMA: Mapping[str, pl.DataType] = {
    "meter_id": pl.String(),
    "date": pl.Date(),  # the local day whose end the value stands for
    "quantity": pl.String(),  # 1.0.1.8.0.255 total, 1.0.1.8.1-4.255 per rate
    "value": pl.Int64(),
    "scale": pl.Int8(),
    "unit": pl.String(),
    "ts": pl.Datetime("us", "UTC"),  # when the meter captured it
    "estimated": pl.Boolean(),
}

# One row per meter and load-profile interval that customers may see: the valid and
# estimated active-import interval deltas (1.0.1.29.x); quarantined and rejected ones are
# left out. Rows are sorted by (meter_id, ts) so a reader's filter on one meter skips most
# row groups. Within a meter's day the whole Wh are carried from interval to interval
# (cumulative floor of the exact mWh), so the day's intervals add up to `daily.energy_wh`.
INTERVALS_SCHEMA: Mapping[str, pl.DataType] = {
    "meter_id": pl.String(),
    "ts": pl.Datetime("us", "UTC"),  # interval end, as the meter captured it
    "energy_wh": pl.Int64(),  # active import over the interval, whole Wh
    "estimated": pl.Boolean(),  # estimated by VEE rather than measured
    "period_minutes": pl.Int16(),  # the interval's length
    "tou": pl.String(),  # offpeak, normal or peak: the TOU calendar's band at the interval's start
}

# One row per bill version. Amounts are whole VND.
BILLS_SCHEMA: Mapping[str, pl.DataType] = {
    "bill_id": pl.String(),
    "version": pl.Int32(),
    "customer_code": pl.String(),
    "period": pl.String(),  # YYYY-MM
    "period_start": pl.Date(),  # previous reading date
    "period_end": pl.Date(),  # this reading date
    "tariff_class": pl.String(),
    "kwh": pl.Int64(),
    "amount_before_vat": pl.Int64(),
    "vat_rate": pl.String(),  # decimal string, e.g. "0.08"
    "vat_amount": pl.Int64(),
    "total_amount": pl.Int64(),
    "lines": pl.String(),  # JSON: [{tier, quota_kwh, kwh, price, amount}, ...]
    "estimated": pl.Boolean(),
    "status": pl.String(),  # draft, held, issued, replaced
    "invoice_no": pl.String(),
    "created_at": pl.Datetime("us", "UTC"),
}


def conform_table(frame: pl.DataFrame, schema: Mapping[str, pl.DataType], *, origin: str) -> pl.DataFrame:
    """Select and cast a frame to a declared table schema; raises on missing columns."""
    from core.errors import ContractError

    missing = [c for c in schema if c not in frame.columns]
    if missing:
        raise ContractError(f"{origin}: missing column(s) {', '.join(missing)}")
    return frame.select(pl.col(name).cast(dtype) for name, dtype in schema.items())
