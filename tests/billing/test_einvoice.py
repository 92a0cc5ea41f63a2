"""E-invoice XML: GDT structure, XSD validation, XML-DSig signed and verified with a test certificate."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from lxml import etree

from billing.einvoice import Seller, amount_in_words, build_invoice, sign, to_bytes, validate, verify
from billing.errors import InvoiceError
from tests.billing.scenarios import BILL, BUYER, INVOICE


def test_invoice_has_the_gdt_structure_and_validates() -> None:
    root = build_invoice(BILL, INVOICE, Seller(), BUYER)
    validate(root)
    assert [child.tag for child in root] == ["DLHDon", "DSCKS"]
    assert [c.tag for c in root.find("DLHDon/TTChung")][:10] == [  # type: ignore[union-attr]
        "PBan",
        "THDon",
        "KHMSHDon",
        "KHHDon",
        "SHDon",
        "NLap",
        "DVTTe",
        "TGia",
        "HTTToan",
        "MSTTCGP",
    ]
    assert root.findtext("DLHDon/TTChung/SHDon") == "00000007"
    assert root.findtext("DLHDon/NDHDon/TToan/TgTTTBSo") == "798660"
    assert root.findtext("DLHDon/NDHDon/TToan/THTTLTSuat/LTSuat/TSuat") == "8%"
    assert len(root.findall("DLHDon/NDHDon/DSHHDVu/HHDVu")) == 4
    bad = build_invoice(BILL, {**INVOICE, "series": "K26EAA"}, Seller(tax_code="12"), BUYER)
    with pytest.raises(InvoiceError, match=r"HDon\.xsd"):
        validate(bad)


def test_signature_verifies_with_the_certificate_and_fails_when_tampered(make_certificate: Any) -> None:
    key_pem, cert_pem = make_certificate()
    seller = Seller(key_pem=key_pem, cert_pem=cert_pem)
    assert "key_pem" not in repr(seller) and "PRIVATE" not in repr(seller)
    signed = sign(build_invoice(BILL, INVOICE, seller, BUYER), seller)
    validate(signed)
    xml = to_bytes(signed)
    verified = verify(xml, cert_pem)
    assert verified.findtext("TTChung/SHDon") == "00000007"
    tampered = xml.replace(b"<TgTTTBSo>798660</TgTTTBSo>", b"<TgTTTBSo>1</TgTTTBSo>")
    with pytest.raises(InvoiceError, match="does not verify"):
        verify(tampered, cert_pem)
    _, other_cert = make_certificate("someone else")
    with pytest.raises(InvoiceError):
        verify(xml, other_cert)


def test_ecdsa_seller_key_signs_too(make_certificate: Any) -> None:
    key_pem, cert_pem = make_certificate(elliptic=True)
    seller = Seller(key_pem=key_pem, cert_pem=cert_pem)
    signed = to_bytes(sign(build_invoice(BILL, INVOICE, seller, BUYER), seller))
    assert b"ecdsa-sha256" in signed
    assert verify(signed, cert_pem).findtext("TTChung/KHHDon") == "K26EAA"


def test_replacement_and_adjustment_reference_the_original() -> None:
    previous = {
        **BILL,
        "kwh": 250,
        "amount_before_vat": 620_500,
        "vat_amount": 49_640,
        "total_amount": 670_140,
    }
    for kind, code in (("replacement", "1"), ("adjustment", "2")):
        invoice = {
            **INVOICE,
            "number": 9,
            "kind": kind,
            "refers_to": "1-K26EAA-00000007",
            "refers_date": dt.date(2026, 12, 1),
        }
        root = build_invoice(BILL, invoice, Seller(), BUYER, previous=previous)
        validate(root)
        assert root.findtext("DLHDon/TTChung/TTHDLQuan/TCHDon") == code
        assert root.findtext("DLHDon/TTChung/TTHDLQuan/SHDCLQuan") == "00000007"
    # the adjustment carries the difference: 798,660 - 670,140 = 128,520
    assert root.findtext("DLHDon/NDHDon/TToan/TgTTTBSo") == "128520"


def test_amount_in_words() -> None:
    assert amount_in_words(912_802) == "Chín trăm mười hai nghìn tám trăm lẻ hai đồng"
    assert (
        etree.fromstring(to_bytes(build_invoice(BILL, INVOICE, Seller(), BUYER)))
        .findtext("DLHDon/NDHDon/TToan/TgTTTBChu", "")
        .startswith("Bảy trăm chín mươi tám nghìn")
    )


def test_a_gdt_shaped_invoice_with_the_optional_elements_validates() -> None:
    """What providers' software adds (contact fields, TTKhac, the tax authority's code) fits the XSD."""
    root = build_invoice(BILL, INVOICE, Seller(), BUYER)
    data = root.find("DLHDon")
    seller = root.find("DLHDon/NDHDon/NBan")
    item = root.find("DLHDon/NDHDon/DSHHDVu/HHDVu")
    assert data is not None and seller is not None and item is not None
    etree.SubElement(seller, "SDThoai").text = "19001288"
    other = etree.SubElement(data, "TTKhac")
    field = etree.SubElement(other, "TTin")
    for tag, text in (("TTruong", "Kỳ"), ("KDLieu", "string"), ("DLieu", "2026-11")):
        etree.SubElement(field, tag).text = text
    item.insert(2, etree.Element("MHHDVu"))
    code = etree.Element("MCCQT", Id="cqt")
    code.text = "00A1B2C3D4E5F6A7B8C9D0E1F2"
    root.insert(1, code)
    validate(root)
    root.remove(code)
    seller.remove(seller.find("MST"))  # type: ignore[arg-type]
    with pytest.raises(InvoiceError, match="MST"):
        validate(root)  # the seller's tax code is mandatory
