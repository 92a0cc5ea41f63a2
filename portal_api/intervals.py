"""Consumption by load-profile interval: the customer's meters summed per interval end.

Read straight from the published `intervals` files of the meters' buckets and the asked
days (at most a week, so a few files); the filter on meter ids is pushed into the scan, and
the files are sorted by meter, so the row-group statistics skip the other meters. Each
point carries the TOU band the published row names (the calendar ingest split the day
with, so a day's intervals add up to its bars); when the customer's meters disagree at one
end (different capture periods) the band is `null` and the energy goes to no band.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import polars as pl

from core.timezones import LOCAL_TZ
from portal_api.consumption import DateRange
from portal_api.errors import SnapshotUnavailable

BANDS = ("offpeak", "normal", "peak")


def days_of(span: DateRange) -> list[str]:
    """The local days of a range as partition values (YYYY-MM-DD)."""
    count = (span.end - span.start).days + 1
    return [(span.start + dt.timedelta(days=i)).isoformat() for i in range(count)]


def read_intervals(
    files_by_bucket: Mapping[int, Sequence[Path]], meters_by_bucket: Mapping[int, Sequence[str]]
) -> pl.DataFrame:
    """(ts, energy_wh, estimated_wh, meters, band, period_minutes) per interval end, summed
    over the meters; each bucket's files are read for that bucket's meters only."""
    scans = [
        pl.scan_parquet([str(f) for f in files]).filter(pl.col("meter_id").is_in(list(meters_by_bucket[b])))
        for b, files in files_by_bucket.items() if files
    ]
    if not scans:
        return pl.DataFrame(schema={"ts": pl.Datetime("us", "UTC"), "energy_wh": pl.Int64(),
                                    "estimated_wh": pl.Int64(), "meters": pl.UInt32(), "band": pl.String(),
                                    "period_minutes": pl.Int16()})
    rows = pl.concat(scans, how="vertical_relaxed").unique(["meter_id", "ts"], keep="last")
    query = (
        rows.group_by("ts")
        .agg(
            energy_wh=pl.col("energy_wh").sum(),
            estimated_wh=pl.col("energy_wh").filter(pl.col("estimated")).sum(),
            meters=pl.col("meter_id").n_unique(),
            band=pl.when(pl.col("tou").n_unique() == 1).then(pl.col("tou").first()),
            period_minutes=pl.col("period_minutes").max(),
        )
        .sort("ts")
    )
    try:
        return query.collect()
    except (OSError, pl.exceptions.ComputeError) as exc:
        # a file the index named was removed by a vacuum after a newer run: the next refresh
        # names the new ones
        raise SnapshotUnavailable(
            f"the published interval files changed while being read ({type(exc).__name__})",
            hint="retry in a few seconds",
        ) from exc


def _split(band: str | None, wh: int) -> dict[str, int] | None:
    if band not in BANDS:
        return None
    return {f"{name}_wh": wh if name == band else 0 for name in BANDS}


def assemble_intervals(frame: pl.DataFrame, span: DateRange) -> dict[str, Any]:
    """The response body: points in time order (interval end in local time) and a total
    whose TOU split is given when every point has a band."""
    points: list[dict[str, Any]] = []
    total = {"energy_wh": 0, "estimated_wh": 0}
    bands = dict.fromkeys(BANDS, 0)
    all_banded = True
    for ts, energy, estimated, meters, band, period in frame.iter_rows():
        points.append({
            "ts": ts.astimezone(LOCAL_TZ).isoformat(), "period_minutes": period, "band": band,
            "energy_wh": energy, "estimated_wh": estimated, "meters": meters, "tou": _split(band, energy),
        })
        total["energy_wh"] += energy
        total["estimated_wh"] += estimated
        if band in bands:
            bands[band] += energy
        else:
            all_banded = False
    tou = {f"{name}_wh": wh for name, wh in bands.items()} if points and all_banded else None
    return {
        "granularity": "interval",
        "from": span.start.isoformat(),
        "to": span.end.isoformat(),
        "unit": "Wh",
        "points": points,
        "total": {**total, "tou": tou},
    }
