"""What a simulated meter's registers hold at one instant, for any register map.

Values follow the household load model (the same one the DLMS simulator serves), chosen by
each entry's OBIS quantity, so any map, including one staff add later, is served without code:
energy registers from the load's cumulative register, power from its slot power, and plausible
voltage, current, power factor and frequency around them. A quantity the bank does not know
serves 0.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal

from core.obis import Obis
from protocols.modbus.datatypes import to_registers
from protocols.modbus.maps import Function, RegisterEntry, RegisterMap
from protocols.simulation.household import HouseholdLoad

POWER_FACTOR = 0.95
NOMINAL_VOLTS = 230.0
_PHASE_VOLTAGE = {32: 0, 52: 1, 72: 2}
_PHASE_CURRENT = {31: 0, 51: 1, 71: 2}
_PHASE_POWER = {36: 0, 56: 1, 76: 2, 21: 0, 41: 1, 61: 2}
_PHASE_APPARENT = {29: 0, 49: 1, 69: 2}
_PHASE_REACTIVE = {23: 0, 43: 1, 63: 2}
_PHASE_PF = {33: 0, 53: 1, 73: 2}
_TARIFF_SHARE = {1: (6, 10), 2: (3, 10), 3: (1, 10), 4: (0, 1)}  # a fixed split of the import register


def _jitter(*parts: object) -> float:
    """Deterministic noise in [-1, 1) from the parts."""
    digest = hashlib.blake2b("|".join(map(str, parts)).encode(), digest_size=4).digest()
    return int.from_bytes(digest, "big") / 2**31 - 1.0


@dataclass
class Snapshot:
    """The physical state of a meter at one instant, from which each quantity is derived."""

    meter_id: str
    when: dt.datetime
    import_wh: int
    power_w: int
    phases: int
    wrap_wh: int | None = None
    _voltages: list[float] = field(default_factory=list)

    @property
    def voltages(self) -> list[float]:
        """Phase voltages wandering a few volts around nominal, minute by minute (computed on demand)."""
        if not self._voltages:
            minute = int(self.when.timestamp() // 60)
            self._voltages = [NOMINAL_VOLTS + 4.0 * _jitter(self.meter_id, minute, p) for p in range(3)]
        return self._voltages

    def energy(self, wh: int) -> int:
        """An energy register, wrapped when the wrap fault is on."""
        return wh % self.wrap_wh if self.wrap_wh else wh

    def phase_power(self, phase: int) -> float:
        if phase >= self.phases:
            return 0.0
        return self.power_w / self.phases

    def value(self, quantity: str) -> float | int:
        """The quantity in its usual unit (Wh, varh, W, VA, var, V, A, Hz, power factor)."""
        code = Obis.parse(quantity)
        return self.value_of(code.c, code.d, code.e)

    def value_of(self, c: int, d: int, e: int) -> float | int:
        """`value` by the OBIS code's C, D and E groups (what selects a quantity here)."""
        if d == 8:  # cumulative energy registers
            if c in (1, 15):
                if e == 0:
                    return self.energy(self.import_wh)
                numerator, denominator = _TARIFF_SHARE.get(e, (0, 1))
                return self.energy(self.import_wh * numerator // denominator)
            if c == 3:
                return self.energy(self.import_wh // 4)  # inductive household load
            if c in _PHASE_POWER:
                return self.energy(self.import_wh // self.phases) if _PHASE_POWER[c] < self.phases else 0
            return 0  # export registers: no generation in the simulated fleet
        if d in (4, 6) and c == 1:
            return self.power_w if d == 4 else int(self.power_w * 1.6)
        if d != 7:
            return 0
        if c in _PHASE_VOLTAGE:
            phase = _PHASE_VOLTAGE[c]
            return self.voltages[phase] if phase < self.phases else 0.0
        if c in _PHASE_CURRENT:
            phase = _PHASE_CURRENT[c]
            return self.phase_power(phase) / (self.voltages[phase] * POWER_FACTOR)
        if c in (1, 16):
            return float(self.power_w)
        if c in _PHASE_POWER:
            return self.phase_power(_PHASE_POWER[c])
        if c == 9:
            return self.power_w / POWER_FACTOR
        if c in _PHASE_APPARENT:
            return self.phase_power(_PHASE_APPARENT[c]) / POWER_FACTOR
        if c in _PHASE_REACTIVE:
            return self.phase_power(_PHASE_REACTIVE[c]) * math.tan(math.acos(POWER_FACTOR))
        if c == 13 or c in _PHASE_PF:
            return POWER_FACTOR
        if c == 14:
            return 50.0 + 0.05 * _jitter(self.meter_id, int(self.when.timestamp()), "f")
        if c == 91:
            return 0.1
        return 0


def phases_of(register_map: RegisterMap) -> int:
    """Three phases when the map serves a second phase's voltage or current, else one."""
    codes = {Obis.parse(e.quantity).c for e in register_map.entries}
    return 3 if codes & {52, 72, 51, 71} else 1


def encode_entry(entry: RegisterEntry, amount: float | int) -> list[int]:
    """The registers an entry holds for a value in the entry's unit (the map's scale undone)."""
    if entry.type.is_float:
        return to_registers(float(amount) / 10.0**entry.scale, entry.type, entry.word_order)
    raw = Decimal(amount).scaleb(-entry.scale).to_integral_value()
    bits = entry.type.width * 16
    signed = entry.type.value.startswith("s")
    number = int(raw)
    if not signed:
        number %= 1 << bits  # an unsigned counter wraps like the meter's own
    return to_registers(number, entry.type, entry.word_order)


@dataclass
class RegisterBank:
    """The registers one simulated meter serves, computed at the instant of each read."""

    register_map: RegisterMap
    load: HouseholdLoad
    clock_now: Callable[[], dt.datetime]
    wrap_wh: int | None = None
    phases: int = 1

    _layout: dict[Function, list[tuple[int, int, RegisterEntry, tuple[int, int, int]]]] = field(
        default_factory=dict, repr=False)

    def __post_init__(self) -> None:
        self.phases = phases_of(self.register_map)
        # what each read needs, worked out once: entries by function, their spans and OBIS groups
        for entry in sorted(self.register_map.entries, key=lambda e: e.address):
            code = Obis.parse(entry.quantity)
            self._layout.setdefault(entry.function, []).append(
                (entry.address, entry.end, entry, (code.c, code.d, code.e)))

    def snapshot(self) -> Snapshot:
        when = self.clock_now()
        return Snapshot(self.load.meter_id, when, self.load.register_wh(when), self.load.power_w(when),
                        self.phases, self.wrap_wh)

    def fill(self, function: Function, start: int, registers: list[int], address: int, count: int) -> None:
        """Write the current values of the entries overlapping [address, address + count) in place.

        `registers[0]` is the register at `start` (pymodbus's simulator block layout).
        """
        snap = self.snapshot()
        end = address + count
        for first, after, entry, (c, d, e) in self._layout.get(function, ()):
            if after <= address or first >= end:
                continue
            words = encode_entry(entry, snap.value_of(c, d, e))
            offset = first - start
            registers[offset:offset + len(words)] = words

    def spans(self, function: Function) -> tuple[int, int] | None:
        """The first register and one past the last that the map declares for `function`."""
        entries = [e for e in self.register_map.entries if e.function is function]
        if not entries:
            return None
        return min(e.address for e in entries), max(e.end for e in entries)
