"""Consumption of a customer over a bounded date range, by day or by month, with the TOU split
(by interval: see `intervals`; the range rules for all three are here).

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
MAX_DAYS = {"interval": 7, "day": 366, "month": 3 * 366}


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
            hint="use granularity=interval, granularity=day or granularity=month",
        )
    if end < start:
        raise InvalidRequest(f"the range ends ({end}) before it starts ({start})", hint="swap from and to")
    days = (end - start).days + 1
    if days > MAX_DAYS[granularity]:
        raise InvalidRequest(
            f"the range {start}..{end} spans {days} days; at most {MAX_DAYS[granularity]} "
            f"are served with granularity={granularity}",
            hint="ask for a shorter range, or a coarser granularity (day, then month) for long ranges",
        )
    return DateRange(start, end)


def _tou(sums: list[int]) -> dict[str, int]:
    return {"offpeak_wh": sums[1], "normal_wh": sums[2], "peak_wh": sums[3]}


def assemble(months: Iterable[MonthOfDays], span: DateRange, granularity: Granularity) -> dict[str, Any]:
    """Points in date order and a total, from the meters' months of days.

    Runs once per request for every meter-month asked, so it works on the stored columns
    directly (day numbers and text keys) instead of building a date per day.
    """
    start, end = span.start.isoformat(), span.end.isoformat()
    months = list(months)
    if granularity == "day" and len({m.meter_id for m in months}) <= 1:
        return _one_meter_days(months, start, end)
    sums: dict[str, list[int]] = {}  # key -> [energy, offpeak, normal, peak, estimated]
    tou: dict[str, bool] = {}
    meters: dict[str, set[str]] = {}
    for month in months:
        cols = month.columns
        for d, e, o, n, p, x, t in zip(cols["d"], cols["e"], cols["o"], cols["n"], cols["p"], cols["x"],
                                       cols["t"], strict=True):
            day = f"{month.month}-{d:02d}"
            if not start <= day <= end:
                continue
            key = day if granularity == "day" else month.month
            acc = sums.get(key)
            if acc is None:
                sums[key] = [e, o, n, p, x]
                tou[key] = bool(t)
                meters[key] = {month.meter_id}
                continue
            acc[0] += e
            acc[1] += o
            acc[2] += n
            acc[3] += p
            acc[4] += x
            tou[key] = tou[key] and bool(t)
            meters[key].add(month.meter_id)
    label = "date" if granularity == "day" else "period"
    points = [
        {label: k, "energy_wh": v[0], "estimated_wh": v[4], "meters": len(meters[k]),
         "tou": _tou(v) if tou[k] else None}
        for k, v in sorted(sums.items())
    ]
    total = [sum(v[i] for v in sums.values()) for i in range(5)]
    all_tou = bool(points) and all(tou.values())
    return {
        "granularity": granularity,
        "from": start,
        "to": end,
        "unit": "Wh",
        "points": points,
        "total": {"energy_wh": total[0], "estimated_wh": total[4], "tou": _tou(total) if all_tou else None},
    }


def _one_meter_days(months: list[MonthOfDays], start: str, end: str) -> dict[str, Any]:
    """The common case (one meter, by day): nothing to add up across meters, so no per-day
    bookkeeping; each stored day becomes its point directly."""
    points: list[dict[str, Any]] = []
    total = [0, 0, 0, 0, 0]
    all_tou = True
    for month in sorted(months, key=lambda m: m.month):
        cols = month.columns
        for d, e, o, n, p, x, t in zip(cols["d"], cols["e"], cols["o"], cols["n"], cols["p"], cols["x"],
                                       cols["t"], strict=True):
            day = f"{month.month}-{d:02d}"
            if start <= day <= end:
                points.append({"date": day, "energy_wh": e, "estimated_wh": x, "meters": 1,
                               "tou": {"offpeak_wh": o, "normal_wh": n, "peak_wh": p} if t else None})
                total[0] += e
                total[1] += o
                total[2] += n
                total[3] += p
                total[4] += x
                all_tou = all_tou and bool(t)
    return {
        "granularity": "day",
        "from": start,
        "to": end,
        "unit": "Wh",
        "points": points,
        "total": {"energy_wh": total[0], "estimated_wh": total[4],
                  "tou": _tou(total) if points and all_tou else None},
    }
