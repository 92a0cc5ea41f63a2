"""Consumption by interval, served on loopback from published `intervals` files: sums across
a customer's meters (in two buckets), bands, local interval ends, the 7-day bound, who may
read it, and following a new publication."""

from __future__ import annotations

import datetime as dt
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import polars as pl
import pytest
from portal_world import ALICE, BOB, BUCKETS, NOBODY, World, make_settings

from core.buckets import bucket_of
from core.measurements import MeasurementStore, partition
from core.state import StateStore
from core.tables import INTERVALS, INTERVALS_SCHEMA, conform_table
from core.timezones import LOCAL_TZ, local_midnight_utc
from portal_api.app import create_app
from portal_api.clients import NewClient
from portal_api.consumption import DateRange
from portal_api.intervals import assemble_intervals, read_intervals
from portal_api.serve import running

STEP = dt.timedelta(minutes=30)
DAYS = [dt.date(2026, 10, 1), dt.date(2026, 10, 2), dt.date(2026, 10, 3)]
BASE = {"M-A1": 100, "M-A2": 40, "M-B1": 7000}  # Wh per interval, varied by slot below


def band(slot: int) -> str:
    """A made-up calendar: night off-peak, evening peak (the portal serves the published band)."""
    hour = slot * 30 // 60
    return "offpeak" if hour < 4 else "peak" if 17 <= hour < 20 else "normal"


def energy(meter: str, day: dt.date, slot: int, version: int = 1) -> int:
    return BASE[meter] * version + slot + day.day


def interval_rows(meters: list[str], day: dt.date, version: int = 1) -> list[dict[str, object]]:
    start = local_midnight_utc(day)
    return [
        {"meter_id": m, "ts": start + STEP * (k + 1), "energy_wh": energy(m, day, k, version),
         "estimated": m == "M-A2" and k == 3, "period_minutes": 30, "tou": band(k)}
        for m in meters for k in range(48)
    ]


def publish_intervals(data_dir: Path, rows: list[dict[str, object]]) -> None:
    """As ingest does: one file per local day and bucket, sorted by meter and end."""
    frame = conform_table(pl.DataFrame(rows), INTERVALS_SCHEMA, origin="test")
    parts: dict[tuple[tuple[str, str], ...], pl.DataFrame] = {}
    for (meter,), group in frame.group_by("meter_id"):
        day = (group["ts"][0] - dt.timedelta(microseconds=1)).astimezone(LOCAL_TZ).date()
        key = partition(date=day, bucket=bucket_of(str(meter), BUCKETS))
        parts[key] = pl.concat([parts[key], group]) if key in parts else group
    MeasurementStore(data_dir).table(INTERVALS).write_partitions(
        {k: v.sort("meter_id", "ts") for k, v in parts.items()}
    )


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory,
          seeded_template: tuple[Path, NewClient]) -> Iterator[World]:
    template, client = seeded_template
    data_dir = tmp_path_factory.mktemp("intervals") / "data"
    shutil.copytree(template, data_dir)
    for day in DAYS:
        publish_intervals(data_dir, interval_rows(["M-A1", "M-A2", "M-B1"], day))
    settings = make_settings(data_dir)
    state = StateStore.open(data_dir)
    app = create_app(settings, follow_snapshots=False)
    app.state.serving.refresh()
    with running(app) as served:
        world = World(settings, state, client, served.url, served)
        yield world
        world.http.close()
    state.dispose()


def ask(world: World, code: str, token: str | None, start: str, end: str) -> dict[str, Any]:
    reply = world.get(f"/v1/customers/{code}/consumption", token, granularity="interval", **{"from": start},
                      to=end)
    assert reply.status_code == 200, reply.text
    body: dict[str, Any] = reply.json()
    return body


def test_a_customers_meters_are_summed_per_interval_end(world: World) -> None:
    body = ask(world, ALICE, world.customer_token(ALICE), "2026-10-01", "2026-10-02")
    points = body["points"]
    assert isinstance(points, list) and len(points) == 2 * 48
    assert body["granularity"] == "interval" and sorted(body["meters"]) == ["M-A1", "M-A2"]
    assert points[0]["ts"] == "2026-10-01T00:30:00+07:00"
    assert points[-1]["ts"] == "2026-10-03T00:00:00+07:00"  # the interval closing the 2nd
    for i, point in enumerate(points):
        day, slot = DAYS[i // 48], i % 48
        assert point["energy_wh"] == energy("M-A1", day, slot) + energy("M-A2", day, slot)
        assert point["meters"] == 2 and point["period_minutes"] == 30
        assert point["band"] == band(slot)
        assert point["tou"][f"{band(slot)}_wh"] == point["energy_wh"]
        assert sum(point["tou"].values()) == point["energy_wh"]
        assert point["estimated_wh"] == (energy("M-A2", day, slot) if slot == 3 else 0)
    total = body["total"]
    assert isinstance(total, dict)
    assert total["energy_wh"] == sum(p["energy_wh"] for p in points)
    assert sum(total["tou"].values()) == total["energy_wh"]
    assert total["tou"]["peak_wh"] == sum(p["energy_wh"] for p in points if p["band"] == "peak")


def test_only_the_asked_days_are_read(world: World) -> None:
    token = world.integrator_token()  # the city portal may read any customer, as by day
    one = ask(world, BOB, token, "2026-10-03", "2026-10-03")["points"]
    assert isinstance(one, list) and len(one) == 48
    assert all(p["ts"].startswith("2026-10-03") or p["ts"] == "2026-10-04T00:00:00+07:00" for p in one)
    assert ask(world, BOB, token, "2026-10-10", "2026-10-16")["points"] == []  # nothing published


def test_a_customer_cannot_read_another_customers_intervals(world: World) -> None:
    alice = world.customer_token(ALICE)
    params = {"from": "2026-10-01", "to": "2026-10-01", "granularity": "interval"}
    reply = world.get(f"/v1/customers/{BOB}/consumption", alice, **params)
    assert reply.status_code == 403 and reply.json()["error"] == "forbidden"
    assert "M-B1" not in reply.text and "energy" not in reply.text
    # bad range too: authorisation is decided first, so nothing about Bob's data shows
    assert world.get(f"/v1/customers/{BOB}/consumption", alice,
                     **{**params, "to": "2026-12-31"}).status_code == 403
    assert world.get(f"/v1/customers/{ALICE}/consumption", None, **params).status_code == 401
    nobody = world.get(f"/v1/customers/{NOBODY}/consumption", world.integrator_token(), **params)
    assert nobody.status_code == 404


@pytest.mark.parametrize(("start", "end", "words"), [
    ("2026-10-01", "2026-10-08", "at most 7"),
    ("2026-10-03", "2026-10-01", "before it starts"),
    ("2026-10-01", "2026-1-02", "not a date"),
])
def test_bad_ranges_get_a_clear_422(world: World, start: str, end: str, words: str) -> None:
    reply = world.get(f"/v1/customers/{ALICE}/consumption", world.customer_token(ALICE),
                      granularity="interval", **{"from": start}, to=end)
    assert reply.status_code == 422
    body = reply.json()
    assert body["error"] == "invalid_request" and words in body["message"] and body["hint"]


def test_a_new_publication_is_served_after_a_refresh(tmp_path: Path, world: World) -> None:
    data_dir = world.settings.data_dir
    publish_intervals(data_dir, interval_rows(["M-B1"], DAYS[0], version=2))
    before = ask(world, BOB, world.customer_token(BOB), "2026-10-01", "2026-10-01")["points"]
    assert isinstance(before, list) and before[0]["energy_wh"] == energy("M-B1", DAYS[0], 0)
    world.running.app.state.serving.refresh()
    after = ask(world, BOB, world.customer_token(BOB), "2026-10-01", "2026-10-01")["points"]
    assert isinstance(after, list) and after[0]["energy_wh"] == energy("M-B1", DAYS[0], 0, version=2)


def test_meters_disagreeing_on_the_band_leave_it_null(tmp_path: Path) -> None:
    end = local_midnight_utc(DAYS[0]) + STEP
    rows = [{"meter_id": m, "ts": end, "energy_wh": 5, "estimated": False, "period_minutes": p, "tou": t}
            for m, p, t in (("A", 30, "offpeak"), ("B", 15, "normal"))]
    frame = conform_table(pl.DataFrame(rows), INTERVALS_SCHEMA, origin="test")
    frame.write_parquet(tmp_path / "f.parquet")
    summed = read_intervals({0: [tmp_path / "f.parquet"]}, {0: ["A", "B"]})
    body = assemble_intervals(summed, DateRange(DAYS[0], DAYS[0]))
    assert body["points"][0]["energy_wh"] == 10 and body["points"][0]["band"] is None
    assert body["points"][0]["tou"] is None and body["total"]["tou"] is None
    only_a = read_intervals({0: [tmp_path / "f.parquet"]}, {0: ["A"]})
    assert assemble_intervals(only_a, DateRange(DAYS[0], DAYS[0]))["total"]["energy_wh"] == 5
