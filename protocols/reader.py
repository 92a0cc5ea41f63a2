"""One call to read a meter once, whatever its protocol: what `amr read` and tests use.

The scheme of the meter URL picks the protocol; each protocol module is imported only
when a meter needs it, so a Modbus-only installation never loads the DLMS stack.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Sequence
from typing import Any

from core.clock import Clock
from core.meter_url import MeterUrl
from core.reading import Reading
from protocols.errors import LocalProtocolError


async def read_meter(
    url: MeterUrl,
    meter_id: str,
    *,
    quantities: Sequence[str] | None = None,
    profile: str | None = None,
    start: dt.datetime | None = None,
    end: dt.datetime | None = None,
    clock_only: bool = False,
    secrets: Callable[[str], bytes] | None = None,
    clock: Clock | None = None,
    timeout: float = 10.0,
    source: str = "",
    counters: Any = None,
) -> list[Reading]:
    """Read a meter once; `counters` is a DLMS invocation-counter store (durable for ciphered meters)."""
    if url.protocol == "modbus":
        if profile or clock_only:
            raise LocalProtocolError(
                f"meter {meter_id}: a Modbus meter has no clock and no load profile",
                hint="read its registers with --quantity, or poll it regularly to build a history",
            )
        from protocols.modbus.client import read_modbus_meter

        return await read_modbus_meter(
            url, meter_id, quantities=quantities, clock=clock, timeout=timeout, source=source
        )
    from protocols.dlms.reader import read_dlms_meter

    return await read_dlms_meter(
        url, meter_id, quantities=quantities, profile=profile, start=start, end=end,
        clock_only=clock_only, secrets=secrets, timeout=timeout, source=source, counters=counters,
        clock=clock,
    )
