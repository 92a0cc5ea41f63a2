"""Quotes against published figures and bills worked by hand (never the engine's output)."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from billing.errors import BillingError, TariffError
from billing.periods import add_months, is_month_end
from billing.quote import quote
from billing.tariffs import default_book

D = dt.date


def test_pc_an_giang_published_example_2015_tariff() -> None:
    # 410 kWh in 30 days: 50x1484 + 50x1533 + 100x1786 + 100x2242 + 100x2503 + 10x2587
    q = quote(410, start=D(2015, 5, 31), end=D(2015, 6, 30))
    assert q.amount_before_vat == 829_820
    assert q.vat_rate == Decimal("0.10")
    assert q.vat_amount == 82_982
    assert q.total_amount == 912_802


def test_evn_hanoi_february_2024_57_days() -> None:
    # 57 days ending 2024-02-29, T = 31 (January): quotas 92/92/184/184/184 on 2941/QD-BCT.
    q = quote(800, start=D(2024, 1, 3), end=D(2024, 2, 29))
    assert not q.regular
    assert [line.quota_kwh for line in q.lines] == [92, 92, 184, 184, 184, None]
    # by hand: 92x1806 + 92x1866 + 184x2167 + 184x2729 + 184x3050 + 64x3151 = 2,001,552
    assert q.amount_before_vat == 2_001_552
    assert q.vat_amount == 200_155  # 10% of 2,001,552 = 200,155.2
    assert q.total_amount == 2_201_707


def test_golden_residential_regular_month_2026() -> None:
    # 300 kWh, October 2026, 1279/QD-BCT: 50x1984 + 50x2050 + 100x2380 + 100x2998 = 739,500
    q = quote(300, start=D(2026, 9, 30), end=D(2026, 10, 31))
    assert q.regular
    assert [(int(line.kwh), line.amount) for line in q.lines] == [
        (50, 99_200),
        (50, 102_500),
        (100, 238_000),
        (100, 299_800),
        (0, 0),
        (0, 0),
    ]
    assert (q.amount_before_vat, q.vat_rate, q.vat_amount, q.total_amount) == (
        739_500,
        Decimal("0.08"),
        59_160,
        798_660,
    )


def test_golden_shared_meter_two_households() -> None:
    # h = 2 doubles every quota: 100x1984 + 100x2050 + 50x2380 = 522,400; VAT 8% 41,792
    q = quote(250, start=D(2026, 10, 31), end=D(2026, 11, 30), households=Decimal(2))
    assert [line.quota_kwh for line in q.lines] == [100, 100, 200, 200, 200, None]
    assert q.total_amount == 522_400 + 41_792


def test_golden_business_tou_under_6kv() -> None:
    # 700 normal x 3152 + 200 off-peak x 1918 + 100 peak x 5422 = 3,132,200; VAT 8% 250,576
    q = quote(
        1000,
        start=D(2026, 9, 30),
        end=D(2026, 10, 31),
        tariff_class="business",
        offpeak_kwh=200,
        peak_kwh=100,
    )
    assert q.amount_before_vat == 3_132_200
    assert q.total_amount == 3_382_776


def test_golden_production_22_to_110kv_after_vat_cut_ends() -> None:
    # January 2027, VAT back to 10%: 1000x1833 + 500x1190 + 200x3398 = 3,107,600
    q = quote(
        1700,
        start=D(2026, 12, 31),
        end=D(2027, 1, 31),
        tariff_class="production",
        voltage="22-110kv",
        offpeak_kwh=500,
        peak_kwh=200,
    )
    assert q.amount_before_vat == 3_107_600
    assert q.vat_rate == Decimal("0.10")
    assert q.total_amount == 3_418_360


def test_price_change_inside_period_splits_energy_and_quotas() -> None:
    # 1279 takes effect 2025-05-10: (04-30, 05-09] 9 days on 2699, (05-09, 05-31] 22 days on 1279.
    # T = 30 (April). Energy 310 x 9/31 = 90 old, 220 new. Quotas old 15/15/30/30/30, new 37/37/73/73/73.
    q = quote(310, start=D(2025, 4, 30), end=D(2025, 5, 31))
    old, new = q.lines[:6], q.lines[6:]
    assert [line.quota_kwh for line in old] == [15, 15, 30, 30, 30, None]
    assert [line.quota_kwh for line in new] == [37, 37, 73, 73, 73, None]
    assert sum(line.kwh for line in old) == 90 and sum(line.kwh for line in new) == 220
    # 15x1893 + 15x1956 + 30x2271 + 30x2860 = 211,665 ; 37x1984 + 37x2050 + 73x2380 + 73x2998 = 541,852
    assert q.amount_before_vat == 211_665 + 541_852
    assert q.vat_amount == 75_352  # 10% of 753,517, half-up
    assert q.decisions == ("2699/QD-BCT", "1279/QD-BCT")


def test_fractional_households_for_tenants() -> None:
    # 6 registered tenants = 1.5 households: quotas 75/75/150/150/150
    q = quote(100, start=D(2026, 9, 30), end=D(2026, 10, 31), households=Decimal("1.5"))
    assert [line.quota_kwh for line in q.lines][:5] == [75, 75, 150, 150, 150]


def test_json_contract_keys_exactly() -> None:
    payload = quote(300).as_json()
    assert set(payload) == {"lines", "amount_before_vat", "vat_rate", "vat_amount", "total_amount"}
    assert all(set(line) == {"tier", "quota_kwh", "kwh", "price", "amount"} for line in payload["lines"])  # type: ignore[attr-defined]


def test_errors_name_the_input() -> None:
    with pytest.raises(BillingError, match="empty"):
        quote(10, start=D(2026, 5, 1), end=D(2026, 5, 1))
    with pytest.raises(TariffError, match="voltage 'ge110kv'"):
        quote(10, start=D(2026, 5, 31), end=D(2026, 6, 30), tariff_class="business", voltage="ge110kv")
    with pytest.raises(TariffError, match="no residential tariff"):
        quote(10, start=D(2001, 1, 31), end=D(2001, 2, 28))


dates = st.dates(min_value=D(2023, 6, 1), max_value=D(2027, 12, 31))


@st.composite
def regular_periods(draw: st.DrawFn) -> tuple[dt.date, dt.date]:
    start = draw(dates)
    return start, add_months(start, 1, month_end=is_month_end(start))


@settings(max_examples=150, deadline=None)
@given(
    kwh=st.integers(0, 5000),
    extra=st.integers(1, 500),
    period=regular_periods(),
    h=st.integers(1, 8).map(lambda n: Decimal(n) / 4),
)
def test_total_never_decreases_as_kwh_grows(
    kwh: int, extra: int, period: tuple[dt.date, dt.date], h: Decimal
) -> None:
    start, end = period
    assert (
        quote(kwh + extra, start=start, end=end, households=h).total_amount
        >= quote(kwh, start=start, end=end, households=h).total_amount
    )


@settings(max_examples=150, deadline=None)
@given(
    kwh=st.decimals(0, 5000, places=2),
    start=dates,
    days=st.integers(1, 70),
    h=st.integers(1, 12).map(lambda n: Decimal(n) / 4),
)
def test_tier_quantities_sum_to_the_energy(kwh: Decimal, start: dt.date, days: int, h: Decimal) -> None:
    q = quote(kwh, start=start, end=start + dt.timedelta(days=days), households=h)
    assert sum(line.kwh for line in q.lines) == kwh
    assert all(line.quota_kwh is None or line.kwh <= line.quota_kwh for line in q.lines)


@settings(max_examples=150, deadline=None)
@given(period=regular_periods(), h=st.integers(1, 6))
def test_regular_cycle_gives_full_norms_times_households(period: tuple[dt.date, dt.date], h: int) -> None:
    start, end = period
    book = default_book()
    if book.changes_within(start, end):
        return  # a price change splits the period: covered by its own test
    q = quote(123, start=start, end=end, households=Decimal(h))
    norms = [tier.norm_kwh for tier in book.tariff_on(end).tiers]
    assert q.regular
    assert [line.quota_kwh for line in q.lines] == [None if n is None else n * h for n in norms]
