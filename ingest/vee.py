"""One partition's VEE as a single lazy plan: merge, dedupe, validate, decide, estimate.

Inputs are LazyFrames (what the partition already holds, the new rows staged for it, the
registry, history, review decisions); outputs are LazyFrames that the caller collects
together. The plan collects once itself, before the estimates: which meters' like days
to read is known only once the rules have run. The partition is recomputed from
everything it has ever received, so taking a batch twice, or a run killed and run again,
gives the same rows.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Final

import polars as pl

from core.obis import ACTIVE_IMPORT_INTERVAL
from core.reading import READING_COLUMNS, READING_SCHEMA
from core.timezones import local_midnight_utc
from ingest.aggregate import advances, day_end_registers
from ingest.codes import ESTIMATED, QUARANTINED, REASON, REJECTED, STATE, VALID, Reason
from ingest.config import VeeConfig
from ingest.estimate import METHOD, estimate, like_day_meters, missing_slots
from ingest.quantities import (
    CLASS_COLUMNS,
    INTERVAL,
    KIND,
    PAIR_COLUMNS,
    classify,
    registers_of,
    with_energy,
)
from ingest.schema import READINGS_COLUMNS, READINGS_SCHEMA
from ingest.validate import outage_windows, validate

# A partition's plan has windows, sorts and as-of joins over data that fits in memory by
# construction (one day of one bucket); the in-memory engine runs it several times faster
# than Polars 2's default streaming engine.
ENGINE: Final = "in-memory"
KEY = ["meter_id", "quantity", "ts"]
STAGED_SCHEMA: dict[str, pl.DataType] = {
    **{k: v for k, v in READINGS_SCHEMA.items() if k in READING_COLUMNS},
    "meter_key": pl.Int64(),
    "batch": pl.Int32(),
    # what the (quantity, unit) pair decides, added in staging (quantities.PAIR_COLUMNS)
    "kind": KIND,
    "qcode": pl.Int64(),
    "unit_exp": pl.Int32(),
}
DECISIONS_SCHEMA: dict[str, pl.DataType] = {
    "meter_id": pl.String(),
    "quantity": READING_SCHEMA["quantity"],
    "ts": pl.Datetime("us", "UTC"),
    "action": pl.String(),
    "value": pl.Int64(),
    "scale": pl.Int8(),
    "new_value": pl.Int64(),
}
# Review decisions on whole meter-days that change data (the latest reject or edit per meter
# and day): its measured intervals are rejected and the day is estimated again, for an edit
# scaled to the day's energy the staff gave.
DAY_DECISIONS_SCHEMA: dict[str, pl.DataType] = {
    "meter_id": pl.String(),
    "date": pl.Date(),
    "action": pl.String(),
    "energy_mwh": pl.Int64(),
}
OUTCOMES_SCHEMA: dict[str, pl.DataType] = {
    "batch": pl.Int32(),
    "outcome": pl.String(),
    "reason": pl.String(),
    "rows": pl.Int64(),
}


@dataclass(frozen=True)
class VeeInputs:
    day: dt.date
    existing: pl.LazyFrame  # the partition's rows now (READINGS_SCHEMA)
    new: pl.LazyFrame  # staged rows (STAGED_SCHEMA)
    previous: pl.LazyFrame  # the day before's partition (READINGS_SCHEMA), for its interval series
    previous_registers: pl.LazyFrame  # its rows that may be registers (`schema.scan_registers`)
    meters: pl.LazyFrame  # registry rows of the bucket, with limits
    # the meters' average interval energy over their history (`history_averages`)
    history: pl.LazyFrame
    like: pl.LazyFrame  # readings of the like days (READINGS_SCHEMA)
    decisions: pl.DataFrame  # review decisions of the day (DECISIONS_SCHEMA), latest per key (few)
    day_decisions: pl.DataFrame | None = None  # rejected or edited meter-days (DAY_DECISIONS_SCHEMA)
    # the day before's meters with interval series (`meter_key`) when known from its interval
    # sums; None: found in `previous`
    previous_series: pl.LazyFrame | None = None


@dataclass(frozen=True)
class VeePlan:
    readings: pl.LazyFrame  # the partition's new content (READINGS_SCHEMA)
    outcomes: pl.LazyFrame  # per batch: stored / duplicate / quarantined (by reason)
    replaced: pl.LazyFrame  # estimates that measured values replaced (for the audit)


def _raw(lf: pl.LazyFrame) -> pl.LazyFrame:
    return lf.select(*READING_COLUMNS, "meter_key")


def apply_edits(lf: pl.LazyFrame, decisions: pl.LazyFrame) -> pl.LazyFrame:
    """Edits from review: the edited reading (old or already-edited value) takes the new value."""
    edits = decisions.filter(pl.col("action") == "edit").select(
        *KEY, _old=pl.col("value"), _old_scale=pl.col("scale"), _new=pl.col("new_value")
    )
    joined = lf.join(edits, on=KEY, how="left", maintain_order="left")
    hit = pl.col("_new").is_not_null() & (
        ((pl.col("value") == pl.col("_old")) & (pl.col("scale") == pl.col("_old_scale")))
        | ((pl.col("value") == pl.col("_new")) & (pl.col("scale") == pl.col("_old_scale")))
    )
    return joined.with_columns(
        value=pl.when(hit).then(pl.col("_new")).otherwise(pl.col("value")),
        _edited=hit.fill_null(False),
    ).drop("_old", "_old_scale", "_new")


def dedupe(lf: pl.LazyFrame) -> pl.LazyFrame:
    """Sort by meter, quantity and time, and mark `_dup` on identical repeats (same meter,
    quantity, time and value), keeping the row the partition already had, else the first
    batch's."""
    # integer meter keys sort fast; the id only matters for unknown meters (key -1)
    meter = pl.when(pl.col("meter_key") < 0).then(pl.col("meter_id")).otherwise(None)
    ident = {
        "meter_key": pl.col("meter_key"),
        "_m": meter,
        "qcode": pl.col("qcode"),
        "ts": pl.col("ts"),
        "_v": pl.coalesce(pl.col("mwh"), pl.col("value")),
        "_s": pl.when(pl.col("mwh").is_null()).then(pl.col("scale")).otherwise(0),
    }
    # Rows come in landing order (what the partition had, then the staged files in batch
    # order, each in its batch's row order; the edits' join keeps it), and a stable sort
    # keeps that order among equal keys: identical repeats are then neighbours, the first of
    # them the one kept.
    # Sorting the whole frame here is the sort the rules need anyway; hashing every row's
    # key to find the first distinct cost as much again (0.14 s of 0.8 s a partition).
    return (
        lf.with_columns(**{k: e for k, e in ident.items() if k.startswith("_")})
        .sort(list(ident), maintain_order=True)
        .with_columns(_dup=pl.all_horizontal([pl.col(k).eq_missing(pl.col(k).shift(1)) for k in ident]))
        .drop("_m", "_v", "_s")
    )


def apply_decisions(lf: pl.LazyFrame, decisions: pl.LazyFrame) -> pl.LazyFrame:
    """Accept and reject from review override the rules: an accepted value is valid and any
    other value at the same key is rejected; a rejected value stays rejected."""
    decided = decisions.filter(pl.col("action").is_in(["accept", "reject"])).select(
        *KEY, _action=pl.col("action"), _dv=pl.col("value"), _ds=pl.col("scale")
    )
    joined = lf.join(decided, on=KEY, how="left", maintain_order="left")
    same = (pl.col("value") == pl.col("_dv")) & (pl.col("scale") == pl.col("_ds"))
    accepted = (pl.col("_action") == "accept") & same
    state = (
        pl.when(accepted)
        .then(pl.lit(VALID, STATE))
        .when(pl.col("_action") == "accept")
        .then(pl.lit(REJECTED, STATE))
        .when((pl.col("_action") == "reject") & same)
        .then(pl.lit(REJECTED, STATE))
        .when(pl.col("_edited"))
        .then(pl.lit(VALID, STATE))
        .when(pl.col("reason").is_not_null())
        .then(pl.lit(QUARANTINED, STATE))
        .otherwise(pl.lit(VALID, STATE))
    )
    flags = (
        pl.when(accepted.fill_null(False))
        .then(pl.concat_str([pl.col("flags"), pl.lit("," + Reason.ACCEPTED)]))
        .when(pl.col("_edited"))
        .then(pl.concat_str([pl.col("flags"), pl.lit("," + Reason.EDITED)]))
        .otherwise(pl.col("flags"))
    )
    return joined.with_columns(state=state, flags=flags).drop("_action", "_dv", "_ds")


def reject_days(checked: pl.LazyFrame, days: pl.LazyFrame) -> pl.LazyFrame:
    """The measured intervals of meter-days rejected (or re-stated) in review are rejected,
    flagged `day_rejected`; `days` has the meters' keys."""
    hit = (
        checked.join(
            days.select("meter_key", _day=pl.lit(True)), on="meter_key", how="left", maintain_order="left"
        )
        .with_columns(_day=pl.col("_day").fill_null(False) & (pl.col("kind") == INTERVAL))
    )
    return hit.with_columns(
        state=pl.when(pl.col("_day")).then(pl.lit(REJECTED, STATE)).otherwise(pl.col("state")),
        flags=pl.when(pl.col("_day"))
        .then(
            pl.concat_str([pl.col("flags"), pl.lit("," + Reason.DAY_REJECTED)], ignore_nulls=True)
            .str.strip_prefix(",")
        )
        .otherwise(pl.col("flags")),
    ).drop("_day")


def history_averages(history: pl.LazyFrame, meters: pl.LazyFrame, cfg: VeeConfig) -> pl.LazyFrame:
    """Each meter's average interval energy (`hist_interval_mwh`) over its daily rows
    `history`, for the spike rule against its own history; meters with fewer than
    `history_min_days` days have none."""
    return (
        history.group_by("meter_id")
        .agg(
            hist_interval_mwh=pl.col("energy_wh").sum() * 1000 // (pl.len() * cfg.slots_per_day),
            _hdays=pl.len(),
        )
        .filter(pl.col("_hdays") >= cfg.history_min_days)
        .drop("_hdays")
        # keyed by meter_key (the registry's few rows), so the partition joins on an integer
        .join(meters.select("meter_id", "meter_key"), on="meter_id")
        .drop("meter_id")
    )


def plan(inputs: VeeInputs, cfg: VeeConfig, now: dt.datetime) -> VeePlan:
    existing = inputs.existing.filter(pl.col("state") != ESTIMATED)
    old_estimates = inputs.existing.filter(pl.col("state") == ESTIMATED)
    # the staged rows come with their pairs' attributes; what the partition had is
    # classified here (the store keeps mwh, not the rest)
    merged = pl.concat(
        [
            classify(_raw(existing)).with_columns(
                batch=pl.lit(-1, pl.Int32), _context=pl.lit(False)
            ),
            with_energy(inputs.new.select(*READING_COLUMNS, "meter_key", *PAIR_COLUMNS, "batch"))
            .select(*READING_COLUMNS, "meter_key", *CLASS_COLUMNS, "batch")
            .with_columns(_context=pl.lit(False)),
        ],
        how="vertical_relaxed",
    )
    # decisions are few and known before the plan: without any, their joins are left out
    decided = inputs.decisions.height > 0
    if decided:
        # an edit changes a value: the rows are classified again after it
        merged = classify(apply_edits(merged.drop(CLASS_COLUMNS), inputs.decisions.lazy()))
    else:
        merged = merged.with_columns(_edited=False)
    # sorted by meter, quantity and time; branch point: used for the rules and the accounting
    merged = dedupe(merged).cache()
    # the previous day's last register values, so a decrease across midnight is seen
    context = (
        classify(_raw(registers_of(inputs.previous_registers.filter(pl.col("state") == VALID))))
        .sort("ts")
        .group_by("meter_key", "qcode")
        .last()
        .with_columns(
            batch=pl.lit(-2, pl.Int32),
            _context=pl.lit(True),
            _edited=pl.lit(False),
            _dup=pl.lit(False),
        )
    )
    hist = inputs.history
    meters = inputs.meters.select(
        "meter_key", "in_service_from", "in_service_until", "rated_mwh", "capacity_mwh"
    )
    # sorted (by dedupe) while the frame is narrow: a sort gathers every column; the day
    # before's register values (one per series, of another day) follow, and the joins keep the order
    kept = merged.filter(~pl.col("_dup"))
    rows = (
        pl.concat([kept, context], how="diagonal_relaxed")
        .join(meters, on="meter_key", how="left", maintain_order="left")
        .join(hist, on="meter_key", how="left", maintain_order="left")
        .with_columns(reason=pl.lit(None, REASON), flags=pl.lit(""))
        .cache()
    )
    validated = validate(rows, cfg, now, presorted=True)
    if decided:
        validated = apply_decisions(validated, inputs.decisions.lazy())
    else:
        validated = validated.with_columns(
            state=pl.when(pl.col("reason").is_not_null())
            .then(pl.lit(QUARANTINED, STATE))
            .otherwise(pl.lit(VALID, STATE))
        )
    checked = validated.filter(~pl.col("_context"))
    checked = checked.with_columns(
        reason=pl.when(pl.col("state") == VALID).then(None).otherwise(pl.col("reason")),
        # no flags is stored as null, not "": Polars writes a column of empty strings to
        # Parquet ten times slower than any other (0.10 of 0.20 s a 611,000-row partition)
        flags=pl.when(pl.col("flags") != "").then(pl.col("flags").str.strip_prefix(",")),
        method=pl.lit(None, METHOD),
    )
    # meter-days decided in review (few, known before the plan: without any, no join)
    restated = None
    if inputs.day_decisions is not None and inputs.day_decisions.height:
        restated = inputs.day_decisions.lazy().join(
            inputs.meters.select("meter_id", "meter_key"), on="meter_id"
        ).select("meter_key", "action", "energy_mwh")
        checked = reject_days(checked, restated)
    checked = checked.cache()
    windows = outage_windows(rows)
    advance = advances(
        day_end_registers(inputs.previous_registers, inputs.day - dt.timedelta(days=1), cfg),
        day_end_registers(checked, inputs.day, cfg),
        meters.select("meter_key", "capacity_mwh"),
    )
    edits = None
    if restated is not None:
        # an edited day's energy stands in for the register's advance: estimates scale to it
        edits = restated.filter(pl.col("action") == "edit")
        advance = pl.concat(
            [
                advance.join(edits, on="meter_key", how="anti"),
                edits.select("meter_key", advance_mwh="energy_mwh", estimated=pl.lit(False)),
            ],
            how="vertical_relaxed",
        )
    # interval series the day before (measured or estimated) of meters still in service
    day_start = pl.lit(local_midnight_utc(inputs.day)).dt.cast_time_unit("us")
    series = inputs.previous_series
    if series is None:
        series = inputs.previous.filter(
            (pl.col("quantity") == ACTIVE_IMPORT_INTERVAL) & pl.col("state").is_in([VALID, ESTIMATED])
        ).select("meter_key")
    expected = (
        series.unique()
        # by integer key; the id and the quantity are the same for every row of a meter
        .join(inputs.meters.select("meter_key", "meter_id", "in_service_until"), on="meter_key")
        .filter(pl.col("in_service_until").is_null() | (pl.col("in_service_until") > day_start))
        .select("meter_key", "meter_id", quantity=pl.lit(ACTIVE_IMPORT_INTERVAL, READING_SCHEMA["quantity"]))
    )
    gaps = missing_slots(checked, inputs.day, cfg, now, expected, presorted=True)
    # per batch, counted without joining rows back: the kept rows of a batch are exactly its
    # rows in `checked`, the rest are its identical repeats
    kept = (
        checked.filter(pl.col("batch") >= 0)
        .group_by("batch", "state", "reason")
        .agg(rows=pl.len().cast(pl.Int64))
        .select(
            "batch",
            "rows",
            outcome=pl.when(pl.col("state") == VALID).then(pl.lit("stored")).otherwise(pl.lit("quarantined")),
            reason=pl.when(pl.col("state") == VALID)
            .then(None)
            .when(pl.col("state") == REJECTED)
            .then(pl.lit(REJECTED))
            .otherwise(pl.col("reason").cast(pl.String)),
        )
    )
    repeats = (
        merged.filter(pl.col("_dup") & (pl.col("batch") >= 0))
        .group_by("batch")
        .agg(rows=pl.len().cast(pl.Int64))
        .with_columns(outcome=pl.lit("duplicate"), reason=pl.lit(None, pl.String))
    )
    outcomes = (
        pl.concat([kept, repeats], how="diagonal_relaxed")
        .group_by("batch", "outcome", "reason")
        .agg(pl.col("rows").sum())
        .select(pl.col(n).cast(t) for n, t in OUTCOMES_SCHEMA.items())
    )
    replaced = old_estimates.select(
        "meter_key", "meter_id", "quantity", "ts", before=pl.col("mwh"), method=pl.col("method")
    ).join(
        checked.filter(pl.col("state") == VALID).select("meter_key", "quantity", "ts", after=pl.col("mwh")),
        on=["meter_key", "quantity", "ts"],
    )
    # Collected here once, before the estimates: like days are read only for the meters whose
    # gaps interpolation does not fill (a list the Parquet reader applies as it reads), and
    # which they are is known only once the rules have run. Those meters are picked from the
    # collected gaps: picked in the same collect, the gaps were computed twice (3.4 against
    # 3.2 s for 8 partitions of 1.2 M rows, one thread).
    first = [checked, windows, advance, gaps, outcomes, replaced]
    checked_rows, window_rows, advance_rows, gap_rows, outcome_rows, replaced_rows = (
        pl.collect_all(first, engine=ENGINE)
    )
    like_meters = like_day_meters(gap_rows.lazy(), cfg).collect(engine=ENGINE)
    like = inputs.like.filter(pl.col("meter_key").is_in(like_meters.get_column("meter_key").implode()))
    estimates = estimate(
        checked_rows.lazy(), window_rows.lazy(), like, advance_rows.lazy(), day=inputs.day, cfg=cfg,
        now=now, fill=None if edits is None else edits.select("meter_key"),
        presorted=True,
        gaps=gap_rows.lazy(),
    )
    estimate_rows = estimates.select(
        "meter_key",
        "meter_id",
        "quantity",
        "ts",
        value=pl.col("mwh"),
        scale=pl.lit(-3, pl.Int8),
        unit=pl.lit("Wh", READING_SCHEMA["unit"]),
        status=pl.lit(0, pl.Int32),
        snapshot=pl.lit(False),
        source=pl.lit("estimate", READING_SCHEMA["source"]),
        read_at=pl.lit(now).dt.cast_time_unit("us"),
        mwh=pl.col("mwh"),
        state=pl.lit(ESTIMATED, STATE),
        reason=pl.lit(None, REASON),
        flags=pl.lit(None, pl.String),
        method=pl.col("method").cast(METHOD),
    )
    # not sorted again: a sort gathers every column (about a fifth of the plan), and the rows
    # are in order of kind, then meter, quantity and time already (estimates last); readers
    # sort what they read
    out = pl.concat(
        [checked_rows.lazy().select(READINGS_COLUMNS), estimate_rows], how="vertical_relaxed"
    ).select(pl.col(n).cast(t) for n, t in READINGS_SCHEMA.items())
    return VeePlan(readings=out, outcomes=outcome_rows.lazy(), replaced=replaced_rows.lazy())
