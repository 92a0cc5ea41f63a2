"""The COSEM objects one simulated meter serves, with energy from the household load model.

`get(class_id, obis, attribute, access)` returns A-XDR bytes or a data-access-result code;
`set` and `action` likewise. Time comes from a `core.clock.Clock`, so tests run virtually.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

from core.clock import Clock
from core.obis import Obis
from core.timezones import LOCAL_TZ
from protocols.dlms import axdr
from protocols.dlms.cosem_time import CosemDateTime
from protocols.dlms.simulator.faults import Faults
from protocols.simulation.household import HouseholdLoad

OBJECT_UNDEFINED, READ_WRITE_DENIED, TYPE_UNMATCHED, OTHER = 4, 3, 12, 250
DEVIATION = -420  # UTC+7 per the Blue Book
WH, W, V, A = 30, 27, 35, 33
LOAD_PROFILE, DAILY_PROFILE, BILLING, EVENT_LOG = (
    "1.0.99.1.0.255",
    "1.0.99.2.0.255",
    "1.0.98.1.0.255",
    "0.0.99.98.0.255",
)
CLOCK, STATUS, EVENT_CODE, FRAME_COUNTER = (
    "0.0.1.0.0.255",
    "0.0.96.10.1.255",
    "0.0.96.11.0.255",
    "0.0.43.1.0.255",
)
RATE_SHARES = (40, 30, 20)  # rates 1-3 take these percent of import; rate 4 the rest
# register OBIS -> (class, scaler, unit)
REGISTERS = {
    "1.0.1.8.0.255": (3, 0, WH),
    "1.0.1.8.1.255": (3, 0, WH),
    "1.0.1.8.2.255": (3, 0, WH),
    "1.0.1.8.3.255": (3, 0, WH),
    "1.0.1.8.4.255": (3, 0, WH),
    "1.0.2.8.0.255": (3, 0, WH),
    "1.0.1.6.0.255": (4, 0, W),
    "1.0.32.7.0.255": (3, -1, V),
    "1.0.31.7.0.255": (3, -2, A),
}


def _capture(class_id: int, obis: str, attribute: int = 2) -> bytes:
    return axdr.structure(
        [
            axdr.integer(axdr.LONG_UNSIGNED, class_id),
            axdr.octets(Obis.parse(obis).to_bytes()),
            axdr.integer(axdr.INTEGER, attribute),
            axdr.integer(axdr.LONG_UNSIGNED, 0),
        ]
    )


PROFILES = {
    LOAD_PROFILE: ([(8, CLOCK), (1, STATUS), (3, "1.0.1.8.0.255"), (3, "1.0.2.8.0.255")], 900),
    DAILY_PROFILE: (
        [
            (8, CLOCK),
            (3, "1.0.1.8.0.255"),
            (3, "1.0.1.8.1.255"),
            (3, "1.0.1.8.2.255"),
            (3, "1.0.1.8.3.255"),
            (3, "1.0.1.8.4.255"),
        ],
        86400,
    ),
    BILLING: (
        [
            (8, CLOCK),
            (3, "1.0.1.8.0.255"),
            (3, "1.0.1.8.1.255"),
            (3, "1.0.1.8.2.255"),
            (3, "1.0.1.8.3.255"),
            (3, "1.0.1.8.4.255"),
            (4, "1.0.1.6.0.255"),
        ],
        0,
    ),
    EVENT_LOG: ([(8, CLOCK), (1, EVENT_CODE)], 0),
}
POWER_DOWN, POWER_UP = 1, 2


@dataclass
class SimulatedMeter:
    meter_id: str
    clock: Clock
    seed: int = 1
    faults: Faults = field(default_factory=Faults)
    clock_offset: dt.timedelta = dt.timedelta(0)  # set_clock and shift_time move this
    frame_counter: int = 0  # the highest client invocation counter seen
    releases: int = 0  # associations released with RLRQ (tests check release after failures)

    def __post_init__(self) -> None:
        self.load = HouseholdLoad(self.meter_id, self.seed)
        self.clock_offset += dt.timedelta(seconds=self.faults.clock_drift)

    # --- values ---------------------------------------------------------------------------

    def now(self) -> dt.datetime:
        return self.clock.now() + self.clock_offset

    def _time(self, when: dt.datetime, status: int = 0) -> bytes:
        inverted = self.faults.inverted_deviation
        stamp = CosemDateTime.from_utc(
            when, -DEVIATION if inverted else DEVIATION, status=status, deviation_inverted=inverted
        )
        return axdr.octets(stamp.to_bytes())

    def _energy(self, obis: str, when: dt.datetime) -> int:
        total = self.load.register_wh(when)
        if self.faults.rollover_digits:
            total %= 10**self.faults.rollover_digits
        if obis == "1.0.1.8.0.255":
            return total
        if obis == "1.0.2.8.0.255":
            return 0
        rate = int(obis.split(".")[4])
        shares = [total * s // 100 for s in RATE_SHARES]
        return shares[rate - 1] if rate <= 3 else total - sum(shares)

    def _register_value(self, obis: str, when: dt.datetime) -> bytes:
        if obis == "1.0.1.6.0.255":
            return axdr.integer(axdr.DOUBLE_LONG_UNSIGNED, self._max_demand(when)[0])
        if obis == "1.0.32.7.0.255":
            return axdr.integer(axdr.LONG_UNSIGNED, 2300 + int(when.timestamp()) % 50)
        if obis == "1.0.31.7.0.255":
            return axdr.integer(axdr.DOUBLE_LONG_UNSIGNED, self.load.power_w(when) * 100 // 230)
        return axdr.integer(axdr.DOUBLE_LONG_UNSIGNED, self._energy(obis, when))

    def _max_demand(self, when: dt.datetime) -> tuple[int, dt.datetime]:
        """This local day's peak slot power so far: deterministic, from the load model."""
        local = when.astimezone(LOCAL_TZ)
        midnight = local.replace(hour=0, minute=0, second=0, microsecond=0)
        best, at = 0, midnight
        slot = midnight
        while slot <= local:
            power = self.load.power_w(slot)
            if power > best:
                best, at = power, slot + dt.timedelta(minutes=15)
            slot += dt.timedelta(minutes=15)
        return best, at.astimezone(dt.UTC)

    # --- profile buffers --------------------------------------------------------------------

    def _rows(self, profile: str, start: dt.datetime, end: dt.datetime) -> list[dt.datetime]:
        now = self.now()
        end = min(end, now)
        if profile == EVENT_LOG:
            return self._events(start, end)
        _, period = PROFILES[profile]
        if period == 0:  # billing: local month starts
            local = start.astimezone(LOCAL_TZ)
            month = local.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
            if month < local:
                month = (month + dt.timedelta(days=32)).replace(day=1)
            rows = []
            while month.astimezone(dt.UTC) <= end:
                rows.append(month.astimezone(dt.UTC))
                month = (month + dt.timedelta(days=32)).replace(day=1)
            return rows
        step = dt.timedelta(seconds=period)
        if period == 86400:
            local = start.astimezone(LOCAL_TZ)
            first = local.replace(hour=0, minute=0, second=0, microsecond=0)
            first_utc = first.astimezone(dt.UTC)
            if first_utc < start:
                first_utc += step
        else:
            seconds = int(start.timestamp())
            first_utc = dt.datetime.fromtimestamp(-(-seconds // period) * period, dt.UTC)
        rows = []
        ts = first_utc
        index = 0
        while ts <= end:
            slot_number = int(ts.timestamp()) // period
            if not (
                self.faults.missing_every and period == 900 and slot_number % self.faults.missing_every == 0
            ):
                rows.append(ts)
            ts += step
            index += 1
        return rows

    def _events(self, start: dt.datetime, end: dt.datetime) -> list[dt.datetime]:
        """A power cut of 10 minutes every third local day at 03:00."""
        day = start.astimezone(LOCAL_TZ).date() - dt.timedelta(days=1)
        rows: list[dt.datetime] = []
        while True:
            cut = dt.datetime.combine(day, dt.time(3, 0), LOCAL_TZ).astimezone(dt.UTC)
            if cut > end:
                return rows
            if day.toordinal() % 3 == 0:
                for when in (cut, cut + dt.timedelta(minutes=10)):
                    if start <= when <= end:
                        rows.append(when)
            day += dt.timedelta(days=1)

    def buffer(self, profile: str, start: dt.datetime, end: dt.datetime) -> bytes:
        columns, _ = PROFILES[profile]
        encoded = []
        for ts in self._rows(profile, start, end):
            cells = []
            for class_id, obis in columns:
                if class_id == 8:
                    cells.append(self._time(ts))
                elif obis == STATUS:
                    cells.append(axdr.integer(axdr.UNSIGNED, 0))
                elif obis == EVENT_CODE:
                    cells.append(axdr.integer(axdr.UNSIGNED, POWER_DOWN if ts.minute == 0 else POWER_UP))
                else:
                    cells.append(self._register_value(obis, ts))
            encoded.append(axdr.structure(cells))
        return axdr.array(encoded)

    # --- services ---------------------------------------------------------------------------

    def get(self, class_id: int, obis: str, attribute: int, access: bytes | None = None) -> bytes | int:
        if attribute == 1:
            return axdr.octets(Obis.parse(obis).to_bytes())
        if obis == CLOCK and class_id == 8:
            if attribute == 2:
                return self._time(self.now())
            if attribute == 3:
                return axdr.integer(axdr.LONG, -DEVIATION if self.faults.inverted_deviation else DEVIATION)
            return OBJECT_UNDEFINED
        if obis == FRAME_COUNTER and class_id == 1 and attribute == 2:
            return axdr.integer(axdr.DOUBLE_LONG_UNSIGNED, self.frame_counter)
        if obis in REGISTERS:
            klass, scaler, unit = REGISTERS[obis]
            if class_id != klass:
                return OBJECT_UNDEFINED
            if attribute == 2:
                return self._register_value(obis, self.now())
            if attribute == 3:
                return axdr.structure([axdr.integer(axdr.INTEGER, scaler), axdr.integer(axdr.ENUM, unit)])
            if attribute == 5 and klass == 4:
                return self._time(self._max_demand(self.now())[1])
            return OBJECT_UNDEFINED
        if obis in PROFILES and class_id == 7:
            columns, period = PROFILES[obis]
            if attribute == 3:
                return axdr.array([_capture(c, o) for c, o in columns])
            if attribute == 4:
                return axdr.integer(axdr.DOUBLE_LONG_UNSIGNED, period)
            if attribute == 2:
                start, end = self._range(access)
                return self.buffer(obis, start, end)
            return OBJECT_UNDEFINED
        return OBJECT_UNDEFINED

    def _range(self, access: bytes | None) -> tuple[dt.datetime, dt.datetime]:
        if access is None:
            return dt.datetime(2000, 1, 1, tzinfo=dt.UTC), self.now()
        value = axdr.decode(access[1:]) if access[:1] == b"\x01" else None
        if not (
            isinstance(value, list)
            and len(value) == 4
            and isinstance(value[1], bytes)
            and isinstance(value[2], bytes)
        ):
            raise ValueError("selective access is not a range descriptor")
        return CosemDateTime.from_bytes(value[1]).to_utc(), CosemDateTime.from_bytes(value[2]).to_utc()

    def set(self, class_id: int, obis: str, attribute: int, data: bytes) -> int:
        if obis == CLOCK and class_id == 8 and attribute == 2:
            value = axdr.decode(data)
            if not isinstance(value, bytes):
                return TYPE_UNMATCHED
            target = CosemDateTime.from_bytes(value).to_utc()
            self.clock_offset = target - self.clock.now()
            return 0
        return READ_WRITE_DENIED

    def shift_time(self, seconds: int) -> int:
        if not -900 <= seconds <= 900:
            return OTHER
        self.clock_offset += dt.timedelta(seconds=seconds)
        return 0
