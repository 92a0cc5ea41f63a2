"""Exact rounding of money and energy: whole VND, half-up, as published bills do."""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal


def round_half_up(value: Decimal | int) -> int:
    """Round to a whole number, halves away from zero (EVN's rule; never banker's rounding)."""
    return int(Decimal(value).quantize(Decimal(1), rounding=ROUND_HALF_UP))


def div_half_up(numerator: int, denominator: int) -> int:
    """round_half_up(numerator / denominator) in integers, for numerator >= 0 < denominator."""
    return (2 * numerator + denominator) // (2 * denominator)


def vat_of(amount: int, rate: Decimal) -> int:
    return round_half_up(Decimal(amount) * rate)
