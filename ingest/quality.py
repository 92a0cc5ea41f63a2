"""Data quality for staff: the report by rule, a meter's readings with their flags, the
review queue, review decisions (audited, and the affected days re-aggregated), the
ingest log and rollups by route or district.
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

import polars as pl
import sqlalchemy as sa

from core.buckets import bucket_of
from core.config import Settings
from core.measurements import MeasurementStore, partition_values
from core.obis import ACTIVE_IMPORT_INTERVAL
from core.reading import format_decimal
from core.state import StateStore
from core.tables import DAILY, DAILY_SCHEMA
from core.timezones import local_date, local_midnight_utc
from ingest import aggregate
from ingest.accounting import IngestReport
from ingest.codes import DAY_RULES, QUARANTINED, SUSPECT, VALID
from ingest.errors import ReviewError
from ingest.registry import load_registry
from ingest.run import reaggregate
from ingest.schema import FINDINGS, FINDINGS_SCHEMA, READINGS, READINGS_SCHEMA, scan_readings

ACTIONS = ("accept", "reject", "edit")
SHOW_COLUMNS = (
    "quantity",
    "ts",
    "value",
    "scale",
    "unit",
    "status",
    "state",
    "reason",
    "flags",
    "method",
    "source",
)


@dataclass
class QualityReport:
    date: dt.date | None
    route: str | None
    readings: int = 0
    by_state: dict[str, int] = field(default_factory=dict)
    quarantined: dict[str, int] = field(default_factory=dict)  # reason -> readings
    flagged: dict[str, int] = field(default_factory=dict)  # flag -> readings
    findings: dict[str, int] = field(default_factory=dict)  # rule -> meter-days
    estimates: dict[str, int] = field(default_factory=dict)  # method -> intervals

    def to_json(self) -> dict[str, Any]:
        return {
            "date": self.date.isoformat() if self.date else None,
            "route": self.route,
            "readings": self.readings,
            "by_state": self.by_state,
            "quarantined": self.quarantined,
            "flagged": self.flagged,
            "findings": self.findings,
            "estimates": self.estimates,
        }


def _route_meters(state: StateStore, route: str | None) -> list[str] | None:
    if route is None:
        return None
    with state.read() as conn:
        ids = [
            r[0] for r in conn.execute(sa.text("SELECT meter_id FROM meters WHERE route = :r"), {"r": route})
        ]
    return ids


def _counts(frame: pl.DataFrame, column: str) -> dict[str, int]:
    return {str(k): int(v) for k, v in frame.select(column, "len").iter_rows() if k not in (None, "")}


def report(
    data_dir: Path, state: StateStore, *, date: dt.date | None = None, route: str | None = None
) -> QualityReport:
    """Readings by state, quarantine by reason, flags and day findings by rule, estimates by
    method; for one local day and/or one route, or everything."""
    store = MeasurementStore(data_dir)
    meters = _route_meters(state, route)
    readings = scan_readings(store.table(READINGS).files(date=date))
    found = store.table(FINDINGS).scan(FINDINGS_SCHEMA, date=date)
    if meters is not None:
        readings = readings.filter(pl.col("meter_id").is_in(meters))
        found = found.filter(pl.col("meter_id").is_in(meters))
    by_state, reasons, flags, methods, rules = pl.collect_all(
        [
            readings.group_by("state").len(),
            readings.filter(pl.col("state") == QUARANTINED).group_by("reason").len(),
            readings.select(pl.col("flags").str.split(",")).explode("flags").group_by("flags").len(),
            readings.filter(pl.col("method").is_not_null()).group_by("method").len(),
            found.group_by("rule").len(),
        ]
    )
    out = QualityReport(date=date, route=route)
    out.by_state = _counts(by_state, "state")
    out.readings = sum(v for k, v in out.by_state.items() if k != "estimated")
    out.quarantined = dict(sorted(_counts(reasons, "reason").items()))
    out.flagged = dict(sorted(_counts(flags, "flags").items()))
    out.estimates = dict(sorted(_counts(methods, "method").items()))
    out.findings = dict(sorted(_counts(rules, "rule").items()))
    return out


def _bucket(state: StateStore, meter_id: str, settings: Settings) -> int:
    with state.read() as conn:
        found = conn.execute(
            sa.text("SELECT bucket FROM meters WHERE meter_id = :m"), {"m": meter_id}
        ).first()
    return int(found[0]) if found else bucket_of(meter_id, settings.buckets)


def show(
    data_dir: Path,
    state: StateStore,
    meter_id: str,
    *,
    settings: Settings,
    date: dt.date | None = None,
) -> pl.DataFrame:
    """A meter's readings (all states) with flags, for a local day (default: its latest)."""
    table = MeasurementStore(data_dir).table(READINGS)
    bucket = _bucket(state, meter_id, settings)
    if date is None:
        days = [
            dt.date.fromisoformat(partition_values(path)["date"])
            for path in table.manifest().matching(bucket=bucket)
        ]
        for day in sorted(days, reverse=True):
            frame = (
                scan_readings(table.files(date=day, bucket=bucket))
                .filter(pl.col("meter_id") == meter_id)
                .select(SHOW_COLUMNS)
                .sort("quantity", "ts")
                .collect()
            )
            if frame.height:
                return frame
        return pl.DataFrame(schema={c: READINGS_SCHEMA[c] for c in SHOW_COLUMNS})
    return (
        scan_readings(table.files(date=date, bucket=bucket))
        .filter(pl.col("meter_id") == meter_id)
        .select(SHOW_COLUMNS)
        .sort("quantity", "ts")
        .collect()
    )


def review_queue(
    data_dir: Path, state: StateStore, *, date: dt.date | None = None, limit: int = 100
) -> pl.DataFrame:
    """Quarantined readings and suspect ones, not yet decided, oldest first. A reading flagged
    by a day rule only (the intervals of a zero run) is decided with its day finding, in the
    day queue: listing each of its tens of intervals here would bury the rest."""
    suspect = "|".join(sorted(SUSPECT - DAY_RULES))
    readings = scan_readings(MeasurementStore(data_dir).table(READINGS).files(date=date))
    queue = readings.filter(
        (pl.col("state") == QUARANTINED)
        | (
            (pl.col("state") == VALID)
            & pl.col("flags").str.contains(f"(^|,)({suspect})(,|$)")
            & ~pl.col("flags").str.contains("accepted|edited")
        )
    )
    return (
        queue.select("meter_id", "quantity", "ts", "value", "scale", "unit", "state", "reason", "flags")
        .sort("ts", "meter_id")
        .head(limit)
        .collect()
    )


@dataclass(frozen=True)
class Decision:
    meter_id: str
    quantity: str
    ts: dt.datetime
    action: str
    before: str
    after: str
    reaggregated: IngestReport


def _parse_ts(text: str) -> dt.datetime:
    try:
        when = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError as exc:
        raise ReviewError(f"time {text!r} is not ISO 8601", hint="e.g. 2026-11-10T17:00:00Z") from exc
    if when.tzinfo is None:
        raise ReviewError(f"time {text!r} has no zone", hint="end it with Z or an offset such as +07:00")
    return when.astimezone(dt.UTC)


def decide(
    data_dir: Path,
    state: StateStore,
    *,
    settings: Settings,
    meter_id: str,
    quantity: str,
    ts: str,
    action: str,
    reason: str,
    by: str,
    value: str | None = None,
    new_value: str | None = None,
    now: dt.datetime | None = None,
) -> Decision:
    """Accept, reject or edit a reading in the queue; audited; its days re-aggregated.

    `value` picks one of several conflicting values (as a decimal, e.g. "1.5"); `new_value`
    is the edited value, in the reading's unit.
    """
    if action not in ACTIONS:
        raise ReviewError(f"action {action!r} is not one of {', '.join(ACTIONS)}")
    if not reason.strip() or not by.strip():
        raise ReviewError("a decision needs a reason and who made it", hint="pass --reason and --by")
    when = _parse_ts(ts)
    bucket = _bucket(state, meter_id, settings)
    day = local_date(when)
    days = [day - dt.timedelta(days=1), day]
    table = MeasurementStore(data_dir).table(READINGS)
    rows = (
        scan_readings(table.files(date=days, bucket=bucket))
        .filter(
            (pl.col("meter_id") == meter_id)
            & (pl.col("quantity") == quantity)
            & (pl.col("ts") == when)
            & (pl.col("state") != "estimated")
        )
        .collect()
    )
    if value is not None:
        rows = rows.filter(
            pl.Series(
                [
                    _decimal(format_decimal(v, s)) == _decimal(value)
                    for v, s in rows.select("value", "scale").iter_rows()
                ],
                dtype=pl.Boolean,
            )
        )
    if rows.height != 1:
        raise ReviewError(
            f"{rows.height} readings of meter {meter_id}, {quantity} at {when.isoformat()} match",
            hint="copy meter, quantity and ts from `amr quality review`; pass --value to pick one of "
            "conflicting values",
        )
    row = rows.row(0, named=True)
    before = f"{format_decimal(row['value'], row['scale'])} {row['unit']} ({row['state']})"
    edited: int | None = None
    if action == "edit":
        if new_value is None:
            raise ReviewError(
                "an edit needs --new-value", hint="e.g. --new-value 0.25 (in the reading's unit)"
            )
        amount = _decimal(new_value).scaleb(-row["scale"])
        if amount != amount.to_integral_value():
            raise ReviewError(
                f"new value {new_value} has more decimals than the reading's scale {row['scale']} allows"
            )
        edited = int(amount)
    after = {"accept": "accepted", "reject": "rejected"}.get(action) or (
        f"{format_decimal(edited or 0, row['scale'])} {row['unit']} (edited)"
    )
    with state.transaction() as conn:
        conn.execute(
            sa.text(
                "INSERT INTO ingest_decisions (meter_id, quantity, ts, local_date, action, value, scale, "
                "new_value, reason, decided_by) VALUES (:m, :q, :ts, :d, :a, :v, :s, :n, :r, :by)"
            ),
            {
                "m": meter_id,
                "q": quantity,
                "ts": when.isoformat(),
                "d": day.isoformat(),
                "a": action,
                "v": row["value"],
                "s": row["scale"],
                "n": edited,
                "r": reason,
                "by": by,
            },
        )
        conn.execute(
            sa.text(
                "INSERT INTO ingest_audit (meter_id, quantity, ts, rule, before_text, after_text, actor) "
                "VALUES (:m, :q, :ts, :rule, :b, :a, :by) "
                "ON CONFLICT (meter_id, quantity, ts, rule, before_text, after_text) DO NOTHING"
            ),
            {
                "m": meter_id,
                "q": quantity,
                "ts": when.isoformat(),
                "rule": f"review:{action}: {reason}",
                "b": before,
                "a": after,
                "by": by,
            },
        )
    partitions = [(d, bucket) for d in days if table.files(date=d, bucket=bucket)]
    done = reaggregate(data_dir, state, partitions, settings=settings, now=now)
    return Decision(meter_id, quantity, when, action, before, after, done)


def day_review_queue(
    data_dir: Path, state: StateStore, *, date: dt.date | None = None, limit: int = 100
) -> pl.DataFrame:
    """Day findings (sum check, zero runs, high or low usage, gaps) not yet decided, oldest
    first: (meter_id, date, rule, value, limit). An accept settles its rule of that meter-day;
    a reject or an edit settles the whole meter-day (its re-estimated day finds new gaps)."""
    found = MeasurementStore(data_dir).table(FINDINGS).scan(FINDINGS_SCHEMA, date=date)
    with state.read() as conn:
        rows = conn.execute(
            sa.text("SELECT meter_id, local_date, rule, action FROM ingest_day_decisions")
        ).all()
    decided = pl.DataFrame(
        [(m, dt.date.fromisoformat(str(d)[:10]), r, a) for m, d, r, a in rows],
        orient="row",
        schema={"meter_id": pl.String(), "date": pl.Date(), "rule": pl.String(), "action": pl.String()},
    ).lazy()
    by_rule = decided.filter(pl.col("action") == "accept").select("meter_id", "date", "rule")
    whole_day = decided.filter(pl.col("action") != "accept").select("meter_id", "date").unique()
    return (
        found.join(by_rule, on=["meter_id", "date", "rule"], how="anti")
        .join(whole_day, on=["meter_id", "date"], how="anti")
        .select("meter_id", "date", "rule", "value", "limit")
        .sort("date", "meter_id", "rule")
        .head(limit)
        .collect()
    )


@dataclass(frozen=True)
class DayDecision:
    meter_id: str
    date: dt.date
    rule: str
    action: str
    before: str
    after: str
    reaggregated: IngestReport


def decide_day(
    data_dir: Path,
    state: StateStore,
    *,
    settings: Settings,
    meter_id: str,
    date: dt.date,
    rule: str,
    action: str,
    reason: str,
    by: str,
    energy_wh: str | None = None,
    now: dt.datetime | None = None,
) -> DayDecision:
    """Decide a day finding of a meter: `accept` (the day is right as measured), `reject` (its
    measured intervals are rejected and the day estimated again) or `edit` (the same, with the
    estimates scaled to `energy_wh`, the day's energy in Wh, e.g. from a reading on site).
    Audited (who, when, before, after); the day re-aggregated."""
    if action not in ACTIONS:
        raise ReviewError(f"action {action!r} is not one of {', '.join(ACTIONS)}")
    if not reason.strip() or not by.strip():
        raise ReviewError("a decision needs a reason and who made it", hint="pass --reason and --by")
    bucket = _bucket(state, meter_id, settings)
    store = MeasurementStore(data_dir)
    finding = (
        store.table(FINDINGS)
        .scan(FINDINGS_SCHEMA, date=date, bucket=bucket)
        .filter((pl.col("meter_id") == meter_id) & (pl.col("rule") == rule))
        .collect()
    )
    if finding.height != 1:
        raise ReviewError(
            f"meter {meter_id} has no {rule!r} finding on {date.isoformat()}",
            hint="copy meter, date and rule from `amr quality review`",
        )
    day = (
        store.table(DAILY)
        .scan(DAILY_SCHEMA, month=date.strftime("%Y-%m"), bucket=bucket)
        .filter((pl.col("meter_id") == meter_id) & (pl.col("date") == date))
        .collect()
    )
    energy = f"{day.item(0, 'energy_wh')} Wh" if day.height else "no energy"
    if action != "accept" and (not day.height or day.item(0, "basis") != "intervals"):
        raise ReviewError(
            f"meter {meter_id} on {date.isoformat()}: the day's energy does not come from intervals, "
            f"so it cannot be {action}ed as a day",
            hint="decide the register readings of the day instead (`amr quality decide`), or accept",
        )
    mwh: int | None = None
    if action == "edit":
        if energy_wh is None:
            raise ReviewError(
                "an edit of a day needs --energy-wh", hint="e.g. --energy-wh 8250 (the day's Wh)"
            )
        amount = _decimal(energy_wh) * 1000
        if amount != amount.to_integral_value() or amount < 0:
            raise ReviewError(
                f"day energy {energy_wh} Wh is not a non-negative amount in whole mWh",
                hint="give Wh with at most three decimals",
            )
        mwh = int(amount)
    item = finding.row(0, named=True)
    before = f"{rule} {item['value']} (limit {item['limit']}); day {energy}"
    after = {"accept": "accepted", "reject": "rejected: day estimated again"}.get(action) or (
        f"{Decimal(mwh or 0).scaleb(-3).normalize():f} Wh (edited)"
    )
    with state.transaction() as conn:
        conn.execute(
            sa.text(
                "INSERT INTO ingest_day_decisions (meter_id, local_date, rule, action, energy_mwh, reason, "
                "decided_by) VALUES (:m, :d, :rule, :a, :e, :r, :by)"
            ),
            {
                "m": meter_id, "d": date.isoformat(), "rule": rule, "a": action, "e": mwh,
                "r": reason, "by": by,
            },
        )
        conn.execute(
            sa.text(
                "INSERT INTO ingest_audit (meter_id, quantity, ts, rule, before_text, after_text, actor) "
                "VALUES (:m, :q, :ts, :rule, :b, :a, :by) "
                "ON CONFLICT (meter_id, quantity, ts, rule, before_text, after_text) DO NOTHING"
            ),
            {
                "m": meter_id,
                "q": ACTIVE_IMPORT_INTERVAL,
                "ts": local_midnight_utc(date).isoformat(),
                "rule": f"review-day:{action}:{rule}: {reason}",
                "b": before,
                "a": after,
                "by": by,
            },
        )
    done = reaggregate(data_dir, state, [(date, bucket)], settings=settings, now=now)
    return DayDecision(meter_id, date, rule, action, before, after, done)


def _decimal(text: str) -> Decimal:
    try:
        return Decimal(text)
    except InvalidOperation as exc:
        raise ReviewError(f"{text!r} is not a decimal number") from exc


def audit_trail(state: StateStore, meter_id: str, *, limit: int = 100) -> list[dict[str, Any]]:
    with state.read() as conn:
        rows = conn.execute(
            sa.text(
                "SELECT ts, quantity, rule, before_text, after_text, actor, at FROM ingest_audit "
                "WHERE meter_id = :m ORDER BY id DESC LIMIT :n"
            ),
            {"m": meter_id, "n": limit},
        ).all()
    keys = ("ts", "quantity", "rule", "before", "after", "actor", "at")
    return [dict(zip(keys, map(str, row), strict=True)) for row in rows]


def ingest_log(state: StateStore, *, limit: int = 20) -> list[dict[str, Any]]:
    with state.read() as conn:
        rows = conn.execute(
            sa.text(
                "SELECT run_id, batch_path, rows_in, stored, duplicates, quarantined, reasons, logged_at "
                "FROM ingest_log ORDER BY id DESC LIMIT :n"
            ),
            {"n": limit},
        ).all()
    keys = (
        "run_id",
        "batch",
        "rows_in",
        "stored",
        "duplicates",
        "quarantined",
        "reasons",
        "logged_at",
    )
    out = [dict(zip(keys, row, strict=True)) for row in rows]
    for item in out:
        item["reasons"] = json.loads(item["reasons"])
        item["logged_at"] = str(item["logged_at"])
    return out


def rollup(data_dir: Path, state: StateStore, *, month: str, by: str = "route") -> pl.DataFrame:
    """A month's energy by route or by district (`PDnn` of the customer code)."""
    if by not in ("route", "district"):
        raise ReviewError(f"rollup by {by!r}: choose route or district")
    day_rows = MeasurementStore(data_dir).table(DAILY).scan(DAILY_SCHEMA, month=month)
    return aggregate.rollup(day_rows, load_registry(state).lazy(), by).collect()
