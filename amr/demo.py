"""The whole pipeline on simulated meters: what `amr demo` runs.

A fleet of Modbus TCP meters is simulated on loopback on a virtual clock; the head-end
polls every meter at each local midnight of the billing month (a month passes in
seconds), ingest validates and aggregates, the bill run rates the month with the tariff
in force, and the bills are published to a local stand-in of the city portal's intake.
Everything follows from the seed and the period, so a second run gives the same bills.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from pydantic import SecretStr

from billing.customers import import_customers
from billing.documents import write_documents
from billing.issue import issue_bills
from billing.run import run_bills
from billing.seller import init_test_seller
from core.clock import VirtualClock
from core.config import Settings
from core.executor import Executor, open_executor
from core.state import StateStore
from core.timezones import local_midnight_utc
from headend.registry import import_fleet, list_meters
from headend.shards import poll_by_shard
from ingest.run import run_ingest
from portal_api.publisher import publish_pending
from portal_api.serving import ServingSnapshot
from portal_api.standin import run_intake_standin
from protocols.modbus.simulator import ModbusFleetSimulator

DEMO_CLIENT_ID = "demo-utility"
DEMO_CLIENT_SECRET = "demo-secret-not-for-production"  # noqa: S105 (the stand-in's own test credential)


@dataclass
class DemoSummary:
    period: str
    meters: int = 0
    polls_ok: int = 0
    polls_failed: int = 0
    readings_landed: int = 0
    readings_in: int = 0
    stored: int = 0
    duplicates: int = 0
    quarantined: int = 0
    estimates: int = 0
    bills: int = 0
    issued: int = 0
    documents: int = 0
    first_customer: str = ""
    documents_dir: Path = Path()
    held: int = 0
    total_vnd: int = 0
    published: int = 0
    delivered: int = 0  # acknowledged by the portal, this run or before
    portal_kept: int = 0
    data_dir: Path = Path()
    fleet_file: Path = Path()
    seconds: dict[str, float] = field(default_factory=dict)


def previous_month(today: dt.date) -> str:
    first = today.replace(day=1) - dt.timedelta(days=1)
    return f"{first.year:04d}-{first.month:02d}"


def _month_bounds(period: str) -> tuple[dt.date, dt.date]:
    year, month = (int(p) for p in period.split("-"))
    first = dt.date(year, month, 1)
    following = dt.date(year + (month == 12), month % 12 + 1, 1)
    return first, following


async def _poll_month(
    settings: Settings, state: StateStore, executor: Executor, period: str, meters: int, seed: int,
    summary: DemoSummary, progress: Callable[[str], None],
) -> None:
    first, following = _month_bounds(period)
    # Start at the previous month's reading day (its end) so the first day has an opening read.
    clock = VirtualClock(local_midnight_utc(first))
    async with ModbusFleetSimulator(
        meters=meters, map_name="eastron-sdm630", seed=seed, clock=clock
    ) as fleet:
        fleet_file = settings.data_dir / "demo-fleet.csv"
        fleet.write_fleet_file(fleet_file)
        summary.fleet_file = fleet_file.resolve()
        import_fleet(state, fleet_file, buckets=settings.buckets, mode="all-or-nothing")
        import_customers(state, fleet_file, mode="all-or-nothing")
        registry = list_meters(state)
        summary.meters = len(registry)
        summary.first_customer = min(m.customer_code or "" for m in registry)
        day = first
        while day <= following:
            clock.set(local_midnight_utc(day))
            # A round per shard (bucket), dealt into one task per executor slot, as the daemon's
            # rounds run; in a thread, so this loop keeps serving the simulated meters meanwhile.
            reports = await asyncio.to_thread(
                poll_by_shard, state, settings.data_dir, registry,
                settings=settings.headend, executor=executor, clock=clock, kind="daily",
            )
            summary.polls_ok += sum(report.ok for report in reports)
            summary.polls_failed += sum(report.failed for report in reports)
            summary.readings_landed += sum(report.readings for report in reports)
            progress(f"polled {len(registry)} meters at {day} 00:00 (UTC+7)")
            day += dt.timedelta(days=1)


def run_demo(
    settings: Settings, *, period: str, meters: int = 50, seed: int = 1,
    progress: Callable[[str], None] = lambda _: None,
) -> DemoSummary:
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    state = StateStore.open(settings.data_dir)
    summary = DemoSummary(period=period, data_dir=settings.data_dir.resolve())

    # The one executor setting (AMR_CLUSTER): this process by default, or a Dask cluster.
    with open_executor() as executor:
        _run_pipeline(settings, state, executor, summary, period, meters, seed, progress)
    return summary


def _run_pipeline(
    settings: Settings, state: StateStore, executor: Executor, summary: DemoSummary,
    period: str, meters: int, seed: int, progress: Callable[[str], None],
) -> None:
    started = time.perf_counter()
    asyncio.run(_poll_month(settings, state, executor, period, meters, seed, summary, progress))
    summary.seconds["poll"] = time.perf_counter() - started

    ingest = run_ingest(settings.data_dir, state, settings=settings, executor=executor)
    summary.readings_in = ingest.readings_in
    summary.stored = ingest.stored
    summary.duplicates = ingest.duplicates
    summary.quarantined = ingest.quarantined
    summary.estimates = ingest.estimates
    progress(f"ingested {ingest.readings_in} readings")
    summary.seconds["ingest"] = time.perf_counter() - started - summary.seconds["poll"]

    bills = run_bills(settings.data_dir, state, period=period, settings=settings, executor=executor)
    summary.bills = bills.bills
    summary.held = bills.held
    summary.total_vnd = bills.total_vnd
    progress(f"rated {bills.bills} bills")
    # Invoices are dated the day after the reading day (the rules allow up to the 7th).
    issued = issue_bills(
        settings.data_dir, state, period=period, settings=settings, invoice_date=_month_bounds(period)[1]
    )
    summary.issued = issued.issued + issued.already_issued
    if not (settings.data_dir / "seller.toml").exists():
        init_test_seller(settings.data_dir)  # a self-signed test seller, so e-invoices are signed
    documents = write_documents(settings.data_dir, state, period=period, pdf=True)
    summary.documents = documents.documents
    summary.documents_dir = (documents.directory or settings.data_dir / "documents").resolve()
    # build the portal's serving files now, so `amr portal serve` answers at once
    ServingSnapshot(settings.data_dir).refresh()
    summary.seconds["bill"] = time.perf_counter() - started - sum(summary.seconds.values())

    with run_intake_standin(client_id=DEMO_CLIENT_ID, client_secret=DEMO_CLIENT_SECRET) as intake:
        portal = settings.portal.model_copy(
            update={
                "intake_url": intake.url,
                "token_url": intake.token_url,
                "client_id": DEMO_CLIENT_ID,
                "client_secret": SecretStr(DEMO_CLIENT_SECRET),
            }
        )
        published = publish_pending(
            state, settings.data_dir, settings=settings.model_copy(update={"portal": portal}), period=period
        )
        summary.published = published.acknowledged
        summary.delivered = published.outbox.get("acknowledged", 0)
        summary.portal_kept = len(intake.received)
    progress(f"published {summary.published} bills")
    summary.seconds["publish"] = time.perf_counter() - started - sum(summary.seconds.values())
