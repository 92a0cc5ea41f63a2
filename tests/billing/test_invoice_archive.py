"""The archive layout: a period's e-invoices as one Parquet file per partition, read back exactly."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import pytest

from billing import invoice_archive
from billing.documents import write_documents
from billing.einvoice import Seller, verify
from billing.errors import BillingError
from billing.issue import issue_bills
from billing.run import run_bills

TOTAL = "1.0.1.8.0.255"


def test_parts_merge_replace_and_read_back_exact_bytes(tmp_path: Path) -> None:
    where = invoice_archive.folder(tmp_path, "2026-11")
    a, b = "2026-11-PD01000000001", "2026-11-PD01000000002"
    part = invoice_archive.part_of(a)
    invoice_archive.write_part(where, part, [(a, 1, "1-K26EAA-00000001", b"<HDon>\xc3\xa1 1</HDon>")])
    invoice_archive.write_part(
        where,
        part,
        [(a, 1, "1-K26EAA-00000001", b"<HDon>one</HDon>"), (a, 2, "1-K26EAA-00000009", b"<HDon>two</HDon>")],
    )
    assert invoice_archive.read_invoice(tmp_path, "2026-11", a, 1) == b"<HDon>one</HDon>"  # replaced
    assert invoice_archive.read_invoice(tmp_path, "2026-11", a) == b"<HDon>two</HDon>"  # the latest
    assert [p.name for p in where.iterdir()] == [f"part-{part:02d}.parquet"]  # no temporary left
    out = invoice_archive.extract_invoice(tmp_path, "2026-11", a, tmp_path)
    assert out.name == f"{a}-v2.xml" and out.read_bytes() == b"<HDon>two</HDon>"
    with pytest.raises(BillingError, match=f"no archived e-invoice for bill {b}") as caught:
        invoice_archive.read_invoice(tmp_path, "2026-11", b)
    assert "--archive" in (caught.value.hint or "")


@pytest.mark.slow
def test_archive_layout_holds_the_same_signed_invoice_as_the_files(world: Any, make_certificate: Any) -> None:
    world.customers(
        [
            {
                "customer_code": f"PD0100000000{i}",
                "meter_id": f"M{i}",
                "installed_on": "2025-01-01",
                "name": "Trần Thị B & <Co>",
                "address": '5 "Lý Thái Tổ"',
            }
            for i in range(1, 4)
        ]
    )
    world.reads(
        [
            (f"M{i}", day, TOTAL, value * i)
            for i in range(1, 4)
            for day, value in ((dt.date(2026, 10, 31), 180_000), (dt.date(2026, 11, 30), 480_000))
        ]
    )
    run_bills(world.data_dir, world.state, period="2026-11", settings=world.settings)
    issue_bills(
        world.data_dir,
        world.state,
        period="2026-11",
        settings=world.settings,
        invoice_date=dt.date(2026, 12, 1),
    )
    key_pem, cert_pem = make_certificate()  # RSA PKCS#1 v1.5 signatures are deterministic
    seller = Seller(key_pem=key_pem, cert_pem=cert_pem)
    files = write_documents(world.data_dir, world.state, period="2026-11", seller=seller)
    archived = write_documents(world.data_dir, world.state, period="2026-11", seller=seller, archive=True)
    assert files.documents == archived.documents == 3
    assert archived.directory == invoice_archive.folder(world.data_dir, "2026-11")
    for i in range(1, 4):
        bill_id = f"2026-11-PD0100000000{i}"
        xml = invoice_archive.read_invoice(world.data_dir, "2026-11", bill_id)
        assert xml == (files.directory / f"{bill_id}-v1.xml").read_bytes()  # type: ignore[operator]
        assert verify(xml, cert_pem).findtext("NDHDon/NMua/Ten") == "Trần Thị B & <Co>"
    again = write_documents(world.data_dir, world.state, period="2026-11", seller=seller, archive=True)
    assert again.documents == 3  # a rerun replaces rows, never adds
    import polars as pl

    stored = pl.read_parquet(archived.directory / "*.parquet")  # type: ignore[operator]
    assert stored.height == 3 and stored["bill_id"].n_unique() == 3
