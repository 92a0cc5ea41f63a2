"""`amr read`: read one meter once, on demand, and print what it said."""

from __future__ import annotations

import asyncio
import datetime as dt

import typer
from rich.table import Table

from amr.context import console, handle_errors, print_json, settings, state
from core.meter_url import MeterUrl
from protocols.reader import read_meter


def _utc(text: str | None, option: str) -> dt.datetime | None:
    if text is None:
        return None
    try:
        when = dt.datetime.fromisoformat(text)
    except ValueError:
        raise typer.BadParameter(f"{text!r} is not an ISO date-time", param_hint=option) from None
    if when.tzinfo is None:
        raise typer.BadParameter(f"{text!r} has no offset; write Z or +07:00", param_hint=option)
    return when.astimezone(dt.UTC)


@handle_errors
def read(
    url: str = typer.Argument(..., help="Meter address, e.g. modbus+tcp://127.0.0.1:5020?unit=1&map=eastron-sdm630"),
    quantity: list[str] = typer.Option([], "--quantity", "-q", help="OBIS code to read; repeat for more."),
    profile: str | None = typer.Option(None, help="Load profile OBIS code, e.g. 1.0.99.1.0.255 (DLMS)."),
    start: str | None = typer.Option(None, "--from", help="Profile range start, ISO with offset."),
    end: str | None = typer.Option(None, "--to", help="Profile range end, ISO with offset."),
    clock: bool = typer.Option(False, "--clock", help="Read the meter's clock (DLMS)."),
    meter_id: str = typer.Option("cli", help="Meter id to put on the readings."),
    timeout: float = typer.Option(10.0, help="Seconds to wait for each answer."),
    as_json: bool = typer.Option(False, "--json", help="Print a JSON array of readings."),
) -> None:
    """Read a meter once and print its readings.

    Example: amr read "modbus+tcp://127.0.0.1:5020?unit=1&map=eastron-sdm630" --quantity 1.0.1.8.0.255 --json

    Example: amr read "dlms+tcp://127.0.0.1:4059?client=16&server=1" --profile 1.0.99.1.0.255
    --from 2026-11-01T00:00+07:00 --to 2026-11-02T00:00+07:00 --json
    """
    meter_url = MeterUrl.parse(url)
    secrets = None
    counters = None
    if "key" in meter_url.params:
        from headend.dlms_session import counter_store, secrets_for
        from headend.keystore import KeyStore
        from headend.registry import Meter

        # a meter read by hand is not in the registry; it only needs an id and its address
        unregistered = Meter(
            meter_id=meter_id, meter_key=0, url=meter_url, protocol=meter_url.protocol, bucket=0
        )
        secrets = secrets_for(unregistered, KeyStore(settings().headend.key_file))
        # ciphered requests must never reuse an invocation counter, across processes too
        counters = counter_store(state())
    readings = asyncio.run(
        read_meter(
            meter_url, meter_id, quantities=quantity or None, profile=profile,
            start=_utc(start, "--from"), end=_utc(end, "--to"), clock_only=clock,
            secrets=secrets, timeout=timeout, source="amr-read", counters=counters,
        )
    )
    if as_json:
        print_json([r.to_json() for r in readings])
        return
    table = Table("quantity", "ts (UTC)", "value", "unit", "status")
    for r in readings:
        row = r.to_json()
        table.add_row(r.quantity, row["ts"], row["value"], r.unit, f"0x{r.status:02x}")
    console.print(table)
