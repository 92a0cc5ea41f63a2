"""The registry as ingest reads it: limits from attributes, fleet registration."""

from __future__ import annotations

import datetime as dt
import json
import os
from pathlib import Path

import polars as pl
import pytest
import sqlalchemy as sa

from core.buckets import bucket_of
from core.state import StateStore
from ingest.config import VeeConfig
from ingest.errors import ImportRefused
from ingest.registry import (
    LIMIT_ATTRIBUTES,
    REGISTRY_SCHEMA,
    RUN_COLUMNS,
    SNAPSHOT,
    load_registry,
    parse_limits,
    refresh_snapshot,
    register_fleet,
    run_registry,
    with_limits,
)
from tests.ingest.builders import BUCKETS, register


def test_limits_come_from_attributes_with_defaults(state: StateStore) -> None:
    register(state, ["A"], attributes={"rated_current_a": "60", "phases": 3})
    register(state, ["B"])
    frame = with_limits(parse_limits(load_registry(state)), VeeConfig()).sort("meter_id")
    a, b = frame.rows(named=True)
    assert a["rated_mwh"] == 60 * 230 * 3 * 15 * 1000 // 60
    assert b["rated_mwh"] == 100 * 230 * 15 * 1000 // 60
    assert b["capacity_mwh"] == 10**12
    assert a["in_service_from"] == dt.datetime(2025, 12, 31, 17, tzinfo=dt.UTC)


def test_a_runs_registry_is_the_full_registrys_columns_it_names(state: StateStore) -> None:
    register(state, ["A", "B"], attributes={"rated_current_a": "60"}, route="R7")
    full, run = load_registry(state), load_registry(state, RUN_COLUMNS)
    assert run.columns == list(RUN_COLUMNS)
    assert run.sort("meter_id").equals(full.select(RUN_COLUMNS).sort("meter_id"))
    assert full.columns == list(REGISTRY_SCHEMA)
    with pytest.raises(ValueError, match="route"):
        load_registry(state, ("meter_id", "route"))


def test_fleet_registers_new_meters_once(state: StateStore, tmp_path: Path) -> None:
    fleet = tmp_path / "fleet.csv"
    fleet.write_text("meter_id,url\nF1,dlms+tcp://10.0.0.1:4059\nF2,dlms+tcp://10.0.0.2:4059\n")
    assert register_fleet(state, fleet, buckets=4) == 2
    assert register_fleet(state, fleet, buckets=4) == 0
    assert sorted(load_registry(state).get_column("meter_key").to_list()) == [1, 2]


def test_fleet_leaves_known_meters_as_they_are_and_takes_a_meters_first_row(
    state: StateStore, tmp_path: Path
) -> None:
    fleet = tmp_path / "fleet.csv"
    fleet.write_text("meter_id,url,route\nF1,dlms+tcp://10.0.0.1:4059,R1\n")
    register_fleet(state, fleet, buckets=4)
    fleet.write_text(
        "meter_id,url,route\nF1,dlms+tcp://10.0.0.1:4059,R9\nF2,dlms+tcp://10.0.0.2:4059,R2\n"
        "F2,dlms+tcp://10.0.0.2:4059,R3\n"
    )
    assert register_fleet(state, fleet, buckets=4) == 1
    routes = dict(load_registry(state).select("meter_id", "route").iter_rows())
    assert routes == {"F1": "R1", "F2": "R2"}


def test_a_bad_fleet_row_refuses_the_file(state: StateStore, tmp_path: Path) -> None:
    fleet = tmp_path / "fleet.csv"
    fleet.write_text("meter_id,url\nF1,dlms+tcp://10.0.0.1:4059\nF 2,ftp://x\n")
    with pytest.raises(ImportRefused, match="row 3"):
        register_fleet(state, fleet, buckets=4)
    assert load_registry(state).height == 0


def test_the_registry_frame_holds_what_the_table_holds(state: StateStore) -> None:
    """Every column with its type, dates and nulls included (dates are text in SQLite)."""
    register(state, ["A"], installed=dt.date(2025, 3, 9), removed=dt.date(2026, 5, 31), route="R7")
    register(state, ["B"], attributes={"phases": 3})
    frame = load_registry(state).sort("meter_id")
    assert frame.schema == REGISTRY_SCHEMA
    a, b = frame.rows(named=True)
    assert (a["meter_key"], a["installed_on"], a["removed_on"], a["route"]) == (
        1, dt.date(2025, 3, 9), dt.date(2026, 5, 31), "R7"
    )
    assert (b["meter_key"], b["installed_on"], b["removed_on"]) == (2, dt.date(2026, 1, 1), None)
    assert json.loads(b["attributes"]) == {"phases": 3}
    assert a["bucket"] == bucket_of("A", BUCKETS) and b["customer_code"] == "PD01000000002"


def _from_database(state: StateStore) -> pl.DataFrame:
    return with_limits(parse_limits(load_registry(state, RUN_COLUMNS)), VeeConfig()).sort("meter_id")


def _run_columns(frame: pl.DataFrame) -> pl.DataFrame:
    """What a run's registry keeps: the limits and time in service, not what they are made of."""
    return frame.drop(*LIMIT_ATTRIBUTES, "installed_on", "removed_on")


def test_a_runs_registry_is_the_databases_however_the_table_changed(
    state: StateStore, data_dir: Path
) -> None:
    # any writer's change counts (triggers on `meters`), not only the product's own
    register(state, ["A", "B"], attributes={"rated_current_a": "60"})
    changes = [
        "INSERT INTO meters (meter_id, meter_key, url, protocol, bucket) VALUES ('C', 9, 'x', 'dlms', 1)",
        "UPDATE meters SET removed_on = '2026-05-31' WHERE meter_id = 'A'",
        "UPDATE meters SET attributes = '{\"phases\": 3}' WHERE meter_id = 'B'",
        "DELETE FROM meters WHERE meter_id = 'C'",
    ]
    for change in [None, *changes]:
        if change:
            with state.transaction() as conn:
                conn.execute(sa.text(change))
        assert run_registry(state, data_dir, VeeConfig()).sort("meter_id").equals(
            _run_columns(_from_database(state))
        )
    a, b = _from_database(state).rows(named=True)
    assert a["removed_on"] == dt.date(2026, 5, 31) and b["phases"] == 3


def test_an_unchanged_registry_is_read_from_its_snapshot_alone(state: StateStore, data_dir: Path) -> None:
    register(state, ["A"])
    path = refresh_snapshot(state, data_dir)
    made = path.stat().st_ino, path.stat().st_mtime_ns
    assert refresh_snapshot(state, data_dir) == path
    assert (path.stat().st_ino, path.stat().st_mtime_ns) == made
    register(state, ["B"])
    refresh_snapshot(state, data_dir)
    assert path.stat().st_ino != made[0]


def test_a_snapshot_of_another_registry_or_a_broken_one_is_made_again(
    state: StateStore, data_dir: Path, tmp_path: Path
) -> None:
    register(state, ["A"])
    other = StateStore.open(tmp_path / "other")  # its counter stands where this one's does
    register(other, ["Z"])
    refresh_snapshot(other, tmp_path / "other")
    (data_dir / SNAPSHOT).parent.mkdir(parents=True, exist_ok=True)
    os.replace(tmp_path / "other" / SNAPSHOT, data_dir / SNAPSHOT)
    assert run_registry(state, data_dir, VeeConfig()).get_column("meter_id").to_list() == ["A"]
    (data_dir / SNAPSHOT).write_bytes(b"not parquet")
    assert run_registry(state, data_dir, VeeConfig()).get_column("meter_id").to_list() == ["A"]
