"""A quote: the bill for a given consumption over given dates, line by line.

Staff use it to answer customers; the bill run uses the same rules vectorised. Without
remote readings inside the period, a price change splits the energy by days
(old = round_half_up(S x Nc / N), Art. 12.8b) and prorates each part's quotas.
"""

from __future__ import annotations

import datetime as dt
import itertools
from dataclasses import dataclass, field
from decimal import ROUND_HALF_UP, Decimal

from billing.errors import BillingError
from billing.money import round_half_up, vat_of
from billing.periods import is_regular, last_full_month, preceding_month_days
from billing.tariffs import RESIDENTIAL, Tariff, TariffBook, default_book
from billing.tiers import Line, quotas, rate_tiers
from core.timezones import LOCAL_TZ


@dataclass(frozen=True)
class Segment:
    """A stretch of the period under one tariff: (start, end] reading dates."""

    start: dt.date
    end: dt.date
    tariff: Tariff

    @property
    def days(self) -> int:
        return (self.end - self.start).days


@dataclass(frozen=True)
class Quote:
    lines: tuple[Line, ...]
    amount_before_vat: int
    vat_rate: Decimal
    vat_amount: int
    total_amount: int
    start: dt.date
    end: dt.date
    regular: bool
    households: Decimal
    tariff_class: str
    decisions: tuple[str, ...] = field(default=())

    @property
    def days(self) -> int:
        return (self.end - self.start).days

    def as_json(self) -> dict[str, object]:
        """Exactly the published JSON contract of `amr bill quote --json`."""
        return {
            "lines": [line.as_json() for line in self.lines],
            "amount_before_vat": self.amount_before_vat,
            "vat_rate": str(self.vat_rate),
            "vat_amount": self.vat_amount,
            "total_amount": self.total_amount,
        }


def segments(book: TariffBook, start: dt.date, end: dt.date, tariff_class: str) -> list[Segment]:
    """Split (start, end] where a tariff takes effect: the boundary is the END of the day
    before the effective date (the meter's snapshot on the change date)."""
    bounds = [start]
    for tariff in book.changes_within(start, end, tariff_class):
        boundary = tariff.effective_from - dt.timedelta(days=1)
        if start < boundary < end:
            bounds.append(boundary)
    bounds.append(end)
    return [Segment(a, b, book.tariff_on(b, tariff_class)) for a, b in itertools.pairwise(bounds)]


def split_energy(kwh: Decimal, parts: list[Segment]) -> list[Decimal]:
    """Share energy by days at the input's precision (whole kWh for whole kWh), half-up;
    the last part takes the remainder so the parts sum exactly."""
    total_days = sum(p.days for p in parts)
    step = Decimal(1).scaleb(min(kwh.as_tuple().exponent, 0))  # type: ignore[arg-type]
    shares = [(kwh * p.days / total_days).quantize(step, rounding=ROUND_HALF_UP) for p in parts[:-1]]
    return [*shares, kwh - sum(shares, Decimal(0))]


def _dates(start: dt.date | None, end: dt.date | None) -> tuple[dt.date, dt.date]:
    if start is None and end is None:
        return last_full_month(dt.datetime.now(LOCAL_TZ).date())
    from billing.periods import add_months, is_month_end

    if start is None:
        assert end is not None
        start = add_months(end, -1, month_end=is_month_end(end))
    if end is None:
        end = add_months(start, 1, month_end=is_month_end(start))
    if end <= start:
        raise BillingError(f"the period from {start} to {end} is empty", hint="--to must be after --from")
    return start, end


def quote(
    kwh: int | Decimal,
    *,
    start: dt.date | None = None,
    end: dt.date | None = None,
    households: Decimal = Decimal(1),
    tariff_class: str = "residential",
    voltage: str | None = None,
    offpeak_kwh: int | Decimal = 0,
    peak_kwh: int | Decimal = 0,
    book: TariffBook | None = None,
) -> Quote:
    """The bill for `kwh` consumed between two reading dates (default: last full month).

    Business and production customers pay TOU prices; the kWh not given as off-peak or
    peak are at the normal price (customers without three-price metering pay only that).
    """
    book = book or default_book()
    energy = Decimal(kwh)
    if energy < 0 or households <= 0:
        raise BillingError(
            f"a quote needs kWh >= 0 and households > 0 (got {kwh} kWh, {households} households)"
        )
    start, end = _dates(start, end)
    parts = segments(book, start, end, tariff_class)
    regular = is_regular(start, end)
    lines: list[Line] = []
    if tariff_class == RESIDENTIAL:
        for part, part_kwh in zip(parts, split_energy(energy, parts), strict=True):
            prorate = not regular or len(parts) > 1
            part_quotas = quotas(
                part.tariff.tiers,
                households=households,
                days=part.days if prorate else None,
                month_days=preceding_month_days(end) if prorate else None,
            )
            lines.extend(rate_tiers(part_kwh, part.tariff.tiers, part_quotas))
    else:
        bands = {"offpeak": Decimal(offpeak_kwh), "peak": Decimal(peak_kwh)}
        bands["normal"] = energy - bands["offpeak"] - bands["peak"]
        if bands["normal"] < 0:
            raise BillingError(f"off-peak {offpeak_kwh} + peak {peak_kwh} kWh exceed the total {kwh} kWh")
        shares = {band: split_energy(value, parts) for band, value in bands.items()}
        for index, part in enumerate(parts):
            prices = part.tariff.tou_prices(tariff_class, voltage)
            for band in ("normal", "offpeak", "peak"):
                value = shares[band][index]
                price = prices.price(band)
                lines.append(Line(band, None, value, price, round_half_up(value * price)))
    before_vat = sum(line.amount for line in lines)
    rate = book.vat_rate_on(end)
    vat = vat_of(before_vat, rate)
    return Quote(
        lines=tuple(lines),
        amount_before_vat=before_vat,
        vat_rate=rate,
        vat_amount=vat,
        total_amount=before_vat + vat,
        start=start,
        end=end,
        regular=regular,
        households=households,
        tariff_class=tariff_class,
        decisions=tuple(p.tariff.decision for p in parts),
    )
