"""Integrator clients (the city portal): ids, hashed secrets, and the client-credentials check.

Secrets are shown once at creation and stored only as scrypt hashes with a per-client
salt, so a copy of the operational store does not reveal them.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass

import sqlalchemy as sa

from core.state import StateStore
from portal_api.errors import Conflict, InvalidRequest, Unauthenticated
from portal_api.reading import StoreReader

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9 ._-]{0,63}$")
_SCRYPT = {"n": 2**14, "r": 8, "p": 1, "dklen": 32}


@dataclass(frozen=True)
class NewClient:
    client_id: str
    client_secret: str  # shown once; never stored

    def __repr__(self) -> str:
        return f"NewClient(client_id={self.client_id!r}, client_secret=<hidden>)"


@dataclass(frozen=True)
class ClientInfo:
    client_id: str
    name: str
    rate_per_s: int
    disabled: bool


def hash_secret(secret: str, *, salt: bytes | None = None) -> str:
    salt = salt if salt is not None else secrets.token_bytes(16)
    digest = hashlib.scrypt(secret.encode("utf-8"), salt=salt, **_SCRYPT)  # type: ignore[arg-type]
    return "scrypt$" + base64.b64encode(salt).decode() + "$" + base64.b64encode(digest).decode()


def secret_matches(secret: str, stored: str) -> bool:
    try:
        scheme, salt, digest = stored.split("$")
    except ValueError:
        return False
    if scheme != "scrypt":
        return False
    candidate = hash_secret(secret, salt=base64.b64decode(salt))
    return hmac.compare_digest(candidate.split("$")[2], digest)


def add_client(state: StateStore, name: str, *, rate_per_s: int = 50) -> NewClient:
    """Register an integrator; the returned secret is the only copy there will ever be."""
    if not _NAME.match(name):
        raise InvalidRequest(
            f"client name {name!r} is not usable",
            hint="use 1-64 letters, digits, spaces, dots, dashes or underscores",
        )
    if rate_per_s < 1:
        raise InvalidRequest(f"rate {rate_per_s} per second is below 1", hint="give a rate of at least 1")
    with state.read() as conn:
        taken = conn.execute(sa.text("SELECT 1 FROM portal_clients WHERE name = :n"), {"n": name}).first()
    if taken:
        raise Conflict(f"a client named {name!r} exists already", hint="choose another name")
    client = NewClient(client_id="cl_" + secrets.token_hex(8), client_secret=secrets.token_urlsafe(32))
    with state.transaction() as conn:
        conn.execute(
            sa.text(
                "INSERT INTO portal_clients (client_id, name, secret_hash, rate_per_s) "
                "VALUES (:id, :name, :hash, :rate)"
            ),
            {"id": client.client_id, "name": name, "hash": hash_secret(client.client_secret),
             "rate": rate_per_s},
        )
    return client


def authenticate_client(state: StateStore, client_id: str, client_secret: str) -> ClientInfo:
    """The client whose id and secret these are; Unauthenticated (without saying which was wrong)."""
    with state.read() as conn:
        row = conn.execute(
            sa.text(
                "SELECT client_id, name, secret_hash, rate_per_s, disabled FROM portal_clients "
                "WHERE client_id = :id"
            ),
            {"id": client_id},
        ).first()
    if row is None or not secret_matches(client_secret, row.secret_hash) or row.disabled:
        raise Unauthenticated(
            "the client id and secret are not valid",
            hint="check the credentials printed by `amr portal clients add`",
        )
    return ClientInfo(client_id=row.client_id, name=row.name, rate_per_s=row.rate_per_s,
                      disabled=bool(row.disabled))


def client_rates(reader: StoreReader) -> dict[str, int]:
    rows = reader.rows("SELECT client_id, rate_per_s FROM portal_clients", {})
    return {cid: int(rate) for cid, rate in rows}


def list_clients(state: StateStore) -> list[ClientInfo]:
    with state.read() as conn:
        rows = conn.execute(
            sa.text("SELECT client_id, name, rate_per_s, disabled FROM portal_clients ORDER BY name")
        ).all()
    return [ClientInfo(r.client_id, r.name, r.rate_per_s, bool(r.disabled)) for r in rows]
