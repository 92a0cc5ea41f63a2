"""`amr simulate modbus`: a fleet of simulated Modbus meters on loopback or a pseudo-terminal."""

from __future__ import annotations

from pathlib import Path

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
    port: int = typer.Option(5020, help="First TCP port; meter N listens on port + N - 1 (0: any free)."),
    map_name: str = typer.Option("eastron-sdm630", "--map", help="Register map served (amr meters maps)."),
    meters: int = typer.Option(1, min=1, help="How many meters."),
    fault: list[str] = typer.Option(  # noqa: B008 - typer reads the default from here
        [], help="KIND[:ARG][@SHARE][%RATE]: exception[:CODE], no-answer, crc, wrap[:KWH]; repeatable."),
    seed: int = typer.Option(1, help="Meter ids, customers, loads and faults follow from the seed."),
    fleet_file: Path = typer.Option(  # noqa: B008
        Path("fleet.csv"), help="Where to write the fleet file (registry import)."),
    host: str = typer.Option("127.0.0.1", help="Address to listen on."),
    serial: bool = typer.Option(False, "--serial", help="One RTU line on a pseudo-terminal instead of TCP."),
    gateway: bool = typer.Option(False, "--gateway", help="One RTU-over-TCP gateway on PORT."),
) -> None:
    """Run simulated Modbus meters until interrupted, serving a register map from household loads.

    Example: amr simulate modbus --port 5020 --map eastron-sdm630 --meters 10 --fault no-answer@0.1
    """
    transport: Transport = "serial" if serial else "rtu+tcp" if gateway else "tcp"
    simulator = ModbusFleetSimulator(meters=meters, map_name=map_name, seed=seed, host=host, base_port=port,
                                     faults=fault, transport=transport)
    run_fleet(simulator, fleet_file=fleet_file, on_ready=lambda fleet: _show(fleet, fleet_file))
