"""The Reading: one row per value, declared once and validated where data comes in.

`value x 10^scale` is the exact decimal of the reading: a DLMS scaler maps onto `scale`
and a Modbus float is rounded once to its map's resolution, so nothing downstream ever
touches a binary float.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from itertools import compress, repeat
from operator import attrgetter
from typing import Any, overload

import polars as pl

from core.errors import ContractError
from core.obis import canonical

UTC = dt.UTC

# Status bits shared by every protocol (a subset of the DLMS "AMR profile status").
STATUS_CRITICAL_ERROR = 0x01
STATUS_CLOCK_INVALID = 0x02
STATUS_DATA_NOT_VALID = 0x04
STATUS_DAYLIGHT_SAVING = 0x08
STATUS_CLOCK_ADJUSTED = 0x20
STATUS_POWER_DOWN = 0x80

# `quantity`, `unit` and `source` are text from a small set each: held as Polars categoricals
# (a Parquet dictionary, read back as one), so a batch of a million readings carries each
# value's text once and an integer code per row, and ingest writes, gathers and compares
# codes (a first day at 100,000 meters: one thread 8.59 -> 8.03 s, two workers' memory
# 2.2 -> 1.8 GB; docs/ingest.md, eighth round). Any other Parquet reader sees plain strings,
# and a frame with them as text conforms (cast).
READING_SCHEMA: Mapping[str, pl.DataType] = {
    "meter_id": pl.String(),
    "quantity": pl.Categorical(),
    "ts": pl.Datetime("us", "UTC"),
    "value": pl.Int64(),
    "scale": pl.Int8(),
    "unit": pl.Categorical(),
    "status": pl.Int32(),
    "snapshot": pl.Boolean(),
    "source": pl.Categorical(),
    "read_at": pl.Datetime("us", "UTC"),
}
READING_COLUMNS = tuple(READING_SCHEMA)
_NOT_NULL = ("meter_id", "quantity", "ts", "value", "scale", "read_at")
SCALE_RANGE = (-9, 9)


def _require_utc(name: str, when: dt.datetime) -> dt.datetime:
    if when.tzinfo is None:
        raise ContractError(f"Reading.{name} {when.isoformat()} has no time zone; readings are UTC")
    return when.astimezone(UTC)


@dataclass(frozen=True, slots=True)
class Reading:
    meter_id: str
    quantity: str
    ts: dt.datetime
    value: int
    scale: int
    unit: str
    status: int = 0
    snapshot: bool = False
    source: str = ""
    read_at: dt.datetime = field(default_factory=lambda: dt.datetime.now(UTC))

    def __post_init__(self) -> None:
        if not self.meter_id:
            raise ContractError("Reading.meter_id is empty")
        object.__setattr__(self, "quantity", canonical(self.quantity))
        object.__setattr__(self, "ts", _require_utc("ts", self.ts))
        object.__setattr__(self, "read_at", _require_utc("read_at", self.read_at))
        if not SCALE_RANGE[0] <= self.scale <= SCALE_RANGE[1]:
            raise ContractError(f"Reading.scale {self.scale} is outside {SCALE_RANGE}")
        if not -(2**63) <= self.value < 2**63:
            raise ContractError(f"Reading.value {self.value} does not fit in int64")

    @property
    def decimal(self) -> Decimal:
        return Decimal(self.value).scaleb(self.scale)

    @classmethod
    def prechecked(
        cls, meter_id: str, quantity: str, ts: dt.datetime, value: int, scale: int, unit: str,
        status: int, snapshot: bool, source: str, read_at: dt.datetime,
    ) -> Reading:
        """A reading whose fields the caller has already checked once per read or per map
        (non-empty meter id, canonical quantity, UTC datetimes, scale and value in range), so
        a decoder's hot loop does not pay `__post_init__`'s checks on every row. Anything
        else builds readings with `Reading(...)`."""
        reading = _new_reading(cls)
        _set_meter_id(reading, meter_id)
        _set_quantity(reading, quantity)
        _set_ts(reading, ts)
        _set_value(reading, value)
        _set_scale(reading, scale)
        _set_unit(reading, unit)
        _set_status(reading, status)
        _set_snapshot(reading, snapshot)
        _set_source(reading, source)
        _set_read_at(reading, read_at)
        return reading

    @classmethod
    def from_decimal(cls, amount: Decimal, **fields: Any) -> Reading:
        """Build a reading from an exact decimal, keeping every digit it has."""
        sign, digits, exponent = amount.normalize().as_tuple()
        if not isinstance(exponent, int):
            raise ContractError(f"Reading value {amount} is not a finite number")
        value = int("".join(map(str, digits)) or "0") * (-1 if sign else 1)
        if exponent > SCALE_RANGE[1]:
            value *= 10 ** (exponent - SCALE_RANGE[1])
            exponent = SCALE_RANGE[1]
        return cls(value=value, scale=exponent, **fields)

    def to_json(self) -> dict[str, Any]:
        """The contract's fields for `--json`, with the value as an exact decimal string."""
        return {
            "meter_id": self.meter_id,
            "quantity": self.quantity,
            "ts": self.ts.isoformat().replace("+00:00", "Z"),
            "value": format_decimal(self.value, self.scale),
            "scale": self.scale,
            "unit": self.unit,
            "status": self.status,
            "snapshot": self.snapshot,
            "source": self.source,
            "read_at": self.read_at.isoformat().replace("+00:00", "Z"),
        }


def format_decimal(value: int, scale: int) -> str:
    """`value x 10^scale` as a plain decimal string (no exponent), exactly."""
    amount = Decimal(value).scaleb(scale)
    return f"{amount:f}"


def empty_frame() -> pl.DataFrame:
    return pl.DataFrame(schema=dict(READING_SCHEMA))


_EPOCH = dt.datetime(1970, 1, 1, tzinfo=UTC)
_MICROSECOND = dt.timedelta(microseconds=1)


def instants(name: str, values: Sequence[dt.datetime]) -> pl.Series:
    """Aware datetimes as the contract's UTC microsecond column.

    Polars converts aware datetimes one by one through their tzinfo; integer microseconds
    since the epoch are tens of times faster and exactly the same (7-17 ms against 410-440 ms
    for 208,000 rows). A poll's readings share few instants (96 a profile day), so each
    distinct one is converted once."""
    known = {when: (when - _EPOCH) // _MICROSECOND for when in set(values)}
    return pl.Series(name, list(map(known.__getitem__, values)), dtype=pl.Int64()).cast(
        pl.Datetime("us", "UTC")
    )


def to_frame(readings: Iterable[Reading]) -> pl.DataFrame:
    """Readings as a frame of the contract's dtypes (a hot path of every poll)."""
    rows = list(readings)
    if not rows:
        return empty_frame()
    columns = []
    for name, dtype in READING_SCHEMA.items():
        values = list(map(attrgetter(name), rows))
        if isinstance(dtype, pl.Datetime):
            columns.append(instants(name, values))
        else:
            columns.append(pl.Series(name, values, dtype=dtype))
    return pl.DataFrame(columns)


def from_frame(frame: pl.DataFrame) -> list[Reading]:
    checked = conform(frame, origin="frame")
    return [Reading(**row) for row in checked.iter_rows(named=True)]


def conform(frame: pl.DataFrame, *, origin: str) -> pl.DataFrame:
    """Check a frame against the contract and cast it to the declared dtypes.

    Raises `ContractError` naming `origin` (a file, a batch), the column and the problem.
    Extra columns are refused rather than dropped, so nothing is lost in silence.
    """
    missing = [c for c in READING_COLUMNS if c not in frame.columns]
    if missing:
        raise ContractError(
            f"{origin}: missing column(s) {', '.join(missing)}",
            hint=f"a reading file has the columns {', '.join(READING_COLUMNS)}",
        )
    extra = [c for c in frame.columns if c not in READING_SCHEMA]
    if extra:
        raise ContractError(f"{origin}: unknown column(s) {', '.join(extra)}")
    out = frame.select(READING_COLUMNS)
    casts = []
    for name, dtype in READING_SCHEMA.items():
        actual = out.schema[name]
        if actual == dtype:
            continue
        if isinstance(dtype, pl.Datetime) and isinstance(actual, pl.Datetime):
            if actual.time_zone is None:
                raise ContractError(f"{origin}: column {name} has no time zone; it must be UTC")
            casts.append(pl.col(name).dt.convert_time_zone("UTC").dt.cast_time_unit("us"))
            continue
        if isinstance(dtype, pl.Categorical) and actual == pl.String():
            casts.append(pl.col(name).cast(dtype))
            continue
        if isinstance(dtype, pl.Datetime | pl.Boolean | pl.String | pl.Categorical) or actual == pl.String():
            raise ContractError(f"{origin}: column {name} is {actual}, expected {dtype}")
        casts.append(pl.col(name).cast(dtype, strict=True))
    if casts:
        try:
            out = out.with_columns(casts)
        except pl.exceptions.PolarsError as exc:
            raise ContractError(f"{origin}: a column does not fit its type: {exc}") from exc
    nulls = out.select(pl.col(c).null_count() for c in _NOT_NULL).row(0)
    for name, count in zip(_NOT_NULL, nulls, strict=True):
        if count:
            raise ContractError(f"{origin}: column {name} has {count} empty value(s)")
    return out.with_columns(
        pl.col("status").fill_null(0),
        pl.col("snapshot").fill_null(False),
        pl.col("unit").fill_null(""),
        pl.col("source").fill_null(""),
    )


# The slots' setters, bound once: what `Reading.prechecked` fills without `__post_init__`.
if tuple(Reading.__slots__) != READING_COLUMNS:  # pragma: no cover - a contract edited in one place only
    raise ContractError(f"Reading's fields {Reading.__slots__} differ from READING_SCHEMA {READING_COLUMNS}")
_new_reading = object.__new__
(_set_meter_id, _set_quantity, _set_ts, _set_value, _set_scale, _set_unit, _set_status, _set_snapshot,
 _set_source, _set_read_at) = (getattr(Reading, name).__set__ for name in READING_COLUMNS)


_INT64 = (-(2**63), 2**63 - 1)
_TZINFO = attrgetter("tzinfo")
# The fields a ReadingColumns holds per row; the others are shared by the read's rows.
ROW_FIELDS = ("quantity", "ts", "value", "scale", "unit", "status")
SHARED_FIELDS = ("meter_id", "snapshot", "source", "read_at")


@dataclass(frozen=True, slots=True, repr=False)
class ReadingColumns(Sequence[Reading]):
    """Readings of one meter from one read (one source, one read time), held column by column.

    A load profile gives hundreds of rows that differ only in quantity, time, value, scale,
    unit and status: as columns they cost a few list operations instead of an object per row,
    and `to_frame` makes the contract's frame from them directly. It is still a sequence of
    `Reading`: indexing or iterating makes each row, equal to `Reading(...)` of its fields.

    The contract is checked once over whole columns (in C where it can: map, set, min, max);
    if any row falls outside it, every row goes through `Reading(...)`, which normalises it
    (quantity spelling, time zone) or raises the ContractError that names it.
    """

    meter_id: str
    quantity: Sequence[str]
    ts: Sequence[dt.datetime]
    value: Sequence[int]
    scale: Sequence[int]
    unit: Sequence[str]
    status: Sequence[int]
    source: str
    read_at: dt.datetime
    snapshot: bool = False

    def __post_init__(self) -> None:
        columns = [getattr(self, name) for name in ROW_FIELDS]
        lengths = set(map(len, columns))
        if len(lengths) > 1:
            sizes = ", ".join(f"{name} {len(c)}" for name, c in zip(ROW_FIELDS, columns, strict=True))
            raise ContractError(
                f"ReadingColumns of meter {self.meter_id!r}: columns of unequal length ({sizes})"
            )
        for name, column in zip(ROW_FIELDS, columns, strict=True):
            object.__setattr__(self, name, tuple(column))  # immutable: the checks below stay true
        if self.ts and not self._in_contract():
            self._normalise()

    def _in_contract(self) -> bool:
        """What `Reading.__post_init__` checks, once per column instead of once per row."""
        if not self.meter_id or self.read_at.tzinfo is not UTC:
            return False
        if set(map(type, self.scale)) != {int} or set(map(type, self.value)) != {int}:
            return False
        if min(self.scale) < SCALE_RANGE[0] or max(self.scale) > SCALE_RANGE[1]:
            return False
        if min(self.value) < _INT64[0] or max(self.value) > _INT64[1]:
            return False
        if any(code != canonical(code) for code in set(self.quantity)):
            return False
        return set(map(_TZINFO, self.ts)) == {UTC}

    def _normalise(self) -> None:
        rows = [
            Reading(
                self.meter_id, quantity, ts, value, scale, unit, status, self.snapshot, self.source,
                self.read_at,
            )
            for quantity, ts, value, scale, unit, status in zip(
                self.quantity, self.ts, self.value, self.scale, self.unit, self.status, strict=True
            )
        ]
        object.__setattr__(self, "quantity", tuple(r.quantity for r in rows))
        object.__setattr__(self, "ts", tuple(r.ts for r in rows))
        object.__setattr__(self, "read_at", rows[0].read_at)

    def __len__(self) -> int:
        return len(self.ts)

    def within(self, after: dt.datetime, until: dt.datetime) -> ReadingColumns:
        """The rows with after < ts <= until (a catch-up window), still as columns.

        Rows share their few instants (one per capture time), so each distinct instant is
        compared once and the columns are cut in C; the rows were checked when these
        columns were made, so the cut is not checked again."""
        inside = {when: after < when <= until for when in set(self.ts)}
        if all(inside.values()):
            return self
        mask = list(map(inside.__getitem__, self.ts))
        kept = object.__new__(ReadingColumns)
        for name in SHARED_FIELDS:
            object.__setattr__(kept, name, getattr(self, name))
        for name in ROW_FIELDS:
            object.__setattr__(kept, name, tuple(compress(getattr(self, name), mask)))
        return kept

    @overload
    def __getitem__(self, index: int) -> Reading: ...

    @overload
    def __getitem__(self, index: slice) -> ReadingColumns: ...

    def __getitem__(self, index: int | slice) -> Reading | ReadingColumns:
        if isinstance(index, slice):
            return ReadingColumns(
                self.meter_id, self.quantity[index], self.ts[index], self.value[index],
                self.scale[index], self.unit[index], self.status[index], self.source, self.read_at,
                self.snapshot,
            )
        return Reading.prechecked(
            self.meter_id, self.quantity[index], self.ts[index], self.value[index], self.scale[index],
            self.unit[index], self.status[index], self.snapshot, self.source, self.read_at,
        )

    def __iter__(self) -> Iterator[Reading]:
        return map(
            Reading.prechecked, repeat(self.meter_id), self.quantity, self.ts, self.value, self.scale,
            self.unit, self.status, repeat(self.snapshot), repeat(self.source), repeat(self.read_at),
        )

    def __repr__(self) -> str:
        return (
            f"ReadingColumns(meter_id={self.meter_id!r}, rows={len(self)}, "
            f"quantities={sorted(set(self.quantity))}, source={self.source!r}, "
            f"read_at={self.read_at.isoformat()})"
        )

    def to_frame(self) -> pl.DataFrame:
        """The rows as a frame of the contract's dtypes: equal to `to_frame(list(self))`, without
        making a `Reading` per row."""
        rows = len(self)
        if not rows:
            return empty_frame()
        columns: dict[str, Sequence[object]] = {
            "meter_id": [self.meter_id] * rows,
            "quantity": self.quantity,
            "value": self.value,
            "scale": self.scale,
            "unit": self.unit,
            "status": self.status,
            "snapshot": [self.snapshot] * rows,
            "source": [self.source] * rows,
        }
        series = []
        for name, dtype in READING_SCHEMA.items():
            if name == "ts":
                series.append(instants(name, self.ts))
            elif name == "read_at":
                series.append(instants(name, [self.read_at] * rows))
            else:
                series.append(pl.Series(name, columns[name], dtype=dtype))
        return pl.DataFrame(series)
