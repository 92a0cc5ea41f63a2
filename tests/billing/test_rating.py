"""The vectorised engine against the one-customer reference (billing.quote / billing.tiers)."""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass
from decimal import Decimal

import polars as pl
from hypothesis import given, settings
from hypothesis import strategies as st

from billing.periods import is_regular, preceding_month_days
from billing.quote import quote
from billing.rating import SEGMENT_COLUMNS, check_priced, rate, single_segment
from billing.tariffs import default_book


@dataclass(frozen=True)
class Case:
    start: dt.date
    end: dt.date
    cls: str
    kwh: int
    offpeak: int
    peak: int
    households: Decimal
    voltage: str


@st.composite
def cases(draw: st.DrawFn) -> Case:
    start = draw(st.dates(min_value=dt.date(2023, 6, 1), max_value=dt.date(2027, 11, 30)))
    end = start + dt.timedelta(days=draw(st.sampled_from([28, 29, 30, 31, 1, 10, 45, 57])))
    cls = draw(st.sampled_from(["residential", "residential", "business", "production"]))
    kwh = draw(st.integers(0, 4000))
    offpeak = draw(st.integers(0, kwh)) if cls != "residential" else 0
    peak = draw(st.integers(0, kwh - offpeak)) if cls != "residential" else 0
    return Case(
        start,
        end,
        cls,
        kwh,
        offpeak,
        peak,
        Decimal(draw(st.integers(1, 16))) / 4,
        draw(st.sampled_from(["lt6kv", "6-22kv"])),
    )


@settings(max_examples=8, deadline=None)
@given(st.lists(cases(), min_size=1, max_size=40))
def test_vectorised_bills_equal_the_reference_to_the_dong(batch: list[Case]) -> None:
    book = default_book()
    # split periods have their own test; TOU prices exist from 1279/QD-BCT on
    usable = [
        c
        for c in batch
        if not book.changes_within(c.start, c.end, c.cls)
        and (c.cls == "residential" or c.end >= dt.date(2025, 5, 10))
    ]
    if not usable:
        return
    rows = [
        single_segment(
            f"C{i}",
            c.kwh,
            start=c.start,
            end=c.end,
            tariff_class=c.cls,
            households=c.households,
            voltage=c.voltage,
            prorate=not is_regular(c.start, c.end),
            month_days=preceding_month_days(c.end),
            offpeak_kwh=c.offpeak,
            peak_kwh=c.peak,
        )
        for i, c in enumerate(usable)
    ]
    frame = check_priced(rate(pl.LazyFrame(rows, schema=SEGMENT_COLUMNS), book).collect())
    got = {r["customer_code"]: r for r in frame.to_dicts()}
    for i, c in enumerate(usable):
        expected = quote(
            c.kwh,
            start=c.start,
            end=c.end,
            households=c.households,
            tariff_class=c.cls,
            voltage=c.voltage,
            offpeak_kwh=c.offpeak,
            peak_kwh=c.peak,
        )
        bill = got[f"C{i}"]
        assert (bill["amount_before_vat"], bill["vat_amount"], bill["total_amount"]) == (
            expected.amount_before_vat,
            expected.vat_amount,
            expected.total_amount,
        )
        assert bill["vat_rate"] == str(expected.vat_rate)
        assert json.loads(bill["lines"]) == [line.as_json() for line in expected.lines]
