"""Shared test data for billing tests: a small city in the stores, and one bill with its invoice."""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

import polars as pl

from core.tables import BILLS, BILLS_SCHEMA

D = dt.date
TOTAL, R1, R2, R3 = "1.0.1.8.0.255", "1.0.1.8.1.255", "1.0.1.8.2.255", "1.0.1.8.3.255"
OCT, NOV = D(2026, 10, 31), D(2026, 11, 30)


def city(world: Any) -> None:
    world.customers(
        [
            {"customer_code": "PD01000000001", "meter_id": "M1", "installed_on": "2025-01-01", "route": "R1"},
            {
                "customer_code": "PD01000000002",
                "meter_id": "M2",
                "installed_on": "2025-01-01",
                "route": "R1",
                "tariff_class": "business",
                "voltage": "lt6kv",
            },
            {"customer_code": "PD01000000003", "meter_id": "M3", "installed_on": "2025-01-01", "route": "R2"},
            {
                "customer_code": "PD01000000004",
                "meter_id": "OLD4",
                "installed_on": "2025-01-01",
                "route": "R2",
            },
            {
                "customer_code": "PD01000000004",
                "meter_id": "NEW4",
                "installed_on": "2026-11-16",
                "route": "R2",
                "effective_from": "2025-01-01",
            },
            {"customer_code": "PD01000000005", "meter_id": "M5", "installed_on": "2025-01-01", "route": "R2"},
        ]
    )
    world.reads(
        [
            ("M1", OCT, TOTAL, 1_000_000),
            ("M1", NOV, TOTAL, 1_300_500),
            ("M2", OCT, TOTAL, 0),
            ("M2", NOV, TOTAL, 1_000_000),
            ("M2", OCT, R1, 0),
            ("M2", NOV, R1, 700_000),
            ("M2", OCT, R2, 0),
            ("M2", NOV, R2, 100_000),
            ("M2", OCT, R3, 0),
            ("M2", NOV, R3, 200_000),
            ("M3", OCT, TOTAL, 7_000_000),  # the end snapshot is missing
            ("OLD4", OCT, TOTAL, 5_000_000),
            ("OLD4", D(2026, 11, 16), TOTAL, 5_100_000),
            ("NEW4", D(2026, 11, 16), TOTAL, 0),
            ("NEW4", NOV, TOTAL, 120_000),
        ]
    )
    world.daily("M3", D(2026, 11, 1), NOV, wh=5_013)  # 30 x 5,013 Wh = 150.39 kWh


def bills(world: Any) -> pl.DataFrame:
    frame: pl.DataFrame = world.store.table(BILLS).scan(BILLS_SCHEMA).collect()
    return frame.sort("bill_id", "version")


BILL: dict[str, Any] = {
    "bill_id": "2026-11-PD01000000001",
    "version": 1,
    "customer_code": "PD01000000001",
    "period": "2026-11",
    "kwh": 300,
    "amount_before_vat": 739_500,
    "vat_rate": "0.08",
    "vat_amount": 59_160,
    "total_amount": 798_660,
    "lines": json.dumps(
        [
            {"tier": 1, "quota_kwh": 50, "kwh": 50, "price": 1984, "amount": 99_200},
            {"tier": 2, "quota_kwh": 50, "kwh": 50, "price": 2050, "amount": 102_500},
            {"tier": 3, "quota_kwh": 100, "kwh": 100, "price": 2380, "amount": 238_000},
            {"tier": 4, "quota_kwh": 100, "kwh": 100, "price": 2998, "amount": 299_800},
        ]
    ),
}
INVOICE: dict[str, Any] = {
    "template": "1",
    "series": "K26EAA",
    "number": 7,
    "invoice_date": dt.date(2026, 12, 1),
    "kind": "original",
    "refers_to": None,
}
BUYER = {"name": "Nguyễn Văn A", "address": "1 Tràng Tiền, Hoàn Kiếm", "tax_code": None}
