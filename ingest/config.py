"""The VEE rules' thresholds, with defaults; built from `Settings.ingest` plus overrides.

Per-meter physical limits come from the registry's `attributes` JSON
(`rated_current_a`, `voltage_v`, `phases`, `register_capacity_wh`); these are the
defaults for meters that do not say.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from decimal import Decimal, InvalidOperation
from typing import TYPE_CHECKING, Any

from ingest.errors import IngestError

if TYPE_CHECKING:  # read, not imported: a worker loads no settings machinery
    from core.config import Settings


@dataclasses.dataclass(frozen=True)
class VeeConfig:
    interval_minutes: int = 15  # the load profile's capture period
    interpolate_max_minutes: int = 120  # longer gaps use like days
    sum_check_tolerance: Decimal = Decimal("0.02")  # share of the register's advance
    sum_check_slack_wh: int = 2  # absolute slack for tiny days
    day_end_window_minutes: int = 15  # a register read this long after midnight is the day's end
    future_skew_minutes: int = 5  # clocks run fast a little
    estimate_lag_minutes: int = 60  # slots this recent may still be read: not estimated yet
    default_rated_current_a: int = 100
    default_voltage_v: int = 230
    default_phases: int = 1
    default_register_capacity_wh: int = 1_000_000_000  # 6 digits of kWh + 3 decimals
    rollover_margin: Decimal = Decimal("0.1")  # prev within 10% below capacity, next within 10% above 0
    spike_history_factor: int = 10  # interval above this x the meter's mean interval
    spike_history_floor_wh: int = 500  # and above this, so quiet meters do not flag every kettle
    zero_run_minutes: int = 720  # zeros this long (no outage recorded) are suspect
    high_usage_factor: Decimal = Decimal("3")
    low_usage_factor: Decimal = Decimal("0.2")
    history_days: int = 28
    history_min_days: int = 7
    like_days: int = 3
    like_days_lookback: int = 21
    quarantine_clock_invalid: bool = True

    @classmethod
    def from_settings(cls, settings: Settings, **overrides: Any) -> VeeConfig:
        try:
            tolerance = Decimal(settings.ingest.sum_check_tolerance)
        except InvalidOperation as exc:
            raise IngestError(
                f"ingest.sum_check_tolerance {settings.ingest.sum_check_tolerance!r} is not a decimal",
                hint='write it as a share, for example "0.02" for 2%',
            ) from exc
        base = cls(
            interpolate_max_minutes=settings.ingest.interpolate_max_minutes, sum_check_tolerance=tolerance
        )
        configured = {name: _coerce(name, value) for name, value in settings.ingest.rules.items()}
        try:
            return dataclasses.replace(base, **{**configured, **overrides})
        except TypeError as exc:
            raise IngestError(f"unknown VEE setting in {sorted(overrides)}: {exc}") from exc

    @property
    def interval(self) -> dt.timedelta:
        return dt.timedelta(minutes=self.interval_minutes)

    @property
    def slots_per_day(self) -> int:
        return 1440 // self.interval_minutes


_FIELDS = {f.name: f for f in dataclasses.fields(VeeConfig)}


def _coerce(name: str, value: str | int | float | bool) -> Any:
    """A threshold from `[ingest.rules]` as its field's type; decimals from their spelling."""
    if name not in _FIELDS:
        raise IngestError(
            f"ingest.rules.{name} is not a VEE setting",
            hint="the names are the fields of ingest.config.VeeConfig, listed in docs/ingest.md",
        )
    kind = _FIELDS[name].type
    try:
        if kind == "bool":
            if not isinstance(value, bool):
                raise ValueError("expected true or false")
            return value
        if kind == "Decimal":
            return Decimal(str(value))
        if kind == "int":
            if isinstance(value, bool) or (isinstance(value, float) and not value.is_integer()):
                raise ValueError("expected a whole number")
            return int(value)
    except (ValueError, InvalidOperation) as exc:
        raise IngestError(f"ingest.rules.{name} = {value!r}: {exc}") from exc
    return value
