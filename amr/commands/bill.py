"""`amr bill`: quotes, bill runs, holds, issue, documents and exports (the billing room)."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from amr.context import console, data_dir, handle_errors, print_json, settings, state
from billing.errors import BillingError

app = typer.Typer(no_args_is_help=True, help="Quote, rate, hold, issue and export electricity bills.")


def _decimal(text: str, option: str) -> Decimal:
    try:
        return Decimal(text)
    except InvalidOperation:
        raise BillingError(f"{option} {text!r} is not a number", hint=f"for example {option} 1.25") from None


def _vnd(amount: int) -> str:
    return f"{amount:,}".replace(",", ".")


@app.command()
@handle_errors
def quote(
    kwh: Annotated[str, typer.Option("--kwh", help="energy over the period, kWh")],
    start: Annotated[
        dt.datetime | None, typer.Option("--from", formats=["%Y-%m-%d"], help="previous reading date")
    ] = None,
    end: Annotated[
        dt.datetime | None, typer.Option("--to", formats=["%Y-%m-%d"], help="this reading date")
    ] = None,
    households: Annotated[str, typer.Option("--households", help="households on the meter")] = "1",
    tariff_class: Annotated[str, typer.Option("--class", help="residential|business|production")] = (
        "residential"
    ),
    voltage: Annotated[
        str | None, typer.Option("--voltage", help="ge110kv|22-110kv|ge22kv|6-22kv|lt6kv")
    ] = None,
    offpeak: Annotated[str, typer.Option("--offpeak", help="of which off-peak kWh (TOU classes)")] = "0",
    peak: Annotated[str, typer.Option("--peak", help="of which peak kWh (TOU classes)")] = "0",
    as_json: Annotated[bool, typer.Option("--json", help="print JSON")] = False,
) -> None:
    """Price a consumption line by line with the tariff and VAT in force for the dates.

    Without dates: the last full calendar month. A period is regular when --to is one
    calendar month after --from; otherwise the tier quotas are prorated by days.

    Example: amr bill quote --kwh 300 --from 2026-09-30 --to 2026-10-31 --json
    """
    from billing.quote import quote as make_quote

    result = make_quote(
        _decimal(kwh, "--kwh"),
        start=start.date() if start else None,
        end=end.date() if end else None,
        households=_decimal(households, "--households"),
        tariff_class=tariff_class,
        voltage=voltage,
        offpeak_kwh=_decimal(offpeak, "--offpeak"),
        peak_kwh=_decimal(peak, "--peak"),
    )
    if as_json:
        print_json(result.as_json())
        return
    kind = "regular" if result.regular else "irregular (quotas prorated)"
    table = Table(
        title=f"{result.tariff_class}, {result.start} to {result.end}: {result.days} days, {kind}; "
        f"tariff {' + '.join(result.decisions)}"
    )
    for column in ("tier", "quota kWh", "kWh", "price VND/kWh", "amount VND"):
        table.add_column(column, justify="right")
    for line in result.lines:
        table.add_row(
            str(line.tier),
            "-" if line.quota_kwh is None else str(line.quota_kwh),
            str(line.kwh),
            _vnd(line.price),
            _vnd(line.amount),
        )
    table.add_section()
    table.add_row("subtotal", "", "", "", _vnd(result.amount_before_vat))
    table.add_row(f"VAT {(result.vat_rate * 100).normalize():f}%", "", "", "", _vnd(result.vat_amount))
    table.add_row("total", "", "", "", _vnd(result.total_amount))
    console.print(table)


Period = Annotated[str, typer.Option("--period", help="billing period YYYY-MM")]


@app.command("run")
@handle_errors
def run_(
    period: Period,
    route: Annotated[str | None, typer.Option("--route", help="only this route")] = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="rate and report, store nothing")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="print JSON")] = False,
    cluster: Annotated[
        str | None,
        typer.Option(envvar="AMR_CLUSTER", help="Dask scheduler (tcp://host:8786) to rate partitions on"),
    ] = None,
    workers: Annotated[int, typer.Option(min=1, help="local processes when no cluster is given")] = 1,
) -> None:
    """Rate every customer of a period (or one route) and store the bills; rerunning is safe.

    Issued bills are never changed: different amounts become a new version to issue as a correction.
    Each step of buckets is a task on the executor; this process commits the bills.

    Example: amr bill run --period 2026-11 --dry-run
    """
    from billing.run import run_bills
    from core.executor import open_executor

    with open_executor(cluster, workers=workers) as executor:
        report = run_bills(
            data_dir(),
            state(),
            period=period,
            settings=settings(),
            route=route,
            dry_run=dry_run,
            executor=executor,
        )
    if as_json:
        print_json(vars(report))
        return
    table = Table(title=f"bill run {period}" + (" (dry run: nothing stored)" if dry_run else ""))
    table.add_column("")
    table.add_column("value", justify="right")
    for label, value in (
        ("bills", report.bills),
        ("held", report.held),
        ("estimated", report.estimated),
        ("unchanged (already issued)", report.unchanged),
        ("corrections", report.corrections),
        ("total VND", _vnd(report.total_vnd)),
        ("partitions written", report.partitions),
        ("seconds", f"{report.seconds:.2f}"),
    ):
        table.add_row(label, str(value))
    for tariff_class, count in report.per_class.items():
        table.add_row(f"  {tariff_class}", str(count))
    for reason, count in report.held_reasons.items():
        table.add_row(f"  held: {reason}", str(count))
    console.print(table)


@app.command()
@handle_errors
def holds(
    period: Annotated[str | None, typer.Option("--period", help="billing period YYYY-MM")] = None,
    status: Annotated[str, typer.Option("--status", help="open|released|adjusted|all")] = "open",
    as_json: Annotated[bool, typer.Option("--json", help="print JSON")] = False,
) -> None:
    """List bills on hold (estimated, TOU mismatch, unusual consumption) waiting for staff.

    Example: amr bill holds --period 2026-11
    """
    from billing.holds import list_holds

    rows = list_holds(state(), period=period, status=status)
    if as_json:
        print_json(rows)
        return
    table = Table(title=f"{len(rows)} hold(s)")
    for column in ("bill_id", "version", "reasons", "status", "total VND", "resolution"):
        table.add_column(column)
    for r in rows:
        table.add_row(
            r["bill_id"],
            str(r["version"]),
            r["reasons"],
            r["status"],
            _vnd(r["total_amount"] or 0),
            r["resolution"] or "",
        )
    console.print(table)


@app.command()
@handle_errors
def release(
    bill_id: Annotated[str, typer.Argument(help="e.g. 2026-11-PD01000000001")],
    reason: Annotated[str, typer.Option("--reason", help="why (kept with the bill)")],
    by: Annotated[str, typer.Option("--by", help="staff id")] = "staff",
    kwh: Annotated[int | None, typer.Option("--kwh", help="bill this kWh instead (an adjustment)")] = None,
) -> None:
    """Release a held bill, or adjust its kWh, with a reason; the next `amr bill run` applies it.

    Example: amr bill release 2026-11-PD01000000001 --reason "meter checked on site" --kwh 212
    """
    from billing.holds import resolve_hold

    result = resolve_hold(state(), bill_id, reason=reason, by=by, adjusted_kwh=kwh)
    console.print(
        f"{result['bill_id']} v{result['version']}: {result['status']}; rerun the period to apply it"
    )


@app.command()
@handle_errors
def issue(
    period: Period,
    invoice_date: Annotated[
        dt.datetime | None, typer.Option("--date", formats=["%Y-%m-%d"], help="invoice date (default today)")
    ] = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="show what would be numbered")] = False,
    correction: Annotated[str, typer.Option("--correction", help="replacement|adjustment")] = "replacement",
    documents: Annotated[
        bool, typer.Option("--documents/--no-documents", help="write HTML and XML documents")
    ] = True,
    archive: Annotated[
        bool, typer.Option("--archive", help="e-invoice XML only, one archive per partition (a city)")
    ] = False,
    as_json: Annotated[bool, typer.Option("--json", help="print JSON")] = False,
) -> None:
    """Number the period's draft bills as e-invoices in one serial step and mark them issued.

    Held bills wait. A rerun never renumbers. Documents go to <data>/documents/<period>/
    (with --archive: the e-invoice XML only, in <data>/documents/<period>/einvoices/).

    Example: amr bill issue --period 2026-11 --date 2026-12-01
    """
    from billing.issue import issue_and_document

    report = issue_and_document(
        data_dir(),
        state(),
        period=period,
        settings=settings(),
        invoice_date=invoice_date.date() if invoice_date else None,
        dry_run=dry_run,
        correction=correction,
        documents=documents,
        archive=archive,
    )
    if as_json:
        print_json(vars(report))
        return
    numbers = (
        f"{report.first_number:08d}..{report.last_number:08d}" if report.first_number is not None else "none"
    )
    verb = "would issue" if dry_run else "issued"
    console.print(
        f"{verb} {report.issued} invoice(s) ({report.corrections} corrections) in template "
        f"{report.template}, series {report.series}, numbers {numbers}; {report.held} held, "
        f"{report.already_issued} already issued"
    )
    if report.documents is not None:
        signed = "signed" if report.signed else "UNSIGNED (no seller key in <data>/seller.toml)"
        console.print(f"{report.documents} document set(s) written, XML {signed}")


@app.command()
@handle_errors
def documents(
    period: Period,
    pdf: Annotated[bool, typer.Option("--pdf", help="also render PDF")] = False,
    bill_id: Annotated[list[str] | None, typer.Option("--bill", help="only these bills")] = None,
    workers: Annotated[int, typer.Option("--workers", help="processes (default: every core)")] = 0,
    archive: Annotated[
        bool, typer.Option("--archive", help="e-invoice XML only, one archive per partition (a city)")
    ] = False,
) -> None:
    """(Re)write the HTML, e-invoice XML and optionally PDF of a period's issued bills.

    With --archive, only the e-invoice XML, as one Parquet archive per partition in
    <data>/documents/<period>/einvoices/ (take one out with `amr bill invoice`).

    Example: amr bill documents --period 2026-11 --pdf --bill 2026-11-PD01000000001
    """
    import os

    from billing.documents import write_documents

    report = write_documents(
        data_dir(),
        state(),
        period=period,
        pdf=pdf,
        bill_ids=bill_id,
        workers=workers or os.cpu_count() or 1,
        archive=archive,
    )
    console.print(
        f"{report.documents} bill(s) written to {report.directory} "
        f"({'signed' if report.signed else 'unsigned'} XML{', PDF' if pdf else ''}) "
        f"in {report.seconds:.1f} s"
    )


@app.command()
@handle_errors
def invoice(
    bill_id: Annotated[str, typer.Argument(help="the bill, e.g. 2026-11-PD01000000001")],
    period: Period,
    out: Annotated[Path, typer.Option("--out", help="file, or folder for <bill>-v<version>.xml")] = Path("."),
    version: Annotated[int | None, typer.Option("--version", help="bill version (default latest)")] = None,
) -> None:
    """Take one bill's signed e-invoice XML out of the period's archive (written with --archive).

    Example: amr bill invoice 2026-11-PD01000000001 --period 2026-11 --out .
    """
    from billing.invoice_archive import extract_invoice

    path = extract_invoice(data_dir(), period, bill_id, out, version=version)
    console.print(f"e-invoice of {bill_id} written to {path}")


@app.command()
@handle_errors
def export(
    period: Period,
    out: Annotated[Path, typer.Option("--out", help="file .parquet, .csv or .json")],
    latest: Annotated[bool, typer.Option("--latest", help="only the latest version of each bill")] = False,
) -> None:
    """Export a period's bills (every version, invoice numbers) as Parquet, CSV or JSON.

    Example: amr bill export --period 2026-11 --out bills-2026-11.parquet
    """
    from billing.exports import export_bills

    rows = export_bills(data_dir(), period=period, out=out, latest_only=latest)
    console.print(f"{rows} bill row(s) written to {out}")


@app.command("seller-init")
@handle_errors
def seller_init(
    force: Annotated[bool, typer.Option("--force", help="replace an existing seller.toml")] = False,
) -> None:
    """Create a TEST seller certificate and <data>/seller.toml so e-invoices are signed (demos only).

    Example: amr bill seller-init
    """
    from billing.seller import init_test_seller

    path = init_test_seller(data_dir(), force=force)
    console.print(f"test seller written to {path} (self-signed: not for real e-invoices)")
