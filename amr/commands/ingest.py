"""`amr ingest`: take landed batches through VEE, import readings from elsewhere, the log, rollups."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.table import Table

from amr.context import console, data_dir, handle_errors, print_json, settings, state
from core.executor import open_executor
from ingest.accounting import IngestReport
from ingest.importer import import_readings
from ingest.quality import ingest_log, rollup
from ingest.run import run_ingest

app = typer.Typer(no_args_is_help=True, help="Validation, estimation, storage and aggregation (VEE).")


def _print_report(report: IngestReport, as_json: bool) -> None:
    if as_json:
        print_json(report.to_json())
        return
    table = Table(title=f"ingest run {report.run_id}")
    table.add_column("measure")
    table.add_column("count", justify="right")
    for name in ("batches", "readings_in", "stored", "duplicates", "quarantined", "estimates",
                 "partitions", "days_aggregated"):
        table.add_row(name, str(getattr(report, name)))
    for reason, count in report.quarantined_by_reason.items():
        table.add_row(f"  quarantined: {reason}", str(count))
    for method, count in report.estimates_by_method.items():
        table.add_row(f"  estimated: {method}", str(count))
    console.print(table)


@app.command("run")
@handle_errors
def run(
    as_json: bool = typer.Option(False, "--json", help="Print the report as JSON."),
    cluster: str | None = typer.Option(
        None, envvar="AMR_CLUSTER", help="Dask scheduler (tcp://host:8786) to run partitions on."
    ),
    workers: int = typer.Option(1, min=1, help="Local processes when no cluster is given."),
) -> None:
    """Take every new landing batch through validation, estimation, storage and aggregation.

    Taking a batch twice changes nothing; a killed run can simply be run again. With a
    cluster, each group of buckets is a task; the coordinator commits every table.

    Example: amr ingest run --json

    Example: amr ingest run --cluster tcp://10.0.0.5:8786
    """
    with open_executor(cluster, workers=workers) as executor:
        _print_report(run_ingest(data_dir(), state(), settings=settings(), executor=executor), as_json)


@app.command("import")
@handle_errors
def import_(
    path: Path = typer.Argument(..., help="Readings file (.parquet or .csv) in the Reading schema."),  # noqa: B008
    fleet: Path | None = typer.Option(None, help="Fleet file for meters not yet registered."),  # noqa: B008
    as_json: bool = typer.Option(False, "--json", help="Print the report as JSON."),
    gappy: bool = typer.Option(
        False,
        "--gappy",
        help="The meters record every `interval_minutes` but the file lacks many readings: take it "
        "although its interval readings are most often further apart (the missing ones are gaps).",
    ),
) -> None:
    """Import readings produced by another system through the same VEE as landed batches.

    A file that does not match the schema is refused, naming the column and the reason; so
    is one whose interval readings keep another capture period than ingest judges
    (`interval_minutes` under [ingest.rules], 15 by default).

    Example: amr ingest import readings.csv --fleet fleet.csv
    """
    report = import_readings(data_dir(), state(), path, settings=settings(), fleet=fleet, gappy=gappy)
    _print_report(report, as_json)


@app.command("log")
@handle_errors
def log(
    limit: int = typer.Option(20, help="How many batches, newest first."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """Show the ingest log: for every batch, readings in = stored + duplicates + quarantined.

    Example: amr ingest log --limit 5
    """
    entries = ingest_log(state(), limit=limit)
    if as_json:
        print_json(entries)
        return
    table = Table(title="ingest log")
    for column in ("batch", "rows_in", "stored", "duplicates", "quarantined", "reasons", "logged_at"):
        table.add_column(column)
    for e in entries:
        reasons = ", ".join(f"{k} {v}" for k, v in e["reasons"].items())
        table.add_row(str(e["batch"]), str(e["rows_in"]), str(e["stored"]), str(e["duplicates"]),
                      str(e["quarantined"]), reasons, e["logged_at"])
    console.print(table)


@app.command("rollup")
@handle_errors
def rollup_(
    month: str = typer.Option(..., help="Local month, YYYY-MM."),
    by: str = typer.Option("route", help="route or district."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """A month's energy (Wh) by route or by district, with its time-of-use split.

    Example: amr ingest rollup --month 2026-11 --by district
    """
    frame = rollup(data_dir(), state(), month=month, by=by)
    if as_json:
        print_json(frame.to_dicts())
        return
    table = Table(title=f"energy by {by}, {month} (Wh)")
    for column in frame.columns:
        table.add_column(column, justify="right" if column != by else "left")
    for row in frame.iter_rows():
        table.add_row(*map(str, row))
    console.print(table)
