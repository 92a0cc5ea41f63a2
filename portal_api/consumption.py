"""Consumption of a customer over a bounded date range, by day or by month, with the TOU split.

Sums the customer's meters day by day. The TOU split is given for a day (or a month) only
when every contributing meter-day was measured from intervals; a day known only from
register reads has no split, and the split is then `null` rather than a wrong guess.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, Literal

from portal_api.errors import InvalidRequest
from portal_api.serving import MonthOfDays

Granularity = Literal["day", "month"]
MAX_DAYS = {"day": 366, "month": 3 * 366}
_ENERGY = ("energy_wh", "offpeak_wh", "normal_wh", "peak_wh", "estimated_wh")
_SHORT = {"energy_wh": "e", "offpeak_wh": "o", "normal_wh": "n", "peak_wh": "p", "estimated_wh": "x"}


@dataclass(frozen=True)
class DateRange:
    start: dt.date
    end: dt.date  # inclusive

    def months(self) -> list[str]:
        out = []
        year, month = self.start.year, self.start.month
        while (year, month) <= (self.end.year, self.end.month):
            out.append(f"{year:04d}-{month:02d}")
            year, month = (year + 1, 1) if month == 12 else (year, month + 1)
        return out


def check_range(start: dt.date, end: dt.date, granularity: str) -> DateRange:
    if granularity not in MAX_DAYS:
        raise InvalidRequest(
            f"granularity {granularity!r} is not offered",
            hint="use granularity=day or granularity=month (interval data is not published to the portal)",
        )
    if end < start:
        raise InvalidRequest(f"the range ends ({end}) before it starts ({start})", hint="swap from and to")
    days = (end - start).days + 1
    if days > MAX_DAYS[granularity]:
        raise InvalidRequest(
            f"the range {start}..{end} spans {days} days; at most {MAX_DAYS[granularity]} "
            f"are served with granularity={granularity}",
            hint="ask for a shorter range, or use granularity=month for long ranges",
        )
    return DateRange(start, end)


def _point(key: str, sums: dict[str, int], tou: bool, meters: int) -> dict[str, Any]:
    point: dict[str, Any] = {"period" if len(key) == 7 else "date": key, "energy_wh": sums["energy_wh"],
                             "estimated_wh": sums["estimated_wh"], "meters": meters}
    point["tou"] = (
        {"offpeak_wh": sums["offpeak_wh"], "normal_wh": sums["normal_wh"], "peak_wh": sums["peak_wh"]}
        if tou else None
    )
    return point


def assemble(months: Iterable[MonthOfDays], span: DateRange, granularity: Granularity) -> dict[str, Any]:
    """Points in date order and a total, from the meters' months of days."""
    sums: dict[str, dict[str, int]] = {}
    tou: dict[str, bool] = {}
    meters: dict[str, set[str]] = {}
    for month in months:
        cols = month.columns
        year, mon = int(month.month[:4]), int(month.month[5:7])
        for i, day in enumerate(cols["d"]):
            when = dt.date(year, mon, day)
            if not span.start <= when <= span.end:
                continue
            key = when.isoformat() if granularity == "day" else month.month
            bucket = sums.setdefault(key, dict.fromkeys(_ENERGY, 0))
            for name in _ENERGY:
                bucket[name] += cols[_SHORT[name]][i]
            tou[key] = tou.get(key, True) and bool(cols["t"][i])
            meters.setdefault(key, set()).add(month.meter_id)
    points = [_point(k, sums[k], tou[k], len(meters[k])) for k in sorted(sums)]
    total = dict.fromkeys(_ENERGY, 0)
    for values in sums.values():
        for name in _ENERGY:
            total[name] += values[name]
    all_tou = bool(points) and all(tou.values())
    return {
        "granularity": granularity,
        "from": span.start.isoformat(),
        "to": span.end.isoformat(),
        "unit": "Wh",
        "points": points,
        "total": {
            "energy_wh": total["energy_wh"],
            "estimated_wh": total["estimated_wh"],
            "tou": {k: total[k] for k in ("offpeak_wh", "normal_wh", "peak_wh")} if all_tou else None,
        },
    }
