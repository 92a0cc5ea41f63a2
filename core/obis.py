"""OBIS codes (IEC 62056-6-1), always spelled `A.B.C.D.E.F` with six decimal groups.

The C and D groups say what a code measures, and so whether its values are cumulative
register values or interval deltas: D = 8 is a cumulative "time integral 1" register,
D = 29 is the per-interval "time integral 5" (an energy delta over one capture period).
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass
from enum import StrEnum

from core.errors import ContractError

_DOTTED = re.compile(r"^\d{1,3}(\.\d{1,3}){5}$")
# The standard's own spelling, `1-0:1.8.0.255` or `1-0:1.8.0*255`, with F optional.
_STANDARD = re.compile(r"^(\d{1,3})-(\d{1,3}):(\d{1,3})\.(\d{1,3})\.(\d{1,3})(?:[.*](\d{1,3}))?$")


class ValueKind(StrEnum):
    REGISTER = "register"  # cumulative: a reading of a counter at a moment
    INTERVAL = "interval"  # a delta over one capture period ending at `ts`
    INSTANT = "instant"  # an instantaneous value (voltage, power, clock)


@dataclass(frozen=True, slots=True, order=True)
class Obis:
    a: int
    b: int
    c: int
    d: int
    e: int
    f: int

    @classmethod
    def parse(cls, text: str) -> Obis:
        """Parse `1.0.1.8.0.255` (canonical) or `1-0:1.8.0.255`; raise naming the input."""
        spelled = text.strip()
        if _DOTTED.match(spelled):
            groups = [int(part) for part in spelled.split(".")]
        else:
            match = _STANDARD.match(spelled)
            if match is None:
                raise ContractError(
                    f"OBIS code {text!r} is not six groups like 1.0.1.8.0.255",
                    hint="write the code as A.B.C.D.E.F, for example 1.0.1.8.0.255",
                )
            groups = [int(g) if g is not None else 255 for g in match.groups()]
        for position, value in zip("ABCDEF", groups, strict=True):
            if value > 255:
                raise ContractError(
                    f"OBIS code {text!r}: group {position} is {value}, above 255"
                )
        return cls(*groups)

    def __str__(self) -> str:
        return f"{self.a}.{self.b}.{self.c}.{self.d}.{self.e}.{self.f}"

    def to_bytes(self) -> bytes:
        return bytes((self.a, self.b, self.c, self.d, self.e, self.f))

    @classmethod
    def from_bytes(cls, data: bytes) -> Obis:
        if len(data) != 6:
            raise ContractError(f"an OBIS code is 6 bytes, got {len(data)}")
        return cls(*data)

    @property
    def kind(self) -> ValueKind:
        if self.a == 1 and self.d in (8, 9, 10):
            return ValueKind.REGISTER
        if self.a == 1 and self.d in (29, 30):
            return ValueKind.INTERVAL
        return ValueKind.INSTANT


@functools.lru_cache(maxsize=4096)
def canonical(text: str) -> str:
    """The canonical spelling of an OBIS code, validated (cached: every Reading calls it)."""
    return str(Obis.parse(text))


# Quantities every room talks about, named once.
ACTIVE_IMPORT_TOTAL = "1.0.1.8.0.255"
ACTIVE_IMPORT_RATE = {rate: f"1.0.1.8.{rate}.255" for rate in range(1, 5)}
ACTIVE_EXPORT_TOTAL = "1.0.2.8.0.255"
ACTIVE_IMPORT_INTERVAL = "1.0.1.29.0.255"
MAX_DEMAND_IMPORT = "1.0.1.6.0.255"
ACTIVE_POWER_IMPORT = "1.0.1.7.0.255"
VOLTAGE_L1 = "1.0.32.7.0.255"
CURRENT_L1 = "1.0.31.7.0.255"
CLOCK = "0.0.1.0.0.255"
LOAD_PROFILE_1 = "1.0.99.1.0.255"
LOAD_PROFILE_DAILY = "1.0.99.2.0.255"
BILLING_SNAPSHOT = "1.0.98.1.0.255"
STANDARD_EVENT_LOG = "0.0.99.98.0.255"
