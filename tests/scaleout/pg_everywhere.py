"""A pytest plugin that runs any test suite with its operational store on PostgreSQL.

    .venv/bin/pytest -p tests.scaleout.pg_everywhere tests/headend

Each test gets a fresh database through AMR_STATE_URL (set after the suite's own fixture
has cleared the AMR_* environment). This is how the rooms' SQL was checked on PostgreSQL.
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.scaleout.postgres import PostgresServer, missing_reason, running_server


@pytest.fixture(scope="session")
def _pg_everywhere_server() -> Iterator[PostgresServer]:
    reason = missing_reason()
    if reason:
        pytest.skip(reason)
    with running_server(Path(tempfile.mkdtemp(prefix="amr-pg-", dir="/tmp"))) as server:
        yield server


@pytest.fixture(autouse=True)
def _state_on_postgres(
    _isolated_environment: None, _pg_everywhere_server: PostgresServer, monkeypatch: pytest.MonkeyPatch
) -> Iterator[None]:
    name = _pg_everywhere_server.create_database()
    monkeypatch.setenv("AMR_STATE_URL", _pg_everywhere_server.url(name))
    yield
    _pg_everywhere_server.drop_database(name)
