"""A test seller identity for demos and trials: a self-signed certificate, never for production.

Production uses the certificate a licensed Vietnamese CA issues to the seller; point
`<data_dir>/seller.toml` at it. This writes `<data_dir>/seller/{key,cert}.pem` (the key
mode 0600) and a `seller.toml` naming them, unless a seller file already exists.
"""

from __future__ import annotations

import datetime as dt
import os
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import NameOID

from billing.einvoice import Seller
from billing.errors import InvoiceError


def self_signed_certificate(common_name: str, *, days: int, elliptic: bool = False) -> tuple[bytes, bytes]:
    """A self-signed signing identity (key PEM, certificate PEM): RSA-2048, or ECDSA P-256
    with `elliptic` (several times faster to sign with: what a city's bill run wants)."""
    key: rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey = (
        ec.generate_private_key(ec.SECP256R1())
        if elliptic
        else rsa.generate_private_key(public_exponent=65537, key_size=2048)
    )
    name = x509.Name(
        [x509.NameAttribute(NameOID.COMMON_NAME, common_name), x509.NameAttribute(NameOID.COUNTRY_NAME, "VN")]
    )
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=days))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    key_pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    return key_pem, cert.public_bytes(serialization.Encoding.PEM)


def init_test_seller(data_dir: Path, *, days: int = 365, force: bool = False) -> Path:
    """Create a self-signed seller certificate and seller.toml; returns the seller.toml path."""
    config = data_dir / "seller.toml"
    if config.exists() and not force:
        raise InvoiceError(f"{config} exists already", hint="pass --force to replace it with a test seller")
    seller = Seller()
    key_pem, cert_pem = self_signed_certificate(f"{seller.name} (TEST ONLY)", days=days)
    directory = data_dir / "seller"
    directory.mkdir(parents=True, exist_ok=True)
    key_path, cert_path = directory / "key.pem", directory / "cert.pem"
    descriptor = os.open(key_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "wb") as handle:
        handle.write(key_pem)
    cert_path.write_bytes(cert_pem)
    config.write_text(
        f"# TEST seller: a self-signed certificate, not valid for real e-invoices\n"
        f'name = "{seller.name}"\ntax_code = "{seller.tax_code}"\naddress = "{seller.address}"\n'
        f'key_file = "{key_path}"\ncert_file = "{cert_path}"\n',
        encoding="utf-8",
    )
    return config
