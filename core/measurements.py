"""The measurement store: Parquet partitions committed through a manifest.

Layout: `<data>/store/<table>/<key>=<value>/.../<run-id>.parquet` and one
`<data>/store/<table>/_manifest.json` naming the live files of every partition. A run
writes new files first; the commit flushes them to disk and then swaps the manifest
(write to a temporary name, fsync, rename) under a file lock, so readers see each
partition whole, before or after a run, and two writers never lose each other's
partitions. Files no longer named by the
manifest are removed by `vacuum` once no reader can still be using them.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import datetime as dt
import fcntl
import functools
import json
import os
import re
import time
import uuid
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import polars as pl

from core.errors import StoreError

if TYPE_CHECKING:  # a reader's own connection; the writers (ingest's workers) never load DuckDB
    import duckdb

MANIFEST = "_manifest.json"
# files flushed at once by a commit: the disk takes several writes in flight
_FLUSH_THREADS = 8
LOCK = "_manifest.lock"
# zstd's fastest level: files are written once and read many times, and its decoding is as
# fast at any level; level 1 against Polars' default 3: a 1.2 M-row readings file written in
# 0.181 against 0.193 s, 3.6 against 3.5 MB
ZSTD_LEVEL = 1
# a file's label and the rest of its name (`Table.write_file`); names without one start
# with their time stamp, in which "__" never appears
_LABEL = re.compile(r"[A-Za-z0-9-]+")
_LABEL_END = "__"

Partition = tuple[tuple[str, str], ...]


def partition(**values: Any) -> Partition:
    """A partition key such as `partition(date="2026-11-01", bucket=3)`, in the given order."""
    out: list[tuple[str, str]] = []
    for name, value in values.items():
        if isinstance(value, dt.date):
            text = value.isoformat()
        elif isinstance(value, int):
            text = f"{value:04d}"
        else:
            text = str(value)
        if not text or "/" in text or "=" in text:
            raise StoreError(f"partition value {name}={value!r} is not usable in a path")
        out.append((name, text))
    return tuple(out)


def partition_path(key: Partition) -> str:
    return "/".join(f"{name}={value}" for name, value in key)


def parse_partition(path: str) -> Partition:
    """The key of a partition path as the manifest names it (`partition_path`'s converse)."""
    return tuple(tuple(part.split("=", 1)) for part in path.split("/"))  # type: ignore[misc]


def partition_values(path: str) -> dict[str, str]:
    """A partition path's values by column, e.g. {"date": "2026-11-01", "bucket": "0003"}."""
    return dict(parse_partition(path))


@dataclass(frozen=True)
class Manifest:
    version: int
    partitions: Mapping[str, tuple[str, ...]]  # partition path -> file names

    @functools.cached_property
    def _index(self) -> dict[str, dict[str, set[str]]]:
        """Partition paths by column and value, built once per manifest read."""
        index: dict[str, dict[str, set[str]]] = {}
        for path in self.partitions:
            for name, value in parse_partition(path):
                index.setdefault(name, {}).setdefault(value, set()).add(path)
        return index

    def matching(self, **where: Any) -> list[str]:
        """Paths of the partitions matching `where` (values or collections of values), sorted,
        found through an index built on the first question: for a manifest held and asked
        many times (`Snapshot`), each question costs what it finds rather than a pass over
        every partition (a city's year is 163,000 of them)."""
        wanted = {k: _as_texts(v) for k, v in where.items() if v is not None}
        if not wanted:
            return sorted(self.partitions)
        found: set[str] | None = None
        for name, texts in wanted.items():
            column = self._index.get(name, {})
            paths = set().union(*(column.get(text, set()) for text in texts))
            found = paths if found is None else found & paths
            if not found:
                return []
        return sorted(found or ())

    def files(self, root: Path, **where: Any) -> list[Path]:
        """Live files of the partitions matching `where` (all of them without), in path order."""
        return [root / path / name for path in self.matching(**where) for name in self.partitions[path]]


class Snapshot:
    """The manifests of a store's tables as read once, for a process that asks them many
    times while nothing else commits (an ingest task under the run lock): reading and
    indexing a manifest is a pass over every partition (0.6 s for a city's year), where a
    snapshot's lookups cost what they find."""

    def __init__(self, store: MeasurementStore) -> None:
        self.store = store
        self._manifests: dict[str, Manifest] = {}

    def manifest(self, table: str) -> Manifest:
        if table not in self._manifests:
            self._manifests[table] = self.store.table(table).manifest()
        return self._manifests[table]

    def files(self, table: str, **where: Any) -> list[Path]:
        return self.manifest(table).files(self.store.table(table).root, **where)


class Table:
    def __init__(self, root: Path, name: str) -> None:
        self.name = name
        self.root = root / name

    # -- reading ---------------------------------------------------------------
    def manifest(self) -> Manifest:
        path = self.root / MANIFEST
        try:
            raw = json.loads(path.read_text("utf-8"))
            return Manifest(
                version=int(raw["version"]),
                partitions={k: tuple(v) for k, v in raw["partitions"].items()},
            )
        except FileNotFoundError:
            return Manifest(version=0, partitions={})
        except (ValueError, KeyError, TypeError) as exc:
            raise StoreError(
                f"the manifest {path} is corrupt ({exc})",
                hint=f"restore it from a backup, or run `amr store repair {self.name}` "
                "to rebuild it from the partition files",
            ) from exc

    def files(self, **where: Any) -> list[Path]:
        """Live files of the partitions matching `where` (values or collections of values), the
        manifest read afresh (a `Snapshot` reads it once for many questions)."""
        return self.manifest().files(self.root, **where)

    def scan(self, schema: Mapping[str, pl.DataType] | None = None, **where: Any) -> pl.LazyFrame:
        files = self.files(**where)
        if not files:
            if schema is None:
                return pl.LazyFrame()
            return pl.LazyFrame(schema=dict(schema))
        return pl.scan_parquet([str(f) for f in files])

    def relation(self, con: duckdb.DuckDBPyConnection, **where: Any) -> duckdb.DuckDBPyRelation:
        files = [str(f) for f in self.files(**where)]
        if not files:
            raise StoreError(f"table {self.name} has no data for {where or 'any partition'}")
        return con.read_parquet(files)

    # -- writing ---------------------------------------------------------------
    def write_file(
        self,
        key: Partition,
        frame: pl.DataFrame,
        metadata: Mapping[str, str] | None = None,
        *,
        statistics: bool = True,
        label: str | None = None,
    ) -> str:
        """Write one immutable file into a partition; it is invisible until committed.
        `metadata`: key-value pairs for the Parquet footer (`pl.read_parquet_metadata`).
        `statistics`: each row group's min and max per column, by which readers skip row
        groups; a quarter of the cost of writing a wide frame. `label`: what the file holds,
        leading its name (`file_label`), so a writer can tell its files apart by name."""
        directory = self.root / partition_path(key)
        directory.mkdir(parents=True, exist_ok=True)
        if label is not None and not _LABEL.fullmatch(label):
            raise StoreError(
                f"cannot write a file labelled {label!r} into {self.name}/{partition_path(key)}: "
                "a label is letters, digits and dashes",
                hint="label a day's file with its ISO date, e.g. 2026-11-12",
            )
        name = f"{time.strftime('%Y%m%dT%H%M%S')}-{uuid.uuid4().hex[:12]}.parquet"
        if label is not None:
            name = f"{label}{_LABEL_END}{name}"
        temporary = directory / f".tmp-{name}"
        frame.write_parquet(
            temporary,
            compression="zstd",
            compression_level=ZSTD_LEVEL,
            statistics=statistics,
            metadata=dict(metadata) if metadata else None,
        )
        # not fsynced here: the commit that names the file does that (`_make_durable`)
        temporary.rename(directory / name)
        return name

    def commit(
        self,
        replace: Mapping[Partition, Sequence[str]] | None = None,
        append: Mapping[Partition, Sequence[str]] | None = None,
    ) -> int:
        """Atomically make files live: `replace` swaps a partition's files, `append` adds.

        Returns the new manifest version.
        """
        self.root.mkdir(parents=True, exist_ok=True)
        with self._locked():
            current = self.manifest()
            # files already live were flushed by the commit that named them (a month
            # partition keeps its other days' files)
            live = {path: set(names) for path, names in current.partitions.items()}
            _make_durable(
                self.root / partition_path(key) / name
                for named in (replace or {}, append or {})
                for key, names in named.items()
                for name in names
                if name not in live.get(partition_path(key), ())
            )
            partitions = {k: list(v) for k, v in current.partitions.items()}
            for key, names in (replace or {}).items():
                partitions[partition_path(key)] = list(names)
            for key, names in (append or {}).items():
                partitions.setdefault(partition_path(key), []).extend(names)
            partitions = {k: v for k, v in partitions.items() if v}
            version = current.version + 1
            body = json.dumps(
                {"version": version, "table": self.name, "partitions": partitions},
                indent=0, sort_keys=True,
            )
            temporary = self.root / f".{MANIFEST}.{uuid.uuid4().hex[:8]}"
            with open(temporary, "w", encoding="utf-8") as handle:
                handle.write(body)
                handle.flush()
                os.fsync(handle.fileno())
            temporary.replace(self.root / MANIFEST)
            _flush(self.root, os.O_RDONLY | os.O_DIRECTORY)  # the manifest's new entry
            return version

    def write_partitions(self, frames: Mapping[Partition, pl.DataFrame], *, mode: str = "replace") -> int:
        """Write a frame per partition and commit them together."""
        written = {key: [self.write_file(key, frame)] for key, frame in frames.items()}
        if mode == "replace":
            return self.commit(replace=written)
        if mode == "append":
            return self.commit(append=written)
        raise StoreError(f"write mode {mode!r} is not replace or append")

    def vacuum(self, older_than_s: float = 3600.0) -> int:
        """Delete files no manifest names any more (and stale temporaries); returns the count."""
        live = {str(p) for p in self.manifest().files(self.root)}
        cutoff = time.time() - older_than_s
        removed = 0
        for path in self.root.rglob("*.parquet"):
            if str(path) in live and not path.name.startswith(".tmp-"):
                continue
            if path.stat().st_mtime < cutoff:
                path.unlink()
                removed += 1
        return removed

    def repair(self) -> int:
        """Rebuild a lost or corrupt manifest from the files on disk (newest file per partition)."""
        partitions: dict[Partition, list[str]] = {}
        for path in sorted(self.root.rglob("*.parquet")):
            if path.name.startswith(".tmp-"):
                continue
            key = parse_partition(str(path.parent.relative_to(self.root)))
            partitions[key] = [path.name]
        with contextlib.suppress(FileNotFoundError):
            (self.root / MANIFEST).rename(self.root / f"{MANIFEST}.corrupt")
        return self.commit(replace=partitions)

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        with open(self.root / LOCK, "a+") as lock:
            fcntl.flock(lock.fileno(), fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(lock.fileno(), fcntl.LOCK_UN)


def _as_texts(value: Any) -> set[str]:
    values = value if isinstance(value, list | tuple | set | frozenset) else [value]
    return {partition(v=v)[0][1] for v in values}


class MeasurementStore:
    def __init__(self, data_dir: Path) -> None:
        self.root = data_dir / "store"

    def table(self, name: str) -> Table:
        return Table(self.root, name)


def file_label(name: str) -> str | None:
    """The label a file was written with (`Table.write_file`), None without one."""
    label, found, _ = name.partition(_LABEL_END)
    return label if found else None


def _make_durable(files: Iterable[Path]) -> None:
    """Flush files and their folders' entries to disk before a manifest names them. Done by
    the commit, for all its files at once on threads, rather than as each is written: the
    writer (an ingest task) goes on computing while the kernel writes back, and a
    million-meter day's run took 1-3 % less time (43.4-44.4 -> 42.6-43.9 s). By then the
    kernel has written most of them back: the commits' flushes took 0.15 s in all."""
    paths = list(files)
    if not paths:
        return
    folders = sorted({path.parent for path in paths})
    with concurrent.futures.ThreadPoolExecutor(max_workers=_FLUSH_THREADS) as pool:
        list(pool.map(_flush, paths))
        list(pool.map(lambda folder: _flush(folder, os.O_RDONLY | os.O_DIRECTORY), folders))


def _flush(path: Path, flags: int = os.O_RDONLY) -> None:
    try:
        handle = os.open(path, flags)
    except FileNotFoundError as exc:
        raise StoreError(
            f"cannot commit {path}: no such file was written",
            hint="commit only the names Table.write_file returned, in the table that wrote them",
        ) from exc
    try:
        os.fsync(handle)
    finally:
        os.close(handle)
