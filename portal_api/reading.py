"""Reads of the operational store on the portal's hot path (registry links, payments).

`StateStore.read()` begins every transaction with BEGIN IMMEDIATE on SQLite, which takes
the database's write lock: fine for the stages' short writes, but it would make every
portal read queue behind every other process, and server workers behind each other. On
SQLite the portal therefore reads through plain read-only connections, one per thread:
in WAL mode they never block writers and writers never block them, and they skip
SQLAlchemy's per-query overhead (a large share of a request's time). On PostgreSQL it
reads through the store's engine. The SQL uses `:name` parameters, which both accept.
"""

from __future__ import annotations

import sqlite3
import threading
from typing import Any

import sqlalchemy as sa

from core.state import BUSY_TIMEOUT_S, StateStore
from portal_api.serving import MMAP_BYTES


class StoreReader:
    def __init__(self, state: StateStore) -> None:
        self.state = state
        url = state.engine.url
        self._path = url.database if url.get_backend_name() == "sqlite" else None
        self._local = threading.local()

    def _conn(self) -> sqlite3.Connection:
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is None:
            conn = sqlite3.connect(f"file:{self._path}?mode=ro", uri=True, timeout=BUSY_TIMEOUT_S,
                                   check_same_thread=False)
            conn.execute(f"PRAGMA mmap_size={MMAP_BYTES}")
            self._local.conn = conn
        return conn

    def rows(self, sql: str, params: dict[str, Any]) -> list[tuple[Any, ...]]:
        if self._path is None:
            with self.state.engine.connect() as conn:
                return [tuple(r) for r in conn.execute(sa.text(sql), params)]
        return self._conn().execute(sql, params).fetchall()
