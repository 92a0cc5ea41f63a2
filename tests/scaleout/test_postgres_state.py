"""The operational store on PostgreSQL: every migration applies, and two processes share it."""

from __future__ import annotations

import datetime as dt
import multiprocessing
from collections.abc import Callable
from pathlib import Path

import pytest
import sqlalchemy as sa

from core.state import StateStore, _migration_steps, for_dialect
from headend.errors import SchedulerLocked
from headend.lock import acquire, release
from ingest.config import VeeConfig
from ingest.registry import RUN_COLUMNS, load_registry, parse_limits, run_registry, with_limits
from tests.ingest.builders import register
from tests.scaleout import state_workers


def _open(url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> StateStore:
    monkeypatch.setenv("AMR_STATE_URL", url)
    return StateStore.open(tmp_path)


def test_all_migrations_apply(pg_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    store = _open(pg_url, tmp_path, monkeypatch)
    query = sa.text("SELECT version FROM schema_migrations ORDER BY 1")
    with store.read() as conn:
        versions = [row[0] for row in conn.execute(query)]
    assert versions == [v for v, _, _ in _migration_steps()]
    assert store.migrate() == versions[-1]  # a second open applies nothing
    assert not (tmp_path / "state.db").exists()
    store.dispose()


def test_autoincrement_keys_work(pg_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    store = _open(pg_url, tmp_path, monkeypatch)
    insert = sa.text("INSERT INTO headend_daemon_events (at, kind) VALUES (:at, :kind)")
    with store.transaction() as conn:
        conn.execute(insert, [{"at": "2026-11-01T00:00:00Z", "kind": k} for k in ("a", "b")])
    with store.read() as conn:
        ids = [r[0] for r in conn.execute(sa.text("SELECT id FROM headend_daemon_events ORDER BY id"))]
    assert len(ids) == 2 and ids[0] < ids[1]
    store.dispose()


def test_sqlite_statements_are_left_alone() -> None:
    statement = "CREATE TABLE t (id INTEGER PRIMARY KEY AUTOINCREMENT)"
    assert for_dialect(statement, "sqlite") == statement
    translated = for_dialect(statement, "postgresql")
    assert translated is not None and "AUTOINCREMENT" not in translated
    # a statement given per dialect is taken as given, or skipped where it has none
    assert for_dialect({"sqlite": "A", "postgresql": "B"}, "postgresql") == "B"
    assert for_dialect({"sqlite": "A"}, "postgresql") is None


def test_description_hides_the_password(
    postgres: object, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AMR_STATE_URL", "postgresql+psycopg://amr:s3cret-pw@127.0.0.1:1/none")
    with pytest.raises(Exception) as info:
        StateStore.open(tmp_path)
    assert "s3cret-pw" not in str(info.value)


@pytest.mark.slow
def test_two_processes_migrate_and_lease_counters_at_once(pg_url: str, tmp_path: Path) -> None:
    context = multiprocessing.get_context("spawn")
    with context.Pool(2) as pool:
        versions = pool.map(state_workers.open_and_migrate, [(pg_url, str(tmp_path))] * 2, chunksize=1)
        assert versions[0] == versions[1] == _migration_steps()[-1][0]
        taken = pool.map(state_workers.take_counters, [(pg_url, str(tmp_path), 300)] * 2, chunksize=1)
    every = taken[0] + taken[1]
    assert len(every) == 600
    assert len(set(every)) == 600, "two processes were handed the same invocation counter"


def test_standby_scheduler_takes_over_an_expired_lease(
    pg_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = _open(pg_url, tmp_path, monkeypatch)
    now = dt.datetime(2026, 11, 1, tzinfo=dt.UTC)
    ttl = dt.timedelta(seconds=30)
    acquire(store, "active", ttl=ttl, now=now)
    with pytest.raises(SchedulerLocked, match="active"):
        acquire(store, "standby", ttl=ttl, now=now + dt.timedelta(seconds=10))
    acquire(store, "active", ttl=ttl, now=now + dt.timedelta(seconds=20))  # renewal
    # the active one dies: its lease runs out and the standby takes over, once
    acquire(store, "standby", ttl=ttl, now=now + dt.timedelta(seconds=51))
    with pytest.raises(SchedulerLocked, match="standby"):
        acquire(store, "active", ttl=ttl, now=now + dt.timedelta(seconds=52))
    release(store, "standby")
    acquire(store, "active", ttl=ttl, now=now + dt.timedelta(seconds=53))
    store.dispose()


def test_instants_read_back_as_written(pg_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    store = _open(pg_url, tmp_path, monkeypatch)
    written = ["2026-11-01T17:00:00.000000Z", "2026-11-01T17:00:00.250000Z"]
    with store.transaction() as conn:
        for at in written:
            conn.execute(
                sa.text("INSERT INTO headend_daemon_events (at, kind) VALUES (:at, 'x')"), {"at": at}
            )
    with store.read() as conn:
        read = [r[0] for r in conn.execute(sa.text("SELECT at FROM headend_daemon_events ORDER BY id"))]
        day = conn.execute(sa.text("SELECT CAST('2026-11-01' AS DATE)")).scalar_one()
    assert read == written
    assert day == "2026-11-01"
    store.dispose()


def test_registry_reads_the_same_as_on_sqlite(
    pg_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # ingest reads the registry on the driver's own cursor: its dates come back as each
    # database gives them, and must make the same frame
    def registry(store: StateStore) -> list[tuple[object, ...]]:
        register(store, ["A", "B"], installed=dt.date(2025, 3, 4))
        register(store, ["C"], installed=dt.date(2024, 1, 2), removed=dt.date(2026, 5, 6))
        frame = load_registry(store).sort("meter_id")
        store.dispose()
        return frame.rows()

    on_sqlite = registry(StateStore.open(tmp_path / "sqlite"))
    on_postgres = registry(_open(pg_url, tmp_path / "pg", monkeypatch))
    assert on_postgres == on_sqlite
    assert on_sqlite[2][3:5] == (dt.date(2024, 1, 2), dt.date(2026, 5, 6))


def test_the_registry_snapshot_follows_every_change_on_postgresql(
    pg_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # PostgreSQL counts the changes by statement-level triggers, SQLite by row-level ones
    store = _open(pg_url, tmp_path, monkeypatch)
    changes: list[Callable[[], None]] = [
        lambda: register(store, ["A", "B"]),
        lambda: _execute(store, "UPDATE meters SET removed_on = '2026-05-31' WHERE meter_id = 'A'"),
        lambda: _execute(store, "DELETE FROM meters WHERE meter_id = 'B'"),
    ]
    for change in changes:
        change()
        fresh = with_limits(parse_limits(load_registry(store, RUN_COLUMNS)), VeeConfig()).sort("meter_id")
        got = run_registry(store, tmp_path, VeeConfig()).sort("meter_id")
        assert got.equals(fresh.select(got.columns))
    (a,) = run_registry(store, tmp_path, VeeConfig()).rows(named=True)
    assert a["in_service_until"] == dt.datetime(2026, 5, 31, 17, tzinfo=dt.UTC)  # local midnight ending it
    store.dispose()


def _execute(store: StateStore, statement: str) -> None:
    with store.transaction() as conn:
        conn.execute(sa.text(statement))
