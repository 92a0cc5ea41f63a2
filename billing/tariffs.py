"""Tariffs as dated data: one TOML file per decision in `fixtures/tariffs/`.

A file prices what its decision prices: residential tiers (any number of them, so the
coming 5-tier structure needs only a new file) and time-of-use prices by class and
voltage level. The tariff in force on a day is the latest file whose `effective_from` is
on or before it and that prices the class. VAT and TOU calendars live beside them.
"""

from __future__ import annotations

import datetime as dt
import functools
import tomllib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

from billing.errors import TariffError
from core.paths import fixture

RESIDENTIAL = "residential"
TOU_CLASSES = ("business", "production")
CLASSES = (RESIDENTIAL, *TOU_CLASSES)
BANDS = ("offpeak", "normal", "peak")
DEFAULT_VOLTAGE = "lt6kv"


@dataclass(frozen=True)
class Tier:
    norm_kwh: int | None  # None: the last tier, all the rest
    price: int  # VND/kWh before VAT


@dataclass(frozen=True)
class TouPrices:
    offpeak: int
    normal: int
    peak: int

    def price(self, band: str) -> int:
        return int(getattr(self, band))


@dataclass(frozen=True)
class Tariff:
    decision: str
    effective_from: dt.date
    tiers: tuple[Tier, ...]  # empty when the decision prices no residential tiers
    tou: Mapping[str, Mapping[str, TouPrices]]  # class -> voltage -> prices

    def prices(self, tariff_class: str) -> bool:
        return bool(self.tiers) if tariff_class == RESIDENTIAL else tariff_class in self.tou

    def tou_prices(self, tariff_class: str, voltage: str | None) -> TouPrices:
        levels = self.tou.get(tariff_class, {})
        key = voltage or DEFAULT_VOLTAGE
        if key not in levels:
            raise TariffError(
                f"tariff {self.decision} has no {tariff_class} prices for voltage {key!r}",
                hint=f"use one of: {', '.join(sorted(levels)) or '(none)'}",
            )
        return levels[key]


@dataclass(frozen=True)
class VatWindow:
    rate: Decimal
    start: dt.date
    end: dt.date  # inclusive


@dataclass(frozen=True)
class TariffBook:
    tariffs: tuple[Tariff, ...]  # by effective_from
    default_vat: Decimal
    vat_windows: tuple[VatWindow, ...]

    def tariff_on(self, day: dt.date, tariff_class: str = RESIDENTIAL) -> Tariff:
        if tariff_class not in CLASSES:
            raise TariffError(
                f"tariff class {tariff_class!r} is unknown", hint=f"use one of: {', '.join(CLASSES)}"
            )
        found = [t for t in self.tariffs if t.effective_from <= day and t.prices(tariff_class)]
        if not found:
            raise TariffError(
                f"no {tariff_class} tariff is in force on {day.isoformat()}",
                hint="add the decision in force then to fixtures/tariffs/",
            )
        return found[-1]

    def changes_within(self, start: dt.date, end: dt.date, tariff_class: str = RESIDENTIAL) -> list[Tariff]:
        """Tariffs taking effect strictly after `start`'s day and on or before `end`'s day."""
        return [t for t in self.tariffs if start < t.effective_from <= end and t.prices(tariff_class)]

    def vat_rate_on(self, day: dt.date) -> Decimal:
        for window in self.vat_windows:
            if window.start <= day <= window.end:
                return window.rate
        return self.default_vat


def _tiers(raw: Sequence[Mapping[str, Any]], origin: Path) -> tuple[Tier, ...]:
    tiers: list[Tier] = []
    for index, entry in enumerate(raw, start=1):
        norm = entry.get("norm_kwh")
        price = entry.get("price")
        last = index == len(raw)
        if not isinstance(price, int) or price <= 0:
            raise TariffError(f"{origin}: tier {index} has no positive whole price")
        if last != (norm is None) or (norm is not None and (not isinstance(norm, int) or norm <= 0)):
            raise TariffError(
                f"{origin}: tier {index} norm_kwh is wrong",
                hint="every tier but the last needs a positive norm_kwh; the last has none",
            )
        tiers.append(Tier(norm_kwh=norm, price=price))
    return tuple(tiers)


def _tou(raw: Mapping[str, Any], origin: Path) -> dict[str, dict[str, TouPrices]]:
    out: dict[str, dict[str, TouPrices]] = {}
    for tariff_class, levels in raw.items():
        if tariff_class not in TOU_CLASSES:
            raise TariffError(f"{origin}: TOU class {tariff_class!r} is not one of {TOU_CLASSES}")
        out[tariff_class] = {}
        for voltage, prices in levels.items():
            try:
                out[tariff_class][voltage] = TouPrices(**{b: int(prices[b]) for b in BANDS})
            except (KeyError, TypeError, ValueError) as exc:
                raise TariffError(
                    f"{origin}: tou.{tariff_class}.{voltage} needs whole offpeak, normal and peak prices"
                ) from exc
    return out


def load_tariff(path: Path) -> Tariff:
    try:
        raw = tomllib.loads(path.read_text("utf-8"))
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise TariffError(f"tariff file {path} cannot be read: {exc}") from exc
    effective = raw.get("effective_from")
    if not isinstance(effective, dt.date) or "decision" not in raw:
        raise TariffError(
            f"tariff file {path} needs `decision` and a date `effective_from`",
            hint="see fixtures/tariffs/1279-QD-BCT.toml for the layout",
        )
    return Tariff(
        decision=str(raw["decision"]),
        effective_from=effective,
        tiers=_tiers(raw.get("residential", {}).get("tiers", []), path),
        tou=_tou(raw.get("tou", {}), path),
    )


def _vat(path: Path) -> tuple[Decimal, tuple[VatWindow, ...]]:
    try:
        raw = tomllib.loads(path.read_text("utf-8"))
        windows = tuple(
            VatWindow(rate=Decimal(w["rate"]), start=w["from"], end=w["to"]) for w in raw.get("reduced", [])
        )
        return Decimal(raw["default_rate"]), windows
    except (OSError, tomllib.TOMLDecodeError, KeyError, InvalidOperation) as exc:
        raise TariffError(f"VAT schedule {path} cannot be used: {exc}") from exc


def load_book(directory: Path | None = None) -> TariffBook:
    """Every tariff file of a directory (default `fixtures/tariffs/`) and its VAT schedule."""
    root = directory or fixture("tariffs")
    tariffs = sorted(
        (load_tariff(p) for p in root.glob("*.toml") if p.name != "vat.toml"), key=lambda t: t.effective_from
    )
    dates = [t.effective_from for t in tariffs]
    if len(set(dates)) != len(dates):
        raise TariffError(f"two tariff files in {root} take effect on the same day")
    default_vat, windows = _vat(root / "vat.toml")
    return TariffBook(tariffs=tuple(tariffs), default_vat=default_vat, vat_windows=windows)


@functools.cache
def default_book() -> TariffBook:
    return load_book()
