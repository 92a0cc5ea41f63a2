"""Meter models: what differs between meter types, as named settings (never `if vendor`).

A registry row names its model; the model says which profiles hold the load and daily
values, how often the meter captures, how many digits its registers roll over at, which
registers hold the time-of-use rates, and whether its clock deviation has the sign the
Blue Book says (minutes from local time to UTC, -420 for UTC+7) or the inverted one.
"""

from __future__ import annotations

import datetime as dt
import functools
from dataclasses import dataclass, field

from core.obis import ACTIVE_IMPORT_RATE, ACTIVE_IMPORT_TOTAL, LOAD_PROFILE_DAILY, STANDARD_EVENT_LOG
from headend.errors import HeadendError

LOAD_PROFILE = "1.0.99.1.0.255"


@dataclass(frozen=True, slots=True)
class MeterModel:
    name: str
    load_profile: str = LOAD_PROFILE
    daily_profile: str = LOAD_PROFILE_DAILY
    event_log: str = STANDARD_EVENT_LOG
    capture_period: dt.timedelta = dt.timedelta(minutes=15)
    register_digits: int = 8
    tou_registers: dict[int, str] = field(default_factory=lambda: dict(ACTIVE_IMPORT_RATE))
    total_register: str = ACTIVE_IMPORT_TOTAL
    clock_deviation_inverted: bool = False
    has_clock: bool = True
    has_profiles: bool = True

    @property
    def register_capacity_wh(self) -> int:
        return int(10**self.register_digits)


# A Modbus meter has no clock or profile: it is read as a snapshot of its registers.
_MODELS = {
    m.name: m
    for m in (
        MeterModel("generic-dlms"),
        MeterModel("generic-dlms-inverted-clock", clock_deviation_inverted=True),
        MeterModel("generic-dlms-hourly", capture_period=dt.timedelta(hours=1)),
        MeterModel("generic-modbus", has_clock=False, has_profiles=False),
    )
}
DEFAULT_MODEL = {"dlms": "generic-dlms", "modbus": "generic-modbus"}


@functools.lru_cache(maxsize=1024)  # asked for every meter of every round; models never change
def model_for(name: str | None, protocol: str) -> MeterModel:
    """The named model, or the protocol's generic one when the registry names none."""
    if not name:
        return _MODELS[DEFAULT_MODEL[protocol]]
    if name in _MODELS:
        return _MODELS[name]
    if protocol == "dlms":
        # The DLMS layer's named models (protocols.dlms.settings.MODELS) are valid names too.
        from protocols.dlms.settings import MODELS

        if name in MODELS:
            found = MODELS[name]
            return MeterModel(
                name, load_profile=found.load_profile, daily_profile=found.daily_profile,
                event_log=found.event_log, clock_deviation_inverted=found.deviation_inverted,
            )
    # Modbus rows usually name their register map as the model; the map carries the detail.
    if protocol == "modbus":
        return MeterModel(name, has_clock=False, has_profiles=False)
    raise HeadendError(
        f"meter model {name!r} is not known for {protocol}",
        hint="known models: " + ", ".join(sorted(_MODELS)),
    )


def list_models() -> list[MeterModel]:
    return list(_MODELS.values())


def modbus_maps() -> list[dict[str, object]]:
    """The Modbus register maps this build knows (a Modbus meter's `map=` and model)."""
    from protocols.modbus.maps import describe, list_maps

    return [describe(m) for m in list_maps()]
