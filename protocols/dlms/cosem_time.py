"""COSEM date-time (Blue Book 4.1.6.1): 12 octets with the deviation from local time to UTC.

Per the Blue Book the deviation counts minutes *from local time to UTC*: UTC = local +
deviation, so a meter at UTC+7 says -420. Some meters write the opposite sign; that is
the named setting `deviation_inverted`, never a guess. 0x8000 means "not specified": the
time is then local to the zone the meter is configured for (`unspecified_zone`).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from zoneinfo import ZoneInfo

from protocols.dlms.errors import ApduError

UNSPECIFIED_DEVIATION = -0x8000  # 0x8000 read as a signed 16-bit number
CLOCK_STATUS_INVALID = 0x01
CLOCK_STATUS_DOUBTFUL = 0x02
CLOCK_STATUS_DAYLIGHT_SAVING = 0x80
NOT_SPECIFIED_STATUS = 0xFF


@dataclass(frozen=True, slots=True)
class CosemDateTime:
    """A decoded date-time: the naive local wall time, its deviation (None if unspecified), status."""

    local: dt.datetime
    deviation: int | None
    status: int

    @classmethod
    def from_bytes(cls, data: bytes) -> CosemDateTime:
        if len(data) != 12:
            raise ApduError(f"a COSEM date-time is 12 octets, got {len(data)}: {data.hex()}")
        year = int.from_bytes(data[0:2], "big")
        month, day, hour, minute, second, hundredths = data[2], data[3], data[5], data[6], data[7], data[8]
        if year == 0xFFFF or 0xFF in (month, day, hour, minute, second):
            raise ApduError(f"COSEM date-time {data.hex()} has unspecified fields; a reading needs a time")
        try:
            local = dt.datetime(
                year, month, day, hour, minute, second, 0 if hundredths == 0xFF else hundredths * 10_000
            )
        except ValueError as exc:
            raise ApduError(f"COSEM date-time {data.hex()} is not a valid date: {exc}") from None
        deviation = int.from_bytes(data[9:11], "big", signed=True)
        status = data[11]
        return cls(
            local,
            None if deviation == UNSPECIFIED_DEVIATION else deviation,
            0 if status == NOT_SPECIFIED_STATUS else status,
        )

    def to_bytes(self) -> bytes:
        local = self.local
        deviation = UNSPECIFIED_DEVIATION if self.deviation is None else self.deviation
        return (
            local.year.to_bytes(2, "big")
            + bytes(
                (
                    local.month,
                    local.day,
                    local.isoweekday(),
                    local.hour,
                    local.minute,
                    local.second,
                    local.microsecond // 10_000,
                )
            )
            + deviation.to_bytes(2, "big", signed=True)
            + bytes((self.status,))
        )

    def to_utc(self, *, deviation_inverted: bool = False, unspecified_zone: str = "UTC") -> dt.datetime:
        if self.deviation is None:
            return self.local.replace(tzinfo=ZoneInfo(unspecified_zone)).astimezone(dt.UTC)
        minutes = -self.deviation if deviation_inverted else self.deviation
        return (self.local + dt.timedelta(minutes=minutes)).replace(tzinfo=dt.UTC)

    @classmethod
    def from_utc(
        cls,
        when: dt.datetime,
        deviation: int | None,
        *,
        status: int = 0,
        deviation_inverted: bool = False,
        unspecified_zone: str = "UTC",
    ) -> CosemDateTime:
        if when.tzinfo is None:
            raise ApduError(f"time {when.isoformat()} has no time zone; COSEM times are written from UTC")
        if deviation is None:
            local = when.astimezone(ZoneInfo(unspecified_zone)).replace(tzinfo=None)
        else:
            minutes = -deviation if deviation_inverted else deviation
            local = (when.astimezone(dt.UTC) - dt.timedelta(minutes=minutes)).replace(tzinfo=None)
        return cls(local, deviation, status)
