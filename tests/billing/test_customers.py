from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
import sqlalchemy as sa

from billing.customers import import_customers, list_customers, show_customer
from billing.errors import UnknownCustomerError
from core.fleet import FLEET_COLUMNS, OPTIONAL_COLUMNS
from core.state import StateStore


@pytest.fixture()
def store(tmp_path: Path) -> StateStore:
    return StateStore.open(tmp_path / "data")


def write(path: Path, header: list[str], rows: list[list[str]]) -> Path:
    path.write_text("\n".join(",".join(r) for r in [header, *rows]) + "\n", encoding="utf-8")
    return path


def test_fleet_file_imports_and_ignores_registry_columns(tmp_path: Path, store: StateStore) -> None:
    header = [*FLEET_COLUMNS, *OPTIONAL_COLUMNS]  # a utility's fleet gives its services' limits too
    blank = dict.fromkeys(header, "") | {"rated_current_a": "60"}
    rows = []
    for i, (code, hh, cls) in enumerate(
        [
            ("PD01000000001", "1", "residential"),
            ("PD01000000002", "1.5", "business"),
            ("", "1", "residential"),
        ]
    ):
        row = {
            **blank,
            "meter_id": f"M{i}",
            "customer_code": code,
            "url": "dlms+tcp://127.0.0.1:4059",
            "households": hh,
            "tariff_class": cls,
            "route": "R01",
            "installed_on": "2026-01-01",
        }
        rows.append([row[c] for c in header])
    report = import_customers(store, write(tmp_path / "fleet.csv", header, rows))
    assert report.ok and report.imported == 2 and report.skipped_without_customer == 1
    listed = list_customers(store, route="R01", on=dt.date(2026, 11, 1))
    assert [(r["customer_code"], r["households"], r["tariff_class"]) for r in listed] == [
        ("PD01000000001", "1", "residential"),
        ("PD01000000002", "1.5", "business"),
    ]


def test_bad_rows_are_reported_by_line_and_column_and_nothing_is_written(
    tmp_path: Path, store: StateStore
) -> None:
    header = ["customer_code", "meter_id", "households", "tariff_class", "reading_day"]
    path = write(
        tmp_path / "c.csv",
        header,
        [
            ["PD01000000001", "M1", "1", "residential", "0"],
            ["PD01XX", "M2", "1", "residential", "0"],
            ["PD01000000003", "M3", "-2", "shop", "40"],
        ],
    )
    report = import_customers(store, path)
    found = {(e.line, e.column) for e in report.errors}
    assert found == {(3, "customer_code"), (4, "households"), (4, "tariff_class"), (4, "reading_day")}
    assert report.imported == 0 and list_customers(store) == []
    report = import_customers(store, path, mode="good-rows")
    assert report.imported == 1 and [r["customer_code"] for r in list_customers(store)] == ["PD01000000001"]


def test_unknown_column_is_reported_on_the_header(tmp_path: Path, store: StateStore) -> None:
    report = import_customers(
        store, write(tmp_path / "c.csv", ["customer_code", "colour"], [["PD01000000001", "red"]])
    )
    assert report.errors[0].line == 1 and "colour" in report.errors[0].column


def test_contract_change_and_meter_exchange_close_the_previous(tmp_path: Path, store: StateStore) -> None:
    header = ["customer_code", "meter_id", "households", "effective_from", "installed_on", "name"]
    import_customers(
        store,
        write(
            tmp_path / "a.csv",
            header,
            [["PD02000000009", "OLD", "1", "2025-01-01", "2025-01-01", "Nguyễn Văn A"]],
        ),
    )
    import_customers(
        store,
        write(tmp_path / "b.csv", header, [["PD02000000009", "NEW", "2", "2026-11-16", "2026-11-16", ""]]),
    )
    customer = show_customer(store, "PD02000000009")
    assert customer["name"] == "Nguyễn Văn A"
    assert [
        (str(c["effective_from"]), c["effective_to"] and str(c["effective_to"]), c["households"])
        for c in customer["contracts"]
    ] == [("2025-01-01", "2026-11-16", "1"), ("2026-11-16", None, "2")]
    assert [(m["meter_id"], m["removed_on"] and str(m["removed_on"])) for m in customer["meters"]] == [
        ("OLD", "2026-11-16"),
        ("NEW", None),
    ]
    with store.read() as conn:
        assert conn.execute(sa.text("SELECT COUNT(*) FROM customers")).scalar_one() == 1
    with pytest.raises(UnknownCustomerError, match="PD02000000001"):
        show_customer(store, "PD02000000001")


def test_parquet_fleet_file(tmp_path: Path, store: StateStore) -> None:
    import polars as pl

    pl.DataFrame(
        {
            "meter_id": ["P1"],
            "customer_code": ["PD07000000001"],
            "url": ["modbus+tcp://127.0.0.1:502"],
            "ct_ratio": [50],
            "households": ["0.25"],
            "installed_on": [dt.date(2026, 3, 1)],
        }
    ).write_parquet(tmp_path / "fleet.parquet")
    report = import_customers(store, tmp_path / "fleet.parquet")
    assert report.ok and report.imported == 1
    shown = show_customer(store, "PD07000000001")
    assert shown["contracts"][0]["households"] == "0.25"
    assert [(m["meter_id"], str(m["installed_on"])) for m in shown["meters"]] == [("P1", "2026-03-01")]
