"""Reason codes of the VEE rules, named once.

A *quarantine* code takes a reading out of the aggregates (it waits for review and its
slot is estimated); a *suspect* flag keeps the reading but puts it in the review queue;
an *info* flag (outage, rollover) explains data and is no fault.
"""

from __future__ import annotations

from enum import StrEnum

import polars as pl


class Reason(StrEnum):
    # quarantine: the reading is not used
    UNKNOWN_METER = "unknown_meter"  # meter_id not in the registry
    UNIT = "unit"  # unit does not fit the quantity (e.g. V for an energy register)
    BEFORE_INSTALL = "before_install"  # local day before the meter's installed_on
    RETIRED_METER = "retired_meter"  # local day after the meter's removed_on
    FUTURE = "future"  # ts later than the run's clock plus the allowed skew
    OFF_GRID = "off_grid"  # interval end not on the interval grid
    DATA_NOT_VALID = "data_not_valid"  # meter's status bit: data not valid
    CLOCK_INVALID = "clock_invalid"  # meter's status bit: clock invalid
    CONFLICT = "conflict"  # two different values for one meter, quantity and time
    NEGATIVE = "negative"  # register decrease that is no rollover, or negative delta
    SPIKE_RATED = "spike_rated"  # interval energy above what the service can deliver
    # suspect: kept, queued for review
    SPIKE_HISTORY = "spike_history"  # interval far above the meter's own history
    ZERO_RUN = "zero_run"  # long run of zero intervals without a recorded outage
    CLOCK_ADJUSTED = "clock_adjusted"  # meter's status bit: clock adjusted in the interval
    HIGH_USAGE = "high_usage"  # day far above the meter's history (day finding)
    LOW_USAGE = "low_usage"  # day far below the meter's history (day finding)
    SUM_CHECK = "sum_check"  # day's intervals disagree with the register's advance (day finding)
    GAP = "gap"  # missing intervals, estimated (day finding)
    # info
    OUTAGE = "outage"  # inside a power outage the meter recorded: explains zeros and gaps
    ROLLOVER = "rollover"  # register wrapped at its capacity; unwrapped in aggregates
    ACCEPTED = "accepted"  # staff accepted it in review
    EDITED = "edited"  # staff edited its value in review
    DAY_REJECTED = "day_rejected"  # staff rejected (or re-stated) the meter's whole day in review


QUARANTINE = frozenset(
    {
        Reason.UNKNOWN_METER,
        Reason.UNIT,
        Reason.BEFORE_INSTALL,
        Reason.RETIRED_METER,
        Reason.FUTURE,
        Reason.OFF_GRID,
        Reason.DATA_NOT_VALID,
        Reason.CLOCK_INVALID,
        Reason.CONFLICT,
        Reason.NEGATIVE,
        Reason.SPIKE_RATED,
    }
)
SUSPECT = frozenset(
    {
        Reason.SPIKE_HISTORY,
        Reason.ZERO_RUN,
        Reason.CLOCK_ADJUSTED,
        Reason.HIGH_USAGE,
        Reason.LOW_USAGE,
        Reason.SUM_CHECK,
        Reason.GAP,
    }
)
# Day findings: rules that judge a whole meter-day (the `findings` table); each is queued for
# review per meter and day.
DAY_RULES = frozenset({Reason.SUM_CHECK, Reason.ZERO_RUN, Reason.HIGH_USAGE, Reason.LOW_USAGE, Reason.GAP})

# Row states in the readings table.
VALID = "valid"
QUARANTINED = "quarantined"
ESTIMATED = "estimated"
REJECTED = "rejected"

# The readings table stores the state and the reason as enumerations (closed sets): Polars
# writes, compares and gathers their integer codes, where text costs a hash or a string
# compare per row. Text was a quarter of a partition's CPU; these two columns alone took the
# plan's collect from 3.07 to 2.72 s and the write from 1.47 to 1.30 s (8 partitions of
# 1.2 M rows, one thread; docs/ingest.md, eighth round).
STATE = pl.Enum([VALID, QUARANTINED, REJECTED, ESTIMATED])
REASON = pl.Enum([str(reason) for reason in Reason])

# Standard event log codes (DLMS Blue Book, standard event log): power down and up.
EVENT_POWER_DOWN = 1
EVENT_POWER_UP = 2
