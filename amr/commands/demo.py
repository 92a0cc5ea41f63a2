"""`amr demo`: the whole pipeline on simulated meters, with a summary."""

from __future__ import annotations

import datetime as dt

import typer
from rich.table import Table

from amr.context import console, handle_errors, settings


@handle_errors
def demo(
    period: str = typer.Option(
        None, help="Billing month YYYY-MM (default: the last full month)."
    ),
    meters: int = typer.Option(50, min=1, max=2000, help="Simulated Modbus TCP meters."),
    seed: int = typer.Option(1, help="Seed of the simulated households."),
) -> None:
    """Run the whole pipeline on simulated meters: read, validate, bill, publish.

    Example: amr demo --meters 50 --period 2026-10
    """
    from amr.demo import previous_month, run_demo  # the whole stack: loaded only when run

    chosen = period or previous_month(dt.date.today())
    config = settings()
    with console.status("running the demo...") as status:
        summary = run_demo(
            config, period=chosen, meters=meters, seed=seed, progress=lambda m: status.update(m)
        )
    table = Table(title=f"amr demo: {summary.period}", show_header=False)
    rows = [
        ("meters read", f"{summary.meters} ({summary.polls_ok} polls ok, {summary.polls_failed} failed)"),
        ("readings landed", f"{summary.readings_landed:,}"),
        ("readings stored", f"{summary.stored:,}"),
        ("duplicates dropped", f"{summary.duplicates:,}"),
        ("readings quarantined", f"{summary.quarantined:,}"),
        ("estimates made", f"{summary.estimates:,}"),
        ("bills", f"{summary.bills:,} ({summary.held} on hold, {summary.issued:,} issued)"),
        ("total (VND, VAT incl.)", f"{summary.total_vnd:,}"),
        ("published to the portal", f"{summary.published:,} now; {summary.delivered:,} delivered in all"),
    ]
    for name, value in rows:
        table.add_row(name, value)
    console.print(table)
    console.print(f"data directory: {summary.data_dir}")
    console.print(f"  fleet file:   {summary.fleet_file}")
    console.print(f"  landing:      {summary.data_dir / 'landing'}")
    console.print(f"  store:        {summary.data_dir / 'store'}")
    console.print(f"  state:        {summary.data_dir / 'state.db'}")
    console.print(f"  bills:        {summary.documents_dir} ({summary.documents} documents)")
    console.print("serve the customer portal:  amr portal serve")
    console.print(f"then open a customer's page: amr portal login-link {summary.first_customer}")
