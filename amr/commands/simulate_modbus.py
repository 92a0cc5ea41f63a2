"""`amr simulate modbus`: a fleet of simulated Modbus meters on loopback or a pseudo-terminal."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from amr.context import console, handle_errors
from protocols.modbus.simulator import ModbusFleetSimulator, Transport, run_fleet

_SHOWN = 10


def _show(fleet: ModbusFleetSimulator, fleet_file: Path) -> None:
    table = Table(title=f"{len(fleet.meters)} simulated {fleet.register_map.name} meter(s)")
    for column in ("meter_id", "customer_code", "tariff_class", "url"):
        table.add_column(column)
    for meter in fleet.meters[:_SHOWN]:
        table.add_row(meter.meter_id, meter.customer_code, meter.tariff_class, meter.url)
    if len(fleet.meters) > _SHOWN:
        table.add_row("...", "", "", f"{len(fleet.meters) - _SHOWN} more in {fleet_file}")
    console.print(table)
    if fleet.device_path:
        console.print(f"serial line (RTU, 9600 baud): [bold]{fleet.device_path}[/]")
    console.print(f"fleet file: {fleet_file}  (Ctrl-C stops)")


@handle_errors
def modbus(
    port: Annotated[int, typer.Option(help="First TCP port; meter N on port + N - 1 (0: any).")] = 5020,
    map_name: Annotated[str, typer.Option("--map", help="Register map served (amr meters maps).")] = (
        "eastron-sdm630"),
    meters: Annotated[int, typer.Option(min=1, help="How many meters.")] = 1,
    fault: Annotated[list[str] | None, typer.Option(
        help="KIND[:ARG][@SHARE][%RATE]: exception[:CODE], no-answer, crc, wrap[:KWH]; repeatable.")] = None,
    seed: Annotated[int, typer.Option(help="Meter ids, customers, loads and faults follow from it.")] = 1,
    fleet_file: Annotated[Path, typer.Option(help="Where to write the fleet file (registry import).")] = Path(
        "fleet.csv"),
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    serial: Annotated[bool, typer.Option("--serial", help="One RTU line on a pseudo-terminal pair.")] = False,
    gateway: Annotated[bool, typer.Option("--gateway", help="One RTU-over-TCP gateway on PORT.")] = False,
) -> None:
    """Run simulated Modbus meters until interrupted, serving a register map from household loads.

    Example: amr simulate modbus --port 5020 --map eastron-sdm630 --meters 10 --fault no-answer@0.1
    """
    transport: Transport = "serial" if serial else "rtu+tcp" if gateway else "tcp"
    simulator = ModbusFleetSimulator(meters=meters, map_name=map_name, seed=seed, host=host, base_port=port,
                                     faults=fault or [], transport=transport)
    run_fleet(simulator, fleet_file=fleet_file, on_ready=lambda fleet: _show(fleet, fleet_file))
