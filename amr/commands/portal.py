"""`amr portal`: the portal API server, publishing bills, the outbox, clients and links."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from amr.context import console, handle_errors, print_json, settings, state

app = typer.Typer(no_args_is_help=True,
                  help="The portal API, bill publishing and the customer page.\n\nExample: amr portal serve")
clients_app = typer.Typer(
    no_args_is_help=True,
    help="Integrator clients of the portal API.\n\nExample: amr portal clients add hanoi-portal",
)
app.add_typer(clients_app, name="clients")

JsonOption = Annotated[bool, typer.Option("--json", help="machine-readable output")]


@app.command()
@handle_errors
def serve(
    host: Annotated[str | None, typer.Option(help="address to listen on (default portal.host)")] = None,
    port: Annotated[int | None, typer.Option(help="port (default portal.port)")] = None,
    workers: Annotated[int, typer.Option(min=1, max=64, help="server processes")] = 1,
    access_log: Annotated[bool, typer.Option(help="log every request")] = False,
) -> None:
    """Serve the portal API and the customer page until interrupted.

    Example: amr portal serve --port 8080 --workers 2
    """
    from portal_api.serve import serve as run

    config = settings()
    config.portal.host = host or config.portal.host
    config.portal.port = port or config.portal.port
    console.print(f"portal API on http://{config.portal.host}:{config.portal.port} (docs at /docs)")
    run(config, workers=workers, access_log=access_log)


@app.command()
@handle_errors
def publish(
    period: Annotated[str | None, typer.Option(help="only bills of this period, YYYY-MM")] = None,
    deadline: Annotated[float, typer.Option(min=0, help="seconds to keep retrying in this run")] = 30.0,
    as_json: JsonOption = False,
) -> None:
    """Send issued bills not yet acknowledged to the portal's intake (retried with backoff).

    Example: amr portal publish --period 2026-10
    """
    from portal_api.publisher import describe, publish_pending

    config = settings()
    report = publish_pending(state(), config.data_dir, settings=config, period=period, deadline_s=deadline)
    if as_json:
        print_json(describe(report))
        return
    console.print(f"enqueued {report.enqueued}, acknowledged {report.acknowledged}, failed {report.failed}, "
                  f"to retry {report.retried} ({report.attempts} attempts)")
    console.print("outbox: " + ", ".join(f"{k} {v}" for k, v in report.outbox.items()))
    for line in report.last_errors:
        console.print(f"  [yellow]{line}[/]", highlight=False)


@app.command()
@handle_errors
def status(
    period: Annotated[str | None, typer.Option(help="only this period, YYYY-MM")] = None,
    only: Annotated[
        list[str] | None, typer.Option("--state", help="pending, sent, acknowledged, failed")
    ] = None,
    limit: Annotated[int, typer.Option(min=1, max=10_000, help="entries to list")] = 20,
    as_json: JsonOption = False,
) -> None:
    """Show the outbox: counts by state and the latest entries.

    Example: amr portal status --state failed --state pending
    """
    from portal_api.outbox import status as outbox_status

    totals, rows = outbox_status(state(), period=period, states=only, limit=limit)
    if as_json:
        print_json({"counts": totals, "entries": [vars(r) for r in rows]})
        return
    console.print("outbox: " + ", ".join(f"{k} {v}" for k, v in totals.items()))
    table = Table("bill", "version", "customer", "period", "state", "attempts", "next attempt", "last error")
    for r in rows:
        table.add_row(r.bill_id, str(r.version), r.customer_code, r.period, r.state, str(r.attempts),
                      r.next_attempt_at or "", (r.last_error or "")[:60])
    console.print(table)


@clients_app.command("add")
@handle_errors
def clients_add(
    name: Annotated[str, typer.Argument(help="who the client is, e.g. hanoi-public-service-portal")],
    rate: Annotated[int, typer.Option(min=1, help="requests a second allowed")] = 50,
    as_json: JsonOption = False,
) -> None:
    """Register an integrator and print its client id and secret (shown this once only).

    Example: amr portal clients add hanoi-portal --rate 200
    """
    from portal_api.clients import add_client

    client = add_client(state(), name, rate_per_s=rate)
    if as_json:
        print_json({"client_id": client.client_id, "client_secret": client.client_secret})
        return
    console.print(f"client_id:     {client.client_id}")
    console.print(f"client_secret: {client.client_secret}")
    console.print("[yellow]store the secret now: only its hash is kept[/]")


@clients_app.command("list")
@handle_errors
def clients_list(as_json: JsonOption = False) -> None:
    """List integrator clients (never their secrets).

    Example: amr portal clients list
    """
    from portal_api.clients import list_clients

    found = list_clients(state())
    if as_json:
        print_json([vars(c) for c in found])
        return
    table = Table("client id", "name", "rate/s", "disabled")
    for c in found:
        table.add_row(c.client_id, c.name, str(c.rate_per_s), "yes" if c.disabled else "")
    console.print(table)


@app.command("login-link")
@handle_errors
def login_link(
    code: Annotated[str, typer.Argument(help="customer code, e.g. PD01000000001")],
    minutes: Annotated[int, typer.Option(min=1, max=1440, help="how long the link works")] = 15,
) -> None:
    """Print a signed link to the customer page, as the city portal would hand a signed-in customer.

    Example: amr portal login-link PD01000000001 --minutes 60
    """
    from portal_api.auth import customer_link

    config = settings()
    key = config.portal.signing_key.get_secret_value().encode("utf-8")
    typer.echo(customer_link(key, config.portal.public_url, code, ttl_s=minutes * 60))


@app.command()
@handle_errors
def snapshot(as_json: JsonOption = False) -> None:
    """Build the serving files for the published daily and bills snapshots now (the server also
    follows them by itself).

    Example: amr portal snapshot
    """
    from portal_api.serving import ServingSnapshot

    report = ServingSnapshot(settings().data_dir).refresh()
    if as_json:
        print_json(vars(report))
        return
    console.print(f"built {report.built}, reused {report.reused} partition file(s) "
                  f"in {report.seconds:.1f} s; manifest versions {report.tables}")


@app.command()
@handle_errors
def openapi(
    output: Annotated[Path, typer.Option(help="where to write the description")] = Path("docs/openapi.json"),
) -> None:
    """Write the API's OpenAPI description (kept in the repository as docs/openapi.json).

    Example: amr portal openapi --output docs/openapi.json
    """
    from portal_api.openapi import write_openapi

    console.print(f"wrote {write_openapi(output)}")


@app.command()
@handle_errors
def standin(
    port: Annotated[int, typer.Option(help="port on 127.0.0.1 (0 picks a free one)")] = 8090,
    client_id: Annotated[str, typer.Option(help="the one client it accepts")] = "amr-publisher",
    client_secret: Annotated[str | None, typer.Option(envvar="AMR_STANDIN_SECRET",
                                                      help="its secret (default: a new random one)")] = None,
) -> None:
    """Run the stand-in for the city portal's intake on loopback until interrupted.

    Example: amr portal standin --port 8090 --client-secret demo-secret
    """
    import secrets

    from portal_api.standin import run_intake_standin

    secret = client_secret or secrets.token_urlsafe(16)
    with run_intake_standin(port, client_id=client_id, client_secret=secret) as intake:
        console.print(f"intake_url = {intake.url}\ntoken_url  = {intake.token_url}\nclient_id  = {client_id}")
        if client_secret is None:
            console.print(f"client_secret = {secret}  (generated for this run)")
        console.print("press Ctrl-C to stop")
        try:
            threading.Event().wait()
        except KeyboardInterrupt:
            console.print(f"received {len(intake.received)} bill(s), {intake.duplicates} duplicate(s)")
