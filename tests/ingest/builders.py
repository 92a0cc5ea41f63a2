"""Builders for ingest tests: a registry, simulated meters and landed batches."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterable
from pathlib import Path

import polars as pl
import sqlalchemy as sa

from core.buckets import bucket_of
from core.config import Settings
from core.landing import write_batch
from core.measurements import MeasurementStore
from core.obis import ACTIVE_IMPORT_INTERVAL, ACTIVE_IMPORT_TOTAL
from core.reading import READING_SCHEMA
from core.state import StateStore
from core.tables import DAILY, INTERVALS, REGISTER_READS
from core.timezones import local_midnight_utc
from ingest.schema import FINDINGS, INTERVAL_SUMS, MONTHLY, READINGS, scan_readings
from protocols.simulation.household import HouseholdLoad

BUCKETS = 4
DAY = dt.date(2026, 11, 10)  # a Tuesday
STEP = dt.timedelta(minutes=15)


def settings_for(data_dir: Path) -> Settings:
    return Settings(data_dir=data_dir, buckets=BUCKETS)


def register(
    state: StateStore,
    meters: Iterable[str],
    *,
    installed: dt.date = dt.date(2026, 1, 1),
    removed: dt.date | None = None,
    route: str = "R1",
    attributes: dict[str, object] | None = None,
) -> None:
    with state.transaction() as conn:
        start = int(conn.execute(sa.text("SELECT COALESCE(MAX(meter_key), 0) FROM meters")).scalar_one())
        for offset, meter in enumerate(meters, start=1):
            conn.execute(
                sa.text(
                    "INSERT INTO meters (meter_id, meter_key, customer_code, url, protocol, route, "
                    "bucket, installed_on, removed_on, attributes) "
                    "VALUES (:m, :k, :c, :u, 'dlms', :r, :b, :i, :x, :a)"
                ),
                {
                    "m": meter,
                    "k": start + offset,
                    "c": f"PD01{start + offset:09d}",
                    "u": "dlms+tcp://127.0.0.1:4059",
                    "r": route,
                    "b": bucket_of(meter, BUCKETS),
                    "i": installed,
                    "x": removed,
                    "a": json.dumps(attributes or {}),
                },
            )


def rows(
    meter: str,
    quantity: str,
    items: Iterable[tuple[dt.datetime, int]],
    *,
    status: int = 0,
    snapshot: bool = False,
    unit: str = "Wh",
    scale: int = 0,
) -> list[dict[str, object]]:
    return [
        {
            "meter_id": meter,
            "quantity": quantity,
            "ts": ts,
            "value": value,
            "scale": scale,
            "unit": unit,
            "status": status,
            "snapshot": snapshot,
            "source": "test",
            "read_at": ts,
        }
        for ts, value in items
    ]


def frame(records: list[dict[str, object]]) -> pl.DataFrame:
    return pl.DataFrame(records, schema=dict(READING_SCHEMA))


def interval_day(meter: str, day: dt.date, *, seed: int = 1) -> list[dict[str, object]]:
    load = HouseholdLoad(meter, seed=seed)
    start = local_midnight_utc(day)
    ends = [start + STEP * k for k in range(1, 97)]
    out = rows(meter, ACTIVE_IMPORT_INTERVAL, [(e, load.interval_wh(e)) for e in ends])
    out += rows(
        meter, ACTIVE_IMPORT_TOTAL, [(start, load.register_wh(start)), (ends[-1], load.register_wh(ends[-1]))]
    )
    return out


def snapshot_day_end(
    meter: str, day: dt.date, *, seed: int = 1, delay_s: int = 20
) -> list[dict[str, object]]:
    """A Modbus-style poll shortly after the local midnight ending `day`."""
    load = HouseholdLoad(meter, seed=seed)
    at = local_midnight_utc(day + dt.timedelta(days=1)) + dt.timedelta(seconds=delay_s)
    return rows(meter, ACTIVE_IMPORT_TOTAL, [(at, load.register_wh(at))], snapshot=True)


def land(data_dir: Path, records: list[dict[str, object]], prefix: str = "poll") -> Path:
    return write_batch(
        data_dir, frame(records), prefix=prefix, now=dt.datetime(2026, 11, 20, tzinfo=dt.UTC)
    ).path


AFTER = local_midnight_utc(DAY + dt.timedelta(days=3))  # the run's clock: the test days are over


# every table a run writes, for comparing two stores
TABLES = (READINGS, INTERVAL_SUMS, FINDINGS, INTERVALS, DAILY, REGISTER_READS, MONTHLY)


def snapshot(data_dir: Path) -> dict[str, pl.DataFrame]:
    """Every table's live rows, sorted, for comparing two stores."""
    store = MeasurementStore(data_dir)
    out = {}
    for name in TABLES:
        files = store.table(name).files()
        table = (scan_readings(files) if name == READINGS else store.table(name).scan()).collect()
        out[name] = table.sort(table.columns) if table.width else table
    return out


def assert_same_store(a: Path, b: Path) -> None:
    left, right = snapshot(a), snapshot(b)
    for name in TABLES:
        assert left[name].equals(right[name]), f"table {name} differs"
