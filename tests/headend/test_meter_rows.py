"""Per-meter rows are read for the round's meters only, in chunks of bound parameters."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from core.state import StateStore
from headend import meter_rows, watermarks

T = dt.datetime(2026, 3, 10, 3, 0, tzinfo=dt.UTC)


def test_rows_for_some_meters_across_chunks(data_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    state = StateStore.open(data_dir)
    marks = {(f"M{i:03d}", p): T + dt.timedelta(minutes=i) for i in range(23) for p in ("load", "events")}
    with state.transaction() as conn:
        watermarks.apply(conn, marks)
    monkeypatch.setattr(meter_rows, "CHUNK", 4)  # several chunks, the last one short
    wanted = {f"M{i:03d}" for i in range(0, 23, 2)} | {"not-a-meter", "M'; DROP TABLE x"}
    assert watermarks.load(state, wanted) == {k: v for k, v in marks.items() if k[0] in wanted}
    assert watermarks.load(state) == marks
    assert watermarks.load(state, []) == {}
