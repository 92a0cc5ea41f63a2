"""Faults a simulated Modbus fleet can be told to show, parsed from `--fault` options.

Spelling: `KIND[:ARG][@SHARE][%RATE]`
    exception[:CODE]   answer with Modbus exception CODE (default 4, server device failure)
    no-answer          say nothing (the client times out)
    crc                corrupt the CRC of RTU answers (serial / pty and RTU-over-TCP only)
    wrap[:KWH]         energy registers roll over at KWH (default: 1 kWh above each meter's
                       register at start, so the wrap shows within hours)
    @SHARE             the share of meters affected, 0..1, chosen from the seed (default 1)
    %RATE              the share of requests affected on those meters, 0..1 (default 1)

Examples: `no-answer@0.1`, `exception:6%0.2`, `crc@0.05`, `wrap:100`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from enum import StrEnum

from protocols.modbus.errors import ModbusError

_SPEC = re.compile(r"^(?P<kind>[a-z-]+)(?::(?P<arg>[^@%]+))?(?:@(?P<share>[^@%]+))?(?:%(?P<rate>[^@%]+))?$")


class FaultKind(StrEnum):
    EXCEPTION = "exception"
    NO_ANSWER = "no-answer"
    CRC = "crc"
    WRAP = "wrap"


class FaultSpecError(ModbusError):
    """A `--fault` option that cannot be understood."""

    error_class = "fault-spec"


@dataclass(frozen=True, slots=True)
class Fault:
    kind: FaultKind
    arg: Decimal | None = None
    share: float = 1.0
    rate: float = 1.0

    @property
    def exception_code(self) -> int:
        return int(self.arg) if self.arg is not None else 4

    @classmethod
    def parse(cls, text: str) -> Fault:
        match = _SPEC.match(text.strip().lower())
        kinds = ", ".join(k.value for k in FaultKind)
        if match is None or match["kind"] not in {k.value for k in FaultKind}:
            raise FaultSpecError(f"fault {text!r} is not KIND[:ARG][@SHARE][%RATE] with KIND one of {kinds}",
                                 hint="for example no-answer@0.1 or exception:6%0.2")
        kind = FaultKind(match["kind"])
        arg: Decimal | None = None
        if match["arg"] is not None:
            if kind not in (FaultKind.EXCEPTION, FaultKind.WRAP):
                raise FaultSpecError(f"fault {text!r}: {kind} takes no argument")
            try:
                arg = Decimal(match["arg"])
            except InvalidOperation:
                raise FaultSpecError(f"fault {text!r}: argument {match['arg']!r} is not a number") from None
            if kind is FaultKind.EXCEPTION and (arg != arg.to_integral_value() or not 1 <= arg <= 255):
                raise FaultSpecError(f"fault {text!r}: an exception code is a whole number 1..255")
            if kind is FaultKind.WRAP and arg <= 0:
                raise FaultSpecError(f"fault {text!r}: the wrap point must be above 0 kWh")
        return cls(kind, arg, _share(text, match["share"], "share"), _share(text, match["rate"], "rate"))


def _share(text: str, value: str | None, what: str) -> float:
    if value is None:
        return 1.0
    try:
        number = float(value)
    except ValueError:
        raise FaultSpecError(f"fault {text!r}: {what} {value!r} is not a number between 0 and 1") from None
    if not 0.0 <= number <= 1.0:
        raise FaultSpecError(f"fault {text!r}: {what} {value} is not between 0 and 1")
    return number


def parse_faults(specs: list[str] | tuple[str, ...]) -> list[Fault]:
    return [Fault.parse(spec) for spec in specs]
