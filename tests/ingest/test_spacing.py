"""`interval_spacing`: the capture period of a file's interval readings, whatever its gaps,
repeats, stray timestamps and order."""

from __future__ import annotations

import datetime as dt

import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from core.obis import ACTIVE_IMPORT_INTERVAL, ACTIVE_IMPORT_TOTAL
from ingest.spacing import interval_spacing, spacing_of, step_counts
from tests.ingest.builders import frame, rows

START = dt.datetime(2026, 11, 9, 17, tzinfo=dt.UTC)


@settings(max_examples=60, deadline=None)
@given(
    step=st.sampled_from([1, 5, 10, 15, 30, 60]),
    slots=st.integers(min_value=8, max_value=120),
    meters=st.integers(min_value=1, max_value=3),
    data=st.data(),
)
def test_the_most_common_step_is_the_capture_period(
    step: int, slots: int, meters: int, data: st.DataObject
) -> None:
    records: list[dict[str, object]] = []
    kept: list[int] = []
    for m in range(meters):
        # fewer than a quarter of the slots dropped: the regular steps stay the most common
        dropped = data.draw(st.sets(st.integers(0, slots - 1), max_size=(slots - 1) // 4))
        ends = [START + dt.timedelta(minutes=step * (k + 1)) for k in range(slots) if k not in dropped]
        kept.append(len(ends))
        records += rows(f"M{m}", ACTIVE_IMPORT_INTERVAL, [(e, 10) for e in ends])
        # a register read every 7 minutes does not count: only interval quantities do
        registers = [(START + dt.timedelta(minutes=7 * k), k) for k in range(40)]
        records += rows(f"M{m}", ACTIVE_IMPORT_TOTAL, registers)
        if ends:
            records += rows(f"M{m}", ACTIVE_IMPORT_INTERVAL, [(ends[0], 11)])  # a conflicting repeat
    shuffled = frame(records).sample(fraction=1.0, shuffle=True, seed=data.draw(st.integers(0, 1000)))
    spacing = interval_spacing(shuffled)
    assert spacing is not None and spacing.minutes == step
    # a step between each series' distinct interval ends (the repeat adds none)
    assert spacing.total == sum(max(n - 1, 0) for n in kept)


def test_no_two_interval_readings_of_a_series_is_no_answer() -> None:
    one_each = frame(
        rows("M1", ACTIVE_IMPORT_INTERVAL, [(START, 1)]) + rows("M2", ACTIVE_IMPORT_INTERVAL, [(START, 2)])
    )
    assert interval_spacing(one_each) is None
    registers_only = rows("M1", ACTIVE_IMPORT_TOTAL, [(START, 1), (START + dt.timedelta(hours=1), 2)])
    assert interval_spacing(frame(registers_only)) is None
    assert interval_spacing(pl.DataFrame(schema=one_each.schema)) is None


@pytest.mark.parametrize("order", ["by meter", "by time", "shuffled"])
@pytest.mark.parametrize("step", [15, 30])
def test_chunks_of_a_file_in_any_order_add_up_to_its_capture_period(order: str, step: int) -> None:
    ends = [START + dt.timedelta(minutes=step * (k + 1)) for k in range(1440 // step)]
    records = [r for m in range(20) for r in rows(f"M{m}", ACTIVE_IMPORT_INTERVAL, [(e, m) for e in ends])]
    readings = frame(records)
    if order == "by time":
        readings = readings.sort("ts", "meter_id")
    elif order == "shuffled":
        readings = readings.sample(fraction=1.0, shuffle=True, seed=step)
    size = readings.height // 4 + 1  # four chunks, each holding part of every series when not by meter
    chunks = [readings.slice(offset, size) for offset in range(0, readings.height, size)]
    spacing = spacing_of([step_counts(chunk) for chunk in chunks])
    assert spacing is not None and spacing.minutes == step
