"""`amr simulate dlms`: serve simulated DLMS/COSEM meters on loopback TCP or a pseudo-terminal."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from amr.context import console, handle_errors
from protocols.dlms.simulator.faults import KNOWN as KNOWN_FAULTS
from protocols.dlms.simulator.fleet import DlmsFleetSimulator
from protocols.dlms.simulator.serve import run_fleet

app = typer.Typer(no_args_is_help=True, help="Simulated meters.")

FAULT_HELP = "fault to switch on, repeatable: " + "; ".join(f"{k} ({v})" for k, v in KNOWN_FAULTS.items())


def _announce(fleet: DlmsFleetSimulator) -> None:
    table = Table(title=f"{len(fleet.meters)} simulated DLMS meter(s), {fleet.framing}, auth={fleet.auth}")
    for column in ("meter", "customer", "url"):
        table.add_column(column)
    for meter in fleet.meters[:20]:
        table.add_row(meter.meter_id, meter.customer_code, meter.url)
    if len(fleet.meters) > 20:
        table.add_row("...", "", f"{len(fleet.meters) - 20} more in the fleet file")
    console.print(table)
    console.print("Serving; press Ctrl-C to stop.")


@handle_errors
def dlms(
    port: Annotated[
        int, typer.Option(help="TCP port of the first meter; meter i listens on port + i")
    ] = 4059,
    meters: Annotated[int, typer.Option(min=1, help="how many meters")] = 1,
    framing: Annotated[str, typer.Option(help="wrapper (IEC 62056-47) or hdlc")] = "wrapper",
    fault: Annotated[list[str] | None, typer.Option(help=FAULT_HELP)] = None,
    seed: Annotated[int, typer.Option(help="seed of the household load profiles")] = 1,
    fleet_file: Annotated[
        Path, typer.Option(help="where to write the fleet file for `amr meters import`")
    ] = Path("dlms-fleet.csv"),
    auth: Annotated[str, typer.Option(help="none, lls or hls-gmac")] = "none",
    keys_file: Annotated[
        Path | None, typer.Option(help="write the meters' test keys here (TOML, mode 0600) for the head-end")
    ] = None,
    pty: Annotated[bool, typer.Option(help="HDLC on pseudo-terminals instead of TCP")] = False,
    host: Annotated[str, typer.Option(help="address to listen on")] = "127.0.0.1",
) -> None:
    """Serve simulated DLMS/COSEM meters (household load profiles, clock, registers, events) until Ctrl-C.

    Example: amr simulate dlms --port 4059 --meters 3 --framing hdlc --auth lls --keys-file keys.toml
    """
    run_fleet(
        meters=meters,
        framing="hdlc" if pty else framing,
        port=port,
        host=host,
        seed=seed,
        faults=list(fault or []),
        auth=auth,
        pty=pty,
        fleet_file=fleet_file,
        keys_file=keys_file,
        ready=_announce,
    )


def _group() -> None:
    """Simulated meters (a group even with one command, so `dlms` stays a subcommand)."""


app.callback()(_group)
app.command("dlms")(dlms)
