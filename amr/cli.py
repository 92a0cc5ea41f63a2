"""The `amr` command line: one typer app, each command group a thin layer over one room."""

from __future__ import annotations

import logging
from pathlib import Path

import typer

from amr.commands import (
    bill,
    cluster,
    customers,
    demo,
    headend,
    ingest,
    meters,
    portal,
    quality,
    read,
    simulate_dlms,
    simulate_modbus,
    store,
)
from amr.context import set_global_options

app = typer.Typer(
    name="amr",
    help="Head-end and billing pipeline for remote smart-meter reading.\n\n"
    "Example: amr demo",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)


@app.callback()
def _global(
    ctx: typer.Context,
    data_dir: Path | None = typer.Option(
        None, "--data-dir", envvar="AMR_DATA_DIR", help="Data directory (default ./amr-data)."
    ),
    cluster: str | None = typer.Option(
        None,
        "--cluster",
        help="Dask scheduler (tcp://host:8786) that runs the work of polling rounds, ingest and "
        "bill runs; default AMR_CLUSTER, else this machine.",
    ),
) -> None:
    """Options that apply to every command."""
    ctx.call_on_close(set_global_options(data_dir, cluster))


simulate_app = typer.Typer(
    help="Run simulated meters on loopback.\n\nExample: amr simulate modbus --meters 10",
    no_args_is_help=True,
)
simulate_app.command("modbus")(simulate_modbus.modbus)
simulate_app.command("dlms")(simulate_dlms.dlms)

app.command("demo")(demo.demo)
app.command("read")(read.read)
app.add_typer(meters.app, name="meters", help="The meter registry.\n\nExample: amr meters list")
app.add_typer(simulate_app, name="simulate")
app.add_typer(headend.app, name="headend", help="Reading meters.\n\nExample: amr headend poll --all")
app.add_typer(ingest.app, name="ingest", help="Validation, estimation, storage.\n\nExample: amr ingest run")
app.add_typer(quality.app, name="quality", help="Data quality review.\n\nExample: amr quality report")
app.add_typer(bill.app, name="bill", help="Bill runs and quotes.\n\nExample: amr bill quote --kwh 300")
app.add_typer(customers.app, name="customers", help="Customers and contracts.\n\nExample: amr customers list")
app.add_typer(portal.app, name="portal", help="The customer portal.\n\nExample: amr portal serve")
app.add_typer(cluster.app, name="cluster", help="Dask cluster for scale-out.\n\nExample: amr cluster up")
app.add_typer(store.app, name="store", help="Measurement store upkeep.\n\nExample: amr store info")


def main() -> None:
    # pymodbus logs connection failures itself; the command's own error message says it better
    logging.getLogger("pymodbus").setLevel(logging.CRITICAL)
    app()
