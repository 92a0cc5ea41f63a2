"""One call that reads a DLMS meter and returns canonical readings (used by `amr read`).

The clock comes back as one reading of quantity 0.0.1.0.0.255 whose value is the meter's
offset from the head-end in milliseconds (scale -3, unit s): positive means the meter is
ahead. Profiles are named by OBIS code or by alias: load, daily, billing, events.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Sequence

from core.clock import Clock
from core.meter_url import MeterUrl
from core.obis import ACTIVE_EXPORT_TOTAL, ACTIVE_IMPORT_RATE, ACTIVE_IMPORT_TOTAL, CLOCK
from core.reading import STATUS_CLOCK_INVALID, Reading
from protocols.dlms.counters import InvocationCounterStore
from protocols.dlms.errors import DlmsLocalError
from protocols.dlms.session import DlmsSession, MeterClock, open_session
from protocols.dlms.settings import DlmsMeterSettings

DEFAULT_QUANTITIES = (ACTIVE_IMPORT_TOTAL, *ACTIVE_IMPORT_RATE.values(), ACTIVE_EXPORT_TOTAL)
PROFILE_ALIASES = ("load", "daily", "billing", "events")


def clock_reading(meter_id: str, clock: MeterClock, source: str) -> Reading:
    offset_ms = round((clock.meter_time - clock.read_at).total_seconds() * 1000)
    return Reading(
        meter_id=meter_id,
        quantity=CLOCK,
        ts=clock.read_at,
        value=offset_ms,
        scale=-3,
        unit="s",
        status=STATUS_CLOCK_INVALID if not clock.valid else 0,
        snapshot=True,
        source=source,
        read_at=clock.read_at,
    )


def resolve_profile(profile: str, settings: DlmsMeterSettings) -> str:
    aliases = {
        "load": settings.load_profile,
        "daily": settings.daily_profile,
        "billing": settings.billing_profile,
        "events": settings.event_log,
    }
    return aliases.get(profile, profile)


async def _read(
    session: DlmsSession,
    meter_id: str,
    quantities: Sequence[str] | None,
    profile: str | None,
    start: dt.datetime | None,
    end: dt.datetime | None,
    clock_only: bool,
    source: str,
    now: dt.datetime,
) -> list[Reading]:
    clock = await session.read_clock()
    readings = [clock_reading(meter_id, clock, source)]
    if clock_only:
        return readings
    if profile is not None:
        code = resolve_profile(profile, session.settings)
        until = end or now
        since = start or until - dt.timedelta(days=1)
        if since.tzinfo is None or until.tzinfo is None:
            raise DlmsLocalError("--from and --to need a time zone (e.g. 2026-03-01T00:00:00+07:00)")
        if since > until:
            raise DlmsLocalError(
                f"profile range starts {since.isoformat()} after it ends {until.isoformat()}"
            )
        if code == session.settings.event_log:
            return readings + await session.read_events(since, until)
        return readings + list(await session.read_profile(code, since, until))
    return readings + await session.read_registers(list(quantities or DEFAULT_QUANTITIES))


async def read_dlms_meter(
    url: MeterUrl,
    meter_id: str,
    *,
    quantities: Sequence[str] | None = None,
    profile: str | None = None,
    start: dt.datetime | None = None,
    end: dt.datetime | None = None,
    clock_only: bool = False,
    secrets: Callable[[str], bytes] | None = None,
    timeout: float = 10.0,
    source: str = "",
    counters: InvocationCounterStore | None = None,
    settings: DlmsMeterSettings | None = None,
    clock: Clock | None = None,
) -> list[Reading]:
    """Associate, read the clock and then registers (default) or a profile, release."""
    now = clock.now() if clock is not None else dt.datetime.now(dt.UTC)
    async with open_session(
        url,
        secrets=secrets,
        counters=counters,
        timeout=timeout,
        settings=settings,
        meter_id=meter_id,
        source=source,
        clock=clock,
    ) as session:
        return await _read(session, meter_id, quantities, profile, start, end, clock_only, source, now)


async def recover_invocation_counter(
    url: MeterUrl,
    key_id: str,
    counters: InvocationCounterStore,
    *,
    timeout: float = 10.0,
    settings: DlmsMeterSettings | None = None,
) -> int:
    """Read the meter's frame counter through the public client (16, no authentication) and
    move our counters for `key_id` past it; returns the counter read."""
    public = MeterUrl(
        scheme=url.scheme,
        host=url.host,
        port=url.port,
        device=url.device,
        params={k: v for k, v in url.params.items() if k not in ("auth", "key", "client")} | {"client": "16"},
    )
    async with open_session(public, timeout=timeout, settings=settings) as session:
        seen = await session.read_frame_counter()
    counters.advance_past(key_id, seen)
    return seen
