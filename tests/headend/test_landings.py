"""Recovery of pending landing units: roll forward, abandon, or leave a live writer alone."""

from __future__ import annotations

import datetime as dt
import json
import socket
from pathlib import Path

import polars as pl
import pytest
import sqlalchemy as sa

from core.landing import TMP_PREFIX, landing_dir, write_batch
from core.reading import Reading, to_frame
from core.state import StateStore
from headend import landings, watermarks

NOW = dt.datetime(2026, 3, 10, 3, 0, tzinfo=dt.UTC)
MARK = {("M1", "1.0.99.1.0.255"): NOW}


def pending(state: StateStore, landing_id: str, owner: str) -> None:
    with state.transaction() as conn:
        conn.execute(sa.text(
            "INSERT INTO headend_landings (landing_id, round_id, state, watermarks, created_at, owner)"
            " VALUES (:l, 'r', 'pending', :w, :at, :o)"),
            {"l": landing_id, "w": json.dumps(watermarks.encode(MARK)), "at": "2026-03-10T03:00:00.000000Z",
             "o": owner})


def states(state: StateStore) -> dict[str, str]:
    with state.read() as conn:
        return dict(conn.execute(sa.text("SELECT landing_id, state FROM headend_landings")).all())  # type: ignore[arg-type]


@pytest.mark.parametrize("live", [True, False])
def test_recovery(data_dir: Path, live: bool) -> None:
    import os

    state = StateStore.open(data_dir)
    owner = f"{socket.gethostname()}:{os.getpid() if live else 2**22 + 7}"
    frame = to_frame([Reading("M1", "1.0.1.8.0.255", NOW, 1, 0, "Wh", read_at=NOW)])
    pending(state, "landed-1", owner)
    write_batch(data_dir, frame.with_columns(source=pl.lit("x")), prefix="landed-1", now=NOW)
    pending(state, "lost-1", owner)
    day = landing_dir(data_dir) / "arrived=2026-03-10"
    stray = day / f"{TMP_PREFIX}lost-1-abc.parquet"
    stray.write_bytes(b"half a file")
    finished = landings.recover(state, data_dir)
    if live:
        assert finished == [] and states(state) == {"landed-1": "pending", "lost-1": "pending"}
        assert stray.exists() and watermarks.load(state) == {}
    else:
        assert [f.landing_id for f in finished] == ["landed-1"]
        assert states(state) == {"landed-1": "landed", "lost-1": "abandoned"}
        assert not stray.exists() and watermarks.load(state) == MARK
