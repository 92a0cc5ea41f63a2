"""Consumption arithmetic against a plain reference: sums per day and month, TOU only when whole."""

from __future__ import annotations

import datetime as dt
from collections import defaultdict

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from portal_api.consumption import DateRange, assemble, check_range
from portal_api.errors import InvalidRequest
from portal_api.serving import MonthOfDays

energy = st.integers(min_value=0, max_value=10**9)


@st.composite
def months_of_days(draw: st.DrawFn) -> list[MonthOfDays]:
    out = []
    for meter in draw(st.lists(st.sampled_from(["M1", "M2", "M3"]), min_size=1, max_size=3, unique=True)):
        for month in draw(st.lists(st.sampled_from(["2026-01", "2026-02", "2026-03"]), min_size=1,
                                   max_size=3, unique=True)):
            last = 28 if month == "2026-02" else 31
            days = sorted(draw(st.sets(st.integers(1, last), min_size=1, max_size=last)))
            cols: dict[str, list[int]] = {"d": days}
            for name in "eonpx":
                cols[name] = [draw(energy) for _ in days]
            cols["t"] = [draw(st.integers(0, 1)) for _ in days]
            out.append(MonthOfDays(meter, month, cols))
    return out


def _reference(months: list[MonthOfDays], span: DateRange, monthly: bool) -> dict[str, dict[str, int]]:
    sums: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    for m in months:
        for i, day in enumerate(m.columns["d"]):
            when = dt.date(int(m.month[:4]), int(m.month[5:]), day)
            if span.start <= when <= span.end:
                key = m.month if monthly else when.isoformat()
                sums[key]["energy_wh"] += m.columns["e"][i]
                sums[key]["peak_wh"] += m.columns["p"][i]
                sums[key]["whole"] = sums[key].get("whole", 1) & m.columns["t"][i]
    return sums


@settings(max_examples=60, deadline=None)
@given(months_of_days(), st.integers(0, 89), st.integers(0, 89), st.booleans())
def test_points_add_up_like_the_reference(months: list[MonthOfDays], a: int, b: int, monthly: bool) -> None:
    first = dt.date(2026, 1, 1)
    span = DateRange(first + dt.timedelta(days=min(a, b)), first + dt.timedelta(days=max(a, b)))
    body = assemble(months, span, "month" if monthly else "day")
    expected = _reference(months, span, monthly)
    label = "period" if monthly else "date"
    assert [p[label] for p in body["points"]] == sorted(expected)
    for point in body["points"]:
        want = expected[point[label]]
        assert point["energy_wh"] == want["energy_wh"]
        if want["whole"]:
            assert point["tou"]["peak_wh"] == want["peak_wh"]
        else:
            assert point["tou"] is None
    assert body["total"]["energy_wh"] == sum(p["energy_wh"] for p in body["points"])
    whole = bool(expected) and all(v["whole"] for v in expected.values())
    assert (body["total"]["tou"] is not None) == whole


def test_ranges_are_bounded() -> None:
    assert check_range(dt.date(2026, 1, 1), dt.date(2026, 12, 31), "day").months()[-1] == "2026-12"
    with pytest.raises(InvalidRequest, match="at most 366"):
        check_range(dt.date(2025, 1, 1), dt.date(2026, 12, 31), "day")
    with pytest.raises(InvalidRequest, match="before it starts"):
        check_range(dt.date(2026, 2, 1), dt.date(2026, 1, 1), "month")
    with pytest.raises(InvalidRequest, match="granularity"):
        check_range(dt.date(2026, 1, 1), dt.date(2026, 1, 2), "hour")
    assert check_range(dt.date(2026, 1, 1), dt.date(2026, 1, 7), "interval").end == dt.date(2026, 1, 7)
    with pytest.raises(InvalidRequest, match="at most 7"):
        check_range(dt.date(2026, 1, 1), dt.date(2026, 1, 8), "interval")
