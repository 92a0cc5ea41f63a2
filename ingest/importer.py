"""`amr ingest import FILE`: readings produced by another system, through the same VEE.

The file (Parquet, or CSV with a header) must hold the Reading schema's columns
(`core.reading.READING_COLUMNS`); timestamps in CSV are ISO 8601 with a zone (`Z` or an
offset). A file that does not match is refused naming the column, the row and the
reason, before anything is stored. So is a file whose interval readings keep another
capture period than ingest is set for (`ingest.spacing`), unless the caller says the
steps are gaps of its own.

The file is read in chunks of `IMPORT_CHUNK_ROWS` rows, so an import's memory is bounded
by a chunk, not by the file (a 5-million-row file read whole took 3.4 GB). Each chunk is
checked and written as a landing batch under a temporary name; only when every chunk has
passed are they published together and ingested like any other batches, so the file is
accounted for, idempotent and crash-safe alike.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Final

import polars as pl

from core.config import Settings
from core.errors import ContractError
from core.landing import TMP_PREFIX, PreparedBatch, landing_dir, prepare_batch
from core.obis import canonical
from core.reading import READING_COLUMNS, READING_SCHEMA, conform
from core.state import StateStore
from ingest.accounting import IngestReport
from ingest.config import VeeConfig
from ingest.errors import ImportRefused
from ingest.registry import register_fleet
from ingest.run import NewBatch, ingest_batches, new_batches, run_lock
from ingest.spacing import spacing_of, step_counts

IMPORT_CHUNK_ROWS: Final = 1_000_000
# a chunk left this long under its temporary name belongs to an import that was killed
ABANDONED_AFTER: Final = dt.timedelta(days=1)
_ZONE = r"(?i)(z|[+-]\d{2}(:?\d{2})?)$"  # an ISO 8601 time's zone: Z or an offset
_HINT = "a readings file has the columns " + ", ".join(READING_COLUMNS) + " (see docs/ingest.md)"


def _first_bad(raw: pl.DataFrame, parsed: pl.DataFrame, column: str) -> tuple[int, str]:
    bad = raw.with_row_index("_row").filter(
        pl.col(column).is_not_null() & (pl.col(column) != "") & parsed.get_column(column).is_null()
    )
    row = bad.row(0, named=True)
    return int(row["_row"]), str(row[column])


def parse_csv_chunk(raw: pl.DataFrame, path: Path, first_line: int) -> pl.DataFrame:
    """Parse rows of a CSV of readings (all text) strictly: every value must fit its
    column's type; a decimal `value` becomes an exact integer and scale. `first_line`: the
    file's line of the chunk's first row (for messages)."""
    for name, dtype in READING_SCHEMA.items():
        # a time without a zone would be read as UTC: local times would shift by hours unseen
        if isinstance(dtype, pl.Datetime):
            stamp = pl.col(name).str.strip_chars()
            naive = raw.with_row_index("_row").filter((stamp != "") & ~stamp.str.contains(_ZONE))
            if naive.height:
                row, value = naive.select("_row", name).row(0)
                raise ImportRefused(
                    f"{path}: column {name}, line {first_line + row}: {value!r} has no time zone",
                    hint="write Z for UTC or the offset: 2026-11-10T17:00:00Z or 2026-11-11T00:00:00+07:00",
                )
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
    # a decimal value ("0.125" kWh) is kept exact: its digits as the integer, the scale lowered
    # by the digits after the point (0.125 with scale 0 is 125 with scale -3)
    decimal = pl.col("value").str.strip_chars().str.extract_groups(r"^([+-]?\d*)\.(\d*)$")
    whole, fraction = decimal.struct.field("1"), decimal.struct.field("2")
    is_decimal = (whole + fraction).str.contains(r"\d")
    casts["value"] = (
        pl.when(is_decimal).then((whole + fraction).cast(pl.Int64, strict=False)).otherwise(casts["value"])
    )
    casts["scale"] = (
        pl.when(is_decimal)
        .then(casts["scale"].cast(pl.Int16) - fraction.str.len_chars().cast(pl.Int16))
        .otherwise(casts["scale"])
        .cast(pl.Int8, strict=False)
    )
    parsed = raw.select(**casts)
    for name in READING_SCHEMA:
        if name in ("meter_id", "quantity", "unit", "source"):
            continue
        if (
            parsed.get_column(name).null_count()
            > raw.filter(pl.col(name).is_null() | (pl.col(name).str.strip_chars() == "")).height
        ):
            row, text = _first_bad(raw, parsed, name)
            raise ImportRefused(
                f"{path}: column {name}, line {first_line + row}: {text!r} is not a {READING_SCHEMA[name]}",
                hint=_HINT + "; timestamps are ISO 8601 with a zone, e.g. 2026-11-10T17:00:00Z; "
                "values are whole numbers or decimals written with a point, e.g. 0.125",
            )
    return parsed


def _scan(path: Path) -> tuple[pl.LazyFrame, str]:
    """The file as a lazy scan (CSV as text, its header checked) and its kind's name."""
    if not path.is_file():
        raise ImportRefused(f"{path} is not a file", hint="give the path of a .parquet or .csv file")
    suffix = path.suffix.lower()
    if suffix == ".parquet":
        return pl.scan_parquet(path), "Parquet"
    if suffix != ".csv":
        raise ImportRefused(f"{path}: unknown file type {path.suffix!r}", hint="use .parquet or .csv")
    scan = pl.scan_csv(path, infer_schema=False)
    try:
        columns = scan.collect_schema().names()
    except (OSError, pl.exceptions.PolarsError) as exc:
        raise ImportRefused(f"{path} cannot be read as CSV: {exc}", hint=_HINT) from exc
    missing = [c for c in READING_COLUMNS if c not in columns]
    if missing:
        raise ImportRefused(f"{path}: missing column(s) {', '.join(missing)}", hint=_HINT)
    extra = [c for c in columns if c not in READING_SCHEMA]
    if extra:
        raise ImportRefused(f"{path}: unknown column(s) {', '.join(extra)}", hint=_HINT)
    return scan, "CSV"


def _raw_chunks(path: Path, rows: int) -> Iterator[pl.DataFrame]:
    scan, kind = _scan(path)
    try:
        yield from scan.collect_batches(chunk_size=rows)
    except (OSError, pl.exceptions.PolarsError) as exc:
        raise ImportRefused(f"{path} cannot be read as {kind}: {exc}", hint=_HINT) from exc


def read_chunks(path: Path, *, rows: int = IMPORT_CHUNK_ROWS) -> Iterator[pl.DataFrame]:
    """The file's readings, `rows` at a time, conformed to the contract with their OBIS codes
    canonical; `ImportRefused` at the first chunk that does not match."""
    csv = path.suffix.lower() == ".csv"
    start = 0
    for raw in _raw_chunks(path, rows):
        frame = parse_csv_chunk(raw, path, first_line=start + 2) if csv else raw  # line 1: the header
        where = f"{path} (rows {start + 1}-{start + raw.height})"
        start += raw.height
        try:
            checked = conform(frame, origin=where)
        except ContractError as exc:
            raise ImportRefused(str(exc), hint=exc.hint or _HINT) from exc
        try:
            # the quantity must be an OBIS code: refuse the file rather than quarantine garbage
            spelled = {code: canonical(code) for code in checked.get_column("quantity").unique().to_list()}
        except ContractError as exc:
            raise ImportRefused(f"{where}: column quantity: {exc}", hint=exc.hint) from exc
        yield checked.with_columns(pl.col("quantity").replace_strict(spelled, return_dtype=pl.String))


def check_spacing(counts: list[pl.DataFrame], path: Path, cfg: VeeConfig) -> None:
    """Refuse a file whose interval readings are most often another step apart than the
    capture period VEE judges them on (`counts`: `step_counts` of its chunks)."""
    spacing = spacing_of(counts)
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


def sweep_abandoned(data_dir: Path, *, older_than: dt.timedelta = ABANDONED_AFTER) -> int:
    """Remove the chunks a killed import left under temporary names (`list_batches` skips
    them, but they hold disk); only old ones, so an import running now keeps its own."""
    limit = time.time() - older_than.total_seconds()
    removed = 0
    for temporary in landing_dir(data_dir).glob(f"arrived=*/{TMP_PREFIX}import-*.parquet"):
        with contextlib.suppress(FileNotFoundError):
            if temporary.stat().st_mtime < limit:
                temporary.unlink()
                removed += 1
    return removed


def prepare_import(
    data_dir: Path, path: Path, *, cfg: VeeConfig, gappy: bool = False, rows: int = IMPORT_CHUNK_ROWS
) -> list[PreparedBatch]:
    """Check every chunk of the file and write each as a batch not yet landed; on a refusal
    the chunks written so far are removed and nothing is landed."""
    sweep_abandoned(data_dir)
    token = f"import-{dt.datetime.now(dt.UTC):%Y%m%dT%H%M%S}-{uuid.uuid4().hex[:10]}"
    prepared: list[PreparedBatch] = []
    counts: list[pl.DataFrame] = []
    try:
        for index, chunk in enumerate(read_chunks(path, rows=rows)):
            if not gappy:
                counts.append(step_counts(chunk))
            # numbered, so the chunks are taken in the file's order
            prepared.append(prepare_batch(data_dir, chunk, batch_id=f"{token}-{index:05d}"))
        if not gappy:
            check_spacing(counts, path, cfg)
    except BaseException:
        for batch in prepared:
            batch.discard()
        raise
    return prepared


def import_readings(
    data_dir: Path,
    state: StateStore,
    path: Path,
    *,
    settings: Settings,
    fleet: Path | None = None,
    now: dt.datetime | None = None,
    gappy: bool = False,
    rows: int = IMPORT_CHUNK_ROWS,
) -> IngestReport:
    """Check the file, register the fleet file's new meters, land the readings as batches
    and take them (and any other waiting batch) through VEE. `gappy`: the file's interval
    readings may be further apart than the capture period (missing ones are gaps)."""
    prepared = prepare_import(data_dir, path, cfg=VeeConfig.from_settings(settings), gappy=gappy, rows=rows)
    try:
        if fleet is not None:
            register_fleet(state, fleet, buckets=settings.buckets)
    except BaseException:
        for batch in prepared:
            batch.discard()
        raise
    with run_lock(data_dir):
        for batch in prepared:
            batch.publish()
        batches: list[NewBatch] = new_batches(data_dir, state)
        return ingest_batches(data_dir, state, batches, settings=settings, now=now)
