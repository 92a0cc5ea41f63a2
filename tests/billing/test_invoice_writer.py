"""The canonical-bytes e-invoice writer: equal to lxml's C14N of the reference tree for any
buyer, signatures that signxml verifies, documents that validate against the XSD."""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from lxml import etree
from num2words import num2words  # type: ignore[import-untyped]

from billing.einvoice import Seller, build_invoice, number_in_words, validate, verify
from billing.errors import InvoiceError
from billing.invoice_writer import DECLARATION, InvoiceWriter
from tests.billing.scenarios import BILL, INVOICE

# Any character XML 1.0 allows (lxml refuses the others), Vietnamese and markup included.
XML_TEXT = st.text(
    st.one_of(
        st.characters(codec="utf-8", exclude_categories=["Cs", "Cc"], exclude_characters="\ufffe\uffff"),
        st.sampled_from("\t\n\r&<>\"'ăâđêôơưĂÂĐÊÔƠƯàảãáạằẳẵắặầẩẫấậ"),
    ),
    max_size=40,
)
HARD: list[dict[str, Any]] = [
    {"name": "Nguyễn Thị Ánh & Co. <Hà Nội>", "address": 'Số 1 "Tràng Tiền" \'HK\' > 2', "tax_code": None},
    {
        "name": "Công ty TNHH Điện Lực Đông Anh",
        "address": "Ngõ 5, phố Đặng Tiến Đông\r\nĐống Đa",
        "tax_code": "0101234567",
    },
    {"name": "", "address": "", "tax_code": "", "customer_code": "PD01000000009"},
]


def lines_strategy() -> st.SearchStrategy[list[dict[str, Any]]]:
    line = st.fixed_dictionaries(
        {
            "tier": st.one_of(st.integers(1, 6), st.sampled_from(["normal", "offpeak", "peak"])),
            "quota_kwh": st.one_of(st.none(), st.integers(0, 500)),
            "kwh": st.integers(0, 100_000),
            "price": st.integers(0, 10_000),
            "amount": st.integers(0, 10**9),
        }
    )
    return st.lists(line, max_size=7)


def c14n(root: etree._Element, path: str) -> bytes:
    node = root.find(path)
    assert node is not None
    return etree.tostring(node, method="c14n")


def reference(
    bill: dict[str, Any], invoice: dict[str, Any], seller: Seller, buyer: dict[str, Any], previous: Any
) -> bytes:
    return c14n(build_invoice(bill, invoice, seller, buyer, previous=previous), "DLHDon")


@pytest.mark.slow
@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    name=XML_TEXT,
    address=XML_TEXT,
    tax_code=st.one_of(st.none(), st.just(""), st.from_regex(r"\A\d{10}(-\d{3})?\Z")),
    seller_name=XML_TEXT,
    lines=lines_strategy(),
    kind=st.sampled_from(["original", "replacement", "adjustment"]),
    number=st.integers(1, 99_999_999),
    total=st.integers(-(10**9), 10**10),
    rate=st.sampled_from(["0.08", "0.1", "0.05", "0"]),
    provider=st.sampled_from([None, "0100109106"]),
)
def test_fast_bytes_equal_lxml_c14n_of_the_reference_tree(
    name: str,
    address: str,
    tax_code: str | None,
    seller_name: str,
    lines: list[dict[str, Any]],
    kind: str,
    number: int,
    total: int,
    rate: str,
    provider: str | None,
) -> None:
    seller = Seller(name=seller_name, provider_tax_code=provider)
    bill = {**BILL, "lines": json.dumps(lines), "total_amount": total, "vat_rate": rate}
    invoice = {**INVOICE, "number": number, "kind": kind}
    previous = None
    if kind != "original":
        invoice |= {"refers_to": "1-K26EAA-00000007", "refers_date": dt.date(2026, 12, 1)}
        previous = {**BILL, "kwh": 250, "amount_before_vat": 620_500, "vat_amount": 49_640, "total_amount": 1}
    buyer = {"name": name, "address": address, "tax_code": tax_code, "customer_code": "PD01000000001"}
    writer = InvoiceWriter(seller)
    fast = writer.data(bill, invoice, buyer, previous)
    assert fast == reference(bill, invoice, seller, buyer, previous)
    # the whole unsigned file is canonical too, after its declaration
    document = writer.document(bill, invoice, buyer, previous)
    assert document.startswith(DECLARATION)
    assert etree.tostring(etree.fromstring(document), method="c14n") == document[len(DECLARATION) :]


@pytest.mark.parametrize("elliptic", [False, True], ids=["rsa", "ecdsa"])
def test_signatures_verify_with_signxml_and_samples_validate(make_certificate: Any, elliptic: bool) -> None:
    key_pem, cert_pem = make_certificate(elliptic=elliptic)
    seller = Seller(key_pem=key_pem, cert_pem=cert_pem)
    writer = InvoiceWriter(seller)
    assert writer.signs
    for number, buyer in enumerate(HARD, start=1):
        xml = writer.document(BILL, {**INVOICE, "number": number}, buyer)
        root = etree.fromstring(xml)
        validate(root)
        signed = verify(xml, cert_pem)  # signxml, with the certificate
        assert signed.findtext("NDHDon/NMua/Ten") == (buyer["name"] or buyer["customer_code"])
        assert signed.findtext("NDHDon/NMua/DChi") == buyer["address"]
        assert signed.findtext("TTChung/SHDon") == f"{number:08d}"
        # the signed part is what the reference builder makes, byte for byte
        assert c14n(root, "DLHDon") == reference(
            BILL, {**INVOICE, "number": number}, seller, buyer, None
        )
        tampered = xml.replace(b"<TgTTTBSo>798660</TgTTTBSo>", b"<TgTTTBSo>798661</TgTTTBSo>")
        assert tampered != xml
        with pytest.raises(InvoiceError, match="does not verify"):
            verify(tampered, cert_pem)
    _, other = make_certificate("someone else", elliptic=elliptic)
    with pytest.raises(InvoiceError):
        verify(writer.document(BILL, INVOICE, HARD[0]), other)


def test_an_unsigned_seller_writes_an_empty_signature_slot_and_cannot_sign() -> None:
    writer = InvoiceWriter(Seller())
    assert not writer.signs
    root = etree.fromstring(writer.document(BILL, INVOICE, HARD[0]))
    validate(root)
    assert root.find("DSCKS/NBan") is not None and len(root.find("DSCKS/NBan")) == 0  # type: ignore[arg-type]
    with pytest.raises(InvoiceError, match="no signing key"):
        writer.signature(b"<DLHDon></DLHDon>")


def test_characters_xml_forbids_are_refused_like_lxml_refuses_them() -> None:
    buyer = {"name": "Bad\x01name", "address": "x"}
    with pytest.raises(ValueError):  # lxml, the reference
        build_invoice(BILL, INVOICE, Seller(), buyer)
    with pytest.raises(InvoiceError, match="buyer") as caught:
        InvoiceWriter(Seller()).data(BILL, INVOICE, buyer)
    assert caught.value.hint


@given(st.integers(0, 10**12))
def test_number_in_words_equals_num2words(n: int) -> None:
    assert number_in_words(n) == num2words(n, lang="vi")


def test_number_in_words_at_the_edges() -> None:
    for n in (0, 5, 15, 21, 99, 100, 105, 1000, 1005, 1050, 10**6, 10**6 + 5, 10**9 + 1, 1_000_100):
        assert number_in_words(n) == num2words(n, lang="vi"), n
