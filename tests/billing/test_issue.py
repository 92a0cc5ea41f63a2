"""Issue: gap-free numbers in one serial step, reruns never renumber, corrections reference."""

from __future__ import annotations

import datetime as dt
from typing import Any

import polars as pl
import pytest
import sqlalchemy as sa
from lxml import etree

from billing.documents import write_documents
from billing.errors import InvoiceError
from billing.holds import list_holds, resolve_hold
from billing.issue import issue_bills
from billing.run import run_bills
from core.config import BillingSettings
from core.tables import BILLS, BILLS_SCHEMA

D = dt.date
TOTAL = "1.0.1.8.0.255"
OCT, NOV = D(2026, 10, 31), D(2026, 11, 30)
DEC1 = D(2026, 12, 1)


def setup_city(world: Any, n: int = 5) -> None:
    world.customers(
        [
            {"customer_code": f"PD01{i:09d}", "meter_id": f"M{i}", "installed_on": "2025-01-01"}
            for i in range(1, n + 1)
        ]
    )
    world.reads(
        [
            (f"M{i}", day, TOTAL, value)
            for i in range(1, n + 1)
            for day, value in ((OCT, 1_000_000), (NOV, 1_000_000 + 100_000 * i))
        ]
    )


def bills(world: Any) -> pl.DataFrame:
    frame: pl.DataFrame = world.store.table(BILLS).scan(BILLS_SCHEMA).collect()
    return frame.sort("bill_id", "version")


def numbers(world: Any) -> list[tuple[str, int, str, int, str]]:
    with world.state.read() as conn:
        return [
            tuple(r)
            for r in conn.execute(
                sa.text("SELECT bill_id, version, series, number, kind FROM invoices ORDER BY number")
            )
        ]


def test_issue_numbers_without_gaps_and_rerun_never_renumbers(world: Any) -> None:
    setup_city(world)
    run_bills(world.data_dir, world.state, period="2026-11", settings=world.settings)
    dry = issue_bills(
        world.data_dir,
        world.state,
        period="2026-11",
        settings=world.settings,
        invoice_date=DEC1,
        dry_run=True,
    )
    assert (dry.issued, dry.first_number, dry.last_number) == (5, 1, 5) and numbers(world) == []
    report = issue_bills(
        world.data_dir, world.state, period="2026-11", settings=world.settings, invoice_date=DEC1
    )
    assert (report.issued, report.series, report.first_number, report.last_number) == (5, "K26EAA", 1, 5)
    assert [n for *_, n, _ in numbers(world)] == [1, 2, 3, 4, 5]
    stored = bills(world)
    assert stored["status"].to_list() == ["issued"] * 5
    assert stored["invoice_no"].to_list() == [f"1-K26EAA-{i:08d}" for i in range(1, 6)]
    again = issue_bills(
        world.data_dir, world.state, period="2026-11", settings=world.settings, invoice_date=DEC1
    )
    assert again.issued == 0 and again.already_issued == 5
    # a rerun of the bill run after issue changes nothing
    rerun = run_bills(world.data_dir, world.state, period="2026-11", settings=world.settings)
    assert rerun.unchanged == 5 and bills(world).height == 5


def test_correction_after_issue_is_a_replacement_invoice_referencing_the_original(world: Any) -> None:
    setup_city(world, 2)
    run_bills(world.data_dir, world.state, period="2026-11", settings=world.settings)
    issue_bills(world.data_dir, world.state, period="2026-11", settings=world.settings, invoice_date=DEC1)
    original = bills(world).filter(pl.col("customer_code") == "PD01000000002").row(0, named=True)
    # a corrected reading for meter M2 arrives after issue: 1,250 kWh instead of 1,200
    world.reads([("M2", NOV, TOTAL, 1_250_000)], at=dt.time(16, 59, 30))  # re-read: the later capture wins
    report = run_bills(world.data_dir, world.state, period="2026-11", settings=world.settings)
    assert report.corrections == 1 and report.unchanged == 1
    issue_bills(
        world.data_dir, world.state, period="2026-11", settings=world.settings, invoice_date=D(2026, 12, 5)
    )
    rows = bills(world).filter(pl.col("customer_code") == "PD01000000002").to_dicts()
    assert [(r["version"], r["status"]) for r in rows] == [(1, "replaced"), (2, "issued")]
    assert rows[0]["total_amount"] == original["total_amount"]  # the issued bill itself never changed
    assert rows[1]["kwh"] == original["kwh"] + 50
    assert numbers(world)[-1][1:] == (2, "K26EAA", 3, "replacement")
    with world.state.read() as conn:
        refers = conn.execute(sa.text("SELECT refers_to FROM invoices WHERE number = 3")).scalar_one()
    assert refers == original["invoice_no"]
    written = write_documents(world.data_dir, world.state, period="2026-11")
    assert written.documents == 3  # two originals and the replacement
    xml = etree.parse(str(world.data_dir / "documents" / "2026-11" / "2026-11-PD01000000002-v2.xml"))
    assert xml.findtext("DLHDon/TTChung/TTHDLQuan/TCHDon") == "1"
    assert xml.findtext("DLHDon/TTChung/TTHDLQuan/SHDCLQuan") == original["invoice_no"][-8:]
    assert xml.findtext("DLHDon/TTChung/TTHDLQuan/NLHDCLQuan") == "2026-12-01"


def test_held_bills_wait_until_released_with_a_reason(world: Any) -> None:
    setup_city(world, 2)
    world.customers([{"customer_code": "PD01000000009", "meter_id": "M9", "installed_on": "2025-01-01"}])
    run_bills(world.data_dir, world.state, period="2026-11", settings=world.settings)
    report = issue_bills(
        world.data_dir, world.state, period="2026-11", settings=world.settings, invoice_date=DEC1
    )
    assert (report.issued, report.held) == (2, 1)
    [hold] = list_holds(world.state, period="2026-11")
    assert hold["bill_id"] == "2026-11-PD01000000009" and "estimated" in hold["reasons"]
    resolve_hold(
        world.state, hold["bill_id"], reason="customer away, meter checked", by="staff1", adjusted_kwh=42
    )
    run_bills(world.data_dir, world.state, period="2026-11", settings=world.settings)
    report = issue_bills(
        world.data_dir, world.state, period="2026-11", settings=world.settings, invoice_date=DEC1
    )
    assert report.issued == 1 and report.first_number == 3
    row = bills(world).filter(pl.col("customer_code") == "PD01000000009").row(0, named=True)
    assert (row["kwh"], row["status"]) == (42, "issued")


def test_series_year_follows_the_invoice_date_and_bad_series_is_refused(world: Any) -> None:
    setup_city(world, 1)
    run_bills(world.data_dir, world.state, period="2026-11", settings=world.settings)
    report = issue_bills(
        world.data_dir,
        world.state,
        period="2026-11",
        settings=world.settings,
        invoice_date=D(2027, 1, 2),
        dry_run=True,
    )
    assert report.series == "K27EAA"
    bad = world.settings.model_copy(update={"billing": BillingSettings(invoice_series="KX26EAA")})
    with pytest.raises(InvoiceError, match="KX26EAA"):
        issue_bills(world.data_dir, world.state, period="2026-11", settings=bad, invoice_date=DEC1)


ISSUER = """
import datetime as dt, sys
from pathlib import Path
from billing.issue import issue_bills
from core.config import Settings
from core.state import StateStore
data = Path(sys.argv[1])
settings = Settings(data_dir=data, buckets=4)
report = issue_bills(data, StateStore.open(data), period=sys.argv[2], settings=settings,
                     invoice_date=dt.date(2026, 12, 1))
print(report.issued)
"""


@pytest.mark.slow
def test_two_processes_issuing_at_once_share_one_gap_free_series(world: Any) -> None:
    import subprocess
    import sys
    from pathlib import Path

    n = 6
    world.customers(
        [
            {"customer_code": f"PD01{i:09d}", "meter_id": f"M{i}", "installed_on": "2025-01-01"}
            for i in range(1, n + 1)
        ]
    )
    world.reads(
        [
            (f"M{i}", day, TOTAL, value * i)
            for i in range(1, n + 1)
            for day, value in ((D(2026, 9, 30), 0), (OCT, 100_000), (NOV, 250_000))
        ]
    )
    for period in ("2026-10", "2026-11"):
        run_bills(world.data_dir, world.state, period=period, settings=world.settings)
    root = Path(__file__).resolve().parents[2]
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", ISSUER, str(world.data_dir), period],
            cwd=root,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for period in ("2026-10", "2026-11")
    ]
    outputs = [p.communicate(timeout=120) for p in procs]
    assert all(p.returncode == 0 for p in procs), outputs
    assert sorted(int(out.strip()) for out, _ in outputs) == [n, n]
    assert sorted(number for *_, number, _ in numbers(world)) == list(range(1, 2 * n + 1))


def test_adjustment_invoice_carries_the_difference_and_keeps_the_original(world: Any) -> None:
    setup_city(world, 1)
    run_bills(world.data_dir, world.state, period="2026-11", settings=world.settings)
    issue_bills(world.data_dir, world.state, period="2026-11", settings=world.settings, invoice_date=DEC1)
    world.reads([("M1", NOV, TOTAL, 1_150_000)], at=dt.time(16, 59, 30))  # 150 kWh, not 100
    run_bills(world.data_dir, world.state, period="2026-11", settings=world.settings)
    issue_bills(
        world.data_dir,
        world.state,
        period="2026-11",
        settings=world.settings,
        invoice_date=DEC1,
        correction="adjustment",
    )
    rows = bills(world).to_dicts()
    assert [(r["version"], r["status"], r["kwh"]) for r in rows] == [(1, "issued", 100), (2, "issued", 150)]
    with world.state.read() as conn:
        kind, amount, refers = conn.execute(
            sa.text("SELECT kind, total_amount, refers_to FROM invoices WHERE version = 2")
        ).one()
    # 100 kWh: 99,200 + 102,500 = 201,700 + 8% = 217,836; 150 kWh adds 50 x 2380 = 119,000 + 8% = 128,520
    assert (kind, amount, refers) == ("adjustment", 128_520, "1-K26EAA-00000001")
    assert rows[0]["total_amount"] == 217_836 and rows[1]["total_amount"] == 217_836 + 128_520
