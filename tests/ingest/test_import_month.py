"""A month of households in one file, with faults of every kind injected at random places
(seeded): every fault is flagged with its reason and nothing is lost. One file of many days
is the shape of the acceptance check (real readings with injected faults through
`amr ingest import`), so the history rules, like days and rollovers must work within it."""

from __future__ import annotations

import datetime as dt
import random
from dataclasses import dataclass, field
from pathlib import Path
from typing import cast

import polars as pl
import pytest

from core.measurements import MeasurementStore
from core.obis import ACTIVE_IMPORT_INTERVAL as INTERVAL
from core.obis import ACTIVE_IMPORT_TOTAL as REGISTER
from core.obis import STANDARD_EVENT_LOG
from core.reading import STATUS_CLOCK_ADJUSTED, STATUS_CLOCK_INVALID, STATUS_DATA_NOT_VALID
from core.state import StateStore
from core.timezones import local_midnight_utc
from ingest.importer import import_readings
from ingest.schema import FINDINGS, READINGS
from tests.ingest.builders import STEP, frame, interval_day, rows, settings_for

FIRST = dt.date(2026, 10, 12)
DAYS = [FIRST + dt.timedelta(days=k) for k in range(30)]
METERS = [f"H{i:02d}" for i in range(12)]
ROLLING = "H05"  # its register capacity is reached mid-month
Key = tuple[str, str, dt.datetime]


def at(day: dt.date, slot: int) -> dt.datetime:
    return local_midnight_utc(day) + STEP * slot


def wh(reading: dict[str, object]) -> int:
    return cast(int, reading["value"])


@dataclass
class Month:
    """The month's readings by key, with what each injected fault must be flagged as."""

    rng: random.Random
    readings: dict[Key, dict[str, object]] = field(default_factory=dict)
    extra: list[dict[str, object]] = field(default_factory=list)
    expected: dict[Key, str] = field(default_factory=dict)
    expected_days: dict[tuple[str, dt.date], str] = field(default_factory=dict)
    used: set[tuple[str, dt.date]] = field(default_factory=set)

    def pick(self, first_day: int = 0) -> tuple[str, dt.date, int]:
        """A meter-day no other fault has, and a slot in it."""
        while True:
            meter, day = self.rng.choice(METERS[:-1]), self.rng.choice(DAYS[first_day:-1])
            if (meter, day) not in self.used and meter != ROLLING:
                self.used.add((meter, day))
                return meter, day, self.rng.randrange(2, 80)

    def change(self, code: str, first_day: int = 0, **changes: object) -> None:
        meter, day, slot = self.pick(first_day)
        self.readings[(meter, INTERVAL, at(day, slot))].update(changes)
        self.expected[(meter, INTERVAL, at(day, slot))] = code


def faulty_month(seed: int) -> Month:
    month = Month(random.Random(seed))
    for index, meter in enumerate(METERS):
        for day in DAYS:
            for r in interval_day(meter, day, seed=index + 1):
                month.readings[(meter, str(r["quantity"]), cast(dt.datetime, r["ts"]))] = r
    for _ in range(2):
        month.change("negative", value=-40)
        month.change("spike_rated", value=50_000)  # above 100 A x 230 V for 15 minutes
        month.change("spike_history", first_day=10, value=3_000)  # far above the meter's mean
        month.change("data_not_valid", status=STATUS_DATA_NOT_VALID)
        month.change("clock_invalid", status=STATUS_CLOCK_INVALID)
        month.change("clock_adjusted", status=STATUS_CLOCK_ADJUSTED)
        month.change("unit", unit="V")
        meter, day, slot = month.pick()
        month.extra += rows(meter, INTERVAL, [(at(day, slot), 1)])  # a second, different value
        month.expected[(meter, INTERVAL, at(day, slot))] = "conflict"
        meter, day, slot = month.pick()
        off = at(day, slot) + dt.timedelta(minutes=4)
        month.extra += rows(meter, INTERVAL, [(off, 10)])
        month.expected[(meter, INTERVAL, off)] = "off_grid"
        meter, day, slot = month.pick()
        month.extra.append(dict(month.readings[(meter, INTERVAL, at(day, slot))]))  # an identical repeat
        meter, day, slot = month.pick()
        for k in (slot, slot + 1):
            del month.readings[(meter, INTERVAL, at(day, k))]
        month.expected_days[(meter, day)] = "gap"
        meter, day, slot = month.pick()  # three hours of zeros inside a recorded power outage
        for k in range(slot, slot + 12):
            month.readings[(meter, INTERVAL, at(day, k))]["value"] = 0
        events = [(at(day, slot - 1), 1), (at(day, slot + 11), 2)]  # power down, power up
        month.extra += rows(meter, STANDARD_EVENT_LOG, events, unit="")
        month.expected[(meter, INTERVAL, at(day, slot + 5))] = "outage"
        meter, day, slot = month.pick()  # fifteen hours of zeros without one
        for k in range(slot % 30 + 1, slot % 30 + 61):
            month.readings[(meter, INTERVAL, at(day, k))]["value"] = 0
        month.expected[(meter, INTERVAL, at(day, slot % 30 + 30))] = "zero_run"
        month.expected_days[(meter, day)] = "zero_run"
        meter, day, _ = month.pick()
        month.extra += rows(meter, REGISTER, [(at(day, 48), 10)])  # the register goes back
        month.expected[(meter, REGISTER, at(day, 48))] = "negative"
        meter, day, _ = month.pick()  # 2 kWh more in one interval than the register advanced
        reading = month.readings[(meter, INTERVAL, at(day, 70))]
        reading["value"] = wh(reading) + 2_000
        month.expected_days[(meter, day)] = "sum_check"
    for factor, rule in ((4.0, "high_usage"), (0.1, "low_usage")):
        meter, day, _ = month.pick(first_day=12)
        for k in range(1, 97):
            reading = month.readings[(meter, INTERVAL, at(day, k))]
            reading["value"] = int(wh(reading) * factor)
        month.expected_days[(meter, day)] = rule
    return month


def fleet_file(path: Path, capacity: int) -> Path:
    lines = ["meter_id,url,installed_on,removed_on,register_capacity_wh"]
    lines += [f"{m},dlms+tcp://10.0.0.{i + 1}:4059,2026-01-01,,{capacity if m == ROLLING else ''}"
              for i, m in enumerate(METERS)]
    lines += [
        "H98,dlms+tcp://10.0.1.1:4059,2026-11-20,,",  # installed after the month
        "H97,dlms+tcp://10.0.1.2:4059,2026-01-01,2026-10-20,",  # removed within it
    ]
    path.write_text("\n".join(lines) + "\n")
    return path


@pytest.mark.slow
@pytest.mark.parametrize("seed", [1, 2])
def test_a_month_of_households_with_every_fault_at_random_places(tmp_path: Path, seed: int) -> None:
    month = faulty_month(seed)
    # the rolling meter's register wraps mid-month at a capacity just above its value then
    capacity = wh(month.readings[(ROLLING, REGISTER, local_midnight_utc(DAYS[15]))]) + 5_000
    registers = {k: r for k, r in month.readings.items() if k[0] == ROLLING and k[1] == REGISTER}
    for reading in registers.values():
        reading["value"] = wh(reading) % capacity
    wrapped = min(ts for (_, _, ts), reading in registers.items() if wh(reading) < 5_000)
    month.expected[(ROLLING, REGISTER, wrapped)] = "rollover"
    now = local_midnight_utc(DAYS[-1] + dt.timedelta(days=2))
    month.extra += rows("X99", INTERVAL, [(at(DAYS[5], 3), 10)])
    month.expected[("X99", INTERVAL, at(DAYS[5], 3))] = "unknown_meter"
    month.extra += rows("H98", INTERVAL, [(at(DAYS[5], 3), 10)])
    month.expected[("H98", INTERVAL, at(DAYS[5], 3))] = "before_install"
    month.extra += rows("H97", INTERVAL, [(at(DAYS[20], 3), 10)])
    month.expected[("H97", INTERVAL, at(DAYS[20], 3))] = "retired_meter"
    month.extra += rows("H01", REGISTER, [(now + dt.timedelta(hours=2), 10**8)])
    month.expected[("H01", REGISTER, now + dt.timedelta(hours=2))] = "future"

    readings = frame([*month.readings.values(), *month.extra])
    path = tmp_path / "households.parquet"
    readings.write_parquet(path)
    data_dir = tmp_path / "data"
    state = StateStore.open(data_dir)
    fleet = fleet_file(tmp_path / "f.csv", capacity)
    report = import_readings(data_dir, state, path, settings=settings_for(data_dir), fleet=fleet, now=now)
    assert report.readings_in == readings.height and report.balanced
    store = MeasurementStore(data_dir)
    stored = store.table(READINGS).scan().collect()
    assert stored.filter(pl.col("state") != "estimated").height == readings.height - report.duplicates
    missed = []
    for (meter, quantity, ts), code in month.expected.items():
        found = stored.filter(
            (pl.col("meter_id") == meter) & (pl.col("quantity") == quantity) & (pl.col("ts") == ts)
        )
        marks = set(found.get_column("reason").drop_nulls().to_list())
        for flags in found.get_column("flags").to_list():
            marks |= set((flags or "").split(","))
        if code not in marks:
            missed.append((meter, quantity, ts, code, marks))
    findings = store.table(FINDINGS).scan().collect()
    for (meter, day), rule in month.expected_days.items():
        rules = findings.filter((pl.col("meter_id") == meter) & (pl.col("date") == day)).get_column("rule")
        if rule not in rules.to_list():
            missed.append((meter, day, rule, rules.to_list()))
    assert missed == []
