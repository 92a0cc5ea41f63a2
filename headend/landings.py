"""Landing a round's readings together with the watermarks they justify, exactly once.

A landing unit goes: (1) record it as pending with the watermarks it will set, (2) write
the batch with `core.landing.write_batch` (temporary name, fsync, rename) under a prefix
equal to the unit's id, (3) apply the watermarks and mark it landed, in one transaction.
A head-end killed between (2) and (3) leaves a batch and a pending unit: `recover` finds
the batch by its prefix and rolls forward. Killed before (2), the unit is abandoned and
its meters are read again from the old watermarks. Either way nothing is lost or twice.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import socket
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import polars as pl
import sqlalchemy as sa
from sqlalchemy.engine import Connection

from core.landing import TMP_PREFIX, landing_dir, write_batch
from core.state import StateStore
from headend import watermarks
from headend.timestamps import from_db, to_db
from headend.watermarks import WatermarkKey


def owner() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"

FOREIGN_UNIT_AGE = dt.timedelta(hours=1)


@dataclass(frozen=True, slots=True)
class Landed:
    landing_id: str
    batch_path: Path | None
    rows: int


def _find_batch(data_dir: Path, landing_id: str) -> Path | None:
    for path in sorted(landing_dir(data_dir).glob(f"arrived=*/{landing_id}-*.parquet")):
        return path
    return None


def land(
    state: StateStore,
    data_dir: Path,
    *,
    round_id: str,
    frame: pl.DataFrame,
    marks: Mapping[WatermarkKey, dt.datetime],
    now: dt.datetime,
    extra: Callable[[Connection], None] | None = None,
    bucket: int | None = None,
) -> Landed:
    """Land one frame and move its watermarks; `extra` runs in the final transaction.
    `bucket`: the frame's meters are all of this bucket (said in the batch for ingest)."""
    landing_id = f"{round_id}-{uuid.uuid4().hex[:6]}"
    encoded = json.dumps(watermarks.encode(marks))
    batch_path: Path | None = None
    if frame.height:
        with state.transaction() as conn:
            conn.execute(
                sa.text(
                    "INSERT INTO headend_landings (landing_id, round_id, state, watermarks, created_at,"
                    " owner) VALUES (:l, :r, 'pending', :w, :at, :o)"
                ),
                {"l": landing_id, "r": round_id, "w": encoded, "at": to_db(dt.datetime.now(dt.UTC)),
                 "o": owner()},
            )
        batch_path = write_batch(data_dir, frame, prefix=landing_id, now=now, bucket=bucket).path
    with state.transaction() as conn:
        watermarks.apply(conn, marks)
        if frame.height:
            conn.execute(
                sa.text(
                    "UPDATE headend_landings SET state = 'landed', batch_path = :p, rows_landed = :n"
                    " WHERE landing_id = :l"
                ),
                {"p": str(batch_path), "n": frame.height, "l": landing_id},
            )
        if extra is not None:
            extra(conn)
    return Landed(landing_id, batch_path, frame.height)


def _orphaned(owner: str | None, created_at: str, now: dt.datetime) -> bool:
    """A pending unit whose writer is gone: a dead process here, or a stale unit of another host."""
    if owner is None:
        return True
    host, _, pid = owner.rpartition(":")
    if host == socket.gethostname() and pid.isdigit():
        try:
            os.kill(int(pid), 0)
        except ProcessLookupError:
            return True
        except PermissionError:
            return False
        return False
    return now - from_db(created_at) > FOREIGN_UNIT_AGE


def recover(state: StateStore, data_dir: Path) -> list[Landed]:
    """Finish or abandon the pending units a killed head-end left; returns those finished.

    Units of live writers (another round in this process, another process on this host) are
    left alone, so two rounds at once never disturb each other.
    """
    with state.read() as conn:
        pending = conn.execute(
            sa.text(
                "SELECT landing_id, watermarks, owner, created_at FROM headend_landings"
                " WHERE state = 'pending'"
            )
        ).all()
    finished = []
    now = dt.datetime.now(dt.UTC)
    for row in pending:
        if not _orphaned(row.owner, row.created_at, now):
            continue
        batch = _find_batch(data_dir, row.landing_id)
        with state.transaction() as conn:
            if batch is not None:
                watermarks.apply(conn, watermarks.decode(json.loads(row.watermarks)))
                conn.execute(
                    sa.text(
                        "UPDATE headend_landings SET state = 'landed', batch_path = :p"
                        " WHERE landing_id = :l"
                    ),
                    {"p": str(batch), "l": row.landing_id},
                )
                finished.append(Landed(row.landing_id, batch, 0))
            else:
                conn.execute(
                    sa.text("UPDATE headend_landings SET state = 'abandoned' WHERE landing_id = :l"),
                    {"l": row.landing_id},
                )
                for temporary in landing_dir(data_dir).glob(f"arrived=*/{TMP_PREFIX}{row.landing_id}-*"):
                    temporary.unlink(missing_ok=True)
    return finished


def batches_of(state: StateStore, round_ids: Sequence[str]) -> list[Path]:
    with state.read() as conn:
        rows = conn.execute(
            sa.text("SELECT round_id, batch_path FROM headend_landings WHERE state = 'landed'")
        ).all()
    wanted = set(round_ids)
    return [Path(r.batch_path) for r in rows if r.round_id in wanted and r.batch_path]
