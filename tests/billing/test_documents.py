"""Documents after issue: files where the portal expects them, signed XML, HTML, PDF."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from lxml import etree

from billing.documents import write_documents
from billing.einvoice import Seller, verify
from billing.errors import InvoiceError
from billing.issue import issue_bills
from billing.run import run_bills

TOTAL = "1.0.1.8.0.255"


@pytest.mark.slow
def test_documents_are_written_per_bill_version_signed(world: Any, make_certificate: Any) -> None:
    world.customers(
        [
            {
                "customer_code": "PD01000000001",
                "meter_id": "M1",
                "installed_on": "2025-01-01",
                "name": "Trần Thị B",
                "address": "5 Lý Thái Tổ",
            }
        ]
    )
    world.reads(
        [
            ("M1", dt.date(2026, 9, 30), TOTAL, 0),
            ("M1", dt.date(2026, 10, 31), TOTAL, 180_000),
            ("M1", dt.date(2026, 11, 30), TOTAL, 480_000),
        ]
    )
    for period in ("2026-10", "2026-11"):
        run_bills(world.data_dir, world.state, period=period, settings=world.settings)
        issue_bills(
            world.data_dir,
            world.state,
            period=period,
            settings=world.settings,
            invoice_date=dt.date(2026, 12, 1),
        )
    key_pem, cert_pem = make_certificate()
    report = write_documents(
        world.data_dir,
        world.state,
        period="2026-11",
        pdf=True,
        seller=Seller(key_pem=key_pem, cert_pem=cert_pem),
    )
    assert report.documents == 1 and report.signed
    stem = world.data_dir / "documents" / "2026-11" / "2026-11-PD01000000001-v1"
    html = stem.with_suffix(".html").read_text("utf-8")
    assert "Bậc 4" in html and "798.660" in html and "<svg" in html and "Trần Thị B" in html
    assert ">180</text>" in html  # October's 180 kWh in the chart beside November's 300
    signed = verify(stem.with_suffix(".xml").read_bytes(), cert_pem)
    assert signed.findtext("NDHDon/TToan/TgTTTBSo") == "798660"
    assert etree.parse(str(stem.with_suffix(".xml"))).findtext("DLHDon/TTChung/SHDon") == "00000002"
    pdf = stem.with_suffix(".pdf").read_bytes()
    assert pdf.startswith(b"%PDF") and len(pdf) > 1000


def test_unsigned_when_no_seller_key(world: Any, make_certificate: Any) -> None:
    world.customers([{"customer_code": "PD01000000001", "meter_id": "M1", "installed_on": "2025-01-01"}])
    world.reads([("M1", dt.date(2026, 10, 31), TOTAL, 0), ("M1", dt.date(2026, 11, 30), TOTAL, 100_000)])
    run_bills(world.data_dir, world.state, period="2026-11", settings=world.settings)
    issue_bills(
        world.data_dir,
        world.state,
        period="2026-11",
        settings=world.settings,
        invoice_date=dt.date(2026, 12, 1),
    )
    report = write_documents(world.data_dir, world.state, period="2026-11")
    assert report.documents == 1 and not report.signed
    assert report.directory is not None
    with pytest.raises(InvoiceError, match="does not verify"):
        verify((report.directory / "2026-11-PD01000000001-v1.xml").read_bytes(), make_certificate()[1])


def test_test_seller_signs_documents(world: Any) -> None:
    import stat

    from billing.einvoice import load_seller
    from billing.seller import init_test_seller

    config = init_test_seller(world.data_dir)
    seller = load_seller(world.data_dir)
    assert seller.can_sign and "PRIVATE" not in repr(seller)
    assert stat.S_IMODE((world.data_dir / "seller" / "key.pem").stat().st_mode) == 0o600
    assert "PRIVATE" not in config.read_text("utf-8")
    with pytest.raises(InvoiceError, match="exists already"):
        init_test_seller(world.data_dir)
