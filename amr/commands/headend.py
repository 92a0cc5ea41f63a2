"""`amr headend`: on-demand polls, the scheduler daemon, its jobs, status and metrics."""

from __future__ import annotations

import datetime as dt
import shlex
import sys

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from amr.context import console, data_dir, fail, handle_errors, print_json, settings, state
from core.clock import SystemClock
from core.executor import open_executor
from headend.daemon import Daemon, DaemonOptions, list_jobs
from headend.ledger import runs as ledger_runs
from headend.loop import run as run_loop
from headend.metrics import render
from headend.ondemand import poll_now
from headend.poll import PollOptions
from headend.status import status as headend_status

app = typer.Typer(no_args_is_help=True, help="Poll meters, run the scheduler, see what fails and why.")


def _instant(text: str, option: str) -> dt.datetime:
    try:
        when = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise fail(
            f"{option} {text!r} is not an ISO date-time", hint="write it like 2026-03-01T00:00Z"
        ) from None
    if when.tzinfo is None:
        raise fail(f"{option} {text!r} has no time zone", hint="add Z (UTC) or +07:00")
    return when.astimezone(dt.UTC)


@app.command("poll")
@handle_errors
def poll(
    meter: list[str] = typer.Option([], "--meter", help="Meter id; repeatable."),  # noqa: B008
    route: str | None = typer.Option(None, "--route", help="Every active meter on this route."),
    all_meters: bool = typer.Option(False, "--all", help="Every active meter."),
    since: str | None = typer.Option(None, help="Read profiles from this instant instead of the watermarks."),
    as_json: bool = typer.Option(False, "--json", help="Print the round's report as JSON."),
) -> None:
    """Read meters now, ahead of scheduled work, and land what they hold.

    Example: amr headend poll --route R01 --since 2026-03-01T00:00+07:00
    """
    start = _instant(since, "--since") if since else None
    with Progress(TextColumn("polling"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                  console=console, transient=True, disable=as_json) as bar:
        task = bar.add_task("poll", total=None)
        report = poll_now(
            state(), data_dir(), settings=settings().headend, meter_ids=meter, route=route,
            all_meters=all_meters, since=start,
            progress=lambda done, total: bar.update(task, completed=done, total=total),
        )
    if as_json:
        print_json(report.to_json())
        return
    console.print(f"round {report.round_id}: {report.ok} ok, {report.failed} failed, "
                  f"{report.skipped} skipped (breaker), {report.readings} reading(s) "
                  f"in {len(report.batches)} batch(es)")
    if report.failures:
        table = Table(title="failed meters")
        table.add_column("meter_id")
        table.add_column("error class")
        for meter_id, error_class in sorted(report.failures.items()):
            table.add_row(meter_id, error_class)
        console.print(table)


def _command(text: str | None) -> tuple[str, ...]:
    """A child command line; a leading `amr` runs this interpreter's amr, whatever PATH says."""
    words = tuple(shlex.split(text)) if text else ()
    if words and words[0] == "amr":
        return (sys.executable, "-m", "amr", *words[1:])
    return words


@app.command("run")
@handle_errors
def run(
    metrics_port: int | None = typer.Option(None, help="Serve Prometheus metrics on this port."),
    after_round: str | None = typer.Option(
        "amr ingest run", help="Command run as a child process after each round ('' for none)."
    ),
    month_end: str | None = typer.Option(None, help="Command run as a child process at each month's end."),
    standby: bool = typer.Option(
        True, "--standby/--no-standby",
        help="When another scheduler holds the lock, wait and take over when it dies (else exit).",
    ),
    standby_retry: float | None = typer.Option(
        None, min=0.1, help="Seconds between a standby's tries of the lock (default headend.standby_retry_s)."
    ),
    cluster: str | None = typer.Option(
        None, envvar="AMR_CLUSTER", help="Dask scheduler (tcp://host:8786) whose workers poll the shards."
    ),
) -> None:
    """Run the head-end daemon: scheduled rounds by bucket, intra-day reads, month-end run.

    SIGTERM or SIGINT stops it cleanly: sessions finish or abort, reads are landed, exit 0.
    A second daemon stands by and takes over when the active one dies. With --cluster (or
    AMR_CLUSTER) the scheduler stays here and each round's shards are polled on the workers.

    Example: amr headend run --metrics-port 9108 --after-round "amr ingest run"
    """
    config = settings()
    options = DaemonOptions(
        after_round=_command(after_round),
        month_end=_command(month_end),
        metrics_port=metrics_port,
        poll=PollOptions.from_settings(config.headend, kind="scheduled"),
        standby=standby,
        standby_retry=dt.timedelta(
            seconds=standby_retry if standby_retry is not None else config.headend.standby_retry_s
        ),
        lock_ttl=dt.timedelta(seconds=config.headend.lock_ttl_s),
    )
    executor = open_executor(cluster) if cluster else None
    try:
        daemon = Daemon(state(), data_dir(), config, options=options, executor=executor)
        where = f"; rounds on {executor.description}" if executor is not None else ""
        console.print(f"head-end running{where}; Ctrl-C or SIGTERM stops it (a standby waits for the lock)")
        code = run_loop(daemon.run(), config.headend.event_loop)
    finally:
        if executor is not None:
            executor.close()
    raise typer.Exit(code)


@app.command("jobs")
@handle_errors
def jobs(as_json: bool = typer.Option(False, "--json", help="Print JSON.")) -> None:
    """List the scheduled jobs and their next runs.

    Example: amr headend jobs
    """
    found = list_jobs(state())
    if as_json:
        print_json([j.to_json() for j in found])
        return
    if not found:
        console.print("no jobs yet: `amr headend run` installs the schedule")
        return
    table = Table(title="head-end jobs")
    for column in ("id", "name", "trigger", "next run (UTC)"):
        table.add_column(column)
    for j in found:
        table.add_row(j.job_id, j.name, j.trigger, j.next_run.isoformat() if j.next_run else "paused")
    console.print(table)


@app.command("runs")
@handle_errors
def runs(
    job: str | None = typer.Option(None, help="Only this job (e.g. intraday, daily-bucket-0003)."),
    limit: int = typer.Option(50, min=1, help="The latest this many runs."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """The scheduler's ledger: each scheduled run by job and time, done or unfinished, and who ran it.

    Example: amr headend runs --job intraday --limit 20
    """
    found = ledger_runs(state(), job)[-limit:]
    if as_json:
        print_json([{"job_id": k.job_id, "scheduled_at": k.scheduled_at.isoformat(), "state": s, "runs": n,
                     "holder": h} for k, s, n, h in found])
        return
    table = Table(title="scheduled runs")
    for column in ("job", "scheduled (UTC)", "state", "runs", "holder"):
        table.add_column(column)
    for key, run_state, count, holder in found:
        table.add_row(key.job_id, key.scheduled_at.isoformat(), run_state, str(count), holder)
    console.print(table)


@app.command("status")
@handle_errors
def status(
    route: str | None = typer.Option(None, help="Only this route."),
    hours: int = typer.Option(24, min=1, help="Look back this many hours."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """Success rates by route and protocol, and the failing meters with their reasons.

    Example: amr headend status --route R01 --hours 48
    """
    since = SystemClock().now() - dt.timedelta(hours=hours)
    found = headend_status(state(), since=since, route=route)
    if as_json:
        print_json(found.to_json())
        return
    rates = Table(title=f"success since {since:%Y-%m-%d %H:%M} UTC")
    for column in ("route", "protocol", "meters", "ok", "rate", "attempts"):
        rates.add_column(column)
    for r in found.rates:
        rates.add_row(r.route or "-", r.protocol, str(r.meters), str(r.meters_ok), f"{r.success_rate:.1%}",
                      str(r.attempts))
    console.print(rates)
    failing = Table(title=f"{len(found.failing)} failing meter(s)")
    for column in ("meter_id", "route", "failures", "class", "reason", "breaker until"):
        failing.add_column(column)
    for f in found.failing[:50]:
        failing.add_row(f.meter_id, f.route or "", str(f.failures), f.error_class or "", (f.error or "")[:60],
                        f.breaker_open_until.isoformat() if f.breaker_open_until else "")
    console.print(failing)


@app.command("metrics")
@handle_errors
def metrics() -> None:
    """Print the head-end's metrics in the Prometheus text format (as the daemon serves them).

    Example: amr headend metrics > /var/lib/node_exporter/amr_headend.prom
    """
    sys.stdout.write(render(state(), now=SystemClock().now()))
