"""UTC inside, Asia/Ho_Chi_Minh (UTC+7, no daylight saving) at the edges."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

UTC = dt.UTC
LOCAL_TZ = ZoneInfo("Asia/Ho_Chi_Minh")
LOCAL_TZ_NAME = "Asia/Ho_Chi_Minh"


def local_midnight_utc(day: dt.date) -> dt.datetime:
    """The UTC instant at which `day` begins in Hanoi."""
    return dt.datetime.combine(day, dt.time(), LOCAL_TZ).astimezone(UTC)


def local_date(when: dt.datetime) -> dt.date:
    return when.astimezone(LOCAL_TZ).date()
