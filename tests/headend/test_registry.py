"""The registry: imports with row-level errors (CSV and Parquet), updates, export, retire."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import polars as pl
import pytest

from core.state import StateStore
from headend.errors import FleetFileError, MeterNotFound
from headend.keystore import KeyStore
from headend.registry import export_fleet, get_meter, import_fleet, list_meters, retire

GOOD = [
    {"meter_id": "D1", "url": "dlms+tcp://10.0.0.1:4059?client=1&server=1&auth=lls&key=meter-keys:D1",
     "customer_code": "PD01000000001", "route": "R1", "cell": "c1", "read": "profile,registers"},
    {"meter_id": "M1", "url": "modbus+tcp://10.0.0.2:502?unit=1&map=eastron-sdm630", "route": "R2",
     "installed_on": "2026-01-01"},
]


def write_csv(path: Path, rows: list[dict[str, str]]) -> Path:
    pl.DataFrame(rows).write_csv(path)
    return path


def test_csv_and_parquet_import_the_same_registry(data_dir: Path, tmp_path: Path) -> None:
    csv_state = StateStore.open(data_dir / "a")
    parquet_state = StateStore.open(data_dir / "b")
    rows = [{k: r.get(k) for k in {k for g in GOOD for k in g}} for r in GOOD]
    assert import_fleet(csv_state, write_csv(tmp_path / "f.csv", rows), buckets=8).applied  # type: ignore[arg-type]
    pl.DataFrame(rows).write_parquet(tmp_path / "f.parquet")
    assert import_fleet(parquet_state, tmp_path / "f.parquet", buckets=8).applied
    as_json = [[m.to_json() for m in list_meters(s)] for s in (csv_state, parquet_state)]
    assert as_json[0] == as_json[1]
    d1 = get_meter(csv_state, "D1")
    assert d1.cell == "c1" and d1.reads == {"profile", "registers"} and d1.key_reference == "meter-keys:D1"


def test_every_bad_row_is_reported_with_line_and_column(data_dir: Path, tmp_path: Path) -> None:
    state = StateStore.open(data_dir)
    rows = [
        GOOD[1] | {"installed_on": ""},
        {"meter_id": "bad id", "url": "modbus+tcp://h:502?unit=1&map=x"},
        {"meter_id": "X2", "url": "dlms+tcp://h?client=1&password=hunter2"},
        {"meter_id": "X3", "url": "dlms+tcp://h", "read": "profile,bogus", "ct_ratio": "0"},
        {"meter_id": "M1", "url": "modbus+tcp://h:502?unit=2&map=x"},
        {"meter_id": "X5", "url": "dlms+tcp://h", "installed_on": "2026-02-01", "removed_on": "2026-01-01"},
    ]
    report = import_fleet(state, write_csv(tmp_path / "f.csv", rows), buckets=8)
    found = {(e.line, e.column) for e in report.errors}
    assert found == {(3, "meter_id"), (4, "url"), (5, "ct_ratio"), (6, "meter_id"), (7, "removed_on")}
    assert "hunter2" not in " ".join(e.problem for e in report.errors)
    assert not report.applied and list_meters(state) == []
    partial = import_fleet(state, tmp_path / "f.csv", buckets=8, mode="good-rows")
    assert partial.applied and [m.meter_id for m in list_meters(state)] == ["M1"]


def test_reimport_updates_in_place_and_keeps_the_key(data_dir: Path, tmp_path: Path) -> None:
    state = StateStore.open(data_dir)
    import_fleet(state, write_csv(tmp_path / "a.csv", [GOOD[1]]), buckets=8)
    key = get_meter(state, "M1").meter_key
    changed = GOOD[1] | {"route": "R9"}
    report = import_fleet(state, write_csv(tmp_path / "b.csv", [changed, GOOD[0] | {"cell": ""}]), buckets=8)
    assert (report.inserted, report.updated) == (1, 1)
    m1 = get_meter(state, "M1")
    assert m1.route == "R9" and m1.meter_key == key and get_meter(state, "D1").meter_key != key


def test_export_round_trips_and_never_carries_a_secret(data_dir: Path, tmp_path: Path) -> None:
    state = StateStore.open(data_dir)
    keys = KeyStore(tmp_path / "keys.toml")
    keys.write("D1", password="s3cr3t-password")
    assert import_fleet(state, write_csv(tmp_path / "f.csv", [dict(r) for r in GOOD]), buckets=8).applied
    for suffix in ("csv", "parquet"):
        out = tmp_path / f"export.{suffix}"
        assert export_fleet(state, out) == 2
        assert b"s3cr3t" not in out.read_bytes()
        again = StateStore.open(data_dir / f"again-{suffix}")
        assert import_fleet(again, out, buckets=8).applied
        assert [m.to_json() for m in list_meters(again)] == [m.to_json() for m in list_meters(state)]


def test_retire_and_missing_meters(data_dir: Path, tmp_path: Path) -> None:
    state = StateStore.open(data_dir)
    import_fleet(state, write_csv(tmp_path / "f.csv", [GOOD[1]]), buckets=8)
    retire(state, "M1", dt.date(2026, 4, 1))
    assert list_meters(state, active_on=dt.date(2026, 3, 31)) != []
    assert list_meters(state, active_on=dt.date(2026, 4, 1)) == []
    with pytest.raises(MeterNotFound, match="'nope'"):
        get_meter(state, "nope")
    with pytest.raises(FleetFileError, match="does not exist"):
        import_fleet(state, tmp_path / "missing.csv", buckets=8)


def test_physical_limits_reach_the_attributes_ingest_reads(data_dir: Path, tmp_path: Path) -> None:
    state = StateStore.open(data_dir)
    limits = {"rated_current_a": "60", "voltage_v": "230", "phases": "3", "register_capacity_wh": "99999999"}
    row = GOOD[1] | limits
    assert import_fleet(state, write_csv(tmp_path / "f.csv", [row]), buckets=8).applied
    attributes = get_meter(state, "M1").attributes
    assert attributes["rated_current_a"] == "60" and attributes["phases"] == "3"
    assert attributes["register_capacity_wh"] == "99999999"


@pytest.mark.parametrize(
    ("column", "value"), [("rated_current_a", "6O"), ("phases", "4"), ("register_capacity_wh", "0")]
)
def test_a_bad_physical_limit_is_a_row_error(data_dir: Path, tmp_path: Path, column: str, value: str) -> None:
    state = StateStore.open(data_dir)
    report = import_fleet(state, write_csv(tmp_path / "f.csv", [GOOD[1] | {column: value}]), buckets=8)
    assert not report.applied
    assert [(e.line, e.column) for e in report.errors] == [(2, column)]
