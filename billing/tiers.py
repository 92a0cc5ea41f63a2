"""Residential tier arithmetic, one customer at a time (quotes, corrections, the baseline).

Quotas: full norms x households for a regular cycle; otherwise
quota_i = round_half_up(norm_i x N / T x h) (Circular 60/2025/TT-BCT Art. 12.7, 12.11).
The vectorised bill run (`billing.rating`) implements the same rule as expressions and
is tested against this module.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal

from billing.money import round_half_up
from billing.tariffs import Tier


@dataclass(frozen=True)
class Line:
    tier: int | str  # tier number (1..n) or TOU band
    quota_kwh: int | None  # None: unlimited (last tier, TOU bands)
    kwh: Decimal
    price: int
    amount: int

    def as_json(self) -> dict[str, object]:
        return {
            "tier": self.tier,
            "quota_kwh": self.quota_kwh,
            "kwh": _number(self.kwh),
            "price": self.price,
            "amount": self.amount,
        }


def _number(value: Decimal) -> int | str:
    """Whole kWh as a JSON integer; fractional kWh as an exact decimal string."""
    return int(value) if value == value.to_integral_value() else str(value)


def quotas(
    tiers: Sequence[Tier], *, households: Decimal, days: int | None = None, month_days: int | None = None
) -> list[int | None]:
    """Each tier's quota; `days`/`month_days` (N, T) given only for an irregular period."""
    out: list[int | None] = []
    for tier in tiers:
        if tier.norm_kwh is None:
            out.append(None)
        elif days is None or month_days is None:
            out.append(round_half_up(tier.norm_kwh * households))
        else:
            out.append(round_half_up(Decimal(tier.norm_kwh) * days * households / month_days))
    return out


def rate_tiers(kwh: Decimal, tiers: Sequence[Tier], tier_quotas: Sequence[int | None]) -> list[Line]:
    """Fill the tiers in order; each line's amount is kWh x price rounded half-up to VND."""
    lines: list[Line] = []
    left = kwh
    for number, (tier, quota) in enumerate(zip(tiers, tier_quotas, strict=True), start=1):
        take = left if quota is None else min(left, Decimal(quota))
        take = max(take, Decimal(0))
        lines.append(Line(number, quota, take, tier.price, round_half_up(take * tier.price)))
        left -= take
    return lines
