"""Fixtures for the scale-out tests: a PostgreSQL server and a two-worker Dask cluster."""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from core.executor import DaskExecutor
from tests.scaleout.postgres import PostgresServer, missing_reason, running_server


@pytest.fixture(scope="session")
def postgres() -> Iterator[PostgresServer]:
    reason = missing_reason()
    if reason:
        pytest.skip(reason)
    # Not pytest's tmp_path: the postgres account must be able to reach the directory.
    with running_server(Path(tempfile.mkdtemp(prefix="amr-pg-", dir="/tmp"))) as server:
        yield server


@pytest.fixture
def pg_url(postgres: PostgresServer) -> Iterator[str]:
    """A fresh, empty database on the session's server."""
    name = postgres.create_database()
    yield postgres.url(name)
    postgres.drop_database(name)


@pytest.fixture(scope="session")
def cluster() -> Iterator[DaskExecutor]:
    """A Dask LocalCluster of two worker processes on loopback, shared by the session."""
    with DaskExecutor.local_cluster(workers=2) as executor:
        assert isinstance(executor, DaskExecutor)
        yield executor
