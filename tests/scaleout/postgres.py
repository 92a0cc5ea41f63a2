"""A throw-away PostgreSQL server for tests: initdb in a temporary directory, loopback port.

initdb refuses to run as root, so under root the server runs as the `postgres` account
that Debian's package creates. Tests that need it skip, saying why, when the binaries or
the driver are missing.
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import socket
import subprocess
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class PostgresServer:
    port: int
    user: str = "amr"

    def url(self, database: str) -> str:
        return f"postgresql+psycopg://{self.user}@127.0.0.1:{self.port}/{database}"

    def _admin(self) -> object:
        import psycopg

        return psycopg.connect(
            host="127.0.0.1", port=self.port, user=self.user, dbname="postgres", autocommit=True
        )

    def create_database(self) -> str:
        name = f"t_{uuid.uuid4().hex[:12]}"
        with self._admin() as conn:  # type: ignore[attr-defined]
            conn.execute(f'CREATE DATABASE "{name}"')  # a generated name, not input
        return name

    def drop_database(self, name: str) -> None:
        with self._admin() as conn:  # type: ignore[attr-defined]
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def binaries() -> Path | None:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    return Path(found[-1]).parent if found else None


def missing_reason() -> str | None:
    if binaries() is None:
        return "PostgreSQL binaries not found under /usr/lib/postgresql/*/bin (apt-get install postgresql)"
    try:
        import psycopg  # noqa: F401
    except ImportError:
        return "the psycopg driver is not installed (pip install 'psycopg[binary]')"
    if os.geteuid() == 0:
        try:
            pwd.getpwnam("postgres")
        except KeyError:
            return "running as root and no `postgres` account to run the server as"
    return None


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@contextmanager
def running_server(root: Path) -> Iterator[PostgresServer]:
    bin_dir = binaries()
    assert bin_dir is not None
    data = root / "pgdata"
    run_as: list[str] = []
    if os.geteuid() == 0:
        account = pwd.getpwnam("postgres")
        root.mkdir(parents=True, exist_ok=True)
        os.chown(root, account.pw_uid, account.pw_gid)
        run_as = ["runuser", "-u", "postgres", "--"]
    env = {**os.environ, "LC_ALL": "C", "TZ": "UTC"}
    subprocess.run(
        [*run_as, str(bin_dir / "initdb"), "-D", str(data), "-U", "amr", "--auth=trust", "-E", "UTF8"],
        check=True, capture_output=True, env=env, timeout=120,
    )
    port = _free_port()
    options = f"-p {port} -k {root} -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=200"
    subprocess.run(
        [*run_as, str(bin_dir / "pg_ctl"), "-D", str(data), "-o", options, "-l", str(root / "log"),
         "-w", "-t", "60", "start"],
        check=True, capture_output=True, env=env, timeout=90,
    )
    try:
        yield PostgresServer(port)
    finally:
        subprocess.run(
            [*run_as, str(bin_dir / "pg_ctl"), "-D", str(data), "-m", "immediate", "-w", "stop"],
            capture_output=True, env=env, timeout=60,
        )
        shutil.rmtree(root, ignore_errors=True)
