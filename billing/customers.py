"""Customers and contracts with effective dates, imported from CSV (or the fleet file).

One row per (customer, contract, meter) fact: a later `effective_from` opens a new contract
and closes the previous one; a meter installed on a usage point closes the meter open
there (a meter exchange). The fleet file that simulators write is accepted as is: its
registry-only columns are ignored. Every bad row is reported by line and column.
"""

from __future__ import annotations

import csv
import datetime as dt
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any, Literal

import sqlalchemy as sa
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from billing.calendars import calendars
from billing.errors import CustomerImportError, UnknownCustomerError
from billing.tariffs import CLASSES
from core.fleet import CUSTOMER_CODE, FLEET_COLUMNS, OPTIONAL_COLUMNS
from core.state import StateStore

DEFAULT_FROM = dt.date(2000, 1, 1)
CUSTOMER_COLUMNS = (
    "customer_code",
    "meter_id",
    "name",
    "address",
    "tax_code",
    "tariff_class",
    "voltage",
    "households",
    "reading_day",
    "tou_calendar",
    "rate_map",
    "route",
    "effective_from",
    "installed_on",
    "removed_on",
)
# a fleet file's meter columns, which a customers import reads past
IGNORED_FLEET_COLUMNS = tuple(c for c in (*FLEET_COLUMNS, *OPTIONAL_COLUMNS) if c not in CUSTOMER_COLUMNS)
BATCH = 5000


class CustomerRow(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    customer_code: str
    meter_id: str | None = Field(default=None, max_length=64)
    name: str = ""
    address: str = ""
    tax_code: str | None = Field(default=None, pattern=r"^\d{10}(-\d{3})?$")
    tariff_class: str = "residential"
    voltage: str | None = None
    households: Decimal = Field(default=Decimal(1), gt=0, le=1000)
    reading_day: int = Field(default=0, ge=0, le=31)
    tou_calendar: str = "16/2014/TT-BCT"
    rate_map: str = "1=normal,2=peak,3=offpeak"
    route: str | None = None
    effective_from: dt.date | None = None
    installed_on: dt.date | None = None
    removed_on: dt.date | None = None

    @field_validator("customer_code")
    @classmethod
    def _code(cls, value: str) -> str:
        if not CUSTOMER_CODE.match(value):
            raise ValueError("must be PD, a 2-digit unit and 9 digits (13 characters)")
        return value

    @field_validator("tariff_class")
    @classmethod
    def _class(cls, value: str) -> str:
        if value not in CLASSES:
            raise ValueError(f"must be one of {', '.join(CLASSES)}")
        return value

    @field_validator("tou_calendar")
    @classmethod
    def _calendar(cls, value: str) -> str:
        if value not in calendars():
            raise ValueError(f"must be one of {', '.join(calendars())}")
        return value

    @field_validator("rate_map")
    @classmethod
    def _rate_map(cls, value: str) -> str:
        parse_rate_map(value)
        return value

    @property
    def starts(self) -> dt.date:
        return self.effective_from or self.installed_on or DEFAULT_FROM


def parse_rate_map(text: str) -> dict[int, str]:
    """`1=normal,2=peak,3=offpeak`: which rate register (1.0.1.8.<n>.255) holds which band."""
    out: dict[int, str] = {}
    for item in text.split(","):
        number, _, band = item.partition("=")
        if not number.strip().isdigit() or band.strip() not in ("offpeak", "normal", "peak"):
            raise ValueError(f"{item!r} is not <register>=offpeak|normal|peak")
        out[int(number)] = band.strip()
    if sorted(out.values()) != ["normal", "offpeak", "peak"]:
        raise ValueError("must name each of offpeak, normal and peak once")
    return out


@dataclass(frozen=True)
class RowError:
    line: int
    column: str
    what: str


@dataclass
class ImportReport:
    path: Path
    mode: str
    rows: int = 0
    imported: int = 0
    skipped_without_customer: int = 0
    errors: list[RowError] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.errors


def _records(path: Path) -> Iterator[tuple[int, dict[str, Any]]]:
    if path.suffix == ".parquet":
        import polars as pl

        for index, row in enumerate(pl.read_parquet(path).iter_rows(named=True), start=2):
            yield index, {k: v for k, v in row.items() if v is not None}
        return
    with path.open(newline="", encoding="utf-8-sig") as handle:
        reader = csv.DictReader(handle)
        for row in reader:
            yield reader.line_num, {k: v for k, v in row.items() if k is not None and v not in (None, "")}


def _check_header(path: Path) -> list[str]:
    if path.suffix == ".parquet":
        import polars as pl

        columns = list(pl.read_parquet_schema(path))
    else:
        with path.open(newline="", encoding="utf-8-sig") as handle:
            columns = next(csv.reader(handle), [])
    unknown = [c for c in columns if c not in CUSTOMER_COLUMNS and c not in IGNORED_FLEET_COLUMNS]
    if "customer_code" not in columns:
        unknown.append("(customer_code missing)")
    return unknown


def import_customers(
    state: StateStore, path: Path, *, mode: Literal["all-or-nothing", "good-rows"] = "all-or-nothing"
) -> ImportReport:
    """Validate every row; write all of them, or none if any is bad (or the good ones)."""
    if mode not in ("all-or-nothing", "good-rows"):
        raise CustomerImportError(f"import mode {mode!r} is unknown", hint="use all-or-nothing or good-rows")
    if not path.is_file():
        raise CustomerImportError(f"customer file {path} does not exist")
    report = ImportReport(path=path, mode=mode)
    unknown = _check_header(path)
    if unknown:
        report.errors.append(RowError(1, ", ".join(unknown), "unknown column(s) or customer_code missing"))
        return report
    good: list[CustomerRow] = []
    for line, raw in _records(path):
        report.rows += 1
        if not raw.get("customer_code"):
            report.skipped_without_customer += 1  # a fleet meter not (yet) tied to a customer
            continue
        fields = {
            k: str(v) if not isinstance(v, dt.date) else v
            for k, v in raw.items()
            if k not in IGNORED_FLEET_COLUMNS
        }
        try:
            good.append(CustomerRow.model_validate(fields))
        except ValidationError as exc:
            for err in exc.errors():
                column = ".".join(str(p) for p in err["loc"]) or "(row)"
                report.errors.append(RowError(line, column, f"{err['msg']} (got {err.get('input')!r})"))
    if report.errors and mode == "all-or-nothing":
        return report
    _write(state, good)
    report.imported = len(good)
    return report


def _batches(rows: list[CustomerRow]) -> Iterable[list[CustomerRow]]:
    for start in range(0, len(rows), BATCH):
        yield rows[start : start + BATCH]


def _write(state: StateStore, rows: list[CustomerRow]) -> None:
    with state.transaction() as conn:
        for batch in _batches(rows):
            conn.execute(
                sa.text(
                    "INSERT INTO customers (customer_code, name, address, tax_code) "
                    "VALUES (:customer_code, :name, :address, :tax_code) "
                    "ON CONFLICT (customer_code) DO UPDATE SET "
                    "name = CASE WHEN excluded.name != '' THEN excluded.name ELSE customers.name END, "
                    "address = CASE WHEN excluded.address != '' THEN excluded.address "
                    "ELSE customers.address END, "
                    "tax_code = COALESCE(excluded.tax_code, customers.tax_code), "
                    "updated_at = CURRENT_TIMESTAMP"
                ),
                [r.model_dump(include={"customer_code", "name", "address", "tax_code"}) for r in batch],
            )
            contracts = [
                {
                    **r.model_dump(
                        include={
                            "customer_code",
                            "tariff_class",
                            "voltage",
                            "reading_day",
                            "tou_calendar",
                            "rate_map",
                            "route",
                        }
                    ),
                    "households": str(r.households),
                    "effective_from": r.starts,
                }
                for r in batch
            ]
            conn.execute(
                sa.text(
                    "INSERT INTO contracts (customer_code, effective_from, tariff_class, voltage, "
                    "households, reading_day, tou_calendar, rate_map, route) "
                    "VALUES (:customer_code, :effective_from, "
                    ":tariff_class, :voltage, :households, :reading_day, :tou_calendar, :rate_map, :route) "
                    "ON CONFLICT (customer_code, effective_from) DO UPDATE SET "
                    "tariff_class = excluded.tariff_class, voltage = excluded.voltage, "
                    "households = excluded.households, reading_day = excluded.reading_day, "
                    "tou_calendar = excluded.tou_calendar, rate_map = excluded.rate_map, "
                    "route = excluded.route"
                ),
                contracts,
            )
            meters = [
                {
                    "customer_code": r.customer_code,
                    "meter_id": r.meter_id,
                    "installed_on": r.installed_on or r.starts,
                    "removed_on": r.removed_on,
                }
                for r in batch
                if r.meter_id
            ]
            if meters:
                conn.execute(
                    sa.text(
                        "INSERT INTO usage_point_meters (customer_code, meter_id, installed_on, removed_on) "
                        "VALUES (:customer_code, :meter_id, :installed_on, :removed_on) "
                        "ON CONFLICT (customer_code, meter_id, installed_on) DO UPDATE SET "
                        "removed_on = excluded.removed_on"
                    ),
                    meters,
                )
        # Close what a later fact supersedes: a contract ends where the next begins; a meter
        # still open when another is installed on the same usage point was exchanged then.
        conn.execute(
            sa.text(
                "UPDATE contracts SET effective_to = (SELECT MIN(n.effective_from) FROM contracts n "
                "WHERE n.customer_code = contracts.customer_code "
                "AND n.effective_from > contracts.effective_from)"
            )
        )
        conn.execute(
            sa.text(
                "UPDATE usage_point_meters SET removed_on = (SELECT MIN(n.installed_on) "
                "FROM usage_point_meters n "
                "WHERE n.customer_code = usage_point_meters.customer_code "
                "AND n.installed_on > usage_point_meters.installed_on) "
                "WHERE removed_on IS NULL AND EXISTS (SELECT 1 FROM usage_point_meters n "
                "WHERE n.customer_code = usage_point_meters.customer_code "
                "AND n.installed_on > usage_point_meters.installed_on)"
            )
        )


def list_customers(
    state: StateStore, *, route: str | None = None, on: dt.date | None = None, limit: int = 100
) -> list[dict[str, Any]]:
    """Customers with the contract in force on `on` (default today), optionally of one route."""
    day = on or dt.date.today()
    with state.read() as conn:
        rows = (
            conn.execute(
                sa.text(
                    "SELECT c.customer_code, c.name, k.tariff_class, k.voltage, k.households, k.reading_day, "
                    "k.route FROM customers c JOIN contracts k ON k.customer_code = c.customer_code "
                    "AND k.effective_from <= :day AND (k.effective_to IS NULL OR k.effective_to > :day) "
                    "WHERE (:route IS NULL OR k.route = :route) ORDER BY c.customer_code LIMIT :limit"
                ),
                {"day": day, "route": route, "limit": limit},
            )
            .mappings()
            .all()
        )
    return [dict(r) for r in rows]


def show_customer(state: StateStore, customer_code: str) -> dict[str, Any]:
    """A customer with every contract and every meter its usage point has had."""
    with state.read() as conn:
        customer = (
            conn.execute(
                sa.text(
                    "SELECT customer_code, name, address, tax_code FROM customers WHERE customer_code = :c"
                ),
                {"c": customer_code},
            )
            .mappings()
            .first()
        )
        if customer is None:
            raise UnknownCustomerError(
                f"customer {customer_code} is not known",
                hint="check the code (PD + unit + digits), or import it with `amr customers import FILE`",
            )
        contracts = (
            conn.execute(
                sa.text("SELECT * FROM contracts WHERE customer_code = :c ORDER BY effective_from"),
                {"c": customer_code},
            )
            .mappings()
            .all()
        )
        meters = (
            conn.execute(
                sa.text(
                    "SELECT meter_id, installed_on, removed_on FROM usage_point_meters "
                    "WHERE customer_code = :c ORDER BY installed_on"
                ),
                {"c": customer_code},
            )
            .mappings()
            .all()
        )
    return {**dict(customer), "contracts": [dict(c) for c in contracts], "meters": [dict(m) for m in meters]}
