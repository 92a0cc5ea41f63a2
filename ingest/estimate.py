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
from core.reading import READING_SCHEMA
from core.timezones import local_midnight_utc
from ingest.codes import ESTIMATED, VALID
from ingest.config import VeeConfig
from ingest.localtime import minute_of_day
from ingest.quantities import INTERVAL, with_code
from ingest.validate import in_outage

PAIR = ["meter_key", "quantity"]
INTERPOLATION = "interpolation"
LIKE_DAY = "like_day"
OUTAGE = "outage"
DAY_EDIT = "day_edit"
SCALED = "+scaled"  # suffix of an estimate scaled to the register's advance
# every method an estimate can carry, stored as an enumeration (as `codes.STATE`)
METHOD = pl.Enum([m + suffix for m in (INTERPOLATION, LIKE_DAY, OUTAGE, DAY_EDIT) for suffix in ("", SCALED)])


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


def like_profile(like: pl.LazyFrame, wanted: pl.LazyFrame, step: dt.timedelta) -> pl.LazyFrame:
    """Average per (meter_key, quantity, minute) of like days' intervals, integer mWh, where
    `minute` is the local minute the interval starts (as the gaps are keyed), for the
    (meter_key, minute) pairs `wanted` only: a semi-join on two integers first, so the like
    days' rows that no gap needs are never grouped."""
    # the meters first (one integer per row), so the text and time columns of the like days'
    # rows of meters with no long gap (nearly all) are never looked at
    meters = wanted.select("meter_key").unique()
    return (
        like.join(meters, on="meter_key", how="semi")
        .filter(pl.col("state").is_in([VALID, ESTIMATED]) & pl.col("mwh").is_not_null())
        .select(*PAIR, "mwh", minute_of_day(pl.col("ts") - step))
        .join(wanted, on=["meter_key", "minute"], how="semi")
        .group_by([*PAIR, "minute"])
        .agg(like_mwh=pl.col("mwh").sum() // pl.len())
    )


def due_by(now: dt.datetime, cfg: VeeConfig) -> dt.datetime:
    """The last interval end a run at `now` estimates: later ones may still be read."""
    return now - dt.timedelta(minutes=cfg.estimate_lag_minutes)


def estimates_due(day: dt.date, cfg: VeeConfig, now: dt.datetime) -> bool:
    """Whether any interval of `day` ends early enough to be estimated at `now`."""
    return local_midnight_utc(day) + cfg.interval <= due_by(now, cfg)


def slot_grid(day: dt.date, cfg: VeeConfig, now: dt.datetime) -> pl.LazyFrame:
    """The interval ends of a local day up to `now`."""
    start = local_midnight_utc(day)
    ends = [start + cfg.interval * k for k in range(1, cfg.slots_per_day + 1)]
    ends = [e for e in ends if e <= now]
    return pl.LazyFrame({"ts": ends}, schema={"ts": pl.Datetime("us", "UTC")})


def gap_runs(
    readings: pl.LazyFrame,
    day: dt.date,
    cfg: VeeConfig,
    now: dt.datetime,
    expected: pl.LazyFrame | None = None,
    *,
    presorted: bool = False,
) -> pl.LazyFrame:
    """Runs of slots with no valid value, per interval series seen that day or `expected`
    (series of the day before, so a meter silent all day is estimated too):
    (meter_key, meter_id, quantity, first, last, prev_mwh, next_mwh), slots numbered from 1
    at the first interval end of the day, `prev_mwh`/`next_mwh` the valid values just
    outside the run (null when there are none).

    Found from the valid values' neighbours in one pass over the series sorted by time, so
    the work grows with the readings and the gaps, never with a grid of every slot."""
    start = local_midnight_utc(day)
    slots = (
        slot_grid(day, cfg, due_by(now, cfg))
        .select(pl.len())
        .collect()
        .item()
    )
    schema = {
        "meter_key": pl.Int64(),
        "meter_id": pl.String(),
        "quantity": READING_SCHEMA["quantity"],
        "first": pl.Int64(),
        "last": pl.Int64(),
        "prev_mwh": pl.Int64(),
        "next_mwh": pl.Int64(),
    }
    if slots == 0:
        return pl.LazyFrame(schema=schema)
    step_us = int(cfg.interval / dt.timedelta(microseconds=1))
    offset = pl.col("ts").dt.epoch("us") - int(
        (start - dt.datetime(1970, 1, 1, tzinfo=dt.UTC)) / dt.timedelta(microseconds=1)
    )
    intervals = with_code(readings.filter((pl.col("kind") == INTERVAL) & (pl.col("meter_key") >= 0)))
    # valid values on the slot grid (a value off the grid, accepted in review, fills no slot)
    valid = (
        intervals.filter((pl.col("state") == VALID) & (offset % step_us == 0))
        .select("meter_key", "qcode", "meter_id", "quantity", slot=offset // step_us, mwh="mwh")
    )
    if not presorted:  # the caller's rows are not sorted by meter, quantity and time yet
        valid = valid.sort("meter_key", "qcode", "slot")
    same = (pl.col("meter_key") == pl.col("meter_key").shift(1)) & (
        pl.col("qcode") == pl.col("qcode").shift(1)
    )
    before = pl.when(same).then(pl.col("slot").shift(1))  # null: the series' first value
    # the run before each valid value, and the run after each series' last value
    inner = valid.select(
        "meter_key",
        "meter_id",
        "quantity",
        first=(before.fill_null(0) + 1).clip(lower_bound=1),
        last=(pl.col("slot") - 1).clip(upper_bound=slots),
        _bs=before,
        _bv=pl.when(same).then(pl.col("mwh").shift(1)),
        _as=pl.col("slot"),
        _av=pl.col("mwh"),
    )
    last_of_series = ~same.shift(-1).fill_null(False)
    tail = valid.filter(last_of_series).select(
        "meter_key",
        "meter_id",
        "quantity",
        first=(pl.col("slot") + 1).clip(lower_bound=1),
        last=pl.lit(slots, pl.Int64),
        _bs=pl.col("slot"),
        _bv=pl.col("mwh"),
        _as=pl.lit(None, pl.Int64),
        _av=pl.lit(None, pl.Int64),
    )
    # the series seen (and expected) and those with a valid value, keyed by integers: on sorted
    # rows a series is where the key changes (a hash of every row's key took most of the
    # estimation's time when few slots were missing)
    key = ["meter_key", "qcode"]
    if presorted:
        starts = ~same.fill_null(False)
        seen = intervals.filter(starts).select(*key, "meter_id", "quantity")
        with_valid = valid.filter(starts).select(key)
    else:
        seen = intervals.select(*key, "meter_id", "quantity").unique(key)
        with_valid = valid.select(key).unique()
    if expected is not None:
        more = with_code(expected.select("meter_key", "meter_id", "quantity"))
        seen = pl.concat([seen, more.select(*key, "meter_id", "quantity")])
    # series with no valid value on the grid at all: the whole day is one run
    silent = (
        seen.unique(key)
        .join(with_valid, on=key, how="anti")
        .drop("qcode")
        .with_columns(first=pl.lit(1, pl.Int64), last=pl.lit(slots, pl.Int64), prev_mwh=None, next_mwh=None)
    )
    runs = (
        pl.concat([inner, tail], how="vertical_relaxed")
        .filter(pl.col("first") <= pl.col("last"))
        .select(
            "meter_key",
            "meter_id",
            "quantity",
            "first",
            "last",
            # a neighbour counts only when it is right next to the run
            prev_mwh=pl.when(pl.col("_bs") == pl.col("first") - 1).then(pl.col("_bv")),
            next_mwh=pl.when(pl.col("_as") == pl.col("last") + 1).then(pl.col("_av")),
        )
    )
    return pl.concat([runs, silent], how="vertical_relaxed").select(
        pl.col(n).cast(t) for n, t in schema.items()
    )


def missing_slots(
    readings: pl.LazyFrame,
    day: dt.date,
    cfg: VeeConfig,
    now: dt.datetime,
    expected: pl.LazyFrame | None = None,
    *,
    presorted: bool = False,
) -> pl.LazyFrame:
    """One row per missing slot (meter_key, meter_id, quantity, ts) with its run: `gap_len`,
    `pos` (1-based place in the run), `gap_start`, `gap_end`, and the valid neighbours
    `prev_mwh`, `next_mwh`."""
    start = pl.lit(local_midnight_utc(day)).dt.cast_time_unit("us")
    step = cfg.interval
    return (
        gap_runs(readings, day, cfg, now, expected, presorted=presorted)
        .with_columns(_slot=pl.int_ranges("first", pl.col("last") + 1, dtype=pl.Int64))
        .explode("_slot")
        .select(
            "meter_key",
            "meter_id",
            "quantity",
            ts=start + step * pl.col("_slot"),
            gap_len=pl.col("last") - pl.col("first") + 1,
            pos=pl.col("_slot") - pl.col("first") + 1,
            gap_start=start + step * pl.col("first"),
            gap_end=start + step * pl.col("last"),
            prev_mwh="prev_mwh",
            next_mwh="next_mwh",
        )
    )


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
    presorted: bool = False,
    gaps: pl.LazyFrame | None = None,
) -> pl.LazyFrame:
    """Estimates for the gaps of one partition: (meter_key, meter_id, quantity, ts, mwh, method).

    `gaps`: the partition's `missing_slots`, when the caller has them already (`expected`
    is then not used).

    `like` holds the like days' readings (meter_key, quantity, ts, mwh, state).

    `registers` has (meter_key, advance_mwh): the import register's advance over the day.

    `fill` names meters (meter_key) whose day was re-stated in review: a slot nothing else
    estimates is 0 (method `day_edit`), so scaling spreads the stated energy over every slot.

    `presorted`: the readings' intervals are sorted by meter, quantity and time already.
    """
    step = cfg.interval
    if gaps is None:
        gaps = missing_slots(readings, day, cfg, now, expected, presorted=presorted)
    gaps = gaps.cache()
    valid = readings.filter((pl.col("kind") == INTERVAL) & (pl.col("state") == VALID)).select(
        *PAIR, "ts", "mwh"
    )
    gaps = gaps.with_columns(minute_of_day(pl.col("ts") - step))
    interpolated = _interpolated()
    short = _short(cfg)
    # the like days are averaged only for the slots that interpolation does not fill
    wanted = gaps.filter(_needs_like_days(cfg)).select("meter_key", "minute").unique()
    gaps = gaps.join(like_profile(like, wanted, step), on=[*PAIR, "minute"], how="left")
    gaps = in_outage(gaps, windows, step)
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


def _interpolated() -> pl.Expr:
    """A missing slot's linear interpolation between its run's neighbours, or the one there is."""
    both = pl.col("prev_mwh") + (pl.col("next_mwh") - pl.col("prev_mwh")) * pl.col("pos") // (
        pl.col("gap_len") + 1
    )
    return pl.coalesce(both, pl.col("prev_mwh"), pl.col("next_mwh"))


def _short(cfg: VeeConfig) -> pl.Expr:
    return pl.col("gap_len") * cfg.interval_minutes <= cfg.interpolate_max_minutes


def _needs_like_days(cfg: VeeConfig) -> pl.Expr:
    """A missing slot that interpolation does not fill: in a long run, or with no neighbour."""
    return ~(_short(cfg) & _interpolated().is_not_null())


def like_day_meters(gaps: pl.LazyFrame, cfg: VeeConfig) -> pl.LazyFrame:
    """The meters (meter_key) of `missing_slots` whose estimates read like days; only their
    like days' rows need to be read."""
    return gaps.filter(_needs_like_days(cfg)).select("meter_key").unique()


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
            method=pl.when(do_scale).then(pl.col("method") + SCALED).otherwise(pl.col("method")),
        )
        .select("meter_key", "meter_id", "quantity", "ts", "mwh", "method")
    )
