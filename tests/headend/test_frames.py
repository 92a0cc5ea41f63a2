"""The landing frame equals the contract's `to_frame` with the round as source, for any readings,
whether they come as lists of `Reading` or as `ReadingColumns`."""

from __future__ import annotations

import datetime as dt

import polars as pl
from hypothesis import given, settings
from hypothesis import strategies as st

from core.reading import Reading, ReadingColumns, to_frame
from headend.frames import landing_frame, within

_INSTANTS = st.datetimes(
    min_value=dt.datetime(1970, 1, 1), max_value=dt.datetime(2200, 1, 1),
    timezones=st.sampled_from(
        [dt.UTC, dt.timezone(dt.timedelta(hours=7)), dt.timezone(dt.timedelta(hours=-3))]
    ),
)
_READINGS = st.builds(
    Reading,
    meter_id=st.text(min_size=1, max_size=12),
    quantity=st.sampled_from(["1.0.1.8.0.255", "1.0.1.29.0.255", "0.0.96.11.0.255", "1.0.2.29.0.255"]),
    ts=_INSTANTS,
    value=st.integers(min_value=-(2**63), max_value=2**63 - 1),
    scale=st.integers(min_value=-9, max_value=9),
    unit=st.sampled_from(["Wh", "kWh", "V", ""]),
    status=st.integers(min_value=0, max_value=255),
    snapshot=st.booleans(),
    source=st.text(max_size=8),
    read_at=_INSTANTS,
)


@settings(max_examples=60, deadline=None)
@given(readings=st.lists(_READINGS, max_size=20), source=st.text(max_size=30))
def test_landing_frame_is_to_frame_with_the_rounds_source(readings: list[Reading], source: str) -> None:
    expected = to_frame(readings)
    if readings:
        expected = expected.with_columns(source=expected["source"].clear(len(readings)).fill_null(source))
    got = landing_frame([readings], source)
    assert got.schema == expected.schema
    assert got.equals(expected)


def test_instants_shared_by_many_readings_convert_alike() -> None:
    at = dt.datetime(2026, 3, 10, 3, 0, tzinfo=dt.UTC)
    readings = [
        Reading("M1", "1.0.1.29.0.255", at + dt.timedelta(minutes=15 * (i % 4)), i, 0, "Wh", read_at=at)
        for i in range(12)
    ]
    frame = landing_frame([readings], "r1")
    assert frame["ts"].to_list() == [r.ts for r in readings] and frame["read_at"].n_unique() == 1


def _as_columns(meter_id: str, readings: list[Reading], at: dt.datetime) -> ReadingColumns:
    return ReadingColumns(
        meter_id, [r.quantity for r in readings], [r.ts for r in readings], [r.value for r in readings],
        [r.scale for r in readings], [r.unit for r in readings], [r.status for r in readings], "s", at,
    )


_PROFILE_ROWS = st.lists(
    st.tuples(
        st.sampled_from(["1.0.1.8.0.255", "1.0.1.29.0.255"]),
        st.integers(min_value=0, max_value=200),
        st.integers(min_value=-(2**63), max_value=2**63 - 1),
        st.integers(min_value=-9, max_value=9),
    ),
    max_size=30,
)


@settings(max_examples=60, deadline=None)
@given(profile=_PROFILE_ROWS, registers=st.lists(_READINGS, max_size=5), cut=st.tuples(
    st.integers(min_value=-1, max_value=201), st.integers(min_value=-1, max_value=201)
))
def test_columns_and_lists_land_alike(
    profile: list[tuple[str, int, int, int]], registers: list[Reading], cut: tuple[int, int]
) -> None:
    """A profile as columns, cut to (after, until] by `within`, lands as the same rows as the
    equal readings one by one."""
    t0 = dt.datetime(2026, 11, 10, tzinfo=dt.UTC)
    at = t0 + dt.timedelta(days=1)
    step = dt.timedelta(minutes=15)
    readings = [Reading("M7", q, t0 + step * k, v, s, "Wh", read_at=at, source="s") for q, k, v, s in profile]
    after, until = t0 + step * cut[0], t0 + step * cut[1]
    kept = within(_as_columns("M7", readings, at), after, until)
    expected = [r for r in readings if after < r.ts <= until]
    assert list(kept) == expected
    assert landing_frame([kept, registers], "r9").equals(landing_frame([expected + registers], "r9"))
    assert landing_frame([kept, registers], "r9").equals(
        to_frame(expected + registers).with_columns(source=pl.lit("r9"))
    ) or not (expected + registers)
