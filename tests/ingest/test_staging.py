"""Staging: landing batches routed to their partitions in their own row order, several at a
time, each partition's files listed in batch order; batches of one bucket taken by its task
directly, with the same result."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import polars as pl
import pytest
import sqlalchemy as sa
from hypothesis import given, settings
from hypothesis import strategies as st

import ingest.run as ingest_run
import ingest.run_state as run_state
import ingest.vee_days as vee_days
from core.buckets import bucket_expr, bucket_of
from core.landing import LAST_TS_KEY, LandingBatch, list_batches, write_batch
from core.measurements import MeasurementStore
from core.obis import ACTIVE_IMPORT_INTERVAL
from core.reading import READING_SCHEMA
from core.state import StateStore
from core.tables import DAILY
from core.timezones import local_midnight_utc
from ingest.config import VeeConfig
from ingest.errors import IngestError
from ingest.quantities import CLASS_COLUMNS, PAIR_COLUMNS, classify, pair_attributes, with_energy
from ingest.registry import load_registry
from ingest.run import run_ingest
from ingest.schema import READINGS
from ingest.staging import (
    Direct,
    Staged,
    plan_direct,
    route,
    route_direct,
    stage_batches,
    value_days,
    value_stamps,
)
from tests.ingest.builders import (
    AFTER,
    BUCKETS,
    DAY,
    STEP,
    frame,
    interval_day,
    land,
    register,
    rows,
    settings_for,
    snapshot,
)


def test_route_keeps_the_batch_order(tmp_path: Path) -> None:
    """The routed frame keeps the batch's row order, and so does each partition's part (known
    and unknown meters, several quantities): dedupe keeps the first of identical repeats by it."""
    state = StateStore.open(tmp_path)
    register(state, [f"M{n:03d}" for n in range(0, 40, 2)])  # every other meter unknown
    records = [r for n in range(40) for r in interval_day(f"M{n:03d}", DAY)]
    records = records[1::2] + records[::2]  # meters interleaved, not in any sorted order
    batch = frame(records)
    keys = load_registry(state).select("meter_id", "meter_key", "bucket")
    # a column of the batch's own (route carries every column through): its row numbers
    routed = route(batch.with_row_index("row"), keys, batch=0, buckets=BUCKETS, cfg=VeeConfig())
    assert routed.get_column("row").to_list() == list(range(batch.height))
    assert routed.select(batch.columns).equals(batch)
    parts = routed.partition_by(["day", "bucket"])
    assert len(parts) > 1
    assert all(part.get_column("row").is_sorted() for part in parts)
    state.dispose()


def test_staged_files_are_listed_in_batch_order(tmp_path: Path) -> None:
    """Batches staged two at a time (the later ones smaller, so they finish first) are
    listed per partition in batch order."""
    state = StateStore.open(tmp_path)
    meters = [f"M{n:03d}" for n in range(12)]
    register(state, meters)
    day = [record for meter in meters for record in interval_day(meter, DAY)]
    landed = [day[part::4][:size] for part, size in enumerate((290, 120, 40, 12))]
    for part, records in enumerate(landed):  # every batch has rows of most partitions
        land(tmp_path, records, prefix=f"p{part}")
    batches = list(list_batches(tmp_path))
    folder = tmp_path / "staging"
    registry = load_registry(state)
    staged = stage_batches(list(enumerate(batches)), registry, folder, buckets=BUCKETS, cfg=VeeConfig())
    assert sorted(staged.rows_in) == list(range(len(batches)))
    assert sum(staged.rows.values()) == sum(staged.rows_in.values()) == sum(map(len, landed))
    assert max(len(files) for files in staged.files.values()) == len(batches)
    for files in staged.files.values():
        assert [p.name for p in files] == sorted(p.name for p in files)  # named by batch index
    state.dispose()


def test_a_repeat_in_a_later_batch_is_its_duplicate(tmp_path: Path) -> None:
    """The earlier batch keeps the reading and the later batch's copy is counted as its
    duplicate, though the batches are staged at the same time."""
    state = StateStore.open(tmp_path)
    register(state, ["M001", "M002"])
    first = interval_day("M001", DAY)[:10]
    land(tmp_path, first, prefix="a")
    land(tmp_path, first + interval_day("M002", DAY) + interval_day("M001", DAY)[10:], prefix="b")
    report = run_ingest(tmp_path, state, settings=settings_for(tmp_path), now=AFTER)
    assert report.balanced
    with state.read() as conn:
        logged = conn.execute(
            sa.text("SELECT batch_path, rows_in, stored, duplicates FROM ingest_log ORDER BY batch_path")
        ).all()
    (path_a, in_a, stored_a, dup_a), (path_b, in_b, stored_b, dup_b) = logged
    assert "/a-" in path_a and "/b-" in path_b
    assert (in_a, stored_a, dup_a) == (10, 10, 0)
    assert (dup_b, stored_b) == (10, in_b - 10)
    state.dispose()


def land_by_bucket(data_dir: Path, records: list[dict[str, object]], *, tag: bool) -> None:
    """The records as the head-end lands them: a batch per bucket, saying so when `tag`."""
    readings = frame(records).with_columns(_b=bucket_expr("meter_id", BUCKETS))
    for (bucket,), part in sorted(readings.partition_by("_b", as_dict=True).items()):
        write_batch(
            data_dir, part.drop("_b"), prefix=f"b{bucket}", now=dt.datetime(2026, 11, 20, tzinfo=dt.UTC),
            bucket=int(bucket) if tag else None,  # type: ignore[call-overload]
        )


def test_batches_of_one_bucket_are_taken_by_their_task_as_staged_ones_are(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Three days of twelve meters with repeats, conflicts and a batch mixing buckets, landed
    as the head-end does (a batch per bucket, saying so) and untagged: the same store, the
    same accounting, and only the mixed batch staged when the others are tagged."""
    meters = [f"M{n:03d}" for n in range(12)]
    days = [DAY - dt.timedelta(days=k) for k in (2, 1, 0)]
    staged_counts: list[int] = []
    real_stage = ingest_run.stage_batches

    def counting(batches: list[tuple[int, LandingBatch]], *args: Any, **kwargs: Any) -> Staged:
        staged_counts.append(len(batches))
        return real_stage(batches, *args, **kwargs)

    monkeypatch.setattr(ingest_run, "stage_batches", counting)
    stores = {}
    for tag in (True, False):
        data_dir = tmp_path / ("tagged" if tag else "untagged")
        state = StateStore.open(data_dir)
        register(state, meters[:-1])  # the last one unknown
        for day in days:
            land_by_bucket(data_dir, [r for m in meters for r in interval_day(m, day)], tag=tag)
            # a repeat of one meter's day and a conflicting value, in batches of their own
            conflict = rows(meters[1], ACTIVE_IMPORT_INTERVAL, [(local_midnight_utc(day) + STEP * 12, 5)])
            land_by_bucket(data_dir, interval_day(meters[0], day) + conflict, tag=tag)
        land(data_dir, [r for m in meters[3:6] for r in interval_day(m, DAY)], prefix="mixed")
        report = run_ingest(data_dir, state, settings=settings_for(data_dir), now=AFTER)
        assert report.balanced and report.duplicates > 0 and report.quarantined_by_reason["conflict"] > 0
        assert staged_counts[-1] == (1 if tag else report.batches)
        stores[tag] = (snapshot(data_dir), report.readings_in, report.stored, report.duplicates)
        state.dispose()
    tagged, untagged = stores[True], stores[False]
    assert tagged[1:] == untagged[1:]
    for name, table in tagged[0].items():
        assert table.equals(untagged[0][name]), name


def test_a_mislabelled_batch_stops_the_run_before_anything_is_committed(tmp_path: Path) -> None:
    state = StateStore.open(tmp_path)
    register(state, ["M001", "M002"])
    wrong = (bucket_of("M001", BUCKETS) + 1) % BUCKETS
    write_batch(tmp_path, frame(interval_day("M001", DAY)), bucket=wrong)
    with pytest.raises(IngestError, match=rf"says it holds bucket {wrong}.*meter M001 is in bucket"):
        run_ingest(tmp_path, state, settings=settings_for(tmp_path), now=AFTER)
    assert not (tmp_path / "store").exists() or not list((tmp_path / "store").rglob("*.parquet"))
    state.dispose()


def test_a_direct_batch_is_read_a_day_at_a_time(tmp_path: Path) -> None:
    """Each of a direct batch's days gets exactly its rows, read by their time (a worker does
    not hold a batch's other days while it takes the first), and together they are all of it."""
    state = StateStore.open(tmp_path)
    register(state, ["M001"])
    bucket = bucket_of("M001", BUCKETS)
    records = [r for k in range(3) for r in interval_day("M001", DAY + dt.timedelta(days=k))]
    batch = write_batch(tmp_path, frame(records), bucket=bucket)
    (direct,), _ = plan_direct([batch], buckets=BUCKETS, cfg=VeeConfig())
    registry = load_registry(state)
    whole = route(batch.read(), registry, batch=0, buckets=BUCKETS, cfg=VeeConfig())
    cfg = VeeConfig()
    parts = {day: route_direct(direct, day, registry, buckets=BUCKETS, cfg=cfg) for day in direct.days}
    for day, part in parts.items():
        expected = whole.filter(pl.col("day") == day).drop("bucket", "day")
        assert part.equals(expected), day
    assert sum(part.height for part in parts.values()) == len(records)
    assert parts[DAY + dt.timedelta(days=1)].height > parts[DAY - dt.timedelta(days=1)].height
    state.dispose()


def test_a_batch_stamped_outside_its_stated_span_stops_the_run(tmp_path: Path) -> None:
    """A batch whose footer gives a narrower time span than its readings have would leave the
    readings outside it untaken: the run stops, names the batch and commits nothing."""
    state = StateStore.open(tmp_path)
    register(state, ["M001"])
    records = interval_day("M001", DAY) + interval_day("M001", DAY + dt.timedelta(days=5))
    batch = write_batch(tmp_path, frame(records), bucket=bucket_of("M001", BUCKETS))
    narrow = pl.read_parquet_metadata(batch.path) | {
        LAST_TS_KEY: (local_midnight_utc(DAY + dt.timedelta(days=1))).isoformat()
    }
    pl.read_parquet(batch.path).write_parquet(batch.path, metadata=narrow)
    with pytest.raises(IngestError, match=r"stamped .* of its 196 readings belong to other days"):
        run_ingest(tmp_path, state, settings=settings_for(tmp_path), now=AFTER)
    # the days taken before the check wrote files, but none is committed (so none is seen)
    store = MeasurementStore(tmp_path)
    assert all(store.table(name).scan().collect().height == 0 for name in (READINGS, DAILY))
    state.dispose()


def test_a_day_end_register_read_after_midnight_is_in_the_batch_days() -> None:
    """A register read ten minutes into a day is the day before's end value (the day-end
    window): a batch holding only that read covers the day before."""
    cfg = VeeConfig()
    read = local_midnight_utc(DAY + dt.timedelta(days=1)) + dt.timedelta(minutes=10)
    assert value_days(read, read, cfg) == (DAY, DAY + dt.timedelta(days=1))
    # a day's intervals end from 00:15 to midnight: the range reaches a day either side (a
    # register read at 00:15 is the day before's end; a reading of another kind stamped at
    # midnight belongs to the next day); a day without readings is not touched
    first, end = local_midnight_utc(DAY) + STEP, local_midnight_utc(DAY + dt.timedelta(days=1))
    assert value_days(first, end, cfg) == tuple(DAY + dt.timedelta(days=k) for k in (-1, 0, 1))


def test_a_day_batch_counts_whole_for_its_day_when_partitions_are_grouped(tmp_path: Path) -> None:
    """A day's batch reaches a day either side (see above) but its rows are sized by its time
    span, so its day's partition is not taken as a third of it and grouped with others."""
    cfg = VeeConfig()
    first, end = local_midnight_utc(DAY) + STEP, local_midnight_utc(DAY + dt.timedelta(days=1))
    batch = LandingBatch(tmp_path / "b.parquet", DAY, "b")
    whole = Direct(0, batch, 3, value_days(first, end, cfg), 9_600, first, end)
    staged = Staged(folder=tmp_path, direct=[whole])
    assert staged.expected_rows((DAY, 3)) == 9_600
    assert staged.expected_rows((DAY - dt.timedelta(days=1), 3)) == 0
    # a two-day batch is split by its span; a single instant counts whole for each day
    start, stop = local_midnight_utc(DAY), local_midnight_utc(DAY + dt.timedelta(days=2))
    two = Direct(1, batch, 4, value_days(start, stop, cfg), 19_200, start, stop)
    one = Direct(2, batch, 5, value_days(end, end, cfg), 7, end, end)
    staged = Staged(folder=tmp_path, direct=[two, one])
    assert [staged.expected_rows((DAY + dt.timedelta(days=k), 4)) for k in (0, 1)] == [9_600, 9_600]
    assert staged.expected_rows((DAY, 5)) == 7


@pytest.mark.parametrize("estimates_due", [True, False])
def test_a_small_day_after_big_ones_is_not_one_plan_over_their_buckets(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, estimates_due: bool
) -> None:
    """A plan reads the day before of every bucket it holds, and its like days when gaps are
    due for estimation: partitions are grouped by what their plans read, so the few readings
    stamped past midnight of many buckets do not make one plan that reads all of their full
    days at once; and just past midnight, when nothing of the day after is due yet, they
    share plans, as they read only the day before's register rows."""
    state = StateStore.open(tmp_path)
    meters = {bucket_of(f"M{n:03d}", BUCKETS): f"M{n:03d}" for n in range(40)}
    register(state, meters.values())
    after = local_midnight_utc(DAY + dt.timedelta(days=1))
    for bucket, meter in meters.items():
        # a day, and one reading of the day after, as a head-end batch of the bucket
        records = interval_day(meter, DAY) + rows(meter, ACTIVE_IMPORT_INTERVAL, [(after + STEP, 5)])
        write_batch(tmp_path, frame(records), bucket=bucket)
    # A full day is 98 readings. Once the day after has slots due, its plan reads the day
    # before (validated in this run, counted a 48th: 2), its like day (the same day, an
    # eighth: 12) and its own few: two buckets' come to more than 20. Just past midnight,
    # without the like day, two buckets' come to less and three to more.
    monkeypatch.setattr(run_state, "GROUP_ROWS", 20 if estimates_due else 10)
    plans: list[tuple[dt.date, int]] = []
    real_plan = vee_days.plan

    def spy(inputs: Any, cfg: Any, now: Any) -> Any:
        plans.append((inputs.day, inputs.meters.collect().height))
        return real_plan(inputs, cfg, now)

    monkeypatch.setattr(vee_days, "plan", spy)
    clock = AFTER if estimates_due else after + dt.timedelta(minutes=30)
    report = run_ingest(tmp_path, state, settings=settings_for(tmp_path), now=clock)
    assert report.balanced and len(meters) == BUCKETS
    day_after = [n for day, n in plans if day == DAY + dt.timedelta(days=1)]
    # one bucket's meter a plan, or two
    assert day_after and max(day_after) == (1 if estimates_due else 2), plans
    state.dispose()


@given(minutes=st.integers(min_value=-3 * 1440, max_value=3 * 1440), micros=st.sampled_from([-1, 0, 1]))
def test_the_stamps_of_a_day_and_the_days_of_a_stamp_agree(minutes: int, micros: int) -> None:
    """A day's stamp range (where a direct batch is read for it) holds a stamp exactly when
    the stamp's days (the days a batch's span reaches) hold that day."""
    cfg = VeeConfig()
    ts = local_midnight_utc(DAY) + dt.timedelta(minutes=minutes, microseconds=micros)
    for day in (DAY + dt.timedelta(days=k) for k in range(-4, 5)):
        start, end = value_stamps(day, cfg)
        assert (start <= ts <= end) == (day in value_days(ts, ts, cfg)), (ts, day)


QUANTITIES = [
    "1.0.1.8.0.255",
    "1.0.1.29.0.255",
    "1.0.3.8.0.255",
    "0.0.99.98.0.255",
    "1.0.32.7.0.255",
    "1.0.999.8.0.255",  # a group out of range: a hashed code
    "not-obis",
    None,
]
UNITS = ["Wh", "kWh", "varh", "V", "", None]
KNOWN = [f"K{n}" for n in range(4)]


@settings(max_examples=80, deadline=None)
@given(
    rows=st.lists(
        st.tuples(
            st.sampled_from([*KNOWN, "U0", "U1"]),  # registered and unknown meters
            st.sampled_from(QUANTITIES),
            st.sampled_from(UNITS),
            st.integers(-(2**62), 2**62),
            st.integers(-8, 20),
        ),
        max_size=60,
    ),
    said=st.one_of(st.none(), st.sampled_from([0, 1, 2])),
)
def test_route_looks_up_each_row_as_a_join_would(rows: list[tuple[Any, ...]], said: int | None) -> None:
    """Routing makes its lookups once per run of rows with the same meter, quantity and unit,
    and, for a batch that says its bucket (`said`), in that bucket's registry rows first; in
    any order of rows (runs long or short, nulls included, meters of other buckets too)
    every row gets what a join of all of them gives: the pair's columns, the meter's key and
    bucket (-1 and the id's hash for an unknown meter), and with the energy added,
    `classify`'s columns."""
    registry = pl.DataFrame(
        {"meter_id": KNOWN, "meter_key": [7, 3, 9, 1], "bucket": [2, 0, 1, 2]},
        schema={"meter_id": pl.String, "meter_key": pl.Int64, "bucket": pl.Int32},
    )
    batch = pl.DataFrame(
        [
            (meter, quantity, AFTER, value, scale, unit, 0, False, "test", AFTER)
            for meter, quantity, unit, value, scale in rows
        ],
        orient="row",
        schema=dict(READING_SCHEMA),
    )
    routed = route(batch, registry, batch=0, buckets=BUCKETS, cfg=VeeConfig(), bucket=said)
    expected = (
        pair_attributes(batch.lazy())
        .join(registry.lazy(), on="meter_id", how="left", maintain_order="left")
        .with_columns(
            meter_key=pl.col("meter_key").fill_null(-1),
            bucket=pl.coalesce("bucket", bucket_expr("meter_id", BUCKETS)),
        )
        .collect()
    )
    looked_up = [*PAIR_COLUMNS, "meter_key", "bucket"]
    assert routed.select(batch.columns).equals(batch)
    assert routed.select(looked_up).equals(expected.select(looked_up))
    assert with_energy(routed.lazy()).collect().select(CLASS_COLUMNS).equals(
        classify(batch.lazy()).collect().select(CLASS_COLUMNS)
    )
