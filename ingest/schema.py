"""Ingest's own measurement-store tables, declared once.

`readings` holds every reading ingest kept, in one table with a `state` column
(valid, quarantined, rejected, estimated): a partition's readings, quarantine and
estimates are then swapped by ONE manifest commit, so a reader or a killed run never
sees the quarantine of one version beside the readings of another.
Partitions: `readings` and `findings` by (date, bucket), `monthly` by (month, bucket).
"""

from __future__ import annotations

import functools
import itertools
from collections.abc import Mapping, Sequence
from pathlib import Path

import polars as pl

from core.reading import READING_SCHEMA
from ingest.codes import REASON, STATE
from ingest.estimate import METHOD

READINGS = "readings"
FINDINGS = "findings"
INTERVAL_SUMS = "interval_sums"
MONTHLY = "monthly"

READINGS_SCHEMA: Mapping[str, pl.DataType] = {
    "meter_key": pl.Int64(),  # registry key; -1 for a meter the registry does not know
    **READING_SCHEMA,
    "mwh": pl.Int64(),  # energy normalised to milliwatt-hours (exact); null when not energy
    "state": STATE,  # valid, quarantined, rejected, estimated
    "reason": REASON,  # quarantine reason code, null otherwise
    "flags": pl.String(),  # comma-separated suspect and info flags, null when none
    "method": METHOD,  # estimation method, null for measured readings
}
READINGS_COLUMNS = tuple(READINGS_SCHEMA)

# Day-level findings of the rules that judge a whole day (gaps, sum check, usage).
FINDINGS_SCHEMA: Mapping[str, pl.DataType] = {
    "meter_key": pl.Int64(),
    "meter_id": pl.String(),
    "date": pl.Date(),
    "rule": pl.String(),
    "value": pl.Int64(),  # what was measured (missing slots, Wh off, day's Wh)
    "limit": pl.Int64(),  # what the rule allowed or expected
}

# What a day's intervals add up to per meter (`aggregate.interval_days`), in mWh, by (date,
# bucket): the aggregation of a day whose readings have not changed since (the day before a
# new day, again) starts from these instead of its readings. A file's footer names what it
# was made from (`SUMS_BASIS_KEY`); it is used only while that still holds.
INTERVAL_SUMS_SCHEMA: Mapping[str, pl.DataType] = {
    "meter_key": pl.Int64(),
    "meter_id": pl.String(),
    "zero_slots": pl.Int64(),
    "total_mwh": pl.Int64(),
    "off_mwh": pl.Int64(),
    "normal_mwh": pl.Int64(),
    "intervals": pl.Int32(),
    "est_mwh": pl.Int64(),
    "est_slots": pl.Int64(),
}
SUMS_BASIS_KEY = "amr.sums_of"

MONTHLY_SCHEMA: Mapping[str, pl.DataType] = {
    "meter_id": pl.String(),
    "month": pl.String(),  # YYYY-MM, local
    "energy_wh": pl.Int64(),
    "offpeak_wh": pl.Int64(),
    "normal_wh": pl.Int64(),
    "peak_wh": pl.Int64(),
    "estimated_wh": pl.Int64(),
    "days": pl.Int32(),
}


def empty(schema: Mapping[str, pl.DataType]) -> pl.LazyFrame:
    return pl.LazyFrame(schema=dict(schema))


# Columns of the readings table held as codes (enumerations and categoricals), which files
# written before 2026-11-27 store as text.
_CODED = ("quantity", "unit", "source", "state", "reason", "method")


@functools.lru_cache(maxsize=65_536)
def _coded(path: Path) -> bool:
    """Whether a readings file stores those columns as this version does (store files never
    change once written, so the answer is kept)."""
    schema = pl.read_parquet_schema(path)
    return all(schema.get(name) == READINGS_SCHEMA[name] for name in _CODED)


def scan_readings(files: Sequence[Path]) -> pl.LazyFrame:
    """The readings of some files as one scan, in `READINGS_SCHEMA` and the files' order.
    Files that store the coded columns otherwise (as text, written before 2026-11-27, or
    with fewer codes, written before one was added) are cast: one Parquet scan can neither
    mix them nor cast as it reads."""
    if not files:
        return pl.LazyFrame(schema=dict(READINGS_SCHEMA))
    scans = []
    for current, run in itertools.groupby(files, key=_coded):
        scan = pl.scan_parquet(list(run))
        if not current:
            scan = scan.with_columns(pl.col(c).cast(READINGS_SCHEMA[c]) for c in _CODED)
        scans.append(scan)
    return scans[0] if len(scans) == 1 else pl.concat(scans)


# A readings file's footer key: how many rows at its head are those of register quantities
# (a partition holds its rows by kind, registers first; `vee_days` checks before it says so).
# The day ends and the registers across midnight are read from those rows alone. The files
# are written without min/max statistics, which cost a quarter of a partition's write
# (0.035 of 0.12 s); these reads were what used them, to skip the row groups of intervals.
REGISTER_ROWS_KEY = "amr.register_rows"


@functools.lru_cache(maxsize=65_536)
def _register_rows(path: Path) -> int | None:
    """The register rows at the head of a readings file, if its footer says (files never
    change once written, so the answer is kept)."""
    value = pl.read_parquet_metadata(path).get(REGISTER_ROWS_KEY)
    return None if value is None else int(value)


def scan_registers(files: Sequence[Path]) -> pl.LazyFrame:
    """The readings of some files that may be of register quantities, in `READINGS_SCHEMA`: of a
    file whose footer counts its register rows those alone, of any other file every row (the
    caller filters by quantity, as it would anyway)."""
    scans = []
    for path in files:
        count = _register_rows(path)
        if count is None:
            scans.append(scan_readings([path]))
        elif count:
            scans.append(pl.scan_parquet(path, n_rows=count))
    if not scans:
        return pl.LazyFrame(schema=dict(READINGS_SCHEMA))
    return scans[0] if len(scans) == 1 else pl.concat(scans)
