"""Checks before issue: TOU registers against intervals, consumption against history."""

from __future__ import annotations

import datetime as dt
from typing import Any

import polars as pl

from billing.holds import list_holds
from billing.run import run_bills
from core.tables import BILLS, BILLS_SCHEMA

D = dt.date
TOTAL, R1, R2, R3 = "1.0.1.8.0.255", "1.0.1.8.1.255", "1.0.1.8.2.255", "1.0.1.8.3.255"
OCT, NOV = D(2026, 10, 31), D(2026, 11, 30)


def statuses(world: Any) -> dict[str, tuple[str, str]]:
    frame: pl.DataFrame = world.store.table(BILLS).scan(BILLS_SCHEMA).collect()
    return {
        r["customer_code"]: (r["status"], r["period"])
        for r in frame.filter(pl.col("period") == "2026-11").to_dicts()
    }


def test_tou_registers_disagreeing_with_intervals_hold_the_bill(world: Any) -> None:
    business = {"installed_on": "2025-01-01", "tariff_class": "business", "voltage": "6-22kv"}
    world.customers(
        [
            {"customer_code": "PD03000000001", "meter_id": "B1", **business},
            {"customer_code": "PD03000000002", "meter_id": "B2", **business},
            {"customer_code": "PD03000000003", "meter_id": "B3", **business, "tou_calendar": "963/QD-BCT"},
        ]
    )
    # intervals: 30 days x (21 kWh normal, 3 kWh peak, 6 kWh off-peak) = 630 / 90 / 180
    for meter in ("B1", "B2", "B3"):
        world.daily(meter, D(2026, 11, 1), NOV, wh=30_000, offpeak=6_000, peak=3_000)
    for meter, normal, peak, offpeak in (("B1", 630, 90, 180), ("B2", 660, 90, 150), ("B3", 660, 90, 150)):
        world.reads(
            [(meter, OCT, q, 0) for q in (TOTAL, R1, R2, R3)]
            + [
                (meter, NOV, TOTAL, 900_000),
                (meter, NOV, R1, normal * 1000),
                (meter, NOV, R2, peak * 1000),
                (meter, NOV, R3, offpeak * 1000),
            ]
        )
    report = run_bills(world.data_dir, world.state, period="2026-11", settings=world.settings)
    got = statuses(world)
    assert got["PD03000000001"][0] == "draft"  # registers agree with intervals
    assert got["PD03000000002"][0] == "held"  # off-peak 150 vs 180 kWh: beyond 2% and 1 kWh
    assert got["PD03000000003"][0] == "draft"  # meter on another calendar: not comparable
    assert report.held_reasons == {"tou-mismatch": 1}
    [hold] = list_holds(world.state, period="2026-11")
    assert hold["reasons"] == "tou-mismatch"


def test_consumption_far_above_history_is_held(world: Any) -> None:
    world.customers(
        [{"customer_code": f"PD04{i:09d}", "meter_id": f"H{i}", "installed_on": "2025-01-01"} for i in (1, 2)]
    )
    months = [D(2026, 8, 31), D(2026, 9, 30), D(2026, 10, 31)]
    world.reads([(f"H{i}", day, TOTAL, n * 200_000) for i in (1, 2) for n, day in enumerate(months)])
    world.reads([("H1", NOV, TOTAL, 400_000 + 210_000), ("H2", NOV, TOTAL, 400_000 + 900_000)])
    for period in ("2026-09", "2026-10", "2026-11"):
        run_bills(world.data_dir, world.state, period=period, settings=world.settings)
    got = statuses(world)
    assert got["PD04000000001"][0] == "draft"  # 210 kWh after 200, 200
    assert got["PD04000000002"][0] == "held"  # 900 kWh after 200, 200: above 3x
    [hold] = list_holds(world.state, period="2026-11")
    assert hold["reasons"] == "unusual-consumption"


def test_a_hold_clears_when_the_missing_reading_arrives(world: Any) -> None:
    world.customers([{"customer_code": "PD04000000009", "meter_id": "Z9", "installed_on": "2025-01-01"}])
    world.reads([("Z9", OCT, TOTAL, 0)])
    run_bills(world.data_dir, world.state, period="2026-11", settings=world.settings)
    assert [h["bill_id"] for h in list_holds(world.state, period="2026-11")] == ["2026-11-PD04000000009"]
    world.reads([("Z9", NOV, TOTAL, 123_000)])
    run_bills(world.data_dir, world.state, period="2026-11", settings=world.settings)
    assert list_holds(world.state, period="2026-11") == []
    assert [h["status"] for h in list_holds(world.state, period="2026-11", status="all")] == ["cleared"]
    assert statuses(world)["PD04000000009"][0] == "draft"
