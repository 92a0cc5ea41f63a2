"""Who is asking, and whether they may see a customer's data.

Two kinds of bearer token: an integrator's (the city portal, from client credentials),
which may read any customer and notify payments; and a customer's (issued by the portal
as identity provider, naming one customer code), which may read only that customer.
"""

from __future__ import annotations

from dataclasses import dataclass

from core.fleet import CUSTOMER_CODE
from portal_api import tokens
from portal_api.errors import Forbidden, InvalidRequest, Unauthenticated

CLIENT_TTL_S = 3600
CUSTOMER_TTL_S = 900


@dataclass(frozen=True)
class Principal:
    kind: tokens.Kind
    subject: str  # client id, or customer code
    expires_at: int

    @property
    def limiter_key(self) -> str:
        return f"{self.kind}:{self.subject}"


def principal_from_header(key: bytes, authorization: str | None) -> Principal:
    if not authorization:
        raise Unauthenticated(
            "the request carries no bearer token",
            hint="send `Authorization: Bearer <token>`; integrators get one at POST /oauth/token",
        )
    scheme, _, token = authorization.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise Unauthenticated("the Authorization header is not `Bearer <token>`", hint="send a bearer token")
    claims = tokens.verify(key, token.strip())
    return Principal(kind=claims.kind, subject=claims.subject, expires_at=claims.expires_at)


def allow_customer(principal: Principal, customer_code: str) -> None:
    """Integrators see every customer; a customer sees only their own code."""
    if principal.kind == "customer" and principal.subject != customer_code:
        raise Forbidden(
            "a customer may read only their own data",
            hint="open the portal's link for this customer code",
        )


def allow_integrator(principal: Principal, action: str) -> None:
    if principal.kind != "client":
        raise Forbidden(f"only the city portal may {action}", hint="use an integrator's client token")


def customer_link(key: bytes, public_url: str, customer_code: str, *, ttl_s: int = CUSTOMER_TTL_S) -> str:
    """The link the portal sends a signed-in customer to (the token rides in the fragment,
    which browsers never send to servers, so it stays out of access logs)."""
    if not CUSTOMER_CODE.match(customer_code):
        raise InvalidRequest(
            f"customer code {customer_code!r} is not PD, a 2-digit unit and 9 digits",
            hint="for example PD01000000001",
        )
    if not 1 <= ttl_s <= 86_400:
        raise InvalidRequest(f"token lifetime {ttl_s} s is outside 1..86400", hint="use minutes, not days")
    token = tokens.issue(key, "customer", customer_code, ttl_s=ttl_s)
    return f"{public_url.rstrip('/')}/#token={token}"
