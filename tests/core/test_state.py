from __future__ import annotations

import multiprocessing
from pathlib import Path

import pytest
import sqlalchemy as sa

from core.errors import StoreError
from core.state import StateStore


def test_migrations_apply_once_and_are_recorded(data_dir: Path) -> None:
    store = StateStore.open(data_dir)
    version = store.migrate()
    assert version >= 1
    with store.read() as conn:
        versions = [r[0] for r in conn.execute(sa.text("SELECT version FROM schema_migrations"))]
    assert len(versions) == len(set(versions))
    assert StateStore.open(data_dir).migrate() == version


def test_wal_mode_is_on(data_dir: Path) -> None:
    store = StateStore.open(data_dir)
    with store.read() as conn:
        assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"


def test_a_corrupt_file_gives_a_clear_error(data_dir: Path) -> None:
    (data_dir / "state.db").write_bytes(b"this is not a database" * 100)
    with pytest.raises(StoreError) as info:
        StateStore.open(data_dir)
    assert "state.db" in str(info.value) and info.value.hint


def _insert(data_dir: str, prefix: str, count: int) -> None:
    store = StateStore.open(Path(data_dir))
    for i in range(count):
        with store.transaction() as conn:
            conn.execute(
                sa.text("INSERT INTO landing_taken (batch_path, sha256, rows_in) VALUES (:p, 'x', :n)"),
                {"p": f"{prefix}-{i}", "n": i},
            )


def test_two_processes_write_at_once_without_locking_each_other_out(data_dir: Path) -> None:
    StateStore.open(data_dir)
    context = multiprocessing.get_context("spawn")
    workers = [context.Process(target=_insert, args=(str(data_dir), p, 100)) for p in ("a", "b")]
    for w in workers:
        w.start()
    for w in workers:
        w.join(timeout=60)
        assert w.exitcode == 0
    with StateStore.open(data_dir).read() as conn:
        assert conn.execute(sa.text("SELECT count(*) FROM landing_taken")).scalar() == 200


def test_a_reader_is_never_held_up_by_an_open_write_transaction(data_dir: Path) -> None:
    store = StateStore.open(data_dir)
    with store.transaction() as writer:
        writer.execute(sa.text("INSERT INTO landing_taken (batch_path, sha256, rows_in) "
                               "VALUES ('w', 'x', 1)"))
        # a second connection reads the last committed state at once, without the write lock
        with store.read() as reader:
            assert reader.execute(sa.text("SELECT count(*) FROM landing_taken")).scalar() == 0
