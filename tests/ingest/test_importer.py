"""`import_readings`: household readings with faults injected at known places go through
the same VEE; every fault is flagged with the right reason and nothing is lost. Files
that do not match the schema are refused whole."""

from __future__ import annotations

import datetime as dt
import os
import re
import time
from decimal import Decimal
from pathlib import Path

import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from core.measurements import MeasurementStore
from core.obis import ACTIVE_IMPORT_INTERVAL, ACTIVE_IMPORT_TOTAL, STANDARD_EVENT_LOG
from core.reading import (
    READING_COLUMNS,
    STATUS_CLOCK_ADJUSTED,
    STATUS_CLOCK_INVALID,
    STATUS_DATA_NOT_VALID,
)
from core.state import StateStore
from core.timezones import local_midnight_utc
from ingest.errors import ImportRefused
from ingest.importer import import_readings, parse_csv_chunk
from ingest.schema import READINGS
from tests.ingest.builders import AFTER, DAY, STEP, frame, interval_day, rows, settings_for

T0 = local_midnight_utc(DAY)


def landed_files(data_dir: Path) -> list[Path]:
    """Every file in the landing area, temporaries included."""
    return [p for p in (data_dir / "landing").rglob("*") if p.is_file()]


def fleet(path: Path) -> Path:
    path.write_text(
        "meter_id,url,customer_code,route,installed_on,removed_on\n"
        "H1,dlms+tcp://10.0.0.1:4059,PD01000000001,R1,2026-01-01,\n"
        "H2,dlms+tcp://10.0.0.2:4059,PD02000000002,R2,2026-01-01,\n"
        "H3,dlms+tcp://10.0.0.3:4059,PD02000000003,R2,2026-11-11,\n"  # installed the day after
        "H4,dlms+tcp://10.0.0.4:4059,PD03000000004,R3,2026-01-01,2026-11-09\n"  # removed before
    )
    return path


def faulty_households() -> tuple[pl.DataFrame, dict[tuple[str, str, dt.datetime], str]]:
    """Readings of real-shaped households with one fault of each kind at a known place;
    returns the frame and (meter, quantity, ts) -> expected reason or flag."""
    records = interval_day("H1", DAY, seed=3) + interval_day("H2", DAY, seed=4)
    expected: dict[tuple[str, str, dt.datetime], str] = {}

    def replace(meter: str, slot: int, **changes: object) -> None:
        ts = T0 + STEP * slot
        for r in records:
            if r["meter_id"] == meter and r["quantity"] == ACTIVE_IMPORT_INTERVAL and r["ts"] == ts:
                r.update(changes)

    def at(slot: int) -> dt.datetime:
        return T0 + STEP * slot

    replace("H1", 5, value=-40)
    expected[("H1", ACTIVE_IMPORT_INTERVAL, at(5))] = "negative"
    replace("H1", 6, value=50_000)  # 50 kWh in 15 minutes: above 100 A x 230 V
    expected[("H1", ACTIVE_IMPORT_INTERVAL, at(6))] = "spike_rated"
    replace("H1", 7, status=STATUS_DATA_NOT_VALID)
    expected[("H1", ACTIVE_IMPORT_INTERVAL, at(7))] = "data_not_valid"
    replace("H1", 8, status=STATUS_CLOCK_INVALID)
    expected[("H1", ACTIVE_IMPORT_INTERVAL, at(8))] = "clock_invalid"
    replace("H1", 9, status=STATUS_CLOCK_ADJUSTED)
    expected[("H1", ACTIVE_IMPORT_INTERVAL, at(9))] = "clock_adjusted"
    replace("H1", 10, unit="V")
    expected[("H1", ACTIVE_IMPORT_INTERVAL, at(10))] = "unit"
    # a conflicting second value
    records += rows("H1", ACTIVE_IMPORT_INTERVAL, [(at(11), 1)])
    expected[("H1", ACTIVE_IMPORT_INTERVAL, at(11))] = "conflict"
    # an off-grid interval end
    records += rows("H1", ACTIVE_IMPORT_INTERVAL, [(at(12) + dt.timedelta(minutes=4), 10)])
    expected[("H1", ACTIVE_IMPORT_INTERVAL, at(12) + dt.timedelta(minutes=4))] = "off_grid"
    # an identical repeat: dropped and counted
    records += [dict(records[0])]
    # H2: a recorded outage of three hours with zeros in it, then 15 hours of zeros without one
    for slot in range(5, 17):
        replace("H2", slot, value=0)
    records += rows("H2", STANDARD_EVENT_LOG, [(at(4), 1), (at(16), 2)], unit="")
    for slot in (8, 14):
        expected[("H2", ACTIVE_IMPORT_INTERVAL, at(slot))] = "outage"
    for slot in range(20, 80):
        replace("H2", slot, value=0)
    expected[("H2", ACTIVE_IMPORT_INTERVAL, at(70))] = "zero_run"
    # H2's register decreases (not near capacity): negative consumption
    records += rows("H2", ACTIVE_IMPORT_TOTAL, [(at(30), 10)])
    expected[("H2", ACTIVE_IMPORT_TOTAL, at(30))] = "negative"
    # registry faults: an unknown meter, one not installed yet, one removed
    records += rows("X9", ACTIVE_IMPORT_INTERVAL, [(at(1), 10)])
    expected[("X9", ACTIVE_IMPORT_INTERVAL, at(1))] = "unknown_meter"
    records += rows("H3", ACTIVE_IMPORT_INTERVAL, [(at(1), 10)])
    expected[("H3", ACTIVE_IMPORT_INTERVAL, at(1))] = "before_install"
    records += rows("H4", ACTIVE_IMPORT_INTERVAL, [(at(1), 10)])
    expected[("H4", ACTIVE_IMPORT_INTERVAL, at(1))] = "retired_meter"
    # from the future (the run's clock is AFTER)
    records += rows("H1", ACTIVE_IMPORT_TOTAL, [(AFTER + dt.timedelta(hours=2), 10**8)])
    expected[("H1", ACTIVE_IMPORT_TOTAL, AFTER + dt.timedelta(hours=2))] = "future"
    return frame(records), expected


@pytest.mark.slow
def test_every_injected_fault_is_flagged_and_nothing_lost(
    data_dir: Path, state: StateStore, tmp_path: Path
) -> None:
    readings, expected = faulty_households()
    # the gap: two intervals of H1 missing, estimated
    gap = [T0 + STEP * 60, T0 + STEP * 61]
    readings = readings.filter(
        ~(
            (pl.col("meter_id") == "H1")
            & pl.col("ts").is_in(gap)
            & (pl.col("quantity") == ACTIVE_IMPORT_INTERVAL)
        )
    )
    path = tmp_path / "households.parquet"
    readings.write_parquet(path)
    report = import_readings(
        data_dir, state, path, settings=settings_for(data_dir), fleet=fleet(tmp_path / "fleet.csv"), now=AFTER
    )
    assert report.readings_in == readings.height and report.balanced
    assert report.duplicates == 1
    store = MeasurementStore(data_dir).table(READINGS).scan().collect()
    assert store.filter(pl.col("state") != "estimated").height == readings.height - 1  # nothing lost
    for (meter, quantity, ts), code in expected.items():
        found = store.filter(
            (pl.col("meter_id") == meter) & (pl.col("quantity") == quantity) & (pl.col("ts") == ts)
        )
        assert found.height >= 1, (meter, ts, code)
        marks = set(found.get_column("reason").drop_nulls().to_list())
        for flags in found.get_column("flags").to_list():
            marks |= set((flags or "").split(","))
        assert code in marks, (meter, quantity, ts, code, marks)
    outage_zeros = store.filter((pl.col("meter_id") == "H2") & pl.col("flags").str.contains("outage"))
    assert not outage_zeros.get_column("flags").str.contains("zero_run").any()
    estimates = store.filter((pl.col("state") == "estimated") & (pl.col("meter_id") == "H1"))
    assert set(gap) <= set(estimates.get_column("ts").to_list())


def test_csv_with_a_bad_value_is_refused_and_nothing_stored(
    data_dir: Path, state: StateStore, tmp_path: Path
) -> None:
    path = tmp_path / "bad.csv"
    path.write_text(
        "meter_id,quantity,ts,value,scale,unit,status,snapshot,source,read_at\n"
        "H1,1.0.1.29.0.255,2026-11-10T01:00:00Z,12,0,Wh,0,false,x,2026-11-10T01:01:00Z\n"
        "H1,1.0.1.29.0.255,2026-11-10T01:15:00Z,twelve,0,Wh,0,false,x,2026-11-10T01:16:00Z\n"
    )
    with pytest.raises(ImportRefused, match=r"column value, line 3: 'twelve'"):
        import_readings(data_dir, state, path, settings=settings_for(data_dir), now=AFTER)
    assert not landed_files(data_dir) and not (data_dir / "store").exists()


@pytest.mark.parametrize(
    ("header", "problem"),
    [
        ("meter_id,quantity,ts,value,scale,unit,status,snapshot,source", "missing column"),
        ("meter_id,quantity,ts,value,scale,unit,status,snapshot,source,read_at,extra", "unknown column"),
    ],
)
def test_csv_with_wrong_columns_is_refused(
    data_dir: Path, state: StateStore, tmp_path: Path, header: str, problem: str
) -> None:
    path = tmp_path / "bad.csv"
    path.write_text(header + "\n")
    with pytest.raises(ImportRefused, match=problem):
        import_readings(data_dir, state, path, settings=settings_for(data_dir), now=AFTER)


def test_csv_without_zone_and_bad_obis_are_refused(data_dir: Path, state: StateStore, tmp_path: Path) -> None:
    head = "meter_id,quantity,ts,value,scale,unit,status,snapshot,source,read_at\n"
    path = tmp_path / "zone.csv"
    path.write_text(head + "H1,1.0.1.29.0.255,yesterday,1,0,Wh,0,false,x,2026-11-10T01:01:00Z\n")
    with pytest.raises(ImportRefused, match="column ts"):
        import_readings(data_dir, state, path, settings=settings_for(data_dir), now=AFTER)
    path.write_text(head + "H1,1.0.1.299,2026-11-10T01:00:00Z,1,0,Wh,0,false,x,2026-11-10T01:01:00Z\n")
    with pytest.raises(ImportRefused, match="column quantity"):
        import_readings(data_dir, state, path, settings=settings_for(data_dir), now=AFTER)


def test_good_csv_is_imported_with_its_fleet(data_dir: Path, state: StateStore, tmp_path: Path) -> None:
    path = tmp_path / "good.csv"
    path.write_text(
        "meter_id,quantity,ts,value,scale,unit,status,snapshot,source,read_at\n"
        "H1,1-0:1.8.0.255,2026-11-10T17:00:10+00:00,1234.5,0,kWh,0,true,x,2026-11-10T17:00:10Z\n".replace(
            "1234.5,0", "12345,-1"
        )
    )
    report = import_readings(
        data_dir, state, path, settings=settings_for(data_dir), fleet=fleet(tmp_path / "fleet.csv"), now=AFTER
    )
    assert (report.readings_in, report.stored) == (1, 1)
    stored = MeasurementStore(data_dir).table(READINGS).scan().collect().row(0, named=True)
    assert stored["quantity"] == "1.0.1.8.0.255" and stored["mwh"] == 1_234_500_000


def half_hourly(meter: str, seed: int) -> pl.DataFrame:
    """A household day as a meter with a 30-minute load profile records it: every other
    15-minute end, each value the energy of its half hour."""
    day = frame(interval_day(meter, DAY, seed=seed))
    intervals = day.filter(pl.col("quantity") == ACTIVE_IMPORT_INTERVAL).sort("ts")
    paired = intervals.with_columns(pl.col("value") + pl.col("value").shift(1)).gather_every(2, offset=1)
    return pl.concat([paired, day.filter(pl.col("quantity") != ACTIVE_IMPORT_INTERVAL)])


def test_a_file_of_another_capture_period_is_refused_with_the_setting_that_fits(
    data_dir: Path, state: StateStore, tmp_path: Path
) -> None:
    path = tmp_path / "half-hourly.parquet"
    half_hourly("H1", 3).write_parquet(path)
    with pytest.raises(ImportRefused, match=r"30 minutes apart \(47 of 47 steps") as refused:
        import_readings(
            data_dir, state, path, settings=settings_for(data_dir), fleet=fleet(tmp_path / "f.csv")
        )
    assert "interval_minutes = 30" in (refused.value.hint or "") and "--gappy" in (refused.value.hint or "")
    assert not landed_files(data_dir) and not (data_dir / "store").exists()
    with state.read() as conn:  # the fleet file was not registered either
        assert conn.exec_driver_sql("SELECT COUNT(*) FROM meters").scalar_one() == 0


def test_thirty_minute_intervals_are_judged_on_their_own_grid(
    data_dir: Path, state: StateStore, tmp_path: Path
) -> None:
    path = tmp_path / "half-hourly.parquet"
    readings = half_hourly("H1", 3)
    readings.write_parquet(path)
    settings = settings_for(data_dir)
    settings.ingest.rules["interval_minutes"] = 30
    report = import_readings(
        data_dir, state, path, settings=settings, fleet=fleet(tmp_path / "f.csv"), now=AFTER
    )
    assert report.balanced and report.stored == readings.height and report.quarantined == 0
    assert report.estimates == 0  # no slot of a 30-minute day is missing
    store = MeasurementStore(data_dir).table(READINGS).scan().collect()
    assert set(store.get_column("state").to_list()) == {"valid"}


def test_gappy_takes_readings_further_apart_as_gaps(
    data_dir: Path, state: StateStore, tmp_path: Path
) -> None:
    path = tmp_path / "half-hourly.parquet"
    readings = half_hourly("H1", 3)
    readings.write_parquet(path)
    report = import_readings(
        data_dir, state, path, settings=settings_for(data_dir), fleet=fleet(tmp_path / "f.csv"), now=AFTER,
        gappy=True,
    )
    assert report.balanced and report.stored == readings.height
    assert report.estimates == 48  # every 15-minute slot between the half hours


def households_csv(path: Path, meters: int, days: int) -> pl.DataFrame:
    days_of = [DAY + dt.timedelta(days=d) for d in range(days)]
    readings = frame([r for m in range(meters) for d in days_of for r in interval_day(f"H{m + 1}", d)])
    readings.with_columns(pl.col("ts", "read_at").dt.strftime("%Y-%m-%dT%H:%M:%SZ")).write_csv(path)
    return readings


def test_a_file_is_read_checked_and_landed_in_chunks_in_its_order(
    data_dir: Path, state: StateStore, tmp_path: Path
) -> None:
    path = tmp_path / "households.csv"
    readings = households_csv(path, meters=2, days=2)
    settings = settings_for(data_dir)
    report = import_readings(
        data_dir, state, path, settings=settings, fleet=fleet(tmp_path / "f.csv"), now=AFTER, rows=50
    )
    chunks = -(-readings.height // 50)
    assert report.batches == chunks and report.readings_in == readings.height and report.balanced
    names = sorted(p.name for p in landed_files(data_dir))
    assert [n.rsplit("-", 1)[1] for n in names] == [f"{i:05d}.parquet" for i in range(chunks)]
    # the same file again: every chunk is recognised by its checksum, nothing is taken twice
    again = import_readings(data_dir, state, path, settings=settings, now=AFTER, rows=50)
    assert again.batches == 0 and again.readings_in == 0


def test_a_bad_row_in_a_later_chunk_refuses_the_whole_file(
    data_dir: Path, state: StateStore, tmp_path: Path
) -> None:
    path = tmp_path / "households.csv"
    households_csv(path, meters=2, days=2)
    lines = path.read_text().splitlines()
    fields = lines[301].split(",")  # line 302 of the file, in its seventh chunk of 50 rows
    fields[READING_COLUMNS.index("value")] = "lots"
    lines[301] = ",".join(fields)
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(ImportRefused, match=r"column value, line 302: 'lots'"):
        import_readings(data_dir, state, path, settings=settings_for(data_dir), now=AFTER, rows=50)
    assert not landed_files(data_dir) and not (data_dir / "store").exists()


def csv_rows(values: list[tuple[str, str]]) -> pl.DataFrame:
    """Rows of a readings CSV as text, with the given (value, scale)."""
    base = {
        "meter_id": "H1", "quantity": ACTIVE_IMPORT_INTERVAL, "ts": "2026-11-10T01:00:00Z", "unit": "kWh",
        "status": "0", "snapshot": "false", "source": "x", "read_at": "2026-11-10T01:01:00Z",
    }
    return pl.DataFrame([{**base, "value": v, "scale": s} for v, s in values]).select(READING_COLUMNS)


@settings(max_examples=200, deadline=None)
@given(
    number=st.decimals(min_value=-(10**9), max_value=10**9, places=6, allow_nan=False, allow_infinity=False),
    scale=st.integers(min_value=-6, max_value=6),
)
def test_a_decimal_value_is_kept_exact(number: Decimal, scale: int) -> None:
    text = format(number, "f")
    parsed = parse_csv_chunk(csv_rows([(text, str(scale))]), Path("r.csv"), first_line=2).row(0, named=True)
    assert Decimal(parsed["value"]).scaleb(parsed["scale"]) == number.scaleb(scale)
    assert "." in text or parsed["scale"] == scale  # whole numbers keep their scale


@pytest.mark.parametrize("text", ["1.2.3", "12.5e3", "0,5", "."])
def test_a_value_that_is_no_number_names_its_line(text: str) -> None:
    with pytest.raises(ImportRefused, match=rf"column value, line 3: '{re.escape(text)}'") as refused:
        parse_csv_chunk(csv_rows([("1", "0"), (text, "0")]), Path("r.csv"), first_line=2)
    assert "decimals written with a point" in (refused.value.hint or "")


def test_a_csv_of_decimal_kwh_is_imported_exactly(data_dir: Path, state: StateStore, tmp_path: Path) -> None:
    path = tmp_path / "decimal.csv"
    path.write_text(
        "meter_id,quantity,ts,value,scale,unit,status,snapshot,source,read_at\n"
        "H1,1-0:1.8.0.255,2026-11-10T17:00:10+00:00,1234.567,0,kWh,0,true,x,2026-11-10T17:00:10Z\n"
    )
    report = import_readings(
        data_dir, state, path, settings=settings_for(data_dir), fleet=fleet(tmp_path / "fleet.csv"), now=AFTER
    )
    assert (report.readings_in, report.stored) == (1, 1)
    stored = MeasurementStore(data_dir).table(READINGS).scan().collect().row(0, named=True)
    assert (stored["value"], stored["scale"], stored["mwh"]) == (1234567, -3, 1_234_567_000)


def test_the_fleet_files_physical_limits_reach_the_rules(
    data_dir: Path, state: StateStore, tmp_path: Path
) -> None:
    """A 10 A service carries at most 575 Wh in 15 minutes: 1,000 Wh is above it (and far
    below the 100 A default's 5,750 Wh)."""
    fleet_file = tmp_path / "fleet.csv"
    fleet_file.write_text(
        "meter_id,url,installed_on,rated_current_a,voltage_v,phases,register_capacity_wh\n"
        "H1,dlms+tcp://10.0.0.1:4059,2026-01-01,10,230,1,99999999\n"
    )
    readings = frame(rows("H1", ACTIVE_IMPORT_INTERVAL, [(T0 + STEP, 100), (T0 + STEP * 2, 1000)]))
    path = tmp_path / "r.parquet"
    readings.write_parquet(path)
    settings = settings_for(data_dir)
    report = import_readings(data_dir, state, path, settings=settings, fleet=fleet_file, now=AFTER)
    assert report.quarantined_by_reason == {"spike_rated": 1}


@pytest.mark.parametrize("text", ["2026-11-10T17:00:00", "2026-11-10 17:00", "2026-11-10T17:00:00.5"])
def test_a_time_without_a_zone_is_refused_not_taken_as_utc(text: str) -> None:
    chunk = csv_rows([("1", "0"), ("2", "0")]).with_columns(
        ts=pl.Series(["2026-11-10T17:00:00Z", text])
    )
    with pytest.raises(ImportRefused, match=rf"column ts, line 3: '{re.escape(text)}' has no time zone"):
        parse_csv_chunk(chunk, Path("r.csv"), first_line=2)


@pytest.mark.parametrize(
    "text", ["2026-11-11T00:00:00+07:00", "2026-11-11 00:00:00+0700", "2026-11-10T17:00:00z"]
)
def test_a_zone_or_offset_is_taken(text: str) -> None:
    chunk = csv_rows([("1", "0")]).with_columns(ts=pl.Series([text]))
    parsed = parse_csv_chunk(chunk, Path("r.csv"), first_line=2)
    assert parsed.item(0, "ts") == dt.datetime(2026, 11, 10, 17, tzinfo=dt.UTC)


def test_chunks_a_killed_import_left_are_swept_by_the_next(
    data_dir: Path, state: StateStore, tmp_path: Path
) -> None:
    folder = data_dir / "landing" / "arrived=2026-11-01"
    folder.mkdir(parents=True)
    abandoned, running = folder / ".tmp-import-old-00000.parquet", folder / ".tmp-import-now-00000.parquet"
    for temporary in (abandoned, running):
        temporary.write_bytes(b"a chunk")
    two_days_ago = time.time() - 2 * 86400
    os.utime(abandoned, (two_days_ago, two_days_ago))
    path = tmp_path / "r.parquet"
    frame(rows("H1", ACTIVE_IMPORT_INTERVAL, [(T0 + STEP, 100)])).write_parquet(path)
    import_readings(data_dir, state, path, settings=settings_for(data_dir), fleet=fleet(tmp_path / "f.csv"))
    assert not abandoned.exists() and running.exists()  # an import running now keeps its chunks
