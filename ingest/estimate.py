"""Estimation of missing intervals, as pure LazyFrame transforms.

- a gap no longer than `interpolate_max_minutes` is filled by linear interpolation
  between the intervals on either side (or the one side there is);
- a longer gap takes, slot by slot, the average of the most recent like days (same day
  type: weekday, Saturday, Sunday) the store has, falling back to interpolation;
- slots inside a power outage the meter recorded are zero (method `outage`);
- when the day's import register is known at both ends, the estimates are scaled so the
  day's intervals add up to the register's advance exactly (method suffix `+scaled`).
All arithmetic is on integer mWh; scaling distributes the remainder by the cumulative
difference `floor(R*C_i/T) - floor(R*C_(i-1)/T)`, which sums to R exactly.
"""

from __future__ import annotations

import datetime as dt

import polars as pl

from core.obis import ACTIVE_IMPORT_INTERVAL
from core.timezones import local_midnight_utc
from ingest.codes import ESTIMATED, VALID
from ingest.config import VeeConfig
from ingest.localtime import minute_of_day
from ingest.quantities import INTERVAL
from ingest.validate import in_outage

PAIR = ["meter_key", "quantity"]
INTERPOLATION = "interpolation"
LIKE_DAY = "like_day"
OUTAGE = "outage"
DAY_EDIT = "day_edit"


def day_type(day: dt.date) -> int:
    """0 weekday, 1 Saturday, 2 Sunday."""
    return {5: 1, 6: 2}.get(day.weekday(), 0)


def like_days(day: dt.date, available: set[dt.date], cfg: VeeConfig) -> list[dt.date]:
    """The most recent `cfg.like_days` days of the same type before `day` that the store has."""
    out: list[dt.date] = []
    for back in range(1, cfg.like_days_lookback + 1):
        candidate = day - dt.timedelta(days=back)
        if candidate in available and day_type(candidate) == day_type(day):
            out.append(candidate)
            if len(out) == cfg.like_days:
                break
    return out


def like_profile(history: pl.LazyFrame) -> pl.LazyFrame:
    """Average per (meter_key, quantity, minute of day) of like days' intervals, integer mWh."""
    return (
        history.filter(pl.col("state").is_in([VALID, ESTIMATED]) & pl.col("mwh").is_not_null())
        .with_columns(minute_of_day(pl.col("ts")))
        .group_by([*PAIR, "minute"])
        .agg(like_mwh=pl.col("mwh").sum() // pl.len())
    )


def slot_grid(day: dt.date, cfg: VeeConfig, now: dt.datetime) -> pl.LazyFrame:
    """The interval ends of a local day up to `now`."""
    start = local_midnight_utc(day)
    ends = [start + cfg.interval * k for k in range(1, cfg.slots_per_day + 1)]
    ends = [e for e in ends if e <= now]
    return pl.LazyFrame({"ts": ends}, schema={"ts": pl.Datetime("us", "UTC")})


def missing_slots(
    readings: pl.LazyFrame,
    day: dt.date,
    cfg: VeeConfig,
    now: dt.datetime,
    expected: pl.LazyFrame | None = None,
) -> pl.LazyFrame:
    """Slots with no valid value of every interval series seen that day, or `expected`
    (series of the day before, so a meter silent all day is estimated too)."""
    grid = slot_grid(day, cfg, now - dt.timedelta(minutes=cfg.estimate_lag_minutes))
    intervals = readings.filter((pl.col("kind") == INTERVAL) & (pl.col("meter_key") >= 0))
    valid = intervals.filter(pl.col("state") == VALID).select(*PAIR, "ts").join(grid, on="ts", how="semi")
    series = intervals.select("meter_key", "meter_id", "quantity")
    if expected is not None:
        series = pl.concat([series, expected.select("meter_key", "meter_id", "quantity")])
    # only series short of a full grid are expanded (most series are complete)
    short = (
        series.unique()
        .join(valid.group_by(PAIR).agg(_n=pl.len()), on=PAIR, how="left")
        .filter(pl.col("_n").fill_null(0) < grid.select(pl.len()).collect().item())
        .drop("_n")
    )
    return short.join(grid, how="cross").join(valid, on=[*PAIR, "ts"], how="anti")


def estimate(
    readings: pl.LazyFrame,
    windows: pl.LazyFrame,
    like: pl.LazyFrame,
    registers: pl.LazyFrame,
    *,
    day: dt.date,
    cfg: VeeConfig,
    now: dt.datetime,
    expected: pl.LazyFrame | None = None,
    fill: pl.LazyFrame | None = None,
) -> pl.LazyFrame:
    """Estimates for the gaps of one partition: (meter_key, meter_id, quantity, ts, mwh, method).

    `like` holds the like days' readings (meter_key, quantity, ts, mwh, state).

    `registers` has (meter_key, advance_mwh): the import register's advance over the day.

    `fill` names meters (meter_key) whose day was re-stated in review: a slot nothing else
    estimates is 0 (method `day_edit`), so scaling spreads the stated energy over every slot.
    """
    step = cfg.interval
    gaps = missing_slots(readings, day, cfg, now, expected).sort([*PAIR, "ts"]).cache()
    valid = (
        readings.filter((pl.col("kind") == INTERVAL) & (pl.col("state") == VALID))
        .select(*PAIR, "ts", "mwh")
        .join(gaps.select("meter_key").unique(), on="meter_key", how="semi")
    )
    run = ((pl.col("ts") - pl.col("ts").shift(1)) != step).fill_null(True).cum_sum().over(PAIR)
    gaps = gaps.with_columns(_run=run).with_columns(
        gap_len=pl.len().over([*PAIR, "_run"]).cast(pl.Int64),
        pos=(pl.int_range(pl.len()).over([*PAIR, "_run"]) + 1).cast(pl.Int64),
        gap_start=pl.col("ts").min().over([*PAIR, "_run"]),
        gap_end=pl.col("ts").max().over([*PAIR, "_run"]),
    )
    before = valid.select(*PAIR, _bts=pl.col("ts") + step, prev_mwh=pl.col("mwh"))
    after = valid.select(*PAIR, _ats=pl.col("ts") - step, next_mwh=pl.col("mwh"))
    gaps = (
        gaps.join(before, left_on=[*PAIR, "gap_start"], right_on=[*PAIR, "_bts"], how="left")
        .join(after, left_on=[*PAIR, "gap_end"], right_on=[*PAIR, "_ats"], how="left")
        .with_columns(minute_of_day(pl.col("ts") - step))
        .join(
            # the like days of the meters with gaps only, averaged per slot
            like_profile(
                like.join(gaps.select("meter_key").unique(), on="meter_key", how="semi")
            ).with_columns(pl.col("minute") - cfg.interval_minutes),
            on=[*PAIR, "minute"],
            how="left",
        )
    )
    gaps = in_outage(gaps, windows, step)
    both = pl.col("prev_mwh") + (pl.col("next_mwh") - pl.col("prev_mwh")) * pl.col("pos") // (
        pl.col("gap_len") + 1
    )
    interpolated = pl.coalesce(both, pl.col("prev_mwh"), pl.col("next_mwh"))
    short = pl.col("gap_len") * cfg.interval_minutes <= cfg.interpolate_max_minutes
    gaps = gaps.with_columns(
        mwh=pl.when(pl.col("in_outage"))
        .then(pl.lit(0, pl.Int64))
        .when(short & interpolated.is_not_null())
        .then(interpolated)
        .when(pl.col("like_mwh").is_not_null())
        .then(pl.col("like_mwh"))
        .otherwise(interpolated),
        method=pl.when(pl.col("in_outage"))
        .then(pl.lit(OUTAGE))
        .when(short & interpolated.is_not_null())
        .then(pl.lit(INTERPOLATION))
        .when(pl.col("like_mwh").is_not_null())
        .then(pl.lit(LIKE_DAY))
        .otherwise(pl.lit(INTERPOLATION)),
    )
    if fill is not None:
        filled = gaps.join(fill.select("meter_key", _fill=pl.lit(True)), on="meter_key", how="left")
        blank = pl.col("_fill").fill_null(False) & pl.col("mwh").is_null()
        gaps = filled.with_columns(
            mwh=pl.when(blank).then(pl.lit(0, pl.Int64)).otherwise(pl.col("mwh")),
            method=pl.when(blank).then(pl.lit(DAY_EDIT)).otherwise(pl.col("method")),
        ).drop("_fill")
    gaps = gaps.filter(pl.col("mwh").is_not_null())
    return scale_to_registers(gaps, valid, registers)


def scale_to_registers(gaps: pl.LazyFrame, valid: pl.LazyFrame, registers: pl.LazyFrame) -> pl.LazyFrame:
    """Scale the import interval estimates of a day to its register advance when known."""
    measured = (
        valid.filter(pl.col("quantity") == ACTIVE_IMPORT_INTERVAL)
        .group_by("meter_key")
        .agg(measured_mwh=pl.col("mwh").sum())
    )
    scalable = (pl.col("quantity") == ACTIVE_IMPORT_INTERVAL) & (pl.col("method") != OUTAGE)
    residual = pl.col("advance_mwh") - pl.col("measured_mwh").fill_null(0)
    # weights: the estimates themselves, or equal shares when they are all zero
    weight = pl.when(pl.col("_total") > 0).then(pl.col("mwh")).otherwise(1)
    weight_total = pl.when(pl.col("_total") > 0).then(pl.col("_total")).otherwise(pl.col("_count"))
    do_scale = scalable & pl.col("advance_mwh").is_not_null() & (residual >= 0)
    return (
        gaps.join(registers, on="meter_key", how="left")
        .join(measured, on="meter_key", how="left")
        .sort(["meter_key", "quantity", "ts"])
        .with_columns(
            _total=pl.col("mwh").filter(scalable).sum().over("meter_key"),
            _count=scalable.cast(pl.Int64).sum().over("meter_key"),
        )
        .with_columns(_cum=pl.when(scalable).then(weight).otherwise(0).cum_sum().over("meter_key"))
        .with_columns(_share=residual * pl.col("_cum") // weight_total)
        .with_columns(_scaled=pl.col("_share") - pl.col("_share").shift(1, fill_value=0).over("meter_key"))
        .with_columns(
            mwh=pl.when(do_scale).then(pl.col("_scaled")).otherwise(pl.col("mwh")),
            method=pl.when(do_scale).then(pl.col("method") + "+scaled").otherwise(pl.col("method")),
        )
        .select("meter_key", "meter_id", "quantity", "ts", "mwh", "method")
    )
