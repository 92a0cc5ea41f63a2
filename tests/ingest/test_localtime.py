"""The fixed-offset local day and minute agree with a real time-zone conversion."""

from __future__ import annotations

import datetime as dt

import polars as pl
from hypothesis import given, settings
from hypothesis import strategies as st

from core.timezones import LOCAL_TZ
from ingest.localtime import local_day, minute_of_day

INSTANTS = st.datetimes(min_value=dt.datetime(1976, 1, 1), max_value=dt.datetime(2100, 1, 1)).map(
    lambda t: t.replace(tzinfo=dt.UTC)
)


@settings(max_examples=200, deadline=None)
@given(instants=st.lists(INSTANTS, min_size=1, max_size=50))
def test_local_minute_and_day_match_the_zone(instants: list[dt.datetime]) -> None:
    frame = pl.DataFrame({"ts": instants}, schema={"ts": pl.Datetime("us", "UTC")})
    got = frame.select(minute_of_day(pl.col("ts")), day=local_day(pl.col("ts"))).rows()
    local = [t.astimezone(LOCAL_TZ) for t in instants]
    assert got == [(t.hour * 60 + t.minute, t.date()) for t in local]
