"""`amr bill`: quotes, bill runs, holds, issue, documents and exports (the billing room)."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal, InvalidOperation
from typing import Annotated

import typer
from rich.table import Table

from amr.context import console, handle_errors, print_json
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
    table.add_row(f"VAT {result.vat_rate * 100:g}%", "", "", "", _vnd(result.vat_amount))
    table.add_row("total", "", "", "", _vnd(result.total_amount))
    console.print(table)
