"""The operational store: registry, watermarks, counters, logs, outbox, jobs.

SQLite in WAL mode in the data directory (a cluster points the same schema at PostgreSQL
with `AMR_STATE_URL`). Many processes write it in short transactions: each write
transaction starts with BEGIN IMMEDIATE, so two writers queue on the busy timeout instead
of deadlocking on a lock upgrade. Migrations are applied on open, in version order.
"""

from __future__ import annotations

import importlib
import os
import pkgutil
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.engine import Connection, Engine

from core import migrations
from core.errors import StoreError

BUSY_TIMEOUT_S = 30


def _sqlite_engine(path: Path) -> Engine:
    engine = sa.create_engine(
        f"sqlite+pysqlite:///{path}",
        connect_args={"timeout": BUSY_TIMEOUT_S, "isolation_level": None},
    )

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn: sqlite3.Connection, _record: Any) -> None:
        cursor = dbapi_conn.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_S * 1000}")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Connection) -> None:
        # pysqlite's own BEGIN is deferred; IMMEDIATE takes the write lock up front.
        conn.exec_driver_sql("BEGIN IMMEDIATE")

    return engine


def _migration_steps() -> list[tuple[int, str, list[str]]]:
    """Every `core/migrations/vNNNN_name.py` module's STATEMENTS, in version order."""
    steps = []
    for info in pkgutil.iter_modules(migrations.__path__):
        if not info.name.startswith("v"):
            continue
        version = int(info.name[1:5])
        module = importlib.import_module(f"core.migrations.{info.name}")
        steps.append((version, info.name, list(module.STATEMENTS)))
    steps.sort()
    versions = [v for v, _, _ in steps]
    if len(set(versions)) != len(versions):
        raise StoreError(f"two migrations share a version number: {versions}")
    return steps


class StateStore:
    """A handle on the operational store; cheap to create, safe to use from many processes."""

    def __init__(self, engine: Engine, *, description: str) -> None:
        self.engine = engine
        self.description = description

    @classmethod
    def open(cls, data_dir: Path) -> StateStore:
        url = os.environ.get("AMR_STATE_URL")
        if url:
            store = cls(sa.create_engine(url, pool_pre_ping=True), description="state database")
        else:
            data_dir.mkdir(parents=True, exist_ok=True)
            path = data_dir / "state.db"
            store = cls(_sqlite_engine(path), description=str(path))
        store.migrate()
        return store

    def migrate(self) -> int:
        """Apply the migrations not yet applied; returns the schema version."""
        try:
            with self.engine.begin() as conn:
                conn.exec_driver_sql(
                    "CREATE TABLE IF NOT EXISTS schema_migrations "
                    "(version INTEGER PRIMARY KEY, name TEXT NOT NULL, "
                    "applied_at TIMESTAMP DEFAULT CURRENT_TIMESTAMP)"
                )
                done = {row[0] for row in conn.exec_driver_sql("SELECT version FROM schema_migrations")}
                applied = max(done, default=0)
                for version, name, statements in _migration_steps():
                    if version in done:
                        continue
                    for statement in statements:
                        conn.exec_driver_sql(statement)
                    conn.execute(
                        sa.text("INSERT INTO schema_migrations (version, name) VALUES (:v, :n)"),
                        {"v": version, "n": name},
                    )
                    applied = max(applied, version)
                return applied
        except sa.exc.DatabaseError as exc:
            raise StoreError(
                f"the operational store {self.description} cannot be opened: {exc.orig}",
                hint="restore state.db from a backup, or move it aside to start afresh",
            ) from exc

    @contextmanager
    def transaction(self) -> Iterator[Connection]:
        """One short write transaction; keep the work inside small."""
        with self.engine.begin() as conn:
            yield conn

    @contextmanager
    def read(self) -> Iterator[Connection]:
        with self.engine.connect() as conn:
            yield conn

    def dispose(self) -> None:
        self.engine.dispose()
