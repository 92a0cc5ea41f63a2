"""Builders for billing tests: customers in the operational store, register reads and daily
energy written through the measurement store exactly as ingest writes them."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import polars as pl
import pytest

from billing.customers import import_customers
from billing.seller import self_signed_certificate
from core.buckets import bucket_of
from core.config import Settings
from core.measurements import MeasurementStore, partition
from core.state import StateStore
from core.tables import DAILY, DAILY_SCHEMA, REGISTER_READS, REGISTER_READS_SCHEMA, conform_table

BUCKETS = 4


class World:
    def __init__(self, root: Path) -> None:
        self.data_dir = root / "data"
        self.state = StateStore.open(self.data_dir)
        self.store = MeasurementStore(self.data_dir)
        self.settings = Settings(data_dir=self.data_dir, buckets=BUCKETS)
        self.root = root

    def customers(self, rows: list[dict[str, Any]]) -> None:
        columns = sorted({k for r in rows for k in r})
        path = self.root / f"customers-{len(list(self.root.glob('customers-*')))}.csv"
        lines = [",".join(columns)] + [",".join(str(r.get(c, "")) for c in columns) for r in rows]
        path.write_text("\n".join(lines) + "\n", encoding="utf-8")
        report = import_customers(self.state, path)
        assert report.ok, report.errors

    def reads(
        self,
        rows: list[tuple[str, dt.date, str, int]],
        *,
        unit: str = "Wh",
        scale: int = 0,
        at: dt.time = dt.time(16, 59),
    ) -> None:
        """(meter_id, date, quantity, value) at the end of that local day (captured at `at` UTC)."""
        frame = pl.DataFrame(
            [
                {
                    "meter_id": m,
                    "date": d,
                    "quantity": q,
                    "value": v,
                    "scale": scale,
                    "unit": unit,
                    "ts": dt.datetime.combine(d, at, dt.UTC),
                    "estimated": False,
                }
                for m, d, q, v in rows
            ]
        )
        self._write(REGISTER_READS, REGISTER_READS_SCHEMA, frame)

    def daily(
        self, meter_id: str, first: dt.date, last: dt.date, *, wh: int, offpeak: int = 0, peak: int = 0
    ) -> None:
        days = pl.date_range(first, last, eager=True)
        frame = pl.DataFrame(
            {
                "meter_id": meter_id,
                "date": days,
                "energy_wh": wh,
                "offpeak_wh": offpeak,
                "normal_wh": wh - offpeak - peak,
                "peak_wh": peak,
                "intervals": 48,
                "estimated_wh": 0,
                "basis": "intervals",
            }
        )
        self._write(DAILY, DAILY_SCHEMA, frame)

    def _write(self, name: str, schema: Any, frame: pl.DataFrame) -> None:
        frame = conform_table(frame, schema, origin="test").with_columns(
            pl.col("date").dt.strftime("%Y-%m").alias("month"),
            pl.col("meter_id")
            .map_elements(lambda m: bucket_of(m, BUCKETS), return_dtype=pl.Int64)
            .alias("bucket"),
        )
        frames = {
            partition(month=month, bucket=int(bucket)): part.drop("month", "bucket")
            for (month, bucket), part in frame.partition_by("month", "bucket", as_dict=True).items()
        }
        self.store.table(name).write_partitions(frames, mode="append")


@pytest.fixture()
def world(tmp_path: Path) -> World:
    return World(tmp_path)


def _certificate(common_name: str = "EVN Ha Noi TEST", elliptic: bool = False) -> tuple[bytes, bytes]:
    return self_signed_certificate(common_name, days=30, elliptic=elliptic)


@pytest.fixture()
def make_certificate() -> Any:
    """A function making a self-signed test certificate: (key PEM, certificate PEM)."""
    return _certificate
