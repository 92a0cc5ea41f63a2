"""Publishing bills to the city portal's intake: enqueue into the outbox, then deliver.

Delivery is at least once. Each bill version travels with its idempotency key (see
`outbox`), so the portal keeps it once however often it arrives. Transient trouble
(connection refused or dropped, timeouts, 429, 5xx, a token the portal stops accepting)
leaves the bill pending with the error and a next attempt after an exponential backoff;
a bill the portal rejects as invalid (other 4xx) is marked failed with the portal's reason.
A run retries within `deadline_s`, then returns; the next run (or `amr portal publish`)
carries on from the outbox, so nothing is lost across restarts or a long outage.
"""

from __future__ import annotations

import datetime as dt
import json
import random
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import polars as pl

from core.config import Settings
from core.measurements import MeasurementStore
from core.state import StateStore
from core.tables import BILLS, BILLS_SCHEMA
from portal_api import outbox
from portal_api.errors import NotConfigured, PublishError

PUBLISHED_STATUSES = ("issued",)


@dataclass
class PublishReport:
    enqueued: int = 0
    acknowledged: int = 0
    failed: int = 0
    retried: int = 0  # attempts that will be tried again
    attempts: int = 0
    outbox: dict[str, int] = field(default_factory=dict)  # states after the run
    last_errors: list[str] = field(default_factory=list)


def _bills_to_enqueue(state: StateStore, data_dir: Path, period: str | None) -> Iterator[outbox.NewBill]:
    table = MeasurementStore(data_dir).table(BILLS)
    files = table.files(period=period) if period else table.files()
    if not files:
        return
    frame = (
        pl.scan_parquet([str(f) for f in files])
        .filter(pl.col("status").is_in(PUBLISHED_STATUSES))
        .select(list(BILLS_SCHEMA))
        .unique(["bill_id", "version"], keep="last")
        .collect()
    )
    known = outbox.known_versions(state, frame["period"].unique().to_list())
    for row in frame.iter_rows(named=True):
        if (row["bill_id"], row["version"]) in known:
            continue
        payload = dict(row)
        payload["lines"] = json.loads(row["lines"]) if row["lines"] else []
        payload["idempotency_key"] = outbox.idempotency_key(row["bill_id"], row["version"])
        yield outbox.NewBill(row["bill_id"], row["version"], row["customer_code"], row["period"],
                             json.dumps(payload, default=str, ensure_ascii=False, sort_keys=True))


class _Token:
    """The intake's access token, fetched with client credentials and kept until near expiry."""

    def __init__(self, http: httpx.Client, url: str, client_id: str, secret: str) -> None:
        self.http, self.url, self.client_id, self._secret = http, url, client_id, secret
        self._value: str | None = None
        self._expires = 0.0
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"_Token(url={self.url!r}, client_id={self.client_id!r})"

    def get(self) -> str:
        with self._lock:
            if self._value is None or time.monotonic() > self._expires - 30:
                self._value, self._expires = self._fetch()
            return self._value

    def drop(self) -> None:
        with self._lock:
            self._value = None

    def _fetch(self) -> tuple[str, float]:
        try:
            reply = self.http.post(self.url, data={"grant_type": "client_credentials"},
                                   auth=(self.client_id, self._secret))
        except httpx.HTTPError as exc:
            raise PublishError(f"the portal's token endpoint {self.url} is unreachable: {exc!r}",
                               retryable=True) from exc
        if reply.status_code != 200:
            raise PublishError(
                f"the portal's token endpoint {self.url} answered {reply.status_code}",
                retryable=reply.status_code >= 500 or reply.status_code == 429,
                hint="check portal.client_id and portal.client_secret in amr.toml",
            )
        body = reply.json()
        return str(body["access_token"]), time.monotonic() + float(body.get("expires_in", 300))


def _deliver(http: httpx.Client, url: str, token: _Token, item: outbox.Item) -> tuple[str, str | None]:
    """('acknowledged' | 'retry' | 'failed', reason) for one attempt (one token refresh included)."""
    for fresh_token in (False, True):
        try:
            if fresh_token:
                token.drop()
            headers = {"Authorization": f"Bearer {token.get()}", "Idempotency-Key": item.idempotency_key,
                       "Content-Type": "application/json"}
            reply = http.post(url, content=item.payload.encode("utf-8"), headers=headers)
        except PublishError as exc:  # no token: never the bill's fault, so it stays pending
            return "retry", exc.message
        except httpx.HTTPError as exc:
            return "retry", f"{type(exc).__name__}: {exc}"[:300]
        if reply.status_code in (200, 201, 202, 409):  # 409: the portal has this key already
            return "acknowledged", None
        if reply.status_code == 401 and not fresh_token:
            continue
        reason = f"HTTP {reply.status_code}: {reply.text[:300]}"
        if reply.status_code in (401, 403, 408, 425, 429) or reply.status_code >= 500:
            return "retry", reason
        return "failed", reason
    return "retry", "the portal refused a fresh token"


def publish_pending(
    state: StateStore,
    data_dir: Path,
    *,
    settings: Settings,
    period: str | None = None,
    deadline_s: float = 30.0,
    concurrency: int = 8,
    timeout_s: float = 10.0,
    backoff_s: float = 0.5,
    max_backoff_s: float = 600.0,
    batch: int = 200,
    lease_s: float | None = None,
    clock: Callable[[], dt.datetime] = lambda: dt.datetime.now(dt.UTC),
) -> PublishReport:
    """Enqueue the period's (or every) issued bill not yet in the outbox, then deliver what is due,
    retrying with backoff for up to `deadline_s`; what is left stays pending for the next run."""
    portal = settings.portal
    if not portal.intake_url or not portal.token_url or not portal.client_id or not portal.client_secret:
        raise NotConfigured(
            "the portal's intake is not configured (portal.intake_url, token_url, client_id, client_secret)",
            hint="set them in the [portal] section of amr.toml or as AMR_PORTAL__INTAKE_URL etc.",
        )
    report = PublishReport()
    report.enqueued = outbox.enqueue(state, _bills_to_enqueue(state, data_dir, period), now=clock())
    # A claim outlives any attempt, so only a dead publisher's claims lapse.
    lease_s = lease_s if lease_s is not None else timeout_s * 3 + 5
    ends = time.monotonic() + deadline_s
    with httpx.Client(timeout=timeout_s) as http, ThreadPoolExecutor(concurrency) as pool:
        token = _Token(http, portal.token_url, portal.client_id, portal.client_secret.get_secret_value())
        while True:
            items = outbox.claim_due(state, now=clock(), limit=batch, lease_s=lease_s)
            if not items:
                due = outbox.next_due(state)
                wait = (due - clock()).total_seconds() if due else None
                if wait is None or time.monotonic() + max(wait, 0) > ends:
                    break
                time.sleep(max(wait, 0))  # backoff: nothing is due before then
                continue
            results = list(pool.map(lambda i: _deliver(http, portal.intake_url or "", token, i), items))
            now = clock()
            outcomes = []
            for item, (verdict, reason) in zip(items, results, strict=True):
                report.attempts += 1
                if verdict == "retry":
                    # Exponential backoff with jitter, so many bills do not return at one instant.
                    delay = min(max_backoff_s, backoff_s * 2 ** (item.attempts - 1)) * random.uniform(0.5, 1)
                    retry_at = now + dt.timedelta(seconds=delay)
                    outcomes.append(outbox.Outcome(item, "pending", reason, retry_at))
                    report.retried += 1
                else:
                    outcomes.append(outbox.Outcome(item, verdict, reason))
                    report.acknowledged += verdict == "acknowledged"
                    report.failed += verdict == "failed"
                if reason and len(report.last_errors) < 5:
                    report.last_errors.append(f"{item.bill_id} v{item.version}: {reason}")
            outbox.record(state, outcomes, now=now)
            if time.monotonic() > ends:
                break
    report.outbox = outbox.counts(state)
    return report


def describe(report: PublishReport) -> dict[str, Any]:
    return {"enqueued": report.enqueued, "acknowledged": report.acknowledged, "failed": report.failed,
            "retried": report.retried, "attempts": report.attempts, "outbox": report.outbox,
            "last_errors": report.last_errors}
