"""A stand-in for the city portal's bill intake: a real HTTP server on loopback.

It issues bearer tokens for one client (client credentials, Basic or form), checks the
token, the `Idempotency-Key` header and the payload of each bill, keeps each key once
(a repeat answers 200 "duplicate"), and records what it received. Faults can be switched
on while it runs: an outage (503 to everything), the next N requests failing, answering
slowly, dropping the connection before storing, or storing and then dropping the reply
(the case that only idempotency keys make safe).
"""

from __future__ import annotations

import base64
import binascii
import hmac
import json
import secrets
import threading
import time
import urllib.parse
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

REQUIRED = {"bill_id": str, "version": int, "customer_code": str, "period": str, "total_amount": int,
            "idempotency_key": str}
MAX_BODY = 1 << 20


@dataclass
class Faults:
    down: bool = False  # every request answers 503
    fail_next: int = 0  # the next N intake requests answer `fail_status`
    fail_status: int = 503
    drop_next: int = 0  # the next N intake requests: connection closed, nothing stored
    drop_reply_next: int = 0  # the next N intake requests: stored, then connection closed
    slow_s: float = 0.0  # delay before answering


@dataclass
class Intake:
    url: str
    token_url: str
    client_id: str
    faults: Faults
    received: dict[str, dict[str, Any]] = field(default_factory=dict)  # idempotency key -> bill
    requests: int = 0
    duplicates: int = 0
    rejected: list[str] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)
    tokens: dict[str, float] = field(default_factory=dict, repr=False)

    def set_down(self, down: bool) -> None:
        with self.lock:
            self.faults.down = down

    def fail(self, count: int, status: int = 503) -> None:
        with self.lock:
            self.faults.fail_next, self.faults.fail_status = count, status

    def drop(self, count: int, *, after_storing: bool = False) -> None:
        with self.lock:
            if after_storing:
                self.faults.drop_reply_next = count
            else:
                self.faults.drop_next = count

    def slow(self, seconds: float) -> None:
        with self.lock:
            self.faults.slow_s = seconds

    def revoke_tokens(self) -> None:
        with self.lock:
            self.tokens.clear()


def _handler(intake: Intake, secret: str, token_ttl_s: int) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: Any) -> None:  # quiet: tests read `intake` instead
            return

        def _answer(self, status: int, body: dict[str, Any]) -> None:
            raw = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(raw)))
            self.end_headers()
            self.wfile.write(raw)

        def _drop(self) -> None:
            self.close_connection = True
            self.connection.close()

        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            if length > MAX_BODY:
                self._answer(413, {"error": "too_large"})
                return
            body = self.rfile.read(length)
            with intake.lock:
                faults = intake.faults
                slow, down = faults.slow_s, faults.down
            if slow:
                time.sleep(slow)  # the fault being simulated: a slow portal
            if down:
                self._answer(503, {"error": "unavailable", "message": "the portal is down"})
                return
            path = urllib.parse.urlsplit(self.path).path
            if path == "/oauth/token":
                self._token(body)
            elif path == "/intake/bills":
                self._bill(body)
            else:
                self._answer(404, {"error": "not_found"})

        def _token(self, body: bytes) -> None:
            form = urllib.parse.parse_qs(body.decode("utf-8", "replace"))
            client_id = form.get("client_id", [""])[0]
            given = form.get("client_secret", [""])[0]
            header = self.headers.get("Authorization", "")
            if header.lower().startswith("basic "):
                try:
                    client_id, _, given = base64.b64decode(header[6:]).decode().partition(":")
                except (binascii.Error, UnicodeDecodeError):
                    client_id = given = ""
            if form.get("grant_type", [""])[0] != "client_credentials":
                self._answer(400, {"error": "unsupported_grant_type"})
                return
            if client_id != intake.client_id or not hmac.compare_digest(given.encode(), secret.encode()):
                self._answer(401, {"error": "invalid_client"})
                return
            token = secrets.token_urlsafe(24)
            with intake.lock:
                intake.tokens[token] = time.monotonic() + token_ttl_s
            self._answer(200, {"access_token": token, "token_type": "Bearer", "expires_in": token_ttl_s})

        def _bill(self, body: bytes) -> None:
            with intake.lock:
                intake.requests += 1
                token = self.headers.get("Authorization", "").removeprefix("Bearer ")
                valid = intake.tokens.get(token, 0) > time.monotonic()
                fail = intake.faults.fail_next > 0
                intake.faults.fail_next -= fail
                drop = intake.faults.drop_next > 0
                intake.faults.drop_next -= drop
            if drop:
                self._drop()
                return
            if fail:
                self._answer(intake.faults.fail_status, {"error": "unavailable"})
                return
            if not valid:
                self._answer(401, {"error": "invalid_token"})
                return
            key = self.headers.get("Idempotency-Key", "")
            problem = _check(key, body)
            if problem:
                with intake.lock:
                    intake.rejected.append(problem)
                self._answer(422, {"error": "invalid_bill", "message": problem})
                return
            with intake.lock:
                duplicate = key in intake.received
                if duplicate:
                    intake.duplicates += 1
                else:
                    intake.received[key] = json.loads(body)
                drop_reply = intake.faults.drop_reply_next > 0
                intake.faults.drop_reply_next -= drop_reply
            if drop_reply:
                self._drop()
                return
            self._answer(200 if duplicate else 201, {"status": "duplicate" if duplicate else "accepted"})

    return Handler


def _check(key: str, body: bytes) -> str | None:
    if not key or len(key) > 200:
        return "the Idempotency-Key header is missing or longer than 200 characters"
    try:
        bill = json.loads(body)
    except ValueError:
        return "the body is not JSON"
    if not isinstance(bill, dict):
        return "the body is not a JSON object"
    for name, kind in REQUIRED.items():
        if not isinstance(bill.get(name), kind):
            return f"field {name} is missing or not a {kind.__name__}"
    if bill["idempotency_key"] != key:
        return "the Idempotency-Key header differs from the bill's idempotency_key"
    return None


@contextmanager
def run_intake_standin(
    port: int = 0,
    *,
    client_secret: str,
    client_id: str = "amr-publisher",
    faults: Faults | None = None,
    token_ttl_s: int = 3600,
    host: str = "127.0.0.1",
) -> Iterator[Intake]:
    """Serve the stand-in from a thread until the block ends."""
    server = ThreadingHTTPServer((host, port), BaseHTTPRequestHandler)
    server.daemon_threads = True
    base = f"http://{host}:{server.server_address[1]}"
    intake = Intake(url=f"{base}/intake/bills", token_url=f"{base}/oauth/token", client_id=client_id,
                    faults=faults or Faults())
    server.RequestHandlerClass = _handler(intake, client_secret, token_ttl_s)
    thread = threading.Thread(target=server.serve_forever, name="intake-standin", daemon=True)
    thread.start()
    try:
        yield intake
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)
