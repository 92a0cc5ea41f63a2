"""The landing frame equals the contract's `to_frame` with the round as source, for any readings."""

from __future__ import annotations

import datetime as dt

from hypothesis import given, settings
from hypothesis import strategies as st

from core.reading import Reading, to_frame
from headend.frames import landing_frame

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
    got = landing_frame(readings, source)
    assert got.schema == expected.schema
    assert got.equals(expected)


def test_instants_shared_by_many_readings_convert_alike() -> None:
    at = dt.datetime(2026, 3, 10, 3, 0, tzinfo=dt.UTC)
    readings = [
        Reading("M1", "1.0.1.29.0.255", at + dt.timedelta(minutes=15 * (i % 4)), i, 0, "Wh", read_at=at)
        for i in range(12)
    ]
    frame = landing_frame(readings, "r1")
    assert frame["ts"].to_list() == [r.ts for r in readings] and frame["read_at"].n_unique() == 1
