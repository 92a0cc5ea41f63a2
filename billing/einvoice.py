"""E-invoice XML with the GDT structure (HDon > DLHDon > TTChung, NDHDon; DSCKS), validated
against `fixtures/einvoice/HDon.xsd` and signed with XML-DSig (RSA-SHA256, enveloped,
referencing DLHDon by Id) with the seller's certificate.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import json
import tomllib
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature
from lxml import etree
from num2words import num2words  # type: ignore[import-untyped]
from signxml.exceptions import InvalidInput, InvalidSignature
from signxml.verifier import XMLVerifier

from billing.errors import InvoiceError
from core.paths import fixture

DSIG = "http://www.w3.org/2000/09/xmldsig#"
VERSION = "2.1.0"
BAND_NAMES = {"normal": "giờ bình thường", "offpeak": "giờ thấp điểm", "peak": "giờ cao điểm"}
KIND_CODES = {"replacement": 1, "adjustment": 2}  # TCHDon: 1 thay thế, 2 điều chỉnh


@dataclass(frozen=True)
class Seller:
    name: str = "Tổng công ty Điện lực TP Hà Nội"
    tax_code: str = "0100101114"
    address: str = "69 Đinh Tiên Hoàng, Hoàn Kiếm, Hà Nội"
    # MSTTCGP: the tax code of the e-invoice solution provider; the seller's own when it runs
    # its own invoicing system (as here), a provider's (VNPT, Viettel, ...) when it uses one
    provider_tax_code: str | None = None
    key_pem: bytes | None = field(default=None, repr=False)  # never printed
    cert_pem: bytes | None = field(default=None, repr=False)

    @property
    def provider(self) -> str:
        return self.provider_tax_code or self.tax_code

    @property
    def can_sign(self) -> bool:
        return self.key_pem is not None and self.cert_pem is not None


def load_seller(data_dir: Path) -> Seller:
    """`<data_dir>/seller.toml` (name, tax_code, address, key_file, cert_file; optionally
    provider_tax_code), else the default seller
    without a signing key (documents are then written unsigned, and the report says so)."""
    path = data_dir / "seller.toml"
    if not path.is_file():
        return Seller()
    try:
        raw = tomllib.loads(path.read_text("utf-8"))
        key = Path(raw["key_file"]).read_bytes() if raw.get("key_file") else None
        cert = Path(raw["cert_file"]).read_bytes() if raw.get("cert_file") else None
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise InvoiceError(
            f"seller file {path} cannot be used: {exc}",
            hint="it needs name, tax_code, address and readable key_file/cert_file",
        ) from exc
    defaults = Seller()
    return Seller(
        name=raw.get("name", defaults.name),
        tax_code=raw.get("tax_code", defaults.tax_code),
        address=raw.get("address", defaults.address),
        provider_tax_code=raw.get("provider_tax_code"),
        key_pem=key,
        cert_pem=cert,
    )


def _sub(parent: etree._Element, tag: str, text: object | None = None) -> etree._Element:
    node = etree.SubElement(parent, tag)
    if text is not None:
        node.text = str(text)
    return node


def rate_text(rate: str) -> str:
    return f"{(Decimal(rate) * 100).normalize():f}%"


@functools.lru_cache(maxsize=1 << 16)
def _thousands(count: int) -> str:
    return str(num2words(count * 1000, lang="vi"))


@functools.cache
def _tail(rest: int) -> str:
    return (" lẻ" if rest <= 99 else "") + " " + str(num2words(rest, lang="vi"))


def number_in_words(n: int) -> str:
    """num2words(n, lang="vi") for n >= 0, composed from cached parts (it costs ~40 us a call,
    a city has 2.8 million invoices): the words of n - n % 1000, then those of the last three
    digits, after "lẻ" when they are below 100 (num2words' own rule; a test checks equality)."""
    if n < 1000:
        return _tail(n)[4 if n <= 99 else 1 :] if n else "không"
    head, rest = divmod(n, 1000)
    return _thousands(head) + (_tail(rest) if rest else "")


def amount_in_words(amount: int) -> str:
    words = number_in_words(abs(amount))
    text = f"{words} đồng"
    return ("Âm " + text) if amount < 0 else text[0].upper() + text[1:]


def _items(
    bill: dict[str, Any], invoice: dict[str, Any], previous: dict[str, Any] | None
) -> list[tuple[str, str, object, int, int]]:
    """(name, unit, quantity, price, amount) of the invoice lines."""
    if invoice["kind"] == "adjustment" and previous is not None:
        delta_kwh = bill["kwh"] - previous["kwh"]
        delta = bill["amount_before_vat"] - previous["amount_before_vat"]
        return [
            (
                f"Điều chỉnh tiền điện kỳ {bill['period']} (hóa đơn {invoice['refers_to']})",
                "kWh",
                delta_kwh,
                0,
                delta,
            )
        ]
    out: list[tuple[str, str, object, int, int]] = []
    for line in json.loads(bill["lines"]):
        tier = line["tier"]
        name = f"Điện sinh hoạt bậc {tier}" if isinstance(tier, int) else f"Điện {BAND_NAMES.get(tier, tier)}"
        if line["kwh"]:
            out.append((name, "kWh", line["kwh"], line["price"], line["amount"]))
    return out or [("Điện tiêu thụ", "kWh", 0, 0, 0)]


def build_invoice(
    bill: dict[str, Any],
    invoice: dict[str, Any],
    seller: Seller,
    buyer: dict[str, Any],
    previous: dict[str, Any] | None = None,
) -> etree._Element:
    """The unsigned HDon of one issued bill version (`invoice`: a row of the invoices table)."""
    root = etree.Element("HDon")
    data = _sub(root, "DLHDon")
    data.set("Id", "data")
    general = _sub(data, "TTChung")
    _sub(general, "PBan", VERSION)
    _sub(general, "THDon", "Hóa đơn giá trị gia tăng")
    _sub(general, "KHMSHDon", invoice["template"])
    _sub(general, "KHHDon", invoice["series"])
    _sub(general, "SHDon", f"{invoice['number']:08d}")
    _sub(general, "NLap", invoice["invoice_date"].isoformat())
    _sub(general, "DVTTe", "VND")
    _sub(general, "TGia", "1")
    _sub(general, "HTTToan", "TM/CK")
    _sub(general, "MSTTCGP", seller.provider)
    if invoice["kind"] in KIND_CODES and invoice.get("refers_to"):
        template, series, number = str(invoice["refers_to"]).split("-")
        related = _sub(general, "TTHDLQuan")
        _sub(related, "TCHDon", KIND_CODES[invoice["kind"]])
        _sub(related, "LHDCLQuan", 1)
        _sub(related, "KHMSHDCLQuan", template)
        _sub(related, "KHHDCLQuan", series)
        _sub(related, "SHDCLQuan", number)
        _sub(related, "NLHDCLQuan", (invoice.get("refers_date") or invoice["invoice_date"]).isoformat())
    content = _sub(data, "NDHDon")
    for tag, party in (
        ("NBan", {"name": seller.name, "tax_code": seller.tax_code, "address": seller.address}),
        ("NMua", buyer),
    ):
        node = _sub(content, tag)
        _sub(node, "Ten", party.get("name") or party.get("customer_code") or "Khách hàng")
        if party.get("tax_code"):
            _sub(node, "MST", party["tax_code"])
        _sub(node, "DChi", party.get("address") or "")
        if tag == "NMua":
            _sub(node, "MKHang", bill["customer_code"])
    rate = rate_text(bill["vat_rate"])
    items = _sub(content, "DSHHDVu")
    for index, (name, unit, quantity, price, amount) in enumerate(_items(bill, invoice, previous), start=1):
        item = _sub(items, "HHDVu")
        fields: tuple[tuple[str, object], ...] = (
            ("TChat", 1),
            ("STT", index),
            ("THHDVu", name),
            ("DVTinh", unit),
            ("SLuong", quantity),
            ("DGia", price),
            ("ThTien", amount),
            ("TSuat", rate),
        )
        for tag, value in fields:
            _sub(item, tag, value)
    before, vat, total = bill["amount_before_vat"], bill["vat_amount"], bill["total_amount"]
    if invoice["kind"] == "adjustment" and previous is not None:
        before -= previous["amount_before_vat"]
        vat -= previous["vat_amount"]
        total -= previous["total_amount"]
    totals = _sub(content, "TToan")
    by_rate = _sub(_sub(totals, "THTTLTSuat"), "LTSuat")
    _sub(by_rate, "TSuat", rate)
    _sub(by_rate, "ThTien", before)
    _sub(by_rate, "TThue", vat)
    _sub(totals, "TgTCThue", before)
    _sub(totals, "TgTThue", vat)
    _sub(totals, "TgTTTBSo", total)
    _sub(totals, "TgTTTBChu", amount_in_words(total))
    signatures = _sub(root, "DSCKS")
    _sub(signatures, "NBan")
    return root


@functools.cache
def schema() -> etree.XMLSchema:
    return etree.XMLSchema(etree.parse(str(fixture("einvoice", "HDon.xsd"))))


def validate(root: etree._Element) -> None:
    xsd = schema()
    if not xsd.validate(root):
        problems = "; ".join(str(xsd.error_log).splitlines()[:5])
        number = root.findtext("DLHDon/TTChung/SHDon")
        raise InvoiceError(
            f"e-invoice {number} does not match fixtures/einvoice/HDon.xsd: {problems}",
            hint="this is a bug in billing.einvoice; report it with the bill id",
        )


@functools.lru_cache(maxsize=4)
def signing_material(key_pem: bytes, cert_pem: bytes) -> tuple[Any, list[str]]:
    """Parse the key and certificate once per process: loading an RSA key costs ~70 ms, signing ~1 ms."""
    try:
        key = serialization.load_pem_private_key(key_pem, password=None)
        certs = [
            base64.b64encode(c.public_bytes(serialization.Encoding.DER)).decode("ascii")
            for c in x509.load_pem_x509_certificates(cert_pem)
        ]
    except ValueError:
        raise InvoiceError(
            "the seller's key_file or cert_file is not PEM (or the key has a passphrase)",
            hint="give an unencrypted PEM key and its PEM certificate in seller.toml",
        ) from None
    return key, certs


C14N = "http://www.w3.org/TR/2001/REC-xml-c14n-20010315"
RSA_SHA256 = "http://www.w3.org/2001/04/xmldsig-more#rsa-sha256"
ECDSA_SHA256 = "http://www.w3.org/2001/04/xmldsig-more#ecdsa-sha256"
SHA256 = "http://www.w3.org/2001/04/xmlenc#sha256"
ENVELOPED = "http://www.w3.org/2000/09/xmldsig#enveloped-signature"


def _ds(parent: etree._Element, tag: str, text: str | None = None, **attributes: str) -> etree._Element:
    node = etree.SubElement(parent, f"{{{DSIG}}}{tag}", attrib=attributes)
    if text is not None:
        node.text = text
    return node


def sign(root: etree._Element, seller: Seller) -> etree._Element:
    """Enveloped XML-DSig over DLHDon (URI #data), placed in DSCKS/NBan: RSA-SHA256 (ECDSA-SHA256
    for an EC key), C14N 1.0.

    Built directly with lxml's canonicaliser and `cryptography` rather than signxml's signer,
    which re-parses key and certificate and copies the tree on every call (a city is 2.8
    million invoices); signxml verifies the result, in the tests and in `verify`.
    """
    if not seller.can_sign or seller.key_pem is None or seller.cert_pem is None:
        raise InvoiceError(
            "the seller has no signing key and certificate",
            hint="name key_file and cert_file in <data_dir>/seller.toml",
        )
    key, certs = signing_material(seller.key_pem, seller.cert_pem)
    data = root.find("DLHDon")
    slot = root.find("DSCKS/NBan")
    if data is None or slot is None or data.get("Id") is None:
        raise InvoiceError("the e-invoice has no DLHDon with an Id or no DSCKS/NBan to sign into")
    digest = hashlib.sha256(etree.tostring(data, method="c14n")).digest()
    signature = etree.SubElement(slot, f"{{{DSIG}}}Signature", nsmap={"ds": DSIG})
    info = _ds(signature, "SignedInfo")
    _ds(info, "CanonicalizationMethod", Algorithm=C14N)
    elliptic = isinstance(key, ec.EllipticCurvePrivateKey)
    _ds(info, "SignatureMethod", Algorithm=ECDSA_SHA256 if elliptic else RSA_SHA256)
    reference = _ds(info, "Reference", URI=f"#{data.get('Id')}")
    transforms = _ds(reference, "Transforms")
    _ds(transforms, "Transform", Algorithm=ENVELOPED)
    _ds(transforms, "Transform", Algorithm=C14N)
    _ds(reference, "DigestMethod", Algorithm=SHA256)
    _ds(reference, "DigestValue", base64.b64encode(digest).decode("ascii"))
    try:
        signed_info = etree.tostring(info, method="c14n")
        if elliptic:  # XML-DSig wants the raw r || s, not DER
            r, s_ = decode_dss_signature(key.sign(signed_info, ec.ECDSA(hashes.SHA256())))
            size = (key.curve.key_size + 7) // 8
            value = r.to_bytes(size, "big") + s_.to_bytes(size, "big")
        else:
            value = key.sign(signed_info, padding.PKCS1v15(), hashes.SHA256())
    except (TypeError, ValueError) as exc:
        raise InvoiceError(
            f"signing the e-invoice failed: {type(exc).__name__}",
            hint="the seller key must be an RSA or EC private key",
        ) from None
    _ds(signature, "SignatureValue", base64.b64encode(value).decode("ascii"))
    x509_data = _ds(_ds(signature, "KeyInfo"), "X509Data")
    for cert in certs:
        _ds(x509_data, "X509Certificate", cert)
    return root


def verify(xml: bytes, cert_pem: bytes) -> etree._Element:
    """The signed DLHDon, or InvoiceError when the signature does not hold."""
    try:
        result = XMLVerifier().verify(xml, x509_cert=cert_pem.decode("ascii"), id_attribute="Id")
    except (InvalidSignature, InvalidInput) as exc:
        raise InvoiceError(
            f"the e-invoice signature does not verify: {exc}",
            hint="the document was changed after signing, or signed with another key",
        ) from None
    signed = result.signed_xml  # type: ignore[union-attr]
    assert signed is not None
    return signed


def to_bytes(root: etree._Element) -> bytes:
    return etree.tostring(root, xml_declaration=True, encoding="UTF-8")
