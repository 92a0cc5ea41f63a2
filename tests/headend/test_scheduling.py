"""Scheduling policy and plumbing: coalesced misfires, priority slots, the metrics endpoint."""

from __future__ import annotations

import asyncio
import datetime as dt
import threading
from pathlib import Path

import httpx
from apscheduler.jobstores.memory import MemoryJobStore
from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.triggers.interval import IntervalTrigger

from core.state import StateStore
from headend import metrics
from headend.daemon import _job_defaults
from headend.limits import ON_DEMAND, SCHEDULED, PriorityLimiter

runs: list[dt.datetime] = []
ran = threading.Event()


def _count() -> None:
    runs.append(dt.datetime.now(dt.UTC))
    ran.set()


def test_missed_runs_coalesce_into_one_late_run() -> None:
    scheduler = BackgroundScheduler(jobstores={"default": MemoryJobStore()}, job_defaults=_job_defaults())
    now = dt.datetime.now(dt.UTC)
    scheduler.add_job(_count, IntervalTrigger(hours=1, start_date=now - dt.timedelta(hours=5, minutes=1)),
                      id="late", next_run_time=now - dt.timedelta(hours=5))
    scheduler.start()
    try:
        assert ran.wait(10), "a job five runs late was dropped"
        job = scheduler.get_job("late")
        assert job is not None and job.next_run_time > now
    finally:
        scheduler.shutdown(wait=True)
    assert len(runs) == 1  # five missed runs, one late run: coalesced, not dropped, not repeated


def test_on_demand_waiters_go_first() -> None:
    async def main() -> list[str]:
        limiter = PriorityLimiter(1)
        order: list[str] = []
        await limiter.acquire()

        async def waiter(name: str, priority: int) -> None:
            async with limiter.slot(priority):
                order.append(name)

        tasks = [asyncio.create_task(waiter(f"scheduled-{i}", SCHEDULED)) for i in range(3)]
        await asyncio.sleep(0)
        tasks.append(asyncio.create_task(waiter("on-demand", ON_DEMAND)))
        await asyncio.sleep(0)
        limiter.release()
        await asyncio.wait_for(asyncio.gather(*tasks), timeout=5)
        assert limiter.peak == 1 and limiter.in_use == 0
        return order

    assert asyncio.run(main()) == ["on-demand", "scheduled-0", "scheduled-1", "scheduled-2"]


def test_cancelled_waiter_does_not_leak_a_slot() -> None:
    async def main() -> int:
        limiter = PriorityLimiter(1)
        await limiter.acquire()
        waiting = asyncio.create_task(limiter.acquire())
        await asyncio.sleep(0)
        waiting.cancel()
        limiter.release()
        await asyncio.gather(waiting, return_exceptions=True)
        await asyncio.wait_for(limiter.acquire(), timeout=5)
        return limiter.in_use

    assert asyncio.run(main()) == 1


def test_metrics_endpoint_serves_prometheus_text(data_dir: Path) -> None:
    state = StateStore.open(data_dir)

    async def main() -> httpx.Response:
        server = await metrics.serve(
            "127.0.0.1", 0, lambda: metrics.render(state, now=dt.datetime.now(dt.UTC))
        )
        port = server.sockets[0].getsockname()[1]
        try:
            async with httpx.AsyncClient(timeout=5) as client:
                return await client.get(f"http://127.0.0.1:{port}/metrics")
        finally:
            server.close()
            await server.wait_closed()

    response = asyncio.run(asyncio.wait_for(main(), timeout=10))
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain; version=0.0.4")
    assert "# TYPE amr_headend_meters gauge\namr_headend_meters 0\n" in response.text
