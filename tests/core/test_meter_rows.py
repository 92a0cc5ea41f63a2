"""The registry's one writer of fleet rows: new meters get the next keys, known ones keep theirs."""

from __future__ import annotations

import json
from pathlib import Path

import sqlalchemy as sa

from core.buckets import bucket_of
from core.fleet import FleetRow
from core.meter_rows import save_meters
from core.state import StateStore


def _row(meter_id: str, route: str) -> FleetRow:
    return FleetRow(meter_id=meter_id, url="dlms+tcp://10.0.0.1:4059", route=route, rated_current_a="60")


def test_new_meters_get_the_next_keys_and_known_ones_keep_theirs(tmp_path: Path) -> None:
    state = StateStore.open(tmp_path)
    with state.transaction() as conn:
        assert save_meters(conn, [_row("A", "R1"), _row("B", "R1")], buckets=4) == (2, 0)
    with state.transaction() as conn:
        assert save_meters(conn, [_row("B", "R2"), _row("C", "R1")], buckets=4) == (1, 1)
    with state.read() as conn:
        rows = conn.execute(
            sa.text("SELECT meter_id, meter_key, route, bucket, attributes FROM meters ORDER BY meter_id")
        ).all()
    assert [(r[0], r[1], r[2]) for r in rows] == [("A", 1, "R1"), ("B", 2, "R2"), ("C", 3, "R1")]
    assert all(r[3] == bucket_of(r[0], 4) for r in rows)
    assert all(json.loads(r[4]) == _row(r[0], r[2]).attributes() for r in rows)
    assert json.loads(rows[0][4])["rated_current_a"] == "60"
