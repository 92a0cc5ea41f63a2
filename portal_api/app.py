"""The portal's HTTP API and customer page: `create_app(settings)`.

Handlers parse, make one library call and translate errors into `ErrorBody` answers.
Reads come only from the serving snapshot (see `serving`), the registry and the payment
table; nothing here writes the measurement store.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import datetime as dt
import re
import time
import urllib.parse
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from typing import Annotated, Any

import orjson
from fastapi import FastAPI, Path, Query, Request, Security
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse, Response
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from starlette.exceptions import HTTPException as StarletteHTTPException

from core.buckets import bucket_of
from core.config import Settings
from core.errors import AmrError
from core.fleet import CUSTOMER_CODE
from core.state import StateStore
from portal_api import auth, bills, clients, consumption, documents, intervals, page, payments, tokens
from portal_api.errors import (
    BadTokenRequest,
    Forbidden,
    InvalidRequest,
    NotFound,
    PortalError,
    RateLimited,
    Unauthenticated,
)
from portal_api.ratelimit import RateLimiter
from portal_api.reading import StoreReader
from portal_api.registry import CustomerMeters
from portal_api.schemas import (
    BILL_ID_PATTERN,
    CUSTOMER_CODE_PATTERN,
    PERIOD_PATTERN,
    Bill,
    BillList,
    Consumption,
    ErrorBody,
    Health,
    Me,
    PaymentNotice,
    PaymentReceipt,
    TokenResponse,
)
from portal_api.serving import ServingSnapshot

CUSTOMER_RATE_PER_S = 10.0
_bearer = HTTPBearer(auto_error=False, description="an integrator's access token or a customer token")
Bearer = Annotated[HTTPAuthorizationCredentials | None, Security(_bearer)]
Code = Annotated[str, Path(pattern=CUSTOMER_CODE_PATTERN, description="PD + 2-digit unit + 9 digits")]
BillId = Annotated[str, Path(pattern=BILL_ID_PATTERN)]
_ERRORS: dict[int | str, dict[str, Any]] = {
    status: {"model": ErrorBody, "description": text}
    for status, text in {
        400: "malformed request body", 401: "no valid bearer token", 403: "not allowed to see this",
        404: "not found",
        422: "invalid input", 429: "rate limited", 503: "snapshot not loaded yet",
    }.items()
}


def _error(exc: AmrError, status: int, code: str) -> JSONResponse:
    headers = {}
    if isinstance(exc, RateLimited):
        headers["Retry-After"] = str(max(1, round(exc.retry_after_s)))
    if isinstance(exc, Unauthenticated):
        headers["WWW-Authenticate"] = 'Bearer realm="amr"'
    body = {"error": code, "message": exc.message, "hint": exc.hint}
    return JSONResponse(body, status_code=status, headers=headers)


def _validation_message(exc: RequestValidationError) -> tuple[str, list[dict[str, object]]]:
    details: list[dict[str, object]] = []
    parts = []
    for err in exc.errors():
        where = ".".join(str(p) for p in err.get("loc", ()))
        parts.append(f"{where}: {err.get('msg')}")
        details.append({"loc": where, "msg": str(err.get("msg")), "type": str(err.get("type"))})
    return "; ".join(parts) or "the request is invalid", details


def create_app(settings: Settings, *, refresh_s: float = 2.0, follow_snapshots: bool = True) -> FastAPI:
    """The API, the customer page and the OpenAPI description, reading `settings.data_dir`."""
    data_dir = settings.data_dir
    key = settings.portal.signing_key.get_secret_value().encode("utf-8")
    state = StateStore.open(data_dir)
    serving = ServingSnapshot(data_dir)
    reader = StoreReader(state)
    meters_of = CustomerMeters(reader)
    rates: dict[str, int] = {}
    rates_read = [0.0]

    def rate_of(who: str) -> float:
        kind, _, subject = who.partition(":")
        if kind == "customer":
            return CUSTOMER_RATE_PER_S
        if time.monotonic() - rates_read[0] > 30 or subject not in rates:
            rates.update(clients.client_rates(reader))
            rates_read[0] = time.monotonic()
        return float(rates.get(subject, 1))

    limiter = RateLimiter(rate_of)

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        if follow_snapshots:
            serving.start(refresh_s)
        try:
            yield
        finally:
            serving.stop()

    app = FastAPI(
        title="amr portal API",
        version="1.0.0",
        description="Consumption and bills for the city portal (client credentials) and its customers "
        "(signed customer tokens). Energy in Wh, money in whole VND, dates local (Asia/Ho_Chi_Minh).",
        lifespan=lifespan,
    )
    app.state.serving = serving
    app.state.state_store = state

    @app.exception_handler(PortalError)
    async def _portal_error(_: Request, exc: PortalError) -> JSONResponse:
        return _error(exc, exc.status, exc.code)

    @app.exception_handler(AmrError)
    async def _amr_error(_: Request, exc: AmrError) -> JSONResponse:
        return _error(exc, 503, "unavailable")

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(_: Request, exc: StarletteHTTPException) -> JSONResponse:
        # Starlette's own refusals (a body that is not JSON, an unknown path) in our error body.
        body = {"error": "http_error", "message": str(exc.detail),
                "hint": "see the API description at /docs"}
        return JSONResponse(body, status_code=exc.status_code, headers=exc.headers)

    @app.exception_handler(RequestValidationError)
    async def _invalid(_: Request, exc: RequestValidationError) -> JSONResponse:
        message, details = _validation_message(exc)
        body = {"error": "invalid_request", "message": message,
                "hint": "see the API description at /docs", "details": details}
        return JSONResponse(body, status_code=422)

    verified: dict[str, auth.Principal] = {}  # token -> principal, so HMAC runs once per token

    def who(credentials: HTTPAuthorizationCredentials | None) -> auth.Principal:
        principal = verified.get(credentials.credentials) if credentials else None
        if principal is None or principal.expires_at <= time.time():
            header = f"{credentials.scheme} {credentials.credentials}" if credentials else None
            principal = auth.principal_from_header(key, header)
            if len(verified) > 10_000:
                verified.clear()
            verified[credentials.credentials if credentials else ""] = principal
        limiter.take(principal.limiter_key)
        return principal

    # -- tokens -----------------------------------------------------------------
    @app.post(
        "/oauth/token", response_model=TokenResponse, tags=["auth"],
        responses={400: {"model": ErrorBody}, 401: {"model": ErrorBody}, 429: {"model": ErrorBody}},
        openapi_extra={"requestBody": {"required": True, "content": {
            "application/x-www-form-urlencoded": {"schema": {
                "type": "object", "required": ["grant_type"],
                "properties": {"grant_type": {"type": "string", "enum": ["client_credentials"]},
                               "client_id": {"type": "string", "maxLength": 64},
                               "client_secret": {"type": "string", "maxLength": 256}}}}}}},
    )
    async def token(request: Request) -> JSONResponse:
        """OAuth2 client credentials (RFC 6749 4.4): id and secret in the form or as HTTP Basic."""
        body = await request.body()
        if len(body) > 4096:
            raise BadTokenRequest("the token request body is larger than 4 KiB",
                                 hint="send only the form fields")
        form = urllib.parse.parse_qs(body.decode("utf-8", "replace"))
        grant = form.get("grant_type", [""])[0]
        if grant != "client_credentials":
            raise BadTokenRequest(f"grant_type {grant!r} is not supported",
                                 hint="use grant_type=client_credentials")
        client_id, secret = form.get("client_id", [""])[0], form.get("client_secret", [""])[0]
        basic = request.headers.get("authorization", "")
        if basic.lower().startswith("basic "):
            try:
                client_id, _, secret = base64.b64decode(basic[6:]).decode().partition(":")
            except (binascii.Error, UnicodeDecodeError) as exc:
                raise Unauthenticated("the Basic credentials are not base64 of id:secret") from exc
        if not client_id or not secret or len(client_id) > 64 or len(secret) > 256:
            raise Unauthenticated("client_id and client_secret are required",
                                  hint="send them as form fields or HTTP Basic")
        limiter.take(f"client:{client_id}")  # before scrypt, so guessing is slow and cheap for us
        # scrypt is slow on purpose; keep it off the event loop.
        client = await asyncio.to_thread(clients.authenticate_client, state, client_id, secret)
        access = tokens.issue(key, "client", client.client_id, ttl_s=auth.CLIENT_TTL_S)
        return JSONResponse({"access_token": access, "token_type": "Bearer", "expires_in": auth.CLIENT_TTL_S},
                            headers={"Cache-Control": "no-store"})

    # -- reads ------------------------------------------------------------------
    # The hottest route parses its own parameters: FastAPI's dependency solving cost as much
    # as the lookup itself. The description below documents the same rules.
    @app.get("/v1/customers/{code}/consumption", response_model=Consumption, responses=_ERRORS,
             tags=["customers"], openapi_extra={"parameters": CONSUMPTION_PARAMETERS,
                                                "security": [{"HTTPBearer": []}]})
    async def get_consumption(request: Request) -> Response:
        """Consumption by interval over at most 7 days, by day over at most a year of days, or by
        month over at most three years."""
        code = request.path_params["code"]
        query = request.query_params
        header = request.headers.get("authorization", "")
        scheme, _, token = header.partition(" ")
        credentials = (HTTPAuthorizationCredentials(scheme=scheme, credentials=token.strip())
                       if scheme.lower() == "bearer" and token.strip() else None)
        principal = who(credentials)
        if not CUSTOMER_CODE.match(code):
            raise InvalidRequest(f"path.code: {code!r} is not PD, a 2-digit unit and 9 digits",
                                 hint="for example PD01000000001")
        auth.allow_customer(principal, code)
        granularity = query.get("granularity", "day")
        span = consumption.check_range(_date(query, "from"), _date(query, "to"), granularity)
        serving.require_ready()
        meters = meters_of.of(code)
        if not meters:
            raise _no_customer(code)
        if granularity == "interval":
            body = await asyncio.to_thread(interval_consumption, meters, span)
            body["customer_code"] = code
            body["meters"] = list(meters)
            return Response(orjson.dumps(body), media_type="application/json")
        months = [
            m for meter in meters for month in span.months()
            if (m := serving.month_of_days(meter, bucket_of(meter, settings.buckets), month)) is not None
        ]
        body = consumption.assemble(months, span, "day" if granularity == "day" else "month")
        body["customer_code"] = code
        body["meters"] = list(meters)
        return Response(orjson.dumps(body), media_type="application/json")

    def interval_consumption(meters: tuple[str, ...], span: consumption.DateRange) -> dict[str, Any]:
        """Off the event loop: reads Parquet files (a few, of the meters' buckets and days)."""
        days = intervals.days_of(span)
        by_bucket: dict[int, list[str]] = {}
        for meter in meters:
            by_bucket.setdefault(bucket_of(meter, settings.buckets), []).append(meter)
        files = {b: serving.interval_files(b, days) for b in by_bucket}
        return intervals.assemble_intervals(intervals.read_intervals(files, by_bucket), span)

    def customer_bills(code: str, period: str | None) -> list[dict[str, Any]]:
        serving.require_ready()
        rows = serving.bills(code, bucket_of(code, settings.buckets), [period] if period else None)
        if not rows and not meters_of.of(code):
            raise _no_customer(code)
        return rows

    @app.get("/v1/customers/{code}/bills", response_model=BillList, responses=_ERRORS, tags=["bills"])
    async def list_bills(
        code: Code, credentials: Bearer,
        period: Annotated[str | None, Query(pattern=PERIOD_PATTERN, description="YYYY-MM")] = None,
    ) -> JSONResponse:
        """The customer's issued bills (latest version of each), newest period first."""
        principal = who(credentials)
        auth.allow_customer(principal, code)
        rows = bills.latest_issued(customer_bills(code, period))
        views = bills.present(reader, rows, f"/v1/customers/{code}")
        return JSONResponse({"customer_code": code, "bills": views})

    @app.get("/v1/customers/{code}/bills/{bill_id}", response_model=Bill, responses=_ERRORS, tags=["bills"])
    async def one_bill(code: Code, bill_id: BillId, credentials: Bearer) -> JSONResponse:
        """One bill, its latest issued version."""
        principal = who(credentials)
        auth.allow_customer(principal, code)
        row = bills.find(customer_bills(code, None), code, bill_id)
        return JSONResponse(bills.present(reader, [row], f"/v1/customers/{code}")[0])

    def add_document(kind: str, media: str) -> None:
        async def document(code: Code, bill_id: BillId, credentials: Bearer) -> Response:
            principal = who(credentials)
            auth.allow_customer(principal, code)
            row = bills.find(customer_bills(code, None), code, bill_id)
            version = int(row["version"])
            found = documents.document(data_dir, row["period"], bill_id, version, kind)
            if isinstance(found, bytes):  # an e-invoice kept in the period's archive
                disposition = f'attachment; filename="{bill_id}-v{version}.{kind}"'
                return Response(found, media_type=media, headers={"Content-Disposition": disposition})
            return FileResponse(found, media_type=media, filename=found.name)

        document.__doc__ = f"The bill's {kind.upper()} as billing rendered it (404 until it has)."
        ok = {"content": {media: {"schema": {"type": "string", "format": "binary"}}},
              "description": f"the {kind.upper()} document"}
        app.get(f"/v1/customers/{{code}}/bills/{{bill_id}}/{kind}", responses={**_ERRORS, 200: ok},
                response_class=Response, tags=["bills"], name=f"bill_{kind}")(document)

    for kind, media in documents.KINDS.items():
        add_document(kind, media)

    @app.post("/v1/payments", response_model=PaymentReceipt, responses=_ERRORS, tags=["payments"])
    async def notify_payment(notice: PaymentNotice, credentials: Bearer) -> JSONResponse:
        """The city portal reports a payment; the same notice twice marks the bill paid once."""
        principal = who(credentials)
        auth.allow_integrator(principal, "notify payments")
        row = bills.find(customer_bills(notice.customer_code, None), notice.customer_code, notice.bill_id)
        result = payments.record_payment(
            state, notice_id=notice.notice_id, bill_id=notice.bill_id, amount=notice.amount,
            total_amount=int(row["total_amount"]), paid_at=notice.paid_at, client_id=principal.subject,
        )
        return JSONResponse({"notice_id": result.notice_id, "bill_id": result.bill_id, "status": "paid",
                             "duplicate": result.duplicate})

    @app.get("/v1/me", response_model=Me, responses=_ERRORS, tags=["customers"])
    async def me(credentials: Bearer) -> JSONResponse:
        """The customer a customer token names (the page asks this first)."""
        principal = who(credentials)
        if principal.kind != "customer":
            raise Forbidden("an integrator token names no customer", hint="use a customer token")
        return JSONResponse({"customer_code": principal.subject, "expires_at": principal.expires_at})

    @app.get("/healthz", response_model=Health, tags=["operations"])
    async def health() -> JSONResponse:
        versions = serving.versions
        return JSONResponse({"status": "ok" if versions else "starting", "snapshots": versions})

    page.mount(app)
    return app


_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
CONSUMPTION_PARAMETERS = [
    {"name": "code", "in": "path", "required": True, "description": "PD + 2-digit unit + 9 digits",
     "schema": {"type": "string", "pattern": CUSTOMER_CODE_PATTERN}},
    {"name": "from", "in": "query", "required": True, "description": "first local day",
     "schema": {"type": "string", "format": "date"}},
    {"name": "to", "in": "query", "required": True, "description": "last local day, inclusive",
     "schema": {"type": "string", "format": "date"}},
    {"name": "granularity", "in": "query", "required": False,
     "description": "interval (at most 7 days), day (at most 366) or month (at most 1,098 days)",
     "schema": {"type": "string", "enum": ["interval", "day", "month"], "default": "day"}},
]


def _date(query: Mapping[str, str], name: str) -> dt.date:
    value = query.get(name)
    if value is None:
        raise InvalidRequest(f"query.{name}: a date YYYY-MM-DD is required", hint=f"add {name}=YYYY-MM-DD")
    try:
        if not _DATE.match(value):
            raise ValueError(value)
        return dt.date.fromisoformat(value)
    except ValueError as exc:
        raise InvalidRequest(f"query.{name}: {value[:40]!r} is not a date YYYY-MM-DD",
                             hint="use a calendar date such as 2026-10-01") from exc


def _no_customer(code: str) -> PortalError:
    return NotFound(f"customer {code} has no meters in the registry",
                    hint="check the customer code; meters are linked in `amr meters import`")
