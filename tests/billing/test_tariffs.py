from __future__ import annotations

import datetime as dt
import shutil
from decimal import Decimal
from pathlib import Path

import pytest

from billing.calendars import calendar
from billing.errors import TariffError
from billing.quote import quote
from billing.tariffs import load_book
from core.paths import fixture

D = dt.date


def test_tariff_in_force_by_date_and_vat_schedule() -> None:
    book = load_book()
    assert book.tariff_on(D(2023, 5, 3)).decision == "2256/QD-BCT"
    assert book.tariff_on(D(2023, 5, 4)).decision == "1062/QD-BCT"
    assert book.tariff_on(D(2024, 10, 11)).decision == "2699/QD-BCT"
    assert book.tariff_on(D(2026, 11, 30)).decision == "1279/QD-BCT"
    assert book.vat_rate_on(D(2025, 6, 30)) == Decimal("0.10")
    assert book.vat_rate_on(D(2025, 7, 1)) == Decimal("0.08")
    assert book.vat_rate_on(D(2026, 12, 31)) == Decimal("0.08")
    assert book.vat_rate_on(D(2027, 1, 1)) == Decimal("0.10")


def test_a_five_tier_structure_needs_only_a_new_file(tmp_path: Path) -> None:
    for path in fixture("tariffs").glob("*.toml"):
        shutil.copy(path, tmp_path / path.name)
    (tmp_path / "5-tier.toml").write_text(
        'decision = "TEST-5"\neffective_from = 2027-03-01\n[residential]\ntiers = [\n'
        "{ norm_kwh = 100, price = 2000 }, { norm_kwh = 100, price = 2400 },\n"
        "{ norm_kwh = 200, price = 3000 }, { norm_kwh = 300, price = 3600 }, { price = 4000 }]\n"
    )
    book = load_book(tmp_path)
    q = quote(450, start=D(2027, 3, 31), end=D(2027, 4, 30), book=book)
    # by hand: 100x2000 + 100x2400 + 200x3000 + 50x3600 = 1,220,000
    assert len(q.lines) == 5
    assert q.amount_before_vat == 1_220_000


def test_malformed_tariff_names_the_file(tmp_path: Path) -> None:
    shutil.copy(fixture("tariffs", "vat.toml"), tmp_path / "vat.toml")
    (tmp_path / "bad.toml").write_text(
        'decision = "X"\neffective_from = 2027-01-01\n[residential]\n'
        "tiers = [{ price = 10 }, { price = 20 }]\n"
    )
    with pytest.raises(TariffError, match=r"bad\.toml: tier 1 norm_kwh"):
        load_book(tmp_path)


def test_tou_calendars_band_at_local_times() -> None:
    old, new = calendar("16/2014/TT-BCT"), calendar("963/QD-BCT")
    monday, sunday = D(2026, 11, 23), D(2026, 11, 29)

    def at(day: dt.date, hh: int, mm: int) -> dt.datetime:
        return dt.datetime.combine(day, dt.time(hh, mm))

    assert old.band_at(at(monday, 9, 30)) == "peak"
    assert old.band_at(at(monday, 9, 29)) == "normal"
    assert old.band_at(at(monday, 22, 0)) == "offpeak"
    assert old.band_at(at(sunday, 18, 0)) == "normal"
    assert new.band_at(at(monday, 22, 29)) == "peak"
    assert new.band_at(at(monday, 5, 59)) == "offpeak"
    assert new.band_at(at(sunday, 20, 0)) == "normal"
    with pytest.raises(TariffError, match="unknown"):
        calendar("nope")
