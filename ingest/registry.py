"""The meter registry as ingest needs it: integer keys, buckets, service dates, limits.

Read once per run from the operational store's `meters` table into a frame; the
per-meter limits come from the `attributes` JSON, vectorised (no per-row Python).
"""

from __future__ import annotations

import datetime as dt
import os
import uuid
from pathlib import Path
from typing import Any, Final

import polars as pl
import sqlalchemy as sa
from pydantic import ValidationError

from core.errors import ContractError
from core.fleet import FleetRow
from core.measurements import ZSTD_LEVEL
from core.meter_rows import save_meters
from core.state import StateStore
from ingest.config import VeeConfig
from ingest.errors import ImportRefused
from ingest.localtime import OFFSET

REGISTRY_SCHEMA: dict[str, pl.DataType] = {
    "meter_id": pl.String(),
    "meter_key": pl.Int64(),
    "bucket": pl.Int32(),
    "installed_on": pl.Date(),
    "removed_on": pl.Date(),
    "route": pl.String(),
    "customer_code": pl.String(),
    "attributes": pl.String(),
}


# What an ingest run's tasks use (the limits come from `attributes`, `with_limits`); the route
# and customer code are for rollups. Reading only these took a 500,000-meter registry's read
# from 0.94 to 0.76 s, and the shares sent to the workers from 58 to 34 MB.
RUN_COLUMNS: Final = ("meter_id", "meter_key", "bucket", "installed_on", "removed_on", "attributes")
# one fixed query per set of columns (no SQL is put together at run time)
_QUERIES: Final = {
    tuple(REGISTRY_SCHEMA): "SELECT meter_id, meter_key, bucket, installed_on, removed_on, route, "
    "customer_code, attributes FROM meters",
    RUN_COLUMNS: "SELECT meter_id, meter_key, bucket, installed_on, removed_on, attributes FROM meters",
}


def load_registry(state: StateStore, columns: tuple[str, ...] = tuple(REGISTRY_SCHEMA)) -> pl.DataFrame:
    """Every registered meter, with `columns` (all of `REGISTRY_SCHEMA`, or `RUN_COLUMNS`).
    Read on the driver's own cursor (plain tuples, turned into a frame by Polars in one call):
    SQLAlchemy's row objects and a loop per row took about 1.6 times as long, and transposing
    the tuples into columns in Python a quarter of the time (a million meters: 2.65 -> 1.7 s),
    in the coordinator before any task can start."""
    query = _QUERIES.get(columns)
    if query is None:
        raise ValueError(f"no registry query for the columns {', '.join(columns)}")
    with state.read() as conn:
        cursor = conn.connection.driver_connection.cursor()  # type: ignore[union-attr]
        try:
            cursor.execute(query)
            rows = cursor.fetchall()
        finally:
            cursor.close()
    # a date column as the driver gives it: ISO text (SQLite, and PostgreSQL's text columns)
    # or dates, told by its first value
    names = list(columns)
    text = {
        name
        for i, name in enumerate(names)
        if REGISTRY_SCHEMA[name] == pl.Date()
        and isinstance(next((r[i] for r in rows if r[i] is not None), None), str)
    }
    raw = {n: pl.String() if n in text else REGISTRY_SCHEMA[n] for n in names}
    frame = pl.DataFrame(rows, schema=raw, orient="row")
    if not text:
        return frame
    return frame.with_columns(pl.col(sorted(text)).str.slice(0, 10).str.to_date("%Y-%m-%d"))


# The attributes the limits come from, parsed out of `attributes` (JSON text) once per
# registry version, into the snapshot: parsing them took 0.22 s of a million-meter run.
LIMIT_ATTRIBUTES: Final = ("rated_current_a", "voltage_v", "phases", "register_capacity_wh")


def parse_limits(registry: pl.DataFrame) -> pl.DataFrame:
    """`attributes` replaced by the limits' attributes as integers (null when absent or not
    a number; `with_limits` then uses the configured default)."""
    return registry.with_columns(
        pl.col("attributes").str.json_path_match(f"$.{name}").cast(pl.Int64, strict=False).alias(name)
        for name in LIMIT_ATTRIBUTES
    ).drop("attributes")


def with_limits(registry: pl.DataFrame, cfg: VeeConfig) -> pl.DataFrame:
    """Add `rated_mwh` (most energy one interval can carry) and `capacity_mwh` per meter, and
    the meter's time in service, to a registry with its limits parsed (`parse_limits`)."""
    current = pl.col("rated_current_a").fill_null(cfg.default_rated_current_a)
    voltage = pl.col("voltage_v").fill_null(cfg.default_voltage_v)
    phases = pl.col("phases").fill_null(cfg.default_phases)
    capacity = pl.col("register_capacity_wh").fill_null(cfg.default_register_capacity_wh)
    midnight = pl.col("installed_on").cast(pl.Datetime("us", "UTC")) - OFFSET
    return registry.with_columns(
        rated_mwh=current * voltage * phases * cfg.interval_minutes * 1000 // 60,
        capacity_mwh=capacity * 1000,
        in_service_from=midnight,
        in_service_until=(pl.col("removed_on") + dt.timedelta(days=1)).cast(pl.Datetime("us", "UTC"))
        - OFFSET,
    )


# A run's registry (its `RUN_COLUMNS`, limits parsed) as a Parquet file in the data directory,
# stamped with the registry's change counter (`registry_version`, kept by triggers on
# `meters`). The registry changes seldom and is read by every run: read from the database,
# a million meters took 1.4 s and their limits 0.2 s more, in the coordinator before any
# task could start; the snapshot is read in 0.03 s.
SNAPSHOT: Final = Path("ingest") / "registry.parquet"
_STAMP_KEY: Final = "amr.registry_version"


def run_registry(state: StateStore, data_dir: Path, cfg: VeeConfig) -> pl.DataFrame:
    """What a run's tasks use of the registry, with its limits, from a current snapshot. The
    columns the limits and the time in service are made from are left out: the registry is
    sent to the workers (a quarter of a million meters pickled to 25 against 15 MB)."""
    made_from = [*LIMIT_ATTRIBUTES, "installed_on", "removed_on"]
    return with_limits(pl.read_parquet(refresh_snapshot(state, data_dir)), cfg).drop(made_from)


def refresh_snapshot(state: StateStore, data_dir: Path) -> Path:
    """The registry snapshot's path, made again first unless it is current."""
    path = data_dir / SNAPSHOT
    # the stamp is read before the rows: a change committed in between leaves the snapshot
    # stamped older than what it holds, so it is made again next time, never taken as current
    stamp = _registry_stamp(state)
    if _stamp_of(path) == stamp:
        return path
    frame = parse_limits(load_registry(state, RUN_COLUMNS))
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.{uuid.uuid4().hex[:8]}")
    frame.write_parquet(
        temporary, compression="zstd", compression_level=ZSTD_LEVEL, metadata={_STAMP_KEY: stamp}
    )
    os.replace(temporary, path)  # readers see the old snapshot or the new one whole
    return path


def _registry_stamp(state: StateStore) -> str:
    with state.read() as conn:
        token, version = conn.execute(sa.text("SELECT token, version FROM registry_version")).one()
    return f"{token}:{version}"


def _stamp_of(path: Path) -> str | None:
    try:
        return pl.read_parquet_metadata(path).get(_STAMP_KEY)
    except (OSError, pl.exceptions.PolarsError):  # none yet, or unreadable: made again
        return None


def _read_fleet(path: Path) -> list[dict[str, Any]]:
    try:
        if path.suffix.lower() == ".parquet":
            frame = pl.read_parquet(path)
        else:
            frame = pl.read_csv(path, infer_schema=False)
    except (OSError, pl.exceptions.PolarsError) as exc:
        raise ImportRefused(f"fleet file {path} cannot be read: {exc}") from exc
    return [{k: v for k, v in row.items() if v not in (None, "")} for row in frame.iter_rows(named=True)]


def register_fleet(state: StateStore, path: Path, *, buckets: int) -> int:
    """Add the fleet file's meters the registry does not know yet; returns how many.

    Every row is validated first (`core.fleet.FleetRow`); one bad row refuses the file.
    """
    rows: list[FleetRow] = []
    for line, raw in enumerate(_read_fleet(path), start=2):
        try:
            rows.append(FleetRow(**raw))
        except ValidationError as exc:
            problem = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
            raise ImportRefused(
                f"fleet file {path}, row {line}: {problem}",
                hint="fix the row; a fleet file has meter_id, url and optional registry columns",
            ) from exc
        except ContractError as exc:  # the meter URL's own check
            raise ImportRefused(f"fleet file {path}, row {line}: {exc}", hint=exc.hint) from exc
    with state.transaction() as conn:
        known = {r[0] for r in conn.execute(sa.text("SELECT meter_id FROM meters"))}
        new: dict[str, FleetRow] = {}
        for row in rows:  # a meter the file gives twice: its first row
            if row.meter_id not in known:
                new.setdefault(row.meter_id, row)
        added, _ = save_meters(conn, list(new.values()), buckets=buckets)
    return added
