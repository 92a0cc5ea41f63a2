"""Helpers for the portal tests: a small world: registry rows, published `daily` and `bills` snapshots,
an integrator client, and the app served on loopback."""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass
from pathlib import Path

import httpx
import polars as pl
import sqlalchemy as sa
from pydantic import SecretStr

from core.buckets import bucket_of
from core.config import PortalSettings, Settings
from core.measurements import MeasurementStore, partition
from core.state import StateStore
from core.tables import BILLS, BILLS_SCHEMA, DAILY, DAILY_SCHEMA, conform_table
from portal_api.auth import customer_link
from portal_api.clients import NewClient
from portal_api.serve import Running

BUCKETS = 4
ALICE = "PD01000000001"  # two meters, interval data
BOB = "PD02000000002"  # one meter, register-only days
NOBODY = "PD03000000003"  # valid code, no meters
KEY = "test-signing-key-not-secret"


def register_meters(state: StateStore, meters: dict[str, str]) -> None:
    with state.transaction() as conn:
        for i, (meter, customer) in enumerate(sorted(meters.items())):
            conn.execute(
                sa.text("INSERT INTO meters (meter_id, meter_key, customer_code, url, protocol, bucket) "
                        "VALUES (:m, :k, :c, :u, 'dlms', :b)"),
                {"m": meter, "k": i + 1, "c": customer, "u": f"dlms+tcp://10.0.0.{i + 1}:4059", "b":
                 bucket_of(meter, BUCKETS)},
            )


def daily_rows(meter: str, start: dt.date, days: int, base_wh: int, basis: str) -> list[dict[str, object]]:
    rows = []
    for i in range(days):
        energy = base_wh + 100 * i
        split = basis == "intervals"
        rows.append({
            "meter_id": meter, "date": start + dt.timedelta(days=i), "energy_wh": energy,
            "offpeak_wh": energy // 4 if split else 0, "normal_wh": energy // 2 if split else 0,
            "peak_wh": energy - energy // 4 - energy // 2 if split else 0,
            "intervals": 48 if split else 0, "estimated_wh": 0, "basis": basis,
        })
    return rows


def publish_daily(data_dir: Path, rows: list[dict[str, object]]) -> None:
    frame = conform_table(pl.DataFrame(rows), DAILY_SCHEMA, origin="test")
    frame = frame.with_columns(
        pl.col("date").dt.strftime("%Y-%m").alias("_month"),
        pl.col("meter_id").map_elements(lambda m: bucket_of(m, BUCKETS), return_dtype=pl.Int64).alias("_b"),
    )
    parts = {
        partition(month=month, bucket=int(b)): group.drop("_month", "_b")
        for (month, b), group in frame.group_by("_month", "_b")
    }
    MeasurementStore(data_dir).table(DAILY).write_partitions(parts)


def bill_row(customer: str, period: str, version: int = 1, status: str = "issued", total: int = 500_000,
             bill_id: str | None = None) -> dict[str, object]:
    year, month = int(period[:4]), int(period[5:])
    start = dt.date(year, month, 1)
    return {
        "bill_id": bill_id or f"B{period.replace('-', '')}{customer[-6:]}", "version": version,
        "customer_code": customer, "period": period, "period_start": start - dt.timedelta(days=1),
        "period_end": start + dt.timedelta(days=27), "tariff_class": "residential", "kwh": 210,
        "amount_before_vat": total * 100 // 108, "vat_rate": "0.08",
        "vat_amount": total - total * 100 // 108, "total_amount": total,
        "lines": json.dumps([{"tier": 1, "quota_kwh": 50, "kwh": 50, "price": 1984, "amount": 99200}]),
        "estimated": False, "status": status, "invoice_no": f"{version:08d}",
        "created_at": dt.datetime(year, month, 28, 3, tzinfo=dt.UTC),
    }


def publish_bills(data_dir: Path, rows: list[dict[str, object]]) -> None:
    frame = conform_table(pl.DataFrame(rows), BILLS_SCHEMA, origin="test")
    parts: dict[tuple[tuple[str, str], ...], pl.DataFrame] = {}
    for (period, code), group in frame.group_by("period", "customer_code"):
        key = partition(period=period, bucket=bucket_of(str(code), BUCKETS))
        parts[key] = pl.concat([parts[key], group]) if key in parts else group
    MeasurementStore(data_dir).table(BILLS).write_partitions(parts)


@dataclass
class World:
    settings: Settings
    state: StateStore
    client: NewClient
    url: str
    running: Running
    _token: str | None = None
    _http: httpx.Client | None = None

    @property
    def http(self) -> httpx.Client:
        """One keep-alive client (a new httpx client per request costs more than the request)."""
        if self._http is None:
            self._http = httpx.Client(base_url=self.url, timeout=10)
        return self._http

    def integrator_token(self) -> str:
        if self._token is not None:
            return self._token
        reply = self.http.post("/oauth/token", data={
            "grant_type": "client_credentials", "client_id": self.client.client_id,
            "client_secret": self.client.client_secret})
        reply.raise_for_status()
        self._token = str(reply.json()["access_token"])
        return self._token

    def customer_token(self, code: str) -> str:
        link = customer_link(KEY.encode(), self.settings.portal.public_url, code)
        return link.split("#token=", 1)[1]

    def get(self, path: str, token: str | None, **params: str) -> httpx.Response:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        return self.http.get(path, params=params, headers=headers)


def make_settings(data_dir: Path) -> Settings:
    return Settings(data_dir=data_dir, buckets=BUCKETS,
                    portal=PortalSettings(signing_key=SecretStr(KEY), public_url="http://127.0.0.1:1"))


def seed(data_dir: Path, state: StateStore) -> None:
    register_meters(state, {"M-A1": ALICE, "M-A2": ALICE, "M-B1": BOB})
    rows = (daily_rows("M-A1", dt.date(2026, 9, 25), 40, 5000, "intervals")
            + daily_rows("M-A2", dt.date(2026, 10, 1), 31, 1000, "intervals")
            + daily_rows("M-B1", dt.date(2026, 10, 1), 31, 7000, "registers"))
    publish_daily(data_dir, rows)
    publish_bills(data_dir, [
        bill_row(ALICE, "2026-09"), bill_row(ALICE, "2026-10", version=1, status="replaced", total=400_000),
        bill_row(ALICE, "2026-10", version=2, total=450_000), bill_row(ALICE, "2026-11", status="draft"),
        bill_row(BOB, "2026-10", total=900_000),
    ])


