from __future__ import annotations

import datetime as dt
import zlib

import polars as pl
from hypothesis import given
from hypothesis import strategies as st

from core.buckets import bucket_expr, bucket_of, fill_unknown_buckets
from core.clock import VirtualClock
from core.timezones import local_date, local_midnight_utc


@given(st.lists(st.text(min_size=1, max_size=20), min_size=1, max_size=20), st.integers(1, 512))
def test_bucket_is_crc32_mod_b_in_python_and_polars(ids: list[str], buckets: int) -> None:
    expected = [zlib.crc32(i.encode()) % buckets for i in ids]
    assert [bucket_of(i, buckets) for i in ids] == expected
    frame = pl.DataFrame({"meter_id": ids}).select(bucket_expr("meter_id", buckets))
    assert frame["bucket"].to_list() == expected


@given(
    st.lists(
        st.tuples(st.sampled_from(["A", "B", "C", "D", "E"]), st.one_of(st.none(), st.integers(0, 7))),
        min_size=1,
        max_size=40,
    )
)
def test_unknown_buckets_are_the_ids_hash_in_the_rows_order(rows: list[tuple[str, int | None]]) -> None:
    frame = pl.DataFrame(
        {"row": range(len(rows)), "meter_id": [m for m, _ in rows], "bucket": [b for _, b in rows]},
        schema_overrides={"bucket": pl.Int32},
    )
    out = fill_unknown_buckets(frame, 8)
    assert out.columns == frame.columns
    assert out["row"].to_list() == list(range(len(rows)))
    assert out["bucket"].to_list() == [bucket_of(m, 8) if b is None else b for m, b in rows]


def test_local_midnight_is_seven_hours_before_utc_midnight() -> None:
    assert local_midnight_utc(dt.date(2026, 11, 1)) == dt.datetime(2026, 10, 31, 17, tzinfo=dt.UTC)
    assert local_date(dt.datetime(2026, 10, 31, 17, tzinfo=dt.UTC)) == dt.date(2026, 11, 1)


def test_virtual_clock_moves_only_when_told() -> None:
    start = dt.datetime(2026, 11, 1, tzinfo=dt.UTC)
    clock = VirtualClock(start)
    assert clock.now() == start
    clock.advance(dt.timedelta(days=1))
    assert clock.now() == start + dt.timedelta(days=1)
