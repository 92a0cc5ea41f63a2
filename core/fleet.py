"""The fleet file: the registry's import format, written by simulators and by staff.

CSV (or Parquet) with one meter per row. `meter_id`, `url` are required; the rest has
defaults. `amr meters import` validates every row with `FleetRow` and reports each bad
row by line and column.
"""

from __future__ import annotations

import datetime as dt
import re

from pydantic import BaseModel, ConfigDict, Field, field_validator

from core.meter_url import MeterUrl

CUSTOMER_CODE = re.compile(r"^PD\d{2}\d{9}$")  # PD + 2-digit unit + digits, 13 characters
FLEET_COLUMNS = (
    "meter_id", "customer_code", "url", "model", "route", "installed_on", "removed_on",
    "ct_ratio", "vt_ratio", "read", "households", "tariff_class",
)
# Columns a fleet file may add, kept in the registry's `attributes` (see FleetRow).
OPTIONAL_COLUMNS = ("cell", "intraday", "rated_current_a", "voltage_v", "phases", "register_capacity_wh")


class FleetRow(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    meter_id: str = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9._-]+$")
    customer_code: str | None = None
    url: str
    model: str | None = None
    route: str | None = None
    installed_on: dt.date | None = None
    removed_on: dt.date | None = None
    ct_ratio: int = Field(default=1, ge=1)
    vt_ratio: int = Field(default=1, ge=1)
    read: str = "registers"  # comma-separated: registers, profile, daily, events, clock
    households: str = "1"  # decimal: tenants count as registered persons / 4
    tariff_class: str = "residential"
    # OPTIONAL_COLUMNS: the head-end's GPRS cell and intra-day reading, and the service's
    # physical limits that ingest's spike and rollover rules read (defaults in ingest.config)
    cell: str | None = None
    intraday: str | None = None
    rated_current_a: int | None = Field(default=None, gt=0)
    voltage_v: int | None = Field(default=None, gt=0)
    phases: int | None = Field(default=None, ge=1, le=3)
    register_capacity_wh: int | None = Field(default=None, gt=0)

    def attributes(self) -> dict[str, str]:
        """What the registry keeps in a meter's `attributes` (as text)."""
        out = {"read": self.read, "households": self.households, "tariff_class": self.tariff_class}
        for name in OPTIONAL_COLUMNS:
            value = getattr(self, name)
            if value is not None:
                out[name] = str(value)
        return out

    @field_validator("customer_code")
    @classmethod
    def _customer_code(cls, value: str | None) -> str | None:
        if value in (None, ""):
            return None
        assert value is not None
        if not CUSTOMER_CODE.match(value):
            raise ValueError("must be PD, a 2-digit unit and 9 digits (13 characters)")
        return value

    @field_validator("url")
    @classmethod
    def _url(cls, value: str) -> str:
        return str(MeterUrl.parse(value))

    @property
    def meter_url(self) -> MeterUrl:
        return MeterUrl.parse(self.url)
