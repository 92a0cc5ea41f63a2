"""Issue: give draft bills their e-invoice numbers in one serial step, then mark them issued.

Per Decree 123/2020/ND-CP (as amended) and Circular 32/2025/TT-BTC: template symbol `1`
(VAT invoice), a 6-character series whose 2-digit year is the invoice date's, and an
8-digit number without gaps per series (a new series each year restarts at 1). Numbers
are taken in one operational-store transaction, in bill-id order, and recorded per bill
version before the bills are rewritten; a rerun (or a run after a crash between the two)
finds the recorded numbers and never renumbers. A new version of an issued bill is
issued as a replacement (the original becomes `replaced`) or an adjustment invoice (for
the difference), referencing the original.
"""

from __future__ import annotations

import datetime as dt
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import polars as pl
import sqlalchemy as sa

from billing import sources
from billing.errors import InvoiceError
from core.buckets import bucket_expr
from core.config import Settings
from core.measurements import MeasurementStore, partition
from core.state import StateStore
from core.tables import BILLS
from core.timezones import LOCAL_TZ

SERIES = re.compile(r"^[CK]\d{2}[A-Z]{3}$")
MAX_NUMBER = 99_999_999
Correction = Literal["replacement", "adjustment"]


@dataclass
class IssueReport:
    period: str
    invoice_date: dt.date
    template: str
    series: str
    dry_run: bool
    issued: int = 0
    corrections: int = 0
    already_issued: int = 0
    held: int = 0
    first_number: int | None = None
    last_number: int | None = None


def series_for(settings: Settings, invoice_date: dt.date) -> tuple[str, str]:
    template = settings.billing.invoice_template
    series = settings.billing.invoice_series.format(yy=f"{invoice_date.year % 100:02d}")
    if template != "1":
        raise InvoiceError(
            f"invoice template {template!r} is not 1 (VAT invoice)",
            hint='set billing.invoice_template = "1" in amr.toml',
        )
    if not SERIES.match(series) or series[1:3] != f"{invoice_date.year % 100:02d}":
        raise InvoiceError(
            f"invoice series {series!r} (from {settings.billing.invoice_series!r}) is not C/K, the invoice "
            f"year's 2 digits and 3 letters",
            hint='set billing.invoice_series like "K{yy}EAA" in amr.toml',
        )
    return template, series


def invoice_no(template: str, series: str, number: int) -> str:
    return f"{template}-{series}-{number:08d}"


def _candidates(bills: pl.DataFrame) -> pl.DataFrame:
    latest = bills.sort("version").group_by("bill_id").last()
    return latest.filter(pl.col("status") == "draft").sort("bill_id")


def issue_bills(
    data_dir: Path,
    state: StateStore,
    *,
    period: str,
    settings: Settings,
    invoice_date: dt.date | None = None,
    dry_run: bool = False,
    correction: Correction = "replacement",
) -> IssueReport:
    """Number every draft bill of the period (held bills wait) and mark it issued."""
    root = data_dir
    if correction not in ("replacement", "adjustment"):
        raise InvoiceError(f"correction kind {correction!r} is unknown", hint="use replacement or adjustment")
    day = invoice_date or dt.datetime.now(LOCAL_TZ).date()
    template, series = series_for(settings, day)
    store = MeasurementStore(root)
    bills = sources.bills(store, [period]).collect()
    todo = _candidates(bills)
    latest = bills.sort("version").group_by("bill_id").last()
    report = IssueReport(
        period=period,
        invoice_date=day,
        template=template,
        series=series,
        dry_run=dry_run,
        held=latest.filter(pl.col("status") == "held").height,
        already_issued=latest.filter(pl.col("status") == "issued").height,
    )
    if dry_run:
        with state.read() as conn:
            last = conn.execute(
                sa.text("SELECT last_number FROM invoice_counters WHERE template = :t AND series = :s"),
                {"t": template, "s": series},
            ).scalar()
        report.issued = todo.height
        if todo.height:
            report.first_number, report.last_number = (last or 0) + 1, (last or 0) + todo.height
        return report
    report.issued, report.corrections, numbers = _number(
        state, todo, period, template, series, day, correction
    )
    if numbers:
        report.first_number, report.last_number = min(numbers), max(numbers)
    _apply(store, state, period, settings)
    return report


def _number(
    state: StateStore,
    todo: pl.DataFrame,
    period: str,
    template: str,
    series: str,
    day: dt.date,
    correction: Correction,
) -> tuple[int, int, list[int]]:
    rows = todo.select("bill_id", "version", "total_amount").to_dicts()
    if not rows:
        return 0, 0, []
    with state.transaction() as conn:
        done = {
            (r[0], r[1])
            for r in conn.execute(
                sa.text("SELECT bill_id, version FROM invoices WHERE period = :p"), {"p": period}
            )
        }
        originals = {
            r[0]: (r[1], invoice_no(r[2], r[3], r[4]), r[5])
            for r in conn.execute(
                sa.text(
                    "SELECT bill_id, version, template, series, number, total_amount FROM invoices "
                    "WHERE period = :p ORDER BY version"
                ),
                {"p": period},
            )
        }
        fresh = [r for r in rows if (r["bill_id"], r["version"]) not in done]
        last = conn.execute(
            sa.text("SELECT last_number FROM invoice_counters WHERE template = :t AND series = :s"),
            {"t": template, "s": series},
        ).scalar()
        start = (last or 0) + 1
        if start + len(fresh) - 1 > MAX_NUMBER:
            raise InvoiceError(
                f"series {series} would pass {MAX_NUMBER:,} invoices",
                hint="open a new series (billing.invoice_series) for the rest of the year",
            )
        records, numbers, corrections = [], [], 0
        for offset, row in enumerate(fresh):
            number = start + offset
            previous = originals.get(row["bill_id"])
            kind, refers, amount = "original", None, row["total_amount"]
            if previous is not None and previous[0] < row["version"]:
                kind, refers = correction, previous[1]
                corrections += 1
                if correction == "adjustment":
                    amount = row["total_amount"] - previous[2]
            records.append(
                {
                    "bill_id": row["bill_id"],
                    "version": row["version"],
                    "period": period,
                    "template": template,
                    "series": series,
                    "number": number,
                    "invoice_date": day,
                    "kind": kind,
                    "refers_to": refers,
                    "total_amount": amount,
                }
            )
            numbers.append(number)
        if records:
            conn.execute(
                sa.text(
                    "INSERT INTO invoices (bill_id, version, period, template, series, number, "
                    "invoice_date, kind, refers_to, total_amount) VALUES (:bill_id, :version, :period, "
                    ":template, :series, :number, :invoice_date, :kind, :refers_to, :total_amount)"
                ),
                records,
            )
            conn.execute(
                sa.text(
                    "INSERT INTO invoice_counters (template, series, last_number) VALUES (:t, :s, :n) "
                    "ON CONFLICT (template, series) DO UPDATE SET last_number = excluded.last_number"
                ),
                {"t": template, "s": series, "n": numbers[-1]},
            )
    return len(records), corrections, numbers


def invoices(state: StateStore, period: str) -> pl.DataFrame:
    with state.read() as conn:
        rows = conn.execute(
            sa.text(
                "SELECT bill_id, version, template, series, number, invoice_date, kind, refers_to, "
                "total_amount FROM invoices WHERE period = :p"
            ),
            {"p": period},
        ).fetchall()
    frame = pl.DataFrame(
        [tuple(r) for r in rows],
        orient="row",
        schema={
            "bill_id": pl.String,
            "version": pl.Int32,
            "template": pl.String,
            "series": pl.String,
            "number": pl.Int64,
            "invoice_date": pl.String,
            "kind": pl.String,
            "refers_to": pl.String,
            "invoice_amount": pl.Int64,
        },
    )
    return frame.with_columns(pl.col("invoice_date").str.slice(0, 10).str.to_date())


def _apply(store: MeasurementStore, state: StateStore, period: str, settings: Settings) -> None:
    """Make the bills table say what the invoices table records (idempotent)."""
    issued = invoices(state, period)
    if issued.height == 0:
        return
    bills = sources.bills(store, [period]).collect()
    numbered = bills.join(
        issued.select("bill_id", "version", "template", "series", "number", "kind"),
        on=["bill_id", "version"],
        how="left",
    )
    superseded = issued.filter(pl.col("kind") == "replacement").select("bill_id", pl.col("version") - 1)
    superseded = superseded.with_columns(pl.lit(True).alias("superseded"))
    updated = (
        numbered.join(superseded, on=["bill_id", "version"], how="left")
        .with_columns(
            pl.when(pl.col("superseded").fill_null(False))
            .then(pl.lit("replaced"))
            .when(pl.col("number").is_not_null())
            .then(pl.lit("issued"))
            .otherwise(pl.col("status"))
            .alias("status"),
            pl.when(pl.col("number").is_not_null())
            .then(pl.format("{}-{}-{}", "template", "series", pl.col("number").cast(pl.String).str.zfill(8)))
            .otherwise(pl.col("invoice_no"))
            .alias("invoice_no"),
        )
        .select(bills.columns)
    )
    changed = updated.join(bills, on=list(bills.columns), how="anti")
    if changed.height == 0:
        return
    buckets = set(changed.with_columns(bucket_expr("customer_code", settings.buckets))["bucket"].to_list())
    with_bucket = updated.with_columns(bucket_expr("customer_code", settings.buckets))
    frames = {
        partition(period=period, bucket=int(b)): with_bucket.filter(pl.col("bucket") == b)
        .drop("bucket")
        .sort("bill_id", "version")
        for b in buckets
    }
    store.table(BILLS).write_partitions(frames)


@dataclass
class IssueAndDocumentsReport(IssueReport):
    documents: int | None = None
    signed: bool = False


def issue_and_document(
    data_dir: Path,
    state: StateStore,
    *,
    period: str,
    settings: Settings,
    invoice_date: dt.date | None = None,
    dry_run: bool = False,
    correction: str = "replacement",
    documents: bool = True,
    archive: bool = False,
) -> IssueAndDocumentsReport:
    """`issue_bills`, then the documents of the period's issued bills (the CLI's one call)."""
    from billing.documents import write_documents

    if correction not in ("replacement", "adjustment"):
        raise InvoiceError(f"correction kind {correction!r} is unknown", hint="use replacement or adjustment")
    base = issue_bills(
        data_dir,
        state,
        period=period,
        settings=settings,
        invoice_date=invoice_date,
        dry_run=dry_run,
        correction="adjustment" if correction == "adjustment" else "replacement",
    )
    report = IssueAndDocumentsReport(**vars(base))
    if documents and not dry_run:
        cores = os.cpu_count() or 1
        written = write_documents(data_dir, state, period=period, workers=cores, archive=archive)
        report.documents, report.signed = written.documents, written.signed
    return report
