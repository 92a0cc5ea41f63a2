"""Read one Modbus meter: its map's registers in as few requests as allowed, as exact Readings.

A Modbus meter has no clock and no history: every value is a snapshot at the moment of the
read, so `ts` is the read time on the given clock and every Reading is marked `snapshot`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

from core.clock import Clock, SystemClock
from core.meter_url import MeterUrl, redact
from core.reading import Reading
from protocols.modbus.errors import LineSettingsError, MapError, ModbusBadValue
from protocols.modbus.maps import RegisterEntry, RegisterMap, load_map
from protocols.modbus.plan import ReadBlock, plan_reads, plan_single
from protocols.modbus.snapshots import snapshot_readings
from protocols.modbus.transport import SCHEMES, open_session
from protocols.modbus.values import BadEntry, BlockDecoder

Packing = Literal["blocks", "single"]


class PartialRead(ModbusBadValue):
    """Some values were bad: `readings` holds the good ones, `bad` says what was wrong with the rest."""

    def __init__(self, message: str, *, readings: list[Reading], bad: list[BadEntry]) -> None:
        super().__init__(message, hint="the meter reported a value it cannot have; check it on site "
                                       "or widen the map's range if the manual allows it")
        self.readings = readings
        self.bad = bad


def map_for(url: MeterUrl) -> RegisterMap:
    if url.scheme not in SCHEMES:
        raise MapError(f"{redact(str(url))} is not a Modbus meter URL",
                       hint="use one of " + ", ".join(SCHEMES))
    return load_map(url.params["map"])


_plans: dict[tuple[int, tuple[str, ...] | None, str], tuple[RegisterMap, list[BlockDecoder]]] = {}


def decoders_for(
    register_map: RegisterMap, quantities: Sequence[str] | None, packing: Packing
) -> list[BlockDecoder]:
    """The requests for `quantities` with their decoders, made once per map and selection
    (polls repeat them; a map file changed on disk loads as a new map and is planned again)."""
    key = (id(register_map), None if quantities is None else tuple(quantities), packing)
    cached = _plans.get(key)
    if cached is not None and cached[0] is register_map:
        return cached[1]
    entries = register_map.select(quantities)
    if packing == "single":
        blocks = plan_single(entries)
    else:
        blocks = plan_reads(entries, max_registers=register_map.max_registers, max_gap=register_map.max_gap)
    decoders = [BlockDecoder(block) for block in blocks]
    _plans[key] = (register_map, decoders)
    return decoders


def plan_for(
    register_map: RegisterMap, quantities: Sequence[str] | None, packing: Packing
) -> list[ReadBlock]:
    """The requests for `quantities`, planned once per map and selection."""
    return [decoder.block for decoder in decoders_for(register_map, quantities, packing)]


def url_timeout(url: MeterUrl, default: float) -> float:
    """A meter's own `timeout=` (seconds, for a slow gateway or line) wins over the caller's default."""
    text = url.params.get("timeout")
    if text is None:
        return default
    try:
        seconds = float(text)
    except ValueError:
        seconds = -1.0
    if not 0.0 < seconds <= 120.0:
        raise LineSettingsError(
            f"{redact(str(url))}: timeout {text!r} is not a number of seconds in (0, 120]",
            hint="write timeout=2.5 for two and a half seconds")
    return seconds


async def read_modbus_meter(
    url: MeterUrl,
    meter_id: str,
    *,
    quantities: Sequence[str] | None = None,
    clock: Clock | None = None,
    timeout: float = 5.0,
    source: str = "",
    packing: Packing = "blocks",
) -> list[Reading]:
    """Read `quantities` (all of the map's when None) from the meter at `url`.

    Raises a `protocols.modbus.errors` error: `MapMismatch` when the meter refuses the map's
    addresses, `ModbusTimeout` / `ModbusCrcError` / `ModbusConnectionLost` (retryable), and
    `PartialRead` (a `BadValue`, carrying the good readings) when a value is NaN, infinite or
    outside its declared range. `packing="single"` reads one value per request (a baseline).
    """
    register_map = map_for(url)
    decoders = decoders_for(register_map, quantities, packing)
    clock = clock or SystemClock()
    timeout = url_timeout(url, timeout)
    good: list[tuple[RegisterEntry, int]] = []
    bad: list[BadEntry] = []
    async with open_session(url, timeout=timeout) as session:
        ts = clock.now()
        for decoder in decoders:
            data = await session.read(decoder.block, map_name=register_map.name)
            block_good, block_bad = decoder.decode(data)
            good += block_good
            bad += block_bad
    readings = snapshot_readings(good, meter_id=meter_id, ts=ts, source=source)
    if bad:
        details = "; ".join(f"{b.entry.name} ({b.entry.quantity}) {b.reason}" for b in bad)
        raise PartialRead(f"meter {meter_id} at {redact(str(url))}: {len(bad)} bad value(s): {details}",
                          readings=readings, bad=bad)
    return readings
