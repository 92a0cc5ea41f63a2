"""Quantity kinds and the exact mWh normalisation (property-based)."""

from __future__ import annotations

from decimal import Decimal

import polars as pl
from hypothesis import given, settings
from hypothesis import strategies as st

from core.reading import READING_SCHEMA
from ingest.quantities import (
    EVENT,
    INSTANT,
    INTERVAL,
    REGISTER,
    classify,
    kind_expr,
    register_rows,
    registers_of,
)


def classified(quantity: str, value: int, scale: int, unit: str) -> dict[str, object]:
    lf = pl.LazyFrame(
        {"quantity": [quantity], "value": [value], "scale": [scale], "unit": [unit]},
        schema={"quantity": pl.String, "value": pl.Int64, "scale": pl.Int8, "unit": pl.String},
    )
    return classify(lf).collect().row(0, named=True)


def test_kinds_follow_the_obis_groups() -> None:
    assert classified("1.0.1.8.0.255", 1, 0, "Wh")["kind"] == REGISTER
    assert classified("1.0.1.8.3.255", 1, 0, "Wh")["kind"] == REGISTER
    assert classified("1.0.1.29.0.255", 1, 0, "Wh")["kind"] == INTERVAL
    assert classified("0.0.99.98.0.255", 1, 0, "")["kind"] == EVENT
    assert classified("1.0.32.7.0.255", 2300, -1, "V")["kind"] == INSTANT


def test_energy_units() -> None:
    assert classified("1.0.1.8.0.255", 5, 0, "V")["unit_ok"] is False
    assert classified("1.0.3.8.0.255", 5, 0, "kvarh")["unit_ok"] is True
    assert classified("1.0.3.8.0.255", 5, 0, "kWh")["unit_ok"] is False
    assert classified("1.0.32.7.0.255", 5, 0, "V")["mwh"] is None


@settings(max_examples=50, deadline=None)
@given(value=st.integers(-(10**9), 10**9), scale=st.integers(-3, 6), unit=st.sampled_from(["Wh", "kWh"]))
def test_mwh_is_exact(value: int, scale: int, unit: str) -> None:
    row = classified("1.0.1.8.0.255", value, scale, unit)
    expected = Decimal(value).scaleb(scale) * (1000 if unit == "Wh" else 1_000_000)
    if abs(expected) >= 2**63:  # would not fit: refused, never wrapped
        assert row["mwh"] is None and row["unit_ok"] is False
    else:
        assert row["mwh"] == int(expected)


@settings(max_examples=60, deadline=None)
@given(
    quantities=st.lists(
        st.sampled_from(
            ["1.0.1.8.0.255", "1.0.1.8.1.255", "1.0.1.29.0.255", "0.0.99.98.0.255", "1.0.32.7.0.255", None]
        ),
        max_size=40,
    )
)
def test_registers_of_keeps_exactly_the_register_rows(quantities: list[str | None]) -> None:
    """In any order (runs of equal quantities or not, nulls included), the rows kept are the
    register rows, in their order."""
    frame = pl.DataFrame(
        {"quantity": quantities, "row": list(range(len(quantities)))},
        schema={"quantity": pl.String, "row": pl.Int64},
    )
    kept = registers_of(frame.lazy()).collect()
    expected = frame.lazy().with_columns(kind_expr()).filter(pl.col("kind") == REGISTER).collect()
    assert kept.get_column("row").to_list() == expected.get_column("row").to_list()


QUANTITIES = ["1.0.1.8.0.255", "1.0.1.8.1.255", "1.0.1.29.0.255", "0.0.99.98.0.255", "1.0.32.7.0.255"]


@settings(max_examples=60, deadline=None)
@given(st.lists(st.sampled_from(QUANTITIES), max_size=30))
def test_register_rows_at_the_head_are_counted_only_when_they_are_all_there(quantities: list[str]) -> None:
    frame = pl.DataFrame({"quantity": quantities}, schema={"quantity": READING_SCHEMA["quantity"]})
    registers = [q.split(".")[3] == "8" for q in quantities]
    count = sum(registers)
    expected = count if all(registers[:count]) else None
    assert register_rows(frame) == expected
