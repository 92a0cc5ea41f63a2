from __future__ import annotations

import datetime as dt
from decimal import Decimal
from pathlib import Path

import polars as pl
import pytest
from hypothesis import given
from hypothesis import strategies as st

from core.errors import ContractError
from core.landing import write_batch
from core.reading import (
    READING_COLUMNS,
    READING_SCHEMA,
    Reading,
    conform,
    format_decimal,
    from_frame,
    to_frame,
)

NOW = dt.datetime(2026, 11, 1, 0, 0, tzinfo=dt.UTC)


def reading(**overrides: object) -> Reading:
    fields: dict[str, object] = {
        "meter_id": "M1", "quantity": "1.0.1.8.0.255", "ts": NOW, "value": 12345, "scale": -2,
        "unit": "kWh", "read_at": NOW,
    }
    fields.update(overrides)
    return Reading(**fields)  # type: ignore[arg-type]


@given(st.integers(-(2**62), 2**62), st.integers(-9, 9))
def test_decimal_string_is_exact(value: int, scale: int) -> None:
    text = format_decimal(value, scale)
    assert "e" not in text.lower()
    assert Decimal(text) == Decimal(value).scaleb(scale)


@given(st.decimals(allow_nan=False, allow_infinity=False, places=4, min_value=-10**9, max_value=10**9))
def test_from_decimal_keeps_every_digit(amount: Decimal) -> None:
    r = Reading.from_decimal(amount, meter_id="M", quantity="1.0.1.8.0.255", ts=NOW, unit="kWh")
    assert r.decimal == amount


def test_frame_round_trip_keeps_the_contract() -> None:
    rows = [reading(), reading(meter_id="M2", value=-1, scale=0, snapshot=True)]
    frame = to_frame(rows)
    assert tuple(frame.columns) == READING_COLUMNS
    assert from_frame(frame) == rows


def test_naive_timestamps_are_refused() -> None:
    with pytest.raises(ContractError, match="no time zone"):
        reading(ts=dt.datetime(2026, 1, 1))


def test_conform_names_origin_and_missing_column() -> None:
    frame = to_frame([reading()]).drop("unit")
    with pytest.raises(ContractError) as info:
        conform(frame, origin="readings.csv")
    assert "readings.csv" in str(info.value) and "unit" in str(info.value)


def test_conform_refuses_extra_columns_rather_than_dropping_them() -> None:
    frame = to_frame([reading()]).with_columns(pl.lit(1).alias("surprise"))
    with pytest.raises(ContractError, match="surprise"):
        conform(frame, origin="x")


def test_conform_refuses_nulls_in_required_columns() -> None:
    frame = to_frame([reading()]).with_columns(pl.lit(None, dtype=pl.Int64).alias("value"))
    with pytest.raises(ContractError, match="value"):
        conform(frame, origin="x")


def test_conform_casts_compatible_integer_types() -> None:
    frame = to_frame([reading()]).with_columns(pl.col("scale").cast(pl.Int64))
    assert conform(frame, origin="x").schema["scale"] == pl.Int8


def test_text_conforms_to_the_categorical_columns_and_a_landed_batch_reads_back_so(tmp_path: Path) -> None:
    """A frame (an import, an older batch) with the quantity, unit and source as text
    conforms to the contract's categoricals with the same values; a landed batch holds them
    so, and reads back so."""
    text = [pl.col(c).cast(pl.String) for c in ("quantity", "unit", "source")]
    rows = [reading(), reading(meter_id="M2", quantity="1.0.2.8.0.255", unit="Wh", source="import")]
    frame = to_frame(rows).with_columns(text)
    conformed = conform(frame, origin="x")
    assert conformed.schema == pl.Schema(READING_SCHEMA)
    assert from_frame(conformed) == rows
    batch = write_batch(tmp_path, frame, now=NOW)
    assert {c: pl.read_parquet_schema(batch.path)[c] for c in ("quantity", "unit", "source")} == {
        c: pl.Categorical() for c in ("quantity", "unit", "source")
    }
    assert from_frame(batch.read()) == rows


def test_a_categorical_meter_id_is_refused() -> None:
    frame = to_frame([reading()]).with_columns(pl.col("meter_id").cast(pl.Categorical))
    with pytest.raises(ContractError, match="meter_id"):
        conform(frame, origin="x")


@given(
    st.text(min_size=1, max_size=12),
    st.sampled_from(["1.0.1.8.0.255", "1.0.2.8.0.255", "1.0.1.8.3.255"]),
    st.datetimes(timezones=st.just(dt.UTC)),
    st.integers(-(2**63), 2**63 - 1),
    st.integers(-9, 9),
    st.booleans(),
)
def test_prechecked_equals_the_checking_constructor(
    meter_id: str, quantity: str, ts: dt.datetime, value: int, scale: int, snapshot: bool
) -> None:
    fields = (meter_id, quantity, ts, value, scale, "kWh", 3, snapshot, "src", ts)
    fast = Reading.prechecked(*fields)
    assert fast == Reading(*fields)
    assert fast.to_json() == Reading(*fields).to_json()
