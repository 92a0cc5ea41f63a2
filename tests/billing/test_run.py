"""Bill runs over real stores: determinants, exchanges, estimates, holds, idempotency."""

from __future__ import annotations

import json
from typing import Any

import polars as pl

from billing.run import run_bills
from tests.billing.scenarios import NOV, OCT, R1, R2, R3, TOTAL, D, bills, city  # noqa: F401


def test_run_rates_every_class_from_registers_and_holds_what_is_estimated(world: Any) -> None:
    city(world)
    report = run_bills(world.data_dir, world.state, period="2026-11", settings=world.settings)
    assert report.bills == 5 and report.per_class == {"business": 1, "residential": 4}
    got = {r["customer_code"]: r for r in bills(world).to_dicts()}
    # 300 kWh (1300 - 1000 displayed kWh): 50x1984 + 50x2050 + 100x2380 + 100x2998 = 739,500 + 8%
    assert (got["PD01000000001"]["kwh"], got["PD01000000001"]["total_amount"]) == (300, 798_660)
    assert got["PD01000000001"]["status"] == "draft" and not got["PD01000000001"]["estimated"]
    # business from rate registers: 700x3152 + 100x5422 + 200x1918 = 3,132,200 + 8% 250,576
    assert got["PD01000000002"]["total_amount"] == 3_382_776
    bands = {line["tier"]: line["kwh"] for line in json.loads(got["PD01000000002"]["lines"])}
    assert bands == {"normal": 700, "peak": 100, "offpeak": 200}
    # missing end snapshot: interval sum 150,390 Wh -> 150 kWh, estimated and held
    assert (got["PD01000000003"]["kwh"], got["PD01000000003"]["estimated"]) == (150, True)
    assert got["PD01000000003"]["status"] == "held"
    # exchange: old 5100 - 5000 + new 120 - 0 = 220 kWh: 99,200 + 102,500 + 238,000 + 20x2998 = 499,660
    assert (got["PD01000000004"]["kwh"], got["PD01000000004"]["amount_before_vat"]) == (220, 499_660)
    assert got["PD01000000004"]["vat_amount"] == 39_973  # 8% of 499,660 = 39,972.8
    # no data and no history: an estimated bill of 0 kWh, held
    assert got["PD01000000005"]["estimated"] and got["PD01000000005"]["status"] == "held"
    assert report.held == 2 and report.estimated == 2
    assert report.total_vnd == sum(r["total_amount"] for r in got.values())


def test_rerun_is_idempotent_and_dry_run_writes_nothing(world: Any) -> None:
    city(world)
    dry = run_bills(world.data_dir, world.state, period="2026-11", settings=world.settings, dry_run=True)
    assert dry.bills == 5 and bills(world).height == 0
    first = run_bills(world.data_dir, world.state, period="2026-11", settings=world.settings)
    before = bills(world).drop("created_at")
    second = run_bills(world.data_dir, world.state, period="2026-11", settings=world.settings)
    assert first.total_vnd == second.total_vnd == dry.total_vnd
    assert bills(world).drop("created_at").equals(before)


def test_route_run_keeps_other_routes_bills(world: Any) -> None:
    city(world)
    run_bills(world.data_dir, world.state, period="2026-11", settings=world.settings)
    report = run_bills(world.data_dir, world.state, period="2026-11", settings=world.settings, route="R1")
    assert report.bills == 2
    assert bills(world).height == 5


def test_estimate_is_trued_up_when_the_meter_reads_again(world: Any) -> None:
    world.customers([{"customer_code": "PD01000000007", "meter_id": "M7", "installed_on": "2025-01-01"}])
    # September and October are read: 200 kWh a month of history
    world.reads(
        [
            ("M7", D(2026, 8, 31), TOTAL, 0),
            ("M7", D(2026, 9, 30), TOTAL, 200_000),
            ("M7", D(2026, 10, 31), TOTAL, 400_000),
        ]
    )
    for period in ("2026-09", "2026-10"):
        run_bills(world.data_dir, world.state, period=period, settings=world.settings)
    # November's end snapshot is lost: estimated from history (200 kWh / 30 or 31 days x 30 days)
    run_bills(world.data_dir, world.state, period="2026-11", settings=world.settings)
    november = bills(world).filter(pl.col("period") == "2026-11").row(0, named=True)
    assert november["estimated"] and 190 <= november["kwh"] <= 200
    # December reads again: 2026-12-31 index 1,000 kWh; Oct 31 was 400, so 600 kWh over two months,
    # of which November's estimate was already billed
    world.reads([("M7", D(2026, 12, 31), TOTAL, 1_000_000)])
    run_bills(world.data_dir, world.state, period="2026-12", settings=world.settings)
    december = bills(world).filter(pl.col("period") == "2026-12").row(0, named=True)
    assert december["kwh"] == 600 - november["kwh"] and not december["estimated"]


def test_price_change_inside_the_period_splits_at_the_meters_snapshot(world: Any) -> None:
    world.customers(
        [{"customer_code": f"PD05{i:09d}", "meter_id": f"P{i}", "installed_on": "2025-01-01"} for i in (1, 2)]
    )
    # 1279/QD-BCT takes effect 2025-05-10: the snapshot at the end of 2025-05-09 splits May
    world.reads(
        [
            ("P1", D(2025, 4, 30), TOTAL, 0),
            ("P1", D(2025, 5, 9), TOTAL, 100_000),
            ("P1", D(2025, 5, 31), TOTAL, 310_000),
            ("P2", D(2025, 4, 30), TOTAL, 0),
            ("P2", D(2025, 5, 31), TOTAL, 310_000),
        ]
    )
    run_bills(world.data_dir, world.state, period="2025-05", settings=world.settings)
    got = {r["customer_code"]: r for r in bills(world).to_dicts()}
    # P1 by register: 100 kWh on 2699 with quotas 15/15/30/30/30 (9 days, T = 30), 210 kWh on 1279 with
    # 37/37/73/73/73 (22 days): 15x1893 + 15x1956 + 30x2271 + 30x2860 + 10x3197 = 243,635 and
    # 37x1984 + 37x2050 + 73x2380 + 63x2998 = 511,872; VAT 10% of 755,507 = 75,550.7
    one = got["PD05000000001"]
    assert (one["amount_before_vat"], one["vat_amount"], one["total_amount"]) == (755_507, 75_551, 831_058)
    assert len(json.loads(one["lines"])) == 12
    # P2 has no snapshot on the change date: energy split by days, 310 x 9/31 = 90 old, 220 new
    assert got["PD05000000002"]["total_amount"] == 753_517 + 75_352


def test_first_bill_and_changed_reading_day_are_irregular_periods(world: Any) -> None:
    world.customers(
        [
            {"customer_code": "PD06000000001", "meter_id": "F1", "installed_on": "2026-11-16"},
            {
                "customer_code": "PD06000000002",
                "meter_id": "F2",
                "installed_on": "2025-01-01",
                "reading_day": "15",
                "effective_from": "2025-01-01",
            },
        ]
    )
    # the reading day of PD06000000002 moves to the month's end from November
    world.customers(
        [
            {
                "customer_code": "PD06000000002",
                "meter_id": "F2",
                "installed_on": "2025-01-01",
                "reading_day": "0",
                "effective_from": "2026-11-01",
            }
        ]
    )
    world.reads(
        [
            ("F1", D(2026, 11, 15), TOTAL, 0),
            ("F1", NOV, TOTAL, 100_000),
            ("F2", D(2026, 9, 15), TOTAL, 0),
            ("F2", D(2026, 10, 15), TOTAL, 200_000),
            ("F2", NOV, TOTAL, 500_000),
        ]
    )
    run_bills(world.data_dir, world.state, period="2026-10", settings=world.settings)
    run_bills(world.data_dir, world.state, period="2026-11", settings=world.settings)
    got = {r["customer_code"]: r for r in bills(world).filter(pl.col("period") == "2026-11").to_dicts()}
    # first bill: (11-15, 11-30] = 15 days, T = 31: quotas 24/24/48/48/48;
    # 24x1984 + 24x2050 + 48x2380 + 4x2998 = 223,048; VAT 8% 17,843.84
    first = got["PD06000000001"]
    assert (first["period_start"], first["kwh"], first["total_amount"]) == (
        D(2026, 11, 15),
        100,
        223_048 + 17_844,
    )
    # changed reading day: (10-15, 11-30] = 46 days, T = 31: quotas 74/74/148/148/148;
    # 300 kWh: 74x1984 + 74x2050 + 148x2380 + 4x2998 = 662,748; VAT 8% 53,019.84
    moved = got["PD06000000002"]
    assert (moved["period_start"], moved["kwh"], moved["total_amount"]) == (
        D(2026, 10, 15),
        300,
        662_748 + 53_020,
    )
    assert [line["quota_kwh"] for line in json.loads(moved["lines"])][:3] == [74, 74, 148]


def test_steps_of_buckets_give_the_same_bills_as_one_step(world: Any) -> None:
    city(world)
    run_bills(world.data_dir, world.state, period="2026-11", settings=world.settings)
    whole = bills(world).drop("created_at")
    report = run_bills(
        world.data_dir, world.state, period="2026-11", settings=world.settings, customers_per_step=2
    )
    assert report.bills == 5 and report.per_class == {"business": 1, "residential": 4}
    assert bills(world).drop("created_at").equals(whole)
