from __future__ import annotations

import json
import multiprocessing
import os
from pathlib import Path

import duckdb
import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from core.errors import StoreError
from core.measurements import MANIFEST, Manifest, MeasurementStore, Snapshot, partition


def _table(data_dir: Path, name: str = "t"):  # type: ignore[no-untyped-def]
    return MeasurementStore(data_dir).table(name)


def test_replace_swaps_a_partition_whole(data_dir: Path) -> None:
    table = _table(data_dir)
    key = partition(date="2026-11-01", bucket=3)
    table.write_partitions({key: pl.DataFrame({"x": [1, 2]})})
    table.write_partitions({key: pl.DataFrame({"x": [7]})})
    assert table.scan().collect()["x"].to_list() == [7]
    assert table.manifest().version == 2


def test_uncommitted_files_are_invisible(data_dir: Path) -> None:
    table = _table(data_dir)
    key = partition(date="2026-11-01", bucket=3)
    table.write_file(key, pl.DataFrame({"x": [1]}))
    assert table.files() == []
    assert table.scan().collect().height == 0


def test_a_commit_flushes_its_files_and_their_folders_before_the_manifest_names_them(
    data_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # durability against a power cut cannot be cut here; the order of the flushes can be seen
    table = _table(data_dir)
    keys = [partition(date="2026-11-01", bucket=b) for b in (1, 2)]
    names = {key: [table.write_file(key, pl.DataFrame({"x": [b]}))] for b, key in enumerate(keys)}
    flushed: list[Path] = []
    real_fsync = os.fsync

    def recording_fsync(handle: int) -> None:
        flushed.append(Path(os.readlink(f"/proc/self/fd/{handle}")))
        real_fsync(handle)

    monkeypatch.setattr(os, "fsync", recording_fsync)
    table.commit(replace=names)
    files = table.files()
    manifest = next(i for i, path in enumerate(flushed) if path.name.startswith(f".{MANIFEST}"))
    assert set(files) | {f.parent for f in files} <= set(flushed[:manifest])


def test_a_commit_naming_a_file_never_written_is_refused_and_changes_nothing(data_dir: Path) -> None:
    table = _table(data_dir)
    key = partition(date="2026-11-01", bucket=3)
    table.write_partitions({key: pl.DataFrame({"x": [1]})})
    with pytest.raises(StoreError, match=r"no-such\.parquet"):
        table.commit(replace={key: ["no-such.parquet"]})
    assert table.manifest().version == 1
    assert table.scan().collect()["x"].to_list() == [1]


def test_partition_filters_and_duckdb_agree(data_dir: Path) -> None:
    table = _table(data_dir)
    frames = {
        partition(date=f"2026-11-0{d}", bucket=b): pl.DataFrame({"d": [d], "b": [b]})
        for d in (1, 2) for b in (0, 1)
    }
    table.write_partitions(frames)
    assert sorted(table.scan(bucket=1).collect()["d"].to_list()) == [1, 2]
    assert table.scan(date=["2026-11-02"], bucket=[0]).collect().rows() == [(2, 0)]
    con = duckdb.connect()
    assert table.relation(con, bucket=0).aggregate("sum(d)").fetchall() == [(3,)]


DATES = [f"2026-11-{d:02d}" for d in range(1, 6)]


@settings(max_examples=80, deadline=None)
@given(
    present=st.sets(st.tuples(st.sampled_from(DATES), st.integers(0, 5)), max_size=30),
    dates=st.none() | st.sampled_from(DATES) | st.lists(st.sampled_from(DATES), max_size=3),
    buckets=st.none() | st.integers(0, 6) | st.lists(st.integers(0, 6), max_size=3),
)
def test_indexed_lookups_find_what_a_pass_over_every_partition_finds(
    present: set[tuple[str, int]], dates: object, buckets: object
) -> None:
    """`Manifest.files` (through its index) against a pass over every partition with a
    filter: the same files in the same order, for single values, lists, empty lists and none."""
    manifest = Manifest(
        version=1,
        partitions={
            "/".join(f"{k}={v}" for k, v in partition(date=d, bucket=b)): (f"{d}-{b}.parquet",)
            for d, b in present
        },
    )
    root = Path("/store/t")
    where = {"date": dates, "bucket": buckets}
    wanted = {
        k: {f"{x:04d}" if isinstance(x, int) else x for x in (v if isinstance(v, list) else [v])}
        for k, v in where.items()
        if v is not None
    }
    expected = [
        root / path / name
        for path, names in sorted(manifest.partitions.items())
        if all(dict(part.split("=", 1) for part in path.split("/"))[k] in t for k, t in wanted.items())
        for name in names
    ]
    assert manifest.files(root, **where) == expected


def test_a_snapshot_reads_each_manifest_once(data_dir: Path) -> None:
    """A snapshot answers from the manifest as it read it (what an ingest task needs under the
    run lock); a new snapshot sees later commits."""
    store = MeasurementStore(data_dir)
    table = store.table("t")
    table.write_partitions({partition(date="2026-11-01", bucket=1): pl.DataFrame({"x": [1]})})
    snapshot = Snapshot(store)
    assert len(snapshot.files("t", bucket=1)) == 1
    table.write_partitions({partition(date="2026-11-02", bucket=1): pl.DataFrame({"x": [2]})})
    assert len(snapshot.files("t", bucket=1)) == 1
    assert [p.parent.parent.name for p in Snapshot(store).files("t", bucket=1)] == [
        "date=2026-11-01",
        "date=2026-11-02",
    ]
    assert snapshot.files("missing", bucket=1) == []


def test_corrupt_manifest_says_what_to_do_and_repair_rebuilds(data_dir: Path) -> None:
    table = _table(data_dir)
    table.write_partitions({partition(bucket=1): pl.DataFrame({"x": [1]})})
    (table.root / "_manifest.json").write_text("{not json")
    with pytest.raises(StoreError) as info:
        table.files()
    assert "corrupt" in str(info.value) and info.value.hint and "repair" in info.value.hint
    table.repair()
    assert table.scan().collect()["x"].to_list() == [1]


def test_vacuum_removes_only_dead_files(data_dir: Path) -> None:
    table = _table(data_dir)
    key = partition(bucket=1)
    table.write_partitions({key: pl.DataFrame({"x": [1]})})
    table.write_partitions({key: pl.DataFrame({"x": [2]})})
    assert table.vacuum(older_than_s=-1) == 1
    assert table.scan().collect()["x"].to_list() == [2]


def _commit_many(data_dir: str, bucket: int, count: int) -> None:
    table = MeasurementStore(Path(data_dir)).table("t")
    for i in range(count):
        table.write_partitions({partition(bucket=bucket, n=i): pl.DataFrame({"x": [i]})})


def test_two_processes_committing_at_once_lose_nothing(data_dir: Path) -> None:
    context = multiprocessing.get_context("spawn")
    workers = [context.Process(target=_commit_many, args=(str(data_dir), b, 15)) for b in (1, 2)]
    for w in workers:
        w.start()
    for w in workers:
        w.join(timeout=60)
        assert w.exitcode == 0
    manifest = json.loads((data_dir / "store" / "t" / "_manifest.json").read_text())
    assert manifest["version"] == 30
    assert len(manifest["partitions"]) == 30
