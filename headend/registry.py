"""The meter registry in the operational store: import, export, list, show, retire.

Imports take the fleet file format of `core.fleet` (CSV or Parquet). Every bad row is
reported with its line, column and problem; `all-or-nothing` imports nothing when any row
is bad, `good-rows` imports the good ones. Re-importing a meter updates it in place and
keeps its integer `meter_key`. Exports carry key *references* only: URLs refuse secrets.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import polars as pl
import sqlalchemy as sa
from pydantic import ValidationError

from core.errors import ContractError
from core.fleet import FLEET_COLUMNS, OPTIONAL_COLUMNS, FleetRow
from core.meter_rows import save_meters
from core.meter_url import MeterUrl
from core.state import StateStore
from headend.errors import FleetFileError, HeadendError, MeterNotFound
from headend.models import MeterModel, model_for

ImportMode = Literal["all-or-nothing", "good-rows"]
_ATTRIBUTE_COLUMNS = ("read", "households", "tariff_class", *OPTIONAL_COLUMNS)
READ_ITEMS = {"registers", "profile", "daily", "events", "clock"}


@dataclass(frozen=True, slots=True)
class Meter:
    meter_id: str
    meter_key: int
    url: MeterUrl
    protocol: str
    bucket: int
    customer_code: str | None = None
    model: str | None = None
    route: str | None = None
    ct_ratio: int = 1
    vt_ratio: int = 1
    installed_on: dt.date | None = None
    removed_on: dt.date | None = None
    attributes: dict[str, str] = field(default_factory=dict)

    @property
    def reads(self) -> frozenset[str]:
        return frozenset(p.strip() for p in self.attributes.get("read", "registers").split(",") if p.strip())

    @property
    def cell(self) -> str | None:
        return self.attributes.get("cell") or None

    @property
    def key_reference(self) -> str | None:
        return self.url.params.get("key")

    @property
    def meter_model(self) -> MeterModel:
        return model_for(self.model, self.protocol)

    def active_on(self, day: dt.date) -> bool:
        if self.installed_on and day < self.installed_on:
            return False
        return not (self.removed_on and day >= self.removed_on)

    def to_json(self) -> dict[str, Any]:
        return {
            "meter_id": self.meter_id, "meter_key": self.meter_key, "customer_code": self.customer_code,
            "url": str(self.url), "protocol": self.protocol, "model": self.model, "route": self.route,
            "bucket": self.bucket, "ct_ratio": self.ct_ratio, "vt_ratio": self.vt_ratio,
            "installed_on": self.installed_on.isoformat() if self.installed_on else None,
            "removed_on": self.removed_on.isoformat() if self.removed_on else None,
            "attributes": dict(self.attributes),
        }


@dataclass(frozen=True, slots=True)
class RowError:
    line: int  # the file's line (CSV, header is line 1) or row number (Parquet, first row is 1)
    column: str
    problem: str

    def __str__(self) -> str:
        return f"line {self.line}, column {self.column}: {self.problem}"


@dataclass(slots=True)
class ImportReport:
    path: Path
    rows: int = 0
    inserted: int = 0
    updated: int = 0
    errors: list[RowError] = field(default_factory=list)
    applied: bool = False

    def to_json(self) -> dict[str, Any]:
        return {
            "path": str(self.path), "rows": self.rows, "inserted": self.inserted, "updated": self.updated,
            "applied": self.applied,
            "errors": [{"line": e.line, "column": e.column, "problem": e.problem} for e in self.errors],
        }


def _read_table(path: Path) -> tuple[pl.DataFrame, int]:
    """The file as text columns, and the line number of its first data row."""
    if not path.is_file():
        raise FleetFileError(
            f"fleet file {path} does not exist", hint="give the path of a .csv or .parquet file"
        )
    try:
        if path.suffix.lower() == ".parquet":
            frame = pl.read_parquet(path)
            return frame.with_columns(pl.all().cast(pl.String)), 1
        if path.suffix.lower() == ".csv":
            return pl.read_csv(path, infer_schema=False), 2
    except (OSError, pl.exceptions.PolarsError) as exc:
        raise FleetFileError(f"fleet file {path} cannot be read: {exc}") from exc
    raise FleetFileError(f"fleet file {path}: unknown format {path.suffix!r}", hint="use .csv or .parquet")


def _check_row(raw: dict[str, Any], line: int) -> tuple[FleetRow | None, list[RowError]]:
    values = {k: v for k, v in raw.items() if v not in (None, "")}
    try:
        row = FleetRow(**values)
    except ValidationError as exc:
        errors = [
            RowError(line, ".".join(str(p) for p in err["loc"]) or "(row)", err["msg"])
            for err in exc.errors()
        ]
        return None, errors
    except ContractError as exc:  # the URL grammar's own error, raised from FleetRow's url check
        return None, [RowError(line, "url", exc.message)]
    problems = []
    unknown = {p.strip() for p in row.read.split(",")} - READ_ITEMS
    if unknown:
        problem = f"unknown item(s) {sorted(unknown)}; use {sorted(READ_ITEMS)}"
        problems.append(RowError(line, "read", problem))
    if row.removed_on and row.installed_on and row.removed_on < row.installed_on:
        problems.append(RowError(line, "removed_on", "is before installed_on"))
    try:
        model_for(row.model, row.meter_url.protocol)
    except HeadendError as exc:
        problems.append(RowError(line, "model", exc.message))
    return row, problems


def import_fleet(
    state: StateStore, path: Path, *, buckets: int, mode: ImportMode = "all-or-nothing"
) -> ImportReport:
    """Validate a fleet file row by row and upsert its meters into the registry."""
    frame, first_line = _read_table(path)
    report = ImportReport(path=path, rows=frame.height)
    known = set(FLEET_COLUMNS) | set(OPTIONAL_COLUMNS)
    unknown = [c for c in frame.columns if c not in known]
    for column in unknown:
        report.errors.append(RowError(first_line - 1 if first_line > 1 else 0, column, "unknown column"))
    good: list[FleetRow] = []
    seen: dict[str, int] = {}
    for index, raw in enumerate(frame.drop(unknown).iter_rows(named=True)):
        line = first_line + index
        row, errors = _check_row(dict(raw), line)
        if row is not None and row.meter_id in seen:
            problem = f"{row.meter_id} already given on line {seen[row.meter_id]}"
            errors.append(RowError(line, "meter_id", problem))
        if errors:
            report.errors.extend(errors)
            continue
        assert row is not None
        seen[row.meter_id] = line
        good.append(row)
    if report.errors and (mode == "all-or-nothing" or unknown):
        return report
    _upsert(state, good, buckets=buckets, report=report)
    report.applied = True
    return report


def _upsert(
    state: StateStore, rows: Sequence[FleetRow], *, buckets: int, report: ImportReport
) -> None:
    with state.transaction() as conn:
        inserted, updated = save_meters(conn, rows, buckets=buckets)
    report.inserted += inserted
    report.updated += updated


_SELECT = (
    "SELECT meter_id, meter_key, customer_code, url, protocol, model, route, bucket, ct_ratio, vt_ratio,"
    " installed_on, removed_on, attributes FROM meters"
)


def _date(value: Any) -> dt.date | None:
    if value in (None, ""):
        return None
    return value if isinstance(value, dt.date) else dt.date.fromisoformat(str(value))


def _meter(row: sa.Row[Any]) -> Meter:
    try:
        url = MeterUrl.parse(row.url)
    except ContractError as exc:
        raise HeadendError(f"registry row {row.meter_id}: {exc.message}", hint=exc.hint) from exc
    return Meter(
        meter_id=row.meter_id, meter_key=row.meter_key, url=url, protocol=row.protocol, bucket=row.bucket,
        customer_code=row.customer_code, model=row.model, route=row.route, ct_ratio=row.ct_ratio,
        vt_ratio=row.vt_ratio, installed_on=_date(row.installed_on), removed_on=_date(row.removed_on),
        attributes={str(k): str(v) for k, v in json.loads(row.attributes or "{}").items()},
    )


def list_meters(
    state: StateStore,
    *,
    route: str | None = None,
    bucket: int | None = None,
    active_on: dt.date | None = None,
) -> list[Meter]:
    """Meters in meter-id order, optionally one route's or bucket's, optionally only those active on a day."""
    clauses: list[str] = []
    params: dict[str, Any] = {}
    if route is not None:
        clauses.append("route = :route")
        params["route"] = route
    if bucket is not None:
        clauses.append("bucket = :bucket")
        params["bucket"] = bucket
    where = (" WHERE " + " AND ".join(clauses)) if clauses else ""
    with state.read() as conn:
        rows = conn.execute(sa.text(_SELECT + where + " ORDER BY meter_id"), params).all()
    meters = [_meter(r) for r in rows]
    if active_on is not None:
        meters = [m for m in meters if m.active_on(active_on)]
    return meters


def get_meter(state: StateStore, meter_id: str) -> Meter:
    with state.read() as conn:
        row = conn.execute(sa.text(_SELECT + " WHERE meter_id = :m"), {"m": meter_id}).first()
    if row is None:
        raise MeterNotFound(
            f"meter {meter_id!r} is not in the registry", hint="`amr meters list` shows the registered meters"
        )
    return _meter(row)


def export_fleet(state: StateStore, path: Path) -> int:
    """Write the registry as a fleet file (CSV or Parquet by suffix); returns the meter count.

    URLs hold key references only (the URL grammar refuses secrets), and nothing is read
    from the key store, so an export never carries a secret.
    """
    meters = list_meters(state)
    columns: dict[str, list[Any]] = {c: [] for c in (*FLEET_COLUMNS, *OPTIONAL_COLUMNS)}
    for m in meters:
        values = m.to_json()
        for name in FLEET_COLUMNS:
            if name in _ATTRIBUTE_COLUMNS:
                columns[name].append(m.attributes.get(name))
            else:
                columns[name].append(values[name])
        for name in OPTIONAL_COLUMNS:
            columns[name].append(m.attributes.get(name))
    for name in ("ct_ratio", "vt_ratio"):
        columns[name] = [str(v) for v in columns[name]]
    frame = pl.DataFrame(columns, schema={c: pl.String for c in columns})
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.suffix.lower() == ".parquet":
        frame.write_parquet(path)
    elif path.suffix.lower() == ".csv":
        frame.write_csv(path)
    else:
        raise FleetFileError(
            f"export path {path}: unknown format {path.suffix!r}", hint="use .csv or .parquet"
        )
    return len(meters)


def retire(state: StateStore, meter_id: str, on: dt.date) -> Meter:
    """Mark a meter removed from `on`; it is no longer polled from that day."""
    meter = get_meter(state, meter_id)
    if meter.installed_on and on < meter.installed_on:
        raise HeadendError(
            f"meter {meter_id}: removal date {on} is before its installation on {meter.installed_on}",
            hint="give a removal date on or after the installation date",
        )
    with state.transaction() as conn:
        conn.execute(
            sa.text("UPDATE meters SET removed_on = :on, updated_at = CURRENT_TIMESTAMP WHERE meter_id = :m"),
            {"on": on.isoformat(), "m": meter_id},
        )
    return get_meter(state, meter_id)
