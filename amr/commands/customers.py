"""`amr customers`: import, list and show customers and their contracts (the billing room)."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from amr.context import console, fail, handle_errors, print_json, state

app = typer.Typer(no_args_is_help=True, help="Customers, contracts and the meters on their usage points.")


@app.command("import")
@handle_errors
def import_(
    path: Annotated[Path, typer.Argument(help="CSV or Parquet: a customer file or the fleet file")],
    good_rows: Annotated[
        bool, typer.Option("--good-rows", help="import the good rows despite bad ones")
    ] = False,
    as_json: Annotated[bool, typer.Option("--json", help="print JSON")] = False,
) -> None:
    """Import customers, contracts and meter assignments; every bad row is reported.

    By default nothing is written when any row is bad.

    Example: amr customers import fleet.csv
    """
    from billing.customers import import_customers

    report = import_customers(state(), path, mode="good-rows" if good_rows else "all-or-nothing")
    if as_json:
        print_json(
            {
                "rows": report.rows,
                "imported": report.imported,
                "skipped_without_customer": report.skipped_without_customer,
                "errors": [vars(e) for e in report.errors],
            }
        )
    else:
        console.print(
            f"{report.imported} of {report.rows} rows imported from {path}"
            + (
                f"; {report.skipped_without_customer} meters without a customer skipped"
                if report.skipped_without_customer
                else ""
            )
        )
        for error in report.errors[:50]:
            console.print(f"  line {error.line}, {error.column}: {error.what}", highlight=False)
        if len(report.errors) > 50:
            console.print(f"  ... and {len(report.errors) - 50} more")
    if report.errors:
        raise fail(
            f"{len(report.errors)} bad value(s) in {path}",
            None if good_rows else "fix them, or pass --good-rows to import the rest",
        )


@app.command("list")
@handle_errors
def list_(
    route: Annotated[str | None, typer.Option("--route", help="only this route")] = None,
    on: Annotated[
        dt.datetime | None, typer.Option("--on", formats=["%Y-%m-%d"], help="contracts in force that day")
    ] = None,
    limit: Annotated[int, typer.Option("--limit")] = 100,
    as_json: Annotated[bool, typer.Option("--json", help="print JSON")] = False,
) -> None:
    """List customers with the contract in force.

    Example: amr customers list --route R01 --limit 20
    """
    from billing.customers import list_customers

    rows = list_customers(state(), route=route, on=on.date() if on else None, limit=limit)
    if as_json:
        print_json(rows)
        return
    table = Table()
    for column in ("customer_code", "name", "tariff_class", "voltage", "households", "reading_day", "route"):
        table.add_column(column)
    for row in rows:
        table.add_row(*(str(row[c] if row[c] is not None else "") for c in row))
    console.print(table)


@app.command()
@handle_errors
def show(
    customer_code: Annotated[str, typer.Argument(help="PD + unit + digits")],
    as_json: Annotated[bool, typer.Option("--json", help="print JSON")] = False,
) -> None:
    """Show a customer, every contract and every meter the usage point has had.

    Example: amr customers show PD01000000001
    """
    from billing.customers import show_customer

    customer = show_customer(state(), customer_code)
    if as_json:
        print_json(customer)
        return
    console.print(
        f"[bold]{customer['customer_code']}[/] {customer['name']}, {customer['address']}"
        f" (tax code {customer['tax_code'] or '-'})"
    )
    columns = ("effective_from", "effective_to", "tariff_class", "voltage", "households", "reading_day",
               "tou_calendar", "route")
    contracts = Table(*columns, title="contracts")
    for c in customer["contracts"]:
        contracts.add_row(*(str(c[k] if c[k] is not None else "") for k in columns))
    console.print(contracts)
    meters = Table(title="meters")
    for column in ("meter_id", "installed_on", "removed_on"):
        meters.add_column(column)
    for m in customer["meters"]:
        meters.add_row(str(m["meter_id"]), str(m["installed_on"]), str(m["removed_on"] or ""))
    console.print(meters)
