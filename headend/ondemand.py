"""On-demand reads (`amr headend poll`): pick meters, poll them ahead of scheduled work."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Sequence
from pathlib import Path

from core.clock import Clock, SystemClock
from core.config import HeadendSettings
from core.state import StateStore
from core.timezones import local_date
from headend.errors import HeadendError
from headend.limits import ON_DEMAND
from headend.loop import run as run_loop
from headend.poll import PollOptions, RoundReport, poll_meters
from headend.registry import Meter, get_meter, list_meters


def select_meters(
    state: StateStore, *, meter_ids: Sequence[str] = (), route: str | None = None, all_meters: bool = False,
    today: dt.date,
) -> list[Meter]:
    chosen = sum([bool(meter_ids), route is not None, all_meters])
    if chosen != 1:
        raise HeadendError(
            "choose exactly one of --meter, --route or --all",
            hint="for example: amr headend poll --route R01",
        )
    if meter_ids:
        return [get_meter(state, m) for m in meter_ids]
    meters = list_meters(state, route=route, active_on=today)
    if not meters:
        where = f"on route {route}" if route is not None else "in the registry"
        raise HeadendError(f"no active meters {where}", hint="`amr meters list` shows the registered meters")
    return meters


def poll_now(
    state: StateStore,
    data_dir: Path,
    *,
    settings: HeadendSettings,
    meter_ids: Sequence[str] = (),
    route: str | None = None,
    all_meters: bool = False,
    since: dt.datetime | None = None,
    progress: Callable[[int, int], None] | None = None,
    clock: Clock | None = None,
) -> RoundReport:
    """Poll the chosen meters now, at on-demand priority, and land what they hold."""
    clock = clock or SystemClock()
    if since is not None and since.tzinfo is None:
        raise HeadendError(
            f"--since {since.isoformat()} has no time zone", hint="write it like 2026-03-01T00:00Z"
        )
    meters = select_meters(
        state, meter_ids=meter_ids, route=route, all_meters=all_meters, today=local_date(clock.now())
    )
    return run_loop(poll_meters(
        state, data_dir, meters, settings=settings, clock=clock, since=since, progress=progress,
        options=PollOptions.from_settings(settings, kind="on-demand"), priority=ON_DEMAND,
    ), settings.event_loop)
