"""A deterministic household (or business) load model for meter simulators.

Everything follows from (seed, meter_id): the household's typical monthly consumption
(about 50 to 600 kWh, median near 200), a seasonal factor (air conditioning from May to
September), day-to-day noise and a daily shape with a night base, a morning rise around
05:30-07:30 and an evening peak around 18:00-22:00. Businesses are heavier on weekday
daytime. Energy is integer watt-hours: the register at any instant is exact, interval
energies sum exactly to the register's advance, and two calls never disagree.
See ../shared/domain/evn-billing.md (a modelling assumption, not measured data).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import math
from dataclasses import dataclass, field
from itertools import accumulate

from core.timezones import LOCAL_TZ

SLOTS_PER_DAY = 96  # 15-minute slots
SLOT = dt.timedelta(minutes=15)
SEASON = {1: 0.85, 2: 0.8, 3: 0.9, 4: 1.05, 5: 1.3, 6: 1.45, 7: 1.5, 8: 1.4, 9: 1.2,
          10: 1.0, 11: 0.9, 12: 0.85}


def _unit(*parts: object) -> float:
    """A uniform number in [0, 1) from the parts, stable across processes and versions."""
    digest = hashlib.blake2b("|".join(map(str, parts)).encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") / 2**64


stable_unit = _unit  # public name for other simulators that draw from the same stable hash


def _household_shape() -> list[float]:
    weights = []
    for slot in range(SLOTS_PER_DAY):
        hour = slot / 4
        w = 0.35  # night base: fridge, fans
        w += 0.9 * math.exp(-(((hour - 6.5) / 1.0) ** 2))  # morning rise
        w += 0.3 * math.exp(-(((hour - 12.0) / 1.5) ** 2))  # lunch
        w += 1.8 * math.exp(-(((hour - 20.0) / 1.8) ** 2))  # evening peak
        weights.append(w)
    total = sum(weights)
    return [w / total for w in weights]


def _business_shape(weekday: bool) -> list[float]:
    weights = []
    for slot in range(SLOTS_PER_DAY):
        hour = slot / 4
        open_hours = 7.5 <= hour < 18.5
        w = 0.25 + ((2.5 if weekday else 0.8) if open_hours else 0.0)
        weights.append(w)
    total = sum(weights)
    return [w / total for w in weights]


def _cumulative(shape: list[float]) -> list[float]:
    return [0.0, *accumulate(shape)]


_HOUSEHOLD = _cumulative(_household_shape())
_BUSINESS_WEEKDAY = _cumulative(_business_shape(True))
_BUSINESS_WEEKEND = _cumulative(_business_shape(False))


@dataclass
class HouseholdLoad:
    """The energy a simulated customer draws, from `epoch` (local midnight) on."""

    meter_id: str
    seed: int = 0
    kind: str = "household"  # or "business"
    epoch: dt.date = dt.date(2026, 1, 1)
    initial_wh: int | None = None
    _day_ends: list[int] = field(default_factory=list, repr=False)  # register at each day's end
    _day_energy: dict[int, int] = field(default_factory=dict, repr=False)  # ordinal -> Wh, memoised

    def __post_init__(self) -> None:
        u = _unit(self.seed, self.meter_id, "size")
        if self.kind == "business":
            self.monthly_kwh = 1500.0 + 6000.0 * u
        else:
            # log-normal-ish spread: about 50 to 600 kWh a month, median near 200
            self.monthly_kwh = 200.0 * math.exp(1.05 * (u - 0.5) * 2.2)
        if self.initial_wh is None:
            self.initial_wh = int(_unit(self.seed, self.meter_id, "start") * 5_000_000)

    def day_wh(self, day: dt.date) -> int:
        """Energy drawn on a local day, integer Wh (memoised: simulators ask for it on every read)."""
        ordinal = day.toordinal()
        cached = self._day_energy.get(ordinal)
        if cached is None:
            cached = self._day_energy[ordinal] = self._compute_day_wh(day)
        return cached

    def _compute_day_wh(self, day: dt.date) -> int:
        noise = 0.75 + 0.5 * _unit(self.seed, self.meter_id, day.toordinal())
        factor = SEASON[day.month] if self.kind == "household" else 1.0
        if self.kind == "business" and day.weekday() == 6:
            factor *= 0.4
        return int(self.monthly_kwh * 1000.0 / 30.0 * factor * noise)

    def _cumulative_shape(self, day: dt.date) -> list[float]:
        if self.kind == "business":
            return _BUSINESS_WEEKDAY if day.weekday() < 6 else _BUSINESS_WEEKEND
        return _HOUSEHOLD

    def _register_at_day_start(self, day: dt.date) -> int:
        index = (day - self.epoch).days
        if index < 0:
            raise ValueError(f"{day} is before the simulated meter's epoch {self.epoch}")
        while len(self._day_ends) < index:
            done = len(self._day_ends)
            previous = self._day_ends[-1] if self._day_ends else (self.initial_wh or 0)
            self._day_ends.append(previous + self.day_wh(self.epoch + dt.timedelta(days=done)))
        return self._day_ends[index - 1] if index else (self.initial_wh or 0)

    def register_wh(self, when: dt.datetime) -> int:
        """The cumulative import register at an instant, integer Wh (monotonic)."""
        local = when.astimezone(LOCAL_TZ)
        day = local.date()
        start = self._register_at_day_start(day)
        seconds = local.hour * 3600 + local.minute * 60 + local.second + local.microsecond / 1e6
        position = seconds / 900.0
        slot = min(int(position), SLOTS_PER_DAY - 1)
        cumulative = self._cumulative_shape(day)
        fraction = cumulative[slot] + (cumulative[slot + 1] - cumulative[slot]) * (position - slot)
        return start + int(self.day_wh(day) * fraction)

    def interval_wh(self, end: dt.datetime, period: dt.timedelta = SLOT) -> int:
        """Energy over the interval ending at `end` (exactly the register's advance)."""
        return self.register_wh(end) - self.register_wh(end - period)

    def power_w(self, when: dt.datetime) -> int:
        """Average power over the 15-minute slot containing `when`, in watts."""
        local = when.astimezone(LOCAL_TZ)
        cumulative = self._cumulative_shape(local.date())
        slot = min((local.hour * 60 + local.minute) // 15, SLOTS_PER_DAY - 1)
        share = cumulative[slot + 1] - cumulative[slot]
        return int(self.day_wh(local.date()) * share * 4)

