"""Signed, short-lived bearer tokens: `<payload>.<signature>`, both base64url.

The payload is compact JSON `{"k": kind, "sub": subject, "exp": unix seconds}`; the
signature is HMAC-SHA256 under the portal's signing key. Integrator access tokens
(kind "client") and customer tokens (kind "customer", subject = customer code) share
the format but never each other's kind, so one cannot stand in for the other.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import time
from dataclasses import dataclass
from typing import Literal

from portal_api.errors import Unauthenticated

Kind = Literal["client", "customer"]
MAX_TOKEN_CHARS = 1024


@dataclass(frozen=True)
class Claims:
    kind: Kind
    subject: str
    expires_at: int


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _sign(key: bytes, body: str) -> str:
    return _b64(hmac.new(key, body.encode("ascii"), hashlib.sha256).digest())


def issue(key: bytes, kind: Kind, subject: str, *, ttl_s: int, now: float | None = None) -> str:
    expires = int((time.time() if now is None else now) + ttl_s)
    body = _b64(json.dumps({"k": kind, "sub": subject, "exp": expires}, separators=(",", ":")).encode())
    return f"{body}.{_sign(key, body)}"


def verify(
    key: bytes, token: str, kinds: tuple[Kind, ...] = ("client", "customer"), *, now: float | None = None
) -> Claims:
    """The claims of a valid, unexpired token of one of `kinds`; Unauthenticated otherwise."""
    hint = "ask for a new token at /oauth/token, or open the portal's link again"
    if len(token) > MAX_TOKEN_CHARS or token.count(".") != 1:
        raise Unauthenticated("the bearer token is malformed", hint=hint)
    body, signature = token.split(".")
    if not hmac.compare_digest(_sign(key, body), signature):
        raise Unauthenticated("the bearer token's signature does not match", hint=hint)
    try:
        raw = json.loads(_unb64(body))
        claims = Claims(kind=raw["k"], subject=str(raw["sub"]), expires_at=int(raw["exp"]))
    except (binascii.Error, ValueError, KeyError, TypeError) as exc:
        raise Unauthenticated("the bearer token's payload is unreadable", hint=hint) from exc
    if claims.kind not in kinds:
        raise Unauthenticated(
            f"a {claims.kind} token cannot be used here; a {' or '.join(kinds)} token is needed", hint=hint
        )
    if claims.expires_at <= (time.time() if now is None else now):
        raise Unauthenticated("the bearer token has expired", hint=hint)
    return claims
