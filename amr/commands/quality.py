"""`amr quality`: the data-quality report, a meter's readings with flags, the review queue."""

from __future__ import annotations

import datetime as dt

import typer
from rich.table import Table

from amr.context import console, data_dir, handle_errors, print_json, settings, state
from core.reading import format_decimal
from ingest.quality import audit_trail, day_review_queue, decide, decide_day, report, review_queue, show

app = typer.Typer(no_args_is_help=True, help="Data quality: report by rule, show a meter, review queue.")


def _date(text: str | None) -> dt.date | None:
    if text is None:
        return None
    try:
        return dt.date.fromisoformat(text)
    except ValueError:
        raise typer.BadParameter(f"{text!r} is not a date like 2026-11-10") from None


@app.command("report")
@handle_errors
def report_(
    date: str | None = typer.Option(None, help="Local day, YYYY-MM-DD (default: all)."),
    route: str | None = typer.Option(None, help="Only meters of this route."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """Summarise readings by state, quarantine by reason, flags and day findings by rule.

    Example: amr quality report --date 2026-11-10 --route R01
    """
    result = report(data_dir(), state(), date=_date(date), route=route)
    if as_json:
        print_json(result.to_json())
        return
    table = Table(title=f"quality {date or 'all days'}{' route ' + route if route else ''}")
    table.add_column("group")
    table.add_column("rule")
    table.add_column("count", justify="right")
    for group, counts in (("state", result.by_state), ("quarantined", result.quarantined),
                          ("flagged", result.flagged), ("day finding", result.findings),
                          ("estimated", result.estimates)):
        for rule, count in counts.items():
            table.add_row(group, rule, str(count))
    console.print(table)


@app.command("show")
@handle_errors
def show_(
    meter: str = typer.Argument(..., help="Meter id."),
    date: str | None = typer.Option(None, help="Local day, YYYY-MM-DD (default: the latest)."),
    audit: bool = typer.Option(False, help="Also show the meter's audit trail."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """Show a meter's readings of a day with their state, reason, flags and estimation method.

    Example: amr quality show M000123 --date 2026-11-10
    """
    frame = show(data_dir(), state(), meter, settings=settings(), date=_date(date))
    trail = audit_trail(state(), meter) if audit else []
    if as_json:
        print_json({"readings": frame.to_dicts(), "audit": trail})
        return
    table = Table(title=f"{meter}: {frame.height} reading(s)")
    for column in ("quantity", "ts", "value", "unit", "state", "reason", "flags", "method"):
        table.add_column(column)
    for r in frame.iter_rows(named=True):
        table.add_row(r["quantity"], r["ts"].isoformat(), format_decimal(r["value"], r["scale"]), r["unit"],
                      r["state"], r["reason"] or "", r["flags"] or "", r["method"] or "")
    console.print(table)
    for entry in trail:
        console.print(f"{entry['at']} {entry['actor']}: {entry['quantity']} {entry['ts']} "
                      f"{entry['rule']}: {entry['before']} -> {entry['after']}", highlight=False)


@app.command("review")
@handle_errors
def review(
    date: str | None = typer.Option(None, help="Local day, YYYY-MM-DD (default: all)."),
    limit: int = typer.Option(50, help="How many, oldest first."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """The review queue: quarantined and suspect readings, and day findings (sum check, zero
    runs, high or low usage, gaps) of whole meter-days, waiting for a decision.

    Decide a reading with `amr quality decide`, a day with `amr quality decide-day`.

    Example: amr quality review --date 2026-11-10 --limit 20
    """
    frame = review_queue(data_dir(), state(), date=_date(date), limit=limit)
    days = day_review_queue(data_dir(), state(), date=_date(date), limit=limit)
    if as_json:
        print_json({"readings": frame.to_dicts(), "days": days.to_dicts()})
        return
    table = Table(title=f"review queue: {frame.height} shown")
    for column in ("meter_id", "quantity", "ts", "value", "unit", "state", "reason", "flags"):
        table.add_column(column)
    for r in frame.iter_rows(named=True):
        value = format_decimal(r["value"], r["scale"])
        table.add_row(r["meter_id"], r["quantity"], r["ts"].isoformat(), value,
                      r["unit"], r["state"], r["reason"] or "", r["flags"] or "")
    console.print(table)
    found = Table(title=f"day findings: {days.height} shown")
    for column in ("meter_id", "date", "rule", "value", "limit"):
        found.add_column(column)
    for r in days.iter_rows(named=True):
        found.add_row(r["meter_id"], r["date"].isoformat(), r["rule"], str(r["value"]), str(r["limit"]))
    console.print(found)


@app.command("decide-day")
@handle_errors
def decide_day_(
    meter: str = typer.Argument(..., help="Meter id."),
    date: str = typer.Option(..., help="The local day, YYYY-MM-DD (as the queue shows it)."),
    rule: str = typer.Option(..., help="The day finding: sum_check, zero_run, high_usage, low_usage or gap."),
    action: str = typer.Option(..., help="accept (right as measured), reject (estimate it again) or edit."),
    reason: str = typer.Option(..., help="Why; kept in the audit trail."),
    by: str = typer.Option(..., help="Who decides; kept in the audit trail."),
    energy_wh: str | None = typer.Option(None, help="For edit: the day's energy in Wh (decimal)."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """Accept, reject or edit a day finding of a meter; audited and the day re-aggregated.

    Reject discards the day's measured intervals and estimates the day again; edit does the
    same with the estimates scaled to the day's energy you give.

    Example: amr quality decide-day M000123 --date 2026-11-10 --rule high_usage --action accept --reason "guests" --by lan
    """  # noqa: E501
    day = _date(date)
    assert day is not None
    done = decide_day(data_dir(), state(), settings=settings(), meter_id=meter, date=day, rule=rule,
                      action=action, reason=reason, by=by, energy_wh=energy_wh)
    if as_json:
        print_json({"meter_id": done.meter_id, "date": done.date.isoformat(), "rule": done.rule,
                    "action": done.action, "before": done.before, "after": done.after,
                    "days_reaggregated": done.reaggregated.days_aggregated})
        return
    console.print(f"{done.meter_id} {done.date.isoformat()} {done.rule}: {done.before} -> {done.after}; "
                  f"{done.reaggregated.days_aggregated} day(s) re-aggregated", highlight=False)


@app.command("decide")
@handle_errors
def decide_(
    meter: str = typer.Argument(..., help="Meter id."),
    quantity: str = typer.Option(..., help="OBIS code, e.g. 1.0.1.29.0.255."),
    ts: str = typer.Option(..., help="The reading's time, ISO 8601 with zone (as the queue shows it)."),
    action: str = typer.Option(..., help="accept, reject or edit."),
    reason: str = typer.Option(..., help="Why; kept in the audit trail."),
    by: str = typer.Option(..., help="Who decides; kept in the audit trail."),
    value: str | None = typer.Option(None, help="Which of several conflicting values (decimal)."),
    new_value: str | None = typer.Option(None, help="For edit: the new value, in the reading's unit."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """Accept, reject or edit a reading from the review queue; audited and re-aggregated.

    Example: amr quality decide M000123 --quantity 1.0.1.29.0.255 --ts 2026-11-10T03:15:00Z --action accept --reason "AC installed" --by lan
    """  # noqa: E501
    done = decide(data_dir(), state(), settings=settings(), meter_id=meter, quantity=quantity, ts=ts,
                  action=action, reason=reason, by=by, value=value, new_value=new_value)
    if as_json:
        print_json({"meter_id": done.meter_id, "quantity": done.quantity, "ts": done.ts.isoformat(),
                    "action": done.action, "before": done.before, "after": done.after,
                    "days_reaggregated": done.reaggregated.days_aggregated})
        return
    console.print(f"{done.meter_id} {done.quantity} {done.ts.isoformat()}: {done.before} -> {done.after}; "
                  f"{done.reaggregated.days_aggregated} day(s) re-aggregated", highlight=False)
