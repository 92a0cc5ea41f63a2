"""Prometheus text exposition (format 0.0.4) of the head-end's state, computed from the store.

Counters come from the communication log, so every process that polls contributes and a
restarted daemon does not reset them.
"""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import Callable

import sqlalchemy as sa

from core.state import StateStore
from headend.timestamps import to_db

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


def _label(value: object) -> str:
    return str(value).replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _labels(**labels: object) -> str:
    return "{" + ",".join(f'{k}="{_label(v)}"' for k, v in labels.items()) + "}"


def render(state: StateStore, *, now: dt.datetime) -> str:
    lines: list[str] = []

    def family(name: str, kind: str, help_text: str) -> None:
        lines.append(f"# HELP {name} {help_text}")
        lines.append(f"# TYPE {name} {kind}")

    with state.read() as conn:
        attempts = conn.execute(sa.text(
            "SELECT protocol, outcome, COALESCE(error_class, '') AS error_class, COUNT(*) AS n,"
            " COALESCE(SUM(bytes), 0) AS bytes, COALESCE(SUM(readings), 0) AS readings"
            " FROM headend_comm_log GROUP BY protocol, outcome, COALESCE(error_class, '')"
            " ORDER BY 1, 2, 3"
        )).all()
        failing = conn.execute(sa.text(
            "SELECT COUNT(*) AS failing, SUM(CASE WHEN open_until > :now THEN 1 ELSE 0 END) AS open"
            " FROM headend_meter_health WHERE consecutive_failures > 0"
        ), {"now": to_db(now)}).one()
        meters = conn.execute(sa.text("SELECT COUNT(*) FROM meters")).scalar_one()
        rounds = conn.execute(sa.text(
            "SELECT kind, outcome, COUNT(*) AS n FROM headend_rounds GROUP BY kind, outcome ORDER BY 1, 2"
        )).all()
    family("amr_headend_attempts_total", "counter", "Meter session attempts by outcome and error class.")
    for r in attempts:
        labels = _labels(protocol=r.protocol, outcome=r.outcome, error_class=r.error_class)
        lines.append(f"amr_headend_attempts_total{labels} {r.n}")
    family("amr_headend_readings_total", "counter", "Readings read from meters.")
    for r in attempts:
        if r.readings:
            labels = _labels(protocol=r.protocol, outcome=r.outcome, error_class=r.error_class)
            lines.append(f"amr_headend_readings_total{labels} {r.readings}")
    family("amr_headend_rounds_total", "counter", "Poll rounds by kind and outcome.")
    for r in rounds:
        labels = _labels(kind=r.kind, outcome=r.outcome or "running")
        lines.append(f"amr_headend_rounds_total{labels} {r.n}")
    family("amr_headend_meters", "gauge", "Meters in the registry.")
    lines.append(f"amr_headend_meters {meters}")
    family("amr_headend_meters_failing", "gauge", "Meters whose last round failed.")
    lines.append(f"amr_headend_meters_failing {failing.failing or 0}")
    family("amr_headend_breakers_open", "gauge", "Meters left alone by an open circuit breaker.")
    lines.append(f"amr_headend_breakers_open {failing.open or 0}")
    return "\n".join(lines) + "\n"


async def serve(
    host: str, port: int, body: Callable[[], str]
) -> asyncio.Server:
    """A minimal HTTP/1.0 endpoint answering every GET with the metrics text."""

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), timeout=5)
            payload = (await asyncio.to_thread(body)).encode()
            head = (f"HTTP/1.0 200 OK\r\nContent-Type: {CONTENT_TYPE}\r\n"
                    f"Content-Length: {len(payload)}\r\nConnection: close\r\n\r\n")
            writer.write(head.encode() + payload)
            await writer.drain()
        except (TimeoutError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, ConnectionError):
            pass  # a scraper that hung up or sent garbage gets nothing
        finally:
            writer.close()

    return await asyncio.start_server(handle, host, port)
