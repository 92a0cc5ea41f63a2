"""The polling engine against an in-memory fleet: catch-up, exactly-once, retries, limits, stop."""

from __future__ import annotations

import asyncio
import datetime as dt
import socket
from pathlib import Path

import polars as pl
import pytest

from core.clock import VirtualClock
from core.config import HeadendSettings
from core.landing import list_batches
from core.obis import ACTIVE_IMPORT_INTERVAL
from core.state import StateStore
from headend import watermarks
from headend.models import LOAD_PROFILE
from headend.poll import PollOptions, poll_meters
from tests.headend.fakes import PERIOD, FakeFleet, FakeMeter
from tests.headend.helpers import dlms_rows, register

START = dt.datetime(2026, 3, 10, 3, 0, tzinfo=dt.UTC)
FAST = HeadendSettings(concurrency=8, per_line=2, session_timeout_s=5, retries=2, backoff_s=0.0)


def landed(data_dir: Path) -> pl.DataFrame:
    frames = [b.read() for b in list_batches(data_dir)]
    return pl.concat(frames) if frames else pl.DataFrame()


def intervals(data_dir: Path) -> pl.DataFrame:
    frame = landed(data_dir)
    return frame.filter(pl.col("quantity") == ACTIVE_IMPORT_INTERVAL) if frame.height else frame


def run(coro):  # type: ignore[no-untyped-def]
    return asyncio.run(asyncio.wait_for(coro, timeout=30))


def test_three_rounds_with_outage_store_every_interval_once(data_dir: Path, tmp_path: Path) -> None:
    state = StateStore.open(data_dir)
    meters = register(state, tmp_path, dlms_rows(6))
    clock = VirtualClock(START)
    fleet = FakeFleet(clock, [FakeMeter(m.meter_id) for m in meters])
    first = run(poll_meters(state, data_dir, meters, settings=FAST, clock=clock, connector=fleet))
    assert first.ok == 6 and first.failed == 0
    clock.advance(dt.timedelta(days=1))
    fleet.down = True  # a day-long outage: every meter times out
    second = run(poll_meters(state, data_dir, meters, settings=FAST, clock=clock, connector=fleet))
    assert second.failed == 6 and set(second.failures.values()) == {"timeout"}
    clock.advance(dt.timedelta(days=3, hours=5))
    fleet.down = False
    third = run(poll_meters(state, data_dir, meters, settings=FAST, clock=clock, connector=fleet))
    assert third.ok == 6
    frame = intervals(data_dir)
    # Nothing twice...
    assert frame.select(pl.struct("meter_id", "ts").is_duplicated().sum()).item() == 0
    # ... and nothing lost: every interval from the first start up to the clock minus one period.
    first_start = dt.datetime(2026, 3, 8, 17, 0, tzinfo=dt.UTC)  # local midnight of the day before START
    last = clock.now() - PERIOD
    expected = int((last - first_start) / PERIOD)
    per_meter = frame.group_by("meter_id").len()
    assert per_meter["len"].to_list() == [expected] * 6
    assert frame["ts"].max() <= last


def test_lagging_clock_loses_no_interval(data_dir: Path, tmp_path: Path) -> None:
    state = StateStore.open(data_dir)
    meters = register(state, tmp_path, dlms_rows(1))
    clock = VirtualClock(START)
    fake = FakeMeter(meters[0].meter_id, clock_offset=-dt.timedelta(minutes=40))
    fleet = FakeFleet(clock, [fake])
    settings = FAST.model_copy(update={"clock_threshold_s": 7200})  # leave the lag in place
    run(poll_meters(state, data_dir, meters, settings=settings, clock=clock, connector=fleet))
    mark = watermarks.load(state)[(fake.meter_id, LOAD_PROFILE)]
    assert mark <= clock.now() - dt.timedelta(minutes=40) - PERIOD
    fake.clock_offset = dt.timedelta(0)
    clock.advance(dt.timedelta(hours=2))
    run(poll_meters(state, data_dir, meters, settings=settings, clock=clock, connector=fleet))
    ts = intervals(data_dir)["ts"].sort()
    gaps = ts.diff().drop_nulls().unique().to_list()
    assert gaps == [PERIOD]


def test_missing_intervals_are_skipped_and_watermark_still_advances(data_dir: Path, tmp_path: Path) -> None:
    state = StateStore.open(data_dir)
    meters = register(state, tmp_path, dlms_rows(1))
    clock = VirtualClock(START)
    hole = dt.datetime(2026, 3, 9, 12, 0, tzinfo=dt.UTC)
    fleet = FakeFleet(clock, [FakeMeter(meters[0].meter_id, missing={hole, hole + PERIOD})])
    run(poll_meters(state, data_dir, meters, settings=FAST, clock=clock, connector=fleet))
    frame = intervals(data_dir)
    assert hole not in frame["ts"].to_list()
    assert watermarks.load(state)[(meters[0].meter_id, LOAD_PROFILE)] == clock.now() - PERIOD


def test_retryable_failure_is_retried_and_every_attempt_logged(data_dir: Path, tmp_path: Path) -> None:
    state = StateStore.open(data_dir)
    meters = register(state, tmp_path, dlms_rows(2))
    clock = VirtualClock(START)
    fleet = FakeFleet(clock, [FakeMeter(meters[0].meter_id, fault="flaky"), FakeMeter(meters[1].meter_id,
                                                                                      fault="drop")])
    report = run(poll_meters(state, data_dir, meters, settings=FAST, clock=clock, connector=fleet))
    assert report.ok == 1 and report.failed == 1
    assert report.failures == {meters[1].meter_id: "connection"}
    with state.read() as conn:
        rows = conn.exec_driver_sql(
            "SELECT meter_id, outcome, error_class, retries FROM headend_comm_log ORDER BY meter_id, retries"
        ).all()
    assert [tuple(r) for r in rows] == [
        (meters[0].meter_id, "failed", "connection", 0), (meters[0].meter_id, "ok", None, 1),
        (meters[1].meter_id, "failed", "connection", 0), (meters[1].meter_id, "failed", "connection", 1),
        (meters[1].meter_id, "failed", "connection", 2),
    ]


def test_breaker_opens_after_repeated_failed_rounds(data_dir: Path, tmp_path: Path) -> None:
    state = StateStore.open(data_dir)
    meters = register(state, tmp_path, dlms_rows(1))
    clock = VirtualClock(START)
    fleet = FakeFleet(clock, [FakeMeter(meters[0].meter_id, fault="silent")])
    settings = FAST.model_copy(update={"retries": 0})
    options = PollOptions()
    for _ in range(options.breaker.threshold):
        report = run(poll_meters(state, data_dir, meters, settings=settings, clock=clock, connector=fleet))
        assert report.failed == 1
    report = run(poll_meters(state, data_dir, meters, settings=settings, clock=clock, connector=fleet))
    assert report.skipped == 1 and fleet.attempts[meters[0].meter_id] == options.breaker.threshold
    clock.advance(options.breaker.cooldown + dt.timedelta(seconds=1))
    report = run(poll_meters(state, data_dir, meters, settings=settings, clock=clock, connector=fleet))
    assert report.skipped == 0 and report.failed == 1


def test_gateway_and_cell_limits_hold(data_dir: Path, tmp_path: Path) -> None:
    state = StateStore.open(data_dir)
    meters = register(state, tmp_path, dlms_rows(40, gateways=4, cells=2))
    clock = VirtualClock(START)
    fleet = FakeFleet(clock, [FakeMeter(m.meter_id) for m in meters])
    settings = FAST.model_copy(update={"concurrency": 6, "per_line": 2})
    report = run(poll_meters(state, data_dir, meters, settings=settings, clock=clock, connector=fleet,
                             options=PollOptions(per_cell=3)))
    assert report.ok == 40
    assert fleet.peak["global"] <= 6
    assert max(v for k, v in fleet.peak.items() if k.startswith("line:")) <= 2
    assert max(v for k, v in fleet.peak.items() if k.startswith("cell:")) <= 3
    assert fleet.peak["global"] >= 2  # the limits are limits, not a queue of one


def test_clock_drift_is_corrected_and_capped_per_day(data_dir: Path, tmp_path: Path) -> None:
    state = StateStore.open(data_dir)
    meters = register(state, tmp_path, dlms_rows(2))
    clock = VirtualClock(START)
    small = FakeMeter(meters[0].meter_id, clock_offset=dt.timedelta(seconds=300))
    large = FakeMeter(meters[1].meter_id, clock_offset=-dt.timedelta(hours=2))
    fleet = FakeFleet(clock, [small, large])
    report = run(poll_meters(state, data_dir, meters, settings=FAST, clock=clock, connector=fleet))
    assert report.clock_corrections == 2
    assert small.clock_offset == dt.timedelta(0) and large.clock_offset == dt.timedelta(0)
    assert sorted(a for _, a, _ in fleet.corrections) == ["set", "shift"]
    # The cap: a meter that keeps drifting is corrected at most twice a local day.
    for _ in range(3):
        small.clock_offset = dt.timedelta(seconds=120)
        clock.advance(dt.timedelta(minutes=30))
        run(poll_meters(state, data_dir, meters, settings=FAST, clock=clock, connector=fleet))
    with state.read() as conn:
        actions = [r[0] for r in conn.exec_driver_sql(
            "SELECT action FROM headend_clock_events WHERE meter_id = ? ORDER BY id", (small.meter_id,))]
    assert actions == ["shift", "shift", "capped", "capped"]


def test_stop_lands_what_was_read_and_leaves_the_rest(data_dir: Path, tmp_path: Path) -> None:
    state = StateStore.open(data_dir)
    meters = register(state, tmp_path, dlms_rows(30, gateways=1))
    clock = VirtualClock(START)
    fleet = FakeFleet(clock, [FakeMeter(m.meter_id) for m in meters])
    settings = FAST.model_copy(update={"per_line": 1})

    async def main() -> object:
        stop = asyncio.Event()

        def progress(done: int, total: int) -> None:
            if done == 5:
                stop.set()

        return await poll_meters(state, data_dir, meters, settings=settings, clock=clock, connector=fleet,
                                 progress=progress, stop=stop)

    report = run(main())
    assert report.stopped and 5 <= report.ok < 30 and report.not_started == 30 - report.ok
    # The next round reads the rest; nothing is read twice.
    again = run(poll_meters(state, data_dir, meters, settings=settings, clock=clock, connector=fleet))
    assert again.ok == 30
    frame = intervals(data_dir)
    assert frame.select(pl.struct("meter_id", "ts").is_duplicated().sum()).item() == 0
    assert frame["meter_id"].n_unique() == 30


@pytest.mark.parametrize("kill_after", ["pending", "batch"])
def test_kill_between_steps_of_a_landing_recovers_exactly_once(
    data_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, kill_after: str
) -> None:
    from headend import landings

    state = StateStore.open(data_dir)
    meters = register(state, tmp_path, dlms_rows(3))
    clock = VirtualClock(START)
    fleet = FakeFleet(clock, [FakeMeter(m.meter_id) for m in meters])
    real_write = landings.write_batch

    class Killed(BaseException):
        pass

    def dying_write(*args, **kwargs):  # type: ignore[no-untyped-def]
        if kill_after == "batch":
            real_write(*args, **kwargs)
        raise Killed

    monkeypatch.setattr(landings, "write_batch", dying_write)
    # The "killed" writer must look dead to the recovery, as a killed process would.
    monkeypatch.setattr(landings, "owner", lambda: f"{socket.gethostname()}:{2**22 + 7}")
    with pytest.raises(Killed):
        run(poll_meters(state, data_dir, meters, settings=FAST, clock=clock, connector=fleet))
    monkeypatch.setattr(landings, "write_batch", real_write)
    monkeypatch.undo()
    clock.advance(dt.timedelta(hours=3))
    run(poll_meters(state, data_dir, meters, settings=FAST, clock=clock, connector=fleet))
    frame = intervals(data_dir)
    assert frame.select(pl.struct("meter_id", "ts").is_duplicated().sum()).item() == 0
    ts = frame.filter(pl.col("meter_id") == meters[0].meter_id)["ts"].sort()
    assert ts.diff().drop_nulls().unique().to_list() == [PERIOD]
    assert ts.max() == clock.now() - PERIOD


def test_a_round_of_one_buckets_meters_says_so_in_its_batch(data_dir: Path, tmp_path: Path) -> None:
    """A shard's round (one bucket) lands batches that name their bucket and time span, so
    ingest can take them straight into that bucket's task; a round across buckets does not."""
    state = StateStore.open(data_dir)
    meters = register(state, tmp_path, dlms_rows(12))
    clock = VirtualClock(START)
    fleet = FakeFleet(clock, [FakeMeter(m.meter_id) for m in meters])
    bucket = meters[0].bucket
    shard = [m for m in meters if m.bucket == bucket]
    assert 0 < len(shard) < len(meters)
    run(poll_meters(state, data_dir, shard, settings=FAST, clock=clock, connector=fleet))
    (batch,) = list_batches(data_dir)
    layout = batch.layout()
    readings = batch.read()
    assert layout.bucket == bucket and layout.rows == readings.height
    assert (layout.first_ts, layout.last_ts) == (readings["ts"].min(), readings["ts"].max())
    clock.advance(dt.timedelta(days=1))
    run(poll_meters(state, data_dir, meters, settings=FAST, clock=clock, connector=fleet))
    layouts = [b.layout() for b in list_batches(data_dir)]
    assert sorted(layout.bucket is None for layout in layouts) == [False, True]
