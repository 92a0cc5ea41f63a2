"""`amr ingest import FILE`: readings produced by another system, through the same VEE.

The file (Parquet, or CSV with a header) must hold the Reading schema's columns
(`core.reading.READING_COLUMNS`); timestamps in CSV are ISO 8601 with a zone (`Z` or an
offset). A file that does not match is refused naming the column, the row and the
reason, before anything is stored. A good file is landed as an immutable batch and
ingested like any other, so it is accounted for, idempotent and crash-safe alike. A file
whose interval readings keep another capture period than ingest is set for is refused too
(`ingest.spacing`), unless the caller says the steps are gaps of its own.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import polars as pl

from core.config import Settings
from core.errors import ContractError
from core.landing import write_batch
from core.obis import canonical
from core.reading import READING_COLUMNS, READING_SCHEMA, conform
from core.state import StateStore
from ingest.accounting import IngestReport
from ingest.config import VeeConfig
from ingest.errors import ImportRefused
from ingest.registry import register_fleet
from ingest.run import NewBatch, ingest_batches, new_batches, run_lock
from ingest.spacing import interval_spacing

_HINT = "a readings file has the columns " + ", ".join(READING_COLUMNS) + " (see docs/ingest.md)"


def _first_bad(raw: pl.DataFrame, parsed: pl.DataFrame, column: str) -> tuple[int, str]:
    bad = raw.with_row_index("_row").filter(
        pl.col(column).is_not_null() & (pl.col(column) != "") & parsed.get_column(column).is_null()
    )
    row = bad.row(0, named=True)
    return int(row["_row"]) + 2, str(row[column])  # +2: the header is line 1


def read_csv(path: Path) -> pl.DataFrame:
    """Parse a CSV of readings strictly: every value must fit its column's type."""
    try:
        raw = pl.read_csv(path, infer_schema=False)
    except (OSError, pl.exceptions.PolarsError) as exc:
        raise ImportRefused(f"{path} cannot be read as CSV: {exc}", hint=_HINT) from exc
    missing = [c for c in READING_COLUMNS if c not in raw.columns]
    if missing:
        raise ImportRefused(f"{path}: missing column(s) {', '.join(missing)}", hint=_HINT)
    extra = [c for c in raw.columns if c not in READING_SCHEMA]
    if extra:
        raise ImportRefused(f"{path}: unknown column(s) {', '.join(extra)}", hint=_HINT)
    casts: dict[str, pl.Expr] = {}
    for name, dtype in READING_SCHEMA.items():
        column = pl.col(name).str.strip_chars()
        if isinstance(dtype, pl.Datetime):
            casts[name] = column.str.to_datetime(time_zone="UTC", time_unit="us", strict=False)
        elif isinstance(dtype, pl.Boolean):
            casts[name] = column.str.to_lowercase().replace_strict(
                {"true": True, "1": True, "false": False, "0": False, "": None},
                default=None,
                return_dtype=pl.Boolean,
            )
        elif isinstance(dtype, pl.String):
            casts[name] = pl.col(name)
        else:
            casts[name] = column.cast(dtype, strict=False)
    parsed = raw.select(**casts)
    for name in READING_SCHEMA:
        if name in ("meter_id", "quantity", "unit", "source"):
            continue
        if (
            parsed.get_column(name).null_count()
            > raw.filter(pl.col(name).is_null() | (pl.col(name).str.strip_chars() == "")).height
        ):
            line, text = _first_bad(raw, parsed, name)
            raise ImportRefused(
                f"{path}: column {name}, line {line}: {text!r} is not a {READING_SCHEMA[name]}",
                hint=_HINT + "; timestamps are ISO 8601 with a zone, e.g. 2026-11-10T17:00:00Z",
            )
    return parsed


def read_readings(path: Path) -> pl.DataFrame:
    """The file's readings, conformed to the contract, or `ImportRefused`."""
    if not path.is_file():
        raise ImportRefused(f"{path} is not a file", hint="give the path of a .parquet or .csv file")
    if path.suffix.lower() == ".parquet":
        try:
            frame = pl.read_parquet(path)
        except (OSError, pl.exceptions.PolarsError) as exc:
            raise ImportRefused(f"{path} cannot be read as Parquet: {exc}", hint=_HINT) from exc
    elif path.suffix.lower() == ".csv":
        frame = read_csv(path)
    else:
        raise ImportRefused(f"{path}: unknown file type {path.suffix!r}", hint="use .parquet or .csv")
    try:
        checked = conform(frame, origin=str(path))
    except ContractError as exc:
        raise ImportRefused(str(exc), hint=exc.hint or _HINT) from exc
    try:
        # the quantity must be an OBIS code: refuse the file rather than quarantine garbage
        spelled = {code: canonical(code) for code in checked.get_column("quantity").unique().to_list()}
    except ContractError as exc:
        raise ImportRefused(f"{path}: column quantity: {exc}", hint=exc.hint) from exc
    return checked.with_columns(pl.col("quantity").replace_strict(spelled, return_dtype=pl.String))


def check_spacing(frame: pl.DataFrame, path: Path, cfg: VeeConfig) -> None:
    """Refuse a file whose interval readings are most often another step apart than the
    capture period VEE judges them on (see `ingest.spacing`)."""
    spacing = interval_spacing(frame)
    if spacing is None or spacing.minutes == cfg.interval_minutes:
        return
    share = f"{spacing.steps:,} of {spacing.total:,} steps between a series' consecutive readings"
    raise ImportRefused(
        f"{path}: column ts: the interval readings are {spacing.minutes} minutes apart ({share}), "
        f"and ingest judges intervals of {cfg.interval_minutes} minutes: every meter would show "
        "gaps or readings off the grid",
        hint=f"set `interval_minutes = {spacing.minutes}` under [ingest.rules] in amr.toml to judge "
        f"{spacing.minutes}-minute intervals, or, if these meters do record every "
        f"{cfg.interval_minutes} minutes and the file lacks readings, import it with --gappy",
    )


def import_readings(
    data_dir: Path,
    state: StateStore,
    path: Path,
    *,
    settings: Settings,
    fleet: Path | None = None,
    now: dt.datetime | None = None,
    gappy: bool = False,
) -> IngestReport:
    """Check the file, register the fleet file's new meters, land the readings as a batch and
    take that batch (and any other waiting batch) through VEE. `gappy`: the file's interval
    readings may be further apart than the capture period (missing ones are gaps)."""
    frame = read_readings(path)
    if not gappy:
        check_spacing(frame, path, VeeConfig.from_settings(settings))
    if fleet is not None:
        register_fleet(state, fleet, buckets=settings.buckets)
    with run_lock(data_dir):
        write_batch(data_dir, frame, prefix="import")
        batches: list[NewBatch] = new_batches(data_dir, state)
        return ingest_batches(data_dir, state, batches, settings=settings, now=now)
