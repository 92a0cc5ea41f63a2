"""The serving snapshot: the published `daily` and `bills` partitions, re-laid for lookups.

A Parquet partition of `daily` holds one bucket's meters for a month, in whatever order
ingest wrote them; answering "a month of days for one meter" from it means scanning
thousands of rows. So, for every live partition named by a table's manifest, the portal
builds once a small read-only SQLite file keyed by meter (or customer) and serves from
that. The file's name is a digest of the partition's live Parquet files, so a new run
of ingest or billing yields a new file, built beside the old one while the old one keeps
serving; the swap is one dictionary assignment. The portal never writes the measurement
store and never holds its lock, so runs never wait for the portal and the portal never
waits for them.

`intervals` (one file per local day and bucket, sorted by meter) is not re-laid: a
request reads at most a week of one bucket's files directly, and the Parquet row-group
statistics let it skip the other meters. The portal keeps only the index of the live
files, re-read when the table's manifest file changes.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import sqlite3
import threading
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson
import polars as pl

from core.measurements import MANIFEST, Manifest, MeasurementStore, partition_values
from core.tables import BILLS, DAILY, INTERVALS
from portal_api.errors import SnapshotUnavailable

# (table, period "YYYY-MM", bucket) -> serving file
Key = tuple[str, str, int]
_PERIOD_FIELD = {DAILY: "month", BILLS: "period"}
MMAP_BYTES = 2_000_000_000
_DAY_FIELDS = {"energy_wh": "e", "offpeak_wh": "o", "normal_wh": "n", "peak_wh": "p", "estimated_wh": "x"}


@dataclass(frozen=True)
class MonthOfDays:
    """One meter's days of one month, column-wise: day of month, energies, TOU flag."""

    meter_id: str
    month: str
    columns: Mapping[str, list[int]]


@dataclass
class RefreshReport:
    built: int = 0
    reused: int = 0
    seconds: float = 0.0
    tables: dict[str, int] = field(default_factory=dict)


def _digest(names: tuple[str, ...]) -> str:
    return hashlib.sha256("\n".join(sorted(names)).encode()).hexdigest()[:16]


def _key(table: str, partition_path: str) -> Key | None:
    values = partition_values(partition_path)
    period = values.get(_PERIOD_FIELD[table])
    bucket = values.get("bucket")
    if period is None or bucket is None or not bucket.isdigit():
        return None  # not a partition the portal serves
    return table, period, int(bucket)


def _write_db(target: Path, create: str, insert: str, rows: Iterator[tuple[Any, ...]]) -> None:
    temporary = target.with_name(f".tmp-{os.getpid()}-{target.name}")
    temporary.unlink(missing_ok=True)
    conn = sqlite3.connect(temporary)
    try:
        conn.execute("PRAGMA journal_mode=OFF")
        conn.execute("PRAGMA synchronous=OFF")
        conn.execute(create)
        conn.executemany(insert, rows)
        conn.commit()
    finally:
        conn.close()
    with open(temporary, "rb") as handle:
        os.fsync(handle.fileno())
    temporary.rename(target)


def _build_daily(files: list[Path], target: Path) -> None:
    frame = (
        pl.scan_parquet([str(f) for f in files])
        .select("meter_id", "date", "basis", *_DAY_FIELDS)
        # One row per meter and day (the last written wins). Sorting and comparing with the next
        # row does it several times faster than `unique` on millions of rows.
        .sort("meter_id", "date", maintain_order=True)
        .filter(
            (pl.col("meter_id") != pl.col("meter_id").shift(-1))
            | (pl.col("date") != pl.col("date").shift(-1))
            | pl.col("date").shift(-1).is_null()
        )
        .group_by("meter_id", maintain_order=True)
        .agg(
            pl.col("date").dt.day().cast(pl.Int32).alias("d"),
            *(pl.col(name).alias(short) for name, short in _DAY_FIELDS.items()),
            (pl.col("basis") == "intervals").cast(pl.Int8).alias("t"),
        )
        .select("meter_id", pl.struct("d", *_DAY_FIELDS.values(), "t").struct.json_encode().alias("j"))
        .collect()
    )
    _write_db(
        target,
        "CREATE TABLE days (meter_id TEXT PRIMARY KEY, j TEXT NOT NULL) WITHOUT ROWID",
        "INSERT INTO days VALUES (?, ?)",
        frame.iter_rows(),
    )


def _build_bills(files: list[Path], target: Path) -> None:
    frame = (
        pl.scan_parquet([str(f) for f in files])
        .with_columns(
            pl.col("period_start").cast(pl.String),
            pl.col("period_end").cast(pl.String),
            pl.col("created_at").dt.strftime("%Y-%m-%dT%H:%M:%SZ"),
        )
        .unique(["bill_id", "version"], keep="last")
        .sort("customer_code", "bill_id", "version")
        .select(
            "customer_code", "bill_id", "version", "status",
            pl.struct(pl.all()).struct.json_encode().alias("j"),
        )
        .collect()
    )
    _write_db(
        target,
        "CREATE TABLE bills (customer_code TEXT NOT NULL, bill_id TEXT NOT NULL, version INTEGER NOT NULL, "
        "status TEXT NOT NULL, j TEXT NOT NULL, PRIMARY KEY (customer_code, bill_id, version)) WITHOUT ROWID",
        "INSERT INTO bills VALUES (?, ?, ?, ?, ?)",
        frame.iter_rows(),
    )


_BUILDERS = {DAILY: _build_daily, BILLS: _build_bills}


class ServingSnapshot:
    """Lookups on the serving files of the live partitions; `refresh` follows the manifests."""

    def __init__(self, data_dir: Path) -> None:
        self.store = MeasurementStore(data_dir)
        self.root = data_dir / "portal" / "serving"
        self._current: dict[Key, Path] = {}
        self._intervals: dict[tuple[str, int], tuple[Path, ...]] = {}  # (date, bucket) -> live files
        self._intervals_stamp: tuple[int, int, int] | None = None
        self._versions: dict[str, int] = {}
        self._local = threading.local()
        self._refresh_lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    # -- following the manifests ------------------------------------------------
    def refresh(self) -> RefreshReport:
        """Build serving files for partitions that changed, then swap them in."""
        report = RefreshReport()
        started = time.perf_counter()
        with self._refresh_lock:
            current: dict[Key, Path] = {}
            for table in (DAILY, BILLS):
                manifest = self.store.table(table).manifest()
                self._versions[table] = manifest.version
                report.tables[table] = manifest.version
                for path, names in manifest.partitions.items():
                    key = _key(table, path)
                    if key is None or not names:
                        continue
                    target = self.root / table / path / f"{_digest(names)}.db"
                    if self._ensure(table, manifest, path, target):
                        report.built += 1
                    else:
                        report.reused += 1
                    current[key] = target
            self._current = current  # one assignment: readers see the old map or the new
            self._follow_intervals(report)
        report.seconds = time.perf_counter() - started
        return report

    def _follow_intervals(self, report: RefreshReport) -> None:
        """Index the live `intervals` files by (date, bucket); parse the manifest only when
        its file was replaced (a run renames a new one into place)."""
        table = self.store.table(INTERVALS)
        try:
            info = (table.root / MANIFEST).stat()
            stamp: tuple[int, int, int] | None = (info.st_ino, info.st_mtime_ns, info.st_size)
        except FileNotFoundError:
            stamp = None
        if stamp is None or stamp != self._intervals_stamp:
            manifest = table.manifest()
            index: dict[tuple[str, int], tuple[Path, ...]] = {}
            for path, names in manifest.partitions.items():
                values = dict(part.split("=", 1) for part in path.split("/") if "=" in part)
                day, bucket = values.get("date"), values.get("bucket")
                if day is None or bucket is None or not bucket.isdigit():
                    continue
                index[(day, int(bucket))] = tuple(table.root / path / name for name in names)
            self._intervals = index  # one assignment, as for the serving files
            self._intervals_stamp = stamp
            self._versions[INTERVALS] = manifest.version
        report.tables[INTERVALS] = self._versions[INTERVALS]

    def _ensure(self, table: str, manifest: Manifest, path: str, target: Path) -> bool:
        if target.exists():
            return False
        target.parent.mkdir(parents=True, exist_ok=True)
        # Several server processes may notice the same new partition; one builds it.
        with open(target.parent / ".build.lock", "a+") as lock:
            fcntl.flock(lock.fileno(), fcntl.LOCK_EX)
            try:
                if target.exists():
                    return False
                files = [self.store.table(table).root / path / n for n in manifest.partitions[path]]
                _BUILDERS[table](files, target)
                return True
            finally:
                fcntl.flock(lock.fileno(), fcntl.LOCK_UN)

    def start(self, interval_s: float = 2.0) -> None:
        """Follow the manifests in a background thread (the first refresh runs at once)."""
        if self._thread is not None:
            return

        def loop() -> None:
            while not self._stop.is_set():
                self.refresh()
                self.sweep()
                self._stop.wait(interval_s)

        self._thread = threading.Thread(target=loop, name="portal-serving-refresh", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=30)
            self._thread = None

    @property
    def versions(self) -> dict[str, int]:
        return dict(self._versions)

    def periods(self, table: str) -> list[str]:
        return sorted({period for t, period, _ in self._current if t == table})

    # -- lookups ------------------------------------------------------------------
    def _conn(self, key: Key) -> sqlite3.Connection | None:
        path = self._current.get(key)
        if path is None:
            return None
        cache: dict[Path, sqlite3.Connection] = self._local.__dict__.setdefault("conns", {})
        conn = cache.get(path)
        if conn is None:
            if len(cache) > 256:  # old snapshots' handles; drop them all and reopen lazily
                for old in cache.values():
                    old.close()
                cache.clear()
            conn = sqlite3.connect(f"file:{path}?mode=ro&immutable=1", uri=True, check_same_thread=False)
            conn.execute(f"PRAGMA mmap_size={MMAP_BYTES}")  # lookups read the OS page cache directly
            cache[path] = conn
        return conn

    def month_of_days(self, meter_id: str, bucket: int, month: str) -> MonthOfDays | None:
        conn = self._conn((DAILY, month, bucket))
        if conn is None:
            return None
        row = conn.execute("SELECT j FROM days WHERE meter_id = ?", (meter_id,)).fetchone()
        if row is None:
            return None
        return MonthOfDays(meter_id=meter_id, month=month, columns=orjson.loads(row[0]))

    def interval_files(self, bucket: int, days: list[str]) -> list[Path]:
        """The live `intervals` files of one bucket for the given local days (YYYY-MM-DD)."""
        index = self._intervals
        return [path for day in days for path in index.get((day, bucket), ())]

    def bills(
        self, customer_code: str, bucket: int, periods: list[str] | None = None
    ) -> list[dict[str, Any]]:
        """Every stored version of the customer's bills in the given periods (all when None)."""
        out: list[dict[str, Any]] = []
        for period in periods if periods is not None else self.periods(BILLS):
            conn = self._conn((BILLS, period, bucket))
            if conn is None:
                continue
            rows = conn.execute(
                "SELECT j FROM bills WHERE customer_code = ? ORDER BY bill_id, version", (customer_code,)
            ).fetchall()
            out.extend(json.loads(r[0]) for r in rows)
        return out

    def require_ready(self) -> None:
        if not self._versions:
            raise SnapshotUnavailable(
                "the portal has not read the published snapshots yet",
                hint="retry in a few seconds; the server reads them at start",
            )

    def sweep(self, older_than_s: float = 600.0) -> int:
        """Remove serving files no longer current (other processes may still read younger ones)."""
        live = set(self._current.values())
        cutoff = time.time() - older_than_s
        removed = 0
        for path in self.root.rglob("*.db"):
            if path not in live and path.stat().st_mtime < cutoff:
                with contextlib.suppress(FileNotFoundError):
                    path.unlink()
                    removed += 1
        return removed
