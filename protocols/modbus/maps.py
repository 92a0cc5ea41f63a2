"""Register maps: how one meter model lays out its registers, as data staff can add without code.

A map is a TOML file in fixtures/registermaps/ (see `_template.toml` there for every field).
Each entry gives the register address twice, as the manufacturer's manual numbers it and as
sent on the wire, under a declared numbering convention, so a transcription slip is caught
at load time; its function (holding or input), data type, word order, decimal scale, unit,
the OBIS quantity it feeds, an optional valid range, and the manual's page or table.

A malformed map raises `MapError` naming the file, the entry and the reason.
"""

from __future__ import annotations

import functools
import math
import re
import time
import tomllib
from collections.abc import Sequence
from decimal import Decimal
from enum import StrEnum
from functools import cached_property
from itertools import pairwise
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from core.errors import ContractError
from core.obis import canonical
from core.paths import fixture
from core.reading import SCALE_RANGE
from protocols.modbus.datatypes import DataType, WordOrder
from protocols.modbus.errors import MapError

MAX_REGISTERS_PER_READ = 125  # Modbus application protocol v1.1b3, 6.3/6.4: 1 to 125 registers
_NAME = re.compile(r"^[a-z0-9][a-z0-9-]*$")


class Function(StrEnum):
    HOLDING = "holding"  # function code 3, the 4xxxx table
    INPUT = "input"  # function code 4, the 3xxxx table

    @property
    def code(self) -> int:
        return 3 if self is Function.HOLDING else 4


class Numbering(StrEnum):
    """How a manual numbers its registers, relative to the address sent on the wire."""

    WIRE = "wire"  # the manual prints the wire address (often in hex)
    ONE_BASED = "one-based"  # register number = wire address + 1 (Schneider)
    MODICON = "modicon"  # 30001 + wire for input, 40001 + wire for holding (Eastron)

    def manual_address(self, wire: int, function: Function) -> int:
        if self is Numbering.WIRE:
            return wire
        if self is Numbering.ONE_BASED:
            return wire + 1
        base = 3 if function is Function.INPUT else 4
        # five digits up to 9999 registers, six beyond (300001 / 400001)
        return base * 10_000 + 1 + wire if wire < 9999 else base * 100_000 + 1 + wire


class RegisterEntry(BaseModel):
    """One value a meter serves."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(min_length=1)
    quantity: str
    address: int = Field(ge=0, le=0xFFFF, description="the address sent on the wire (0-based)")
    manual_address: int = Field(ge=0, description="the address as the manual numbers it")
    function: Function
    type: DataType
    word_order: WordOrder
    unit: str
    scale: int = Field(default=0, description="value in `unit` = raw x 10^scale")
    resolution: int | None = Field(default=None, description="floats: round once to 10^resolution")
    min: Decimal | None = None
    max: Decimal | None = None
    source: str = Field(min_length=1, description="the manual's page or table")

    @field_validator("quantity")
    @classmethod
    def _quantity(cls, value: str) -> str:
        try:
            return canonical(value)
        except ContractError as exc:
            raise ValueError(str(exc)) from exc

    @model_validator(mode="after")
    def _consistent(self) -> RegisterEntry:
        if self.type.is_float:
            if self.resolution is None:
                raise ValueError(f"a {self.type} entry needs `resolution` (the decimal exponent to round to)")
            exponent = self.resolution
        else:
            if self.resolution is not None:
                raise ValueError("`resolution` is only for floats; integers are exact with `scale`")
            exponent = self.scale
        if not SCALE_RANGE[0] <= exponent <= SCALE_RANGE[1]:
            raise ValueError(f"decimal exponent {exponent} is outside {SCALE_RANGE}")
        if self.min is not None and self.max is not None and self.min > self.max:
            raise ValueError(f"min {self.min} is above max {self.max}")
        if self.address + self.type.width > 0x10000:
            raise ValueError(f"{self.type} at {self.address} runs past register 65535")
        return self

    @property
    def width(self) -> int:
        return self.type.width

    @property
    def end(self) -> int:
        """One past the last register."""
        return self.address + self.type.width

    @property
    def reading_scale(self) -> int:
        """The `scale` of the Readings this entry produces."""
        return self.resolution if self.resolution is not None else self.scale

    @cached_property
    def reading_fields(self) -> tuple[str, int, str]:
        """The Reading's `quantity`, `scale` and `unit` for this entry (looked up once per value read)."""
        return self.quantity, self.reading_scale, self.unit

    @cached_property
    def bounds(self) -> tuple[int | None, int | None]:
        """The declared range in reading units (value x 10^reading_scale), so checks compare integers."""
        low = None if self.min is None else math.ceil(self.min.scaleb(-self.reading_scale))
        high = None if self.max is None else math.floor(self.max.scaleb(-self.reading_scale))
        return low, high


class RegisterMap(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str
    title: str = Field(min_length=1)
    manufacturer: str = Field(min_length=1)
    manual: str = Field(min_length=1, description="the manual's title, document number and version")
    numbering: Numbering
    max_registers: int = Field(default=MAX_REGISTERS_PER_READ, ge=1, le=MAX_REGISTERS_PER_READ)
    max_gap: int = Field(default=8, ge=0, description="unused registers read through to save a request")
    entries: tuple[RegisterEntry, ...] = Field(min_length=1)
    path: Path | None = None

    @model_validator(mode="after")
    def _consistent(self) -> RegisterMap:
        seen_names: set[str] = set()
        seen_quantities: dict[str, str] = {}
        for entry in self.entries:
            if entry.name in seen_names:
                raise ValueError(f"entry {entry.name!r}: the name is used twice")
            seen_names.add(entry.name)
            if entry.quantity in seen_quantities:
                raise ValueError(
                    f"entry {entry.name!r}: quantity {entry.quantity} is already fed by "
                    f"{seen_quantities[entry.quantity]!r}"
                )
            seen_quantities[entry.quantity] = entry.name
            expected = self.numbering.manual_address(entry.address, entry.function)
            if entry.manual_address != expected:
                raise ValueError(
                    f"entry {entry.name!r}: manual_address {entry.manual_address} does not match wire "
                    f"address {entry.address} under numbering {self.numbering.value!r} (expected {expected})"
                )
            if entry.width > self.max_registers:
                raise ValueError(f"entry {entry.name!r}: wider than max_registers {self.max_registers}")
        for function in Function:
            spans = sorted((e.address, e.end, e.name) for e in self.entries if e.function is function)
            for (_, end, first), (start, _, second) in pairwise(spans):
                if start < end:
                    raise ValueError(f"entries {first!r} and {second!r} overlap in the {function} registers")
        return self

    @cached_property
    def by_quantity(self) -> dict[str, RegisterEntry]:
        return {entry.quantity: entry for entry in self.entries}

    @property
    def quantities(self) -> list[str]:
        return [entry.quantity for entry in self.entries]

    def select(self, quantities: Sequence[str] | None) -> list[RegisterEntry]:
        """The entries feeding `quantities` (all when None); an unknown quantity raises MapError."""
        if quantities is None:
            return list(self.entries)
        chosen: list[RegisterEntry] = []
        for quantity in quantities:
            try:
                code = canonical(quantity)
            except ContractError as exc:
                raise MapError(str(exc), hint=exc.hint) from exc
            if code not in self.by_quantity:
                raise MapError(
                    f"register map {self.name!r} has no entry for quantity {code}",
                    hint="this map serves " + ", ".join(self.quantities),
                )
            chosen.append(self.by_quantity[code])
        return chosen


def maps_dir() -> Path:
    return fixture("registermaps")


@functools.lru_cache(maxsize=256)  # every read looks its map up by name; building the Path costs more
def _map_path(name: str) -> Path:
    if name.endswith(".toml") or "/" in name:
        return Path(name)
    if not _NAME.match(name):
        raise MapError(
            f"register map name {name!r} is not lowercase letters, digits and dashes",
            hint="`amr meters maps` lists the maps; or give the path of a .toml file",
        )
    return maps_dir() / f"{name}.toml"


_cache: dict[Path, tuple[int, float, RegisterMap]] = {}
RECHECK_SECONDS = 2.0  # a poll reads thousands of meters a second: look at the file's mtime now and then


def load_map(name: str) -> RegisterMap:
    """Load a map by name (fixtures/registermaps/NAME.toml) or by the path of a .toml file."""
    path = _map_path(name)
    cached = _cache.get(path)
    now = time.monotonic()
    if cached is not None and now - cached[1] < RECHECK_SECONDS:
        return cached[2]
    try:
        stamp = path.stat().st_mtime_ns
    except FileNotFoundError:
        known = ", ".join(m.name for m in list_maps())
        raise MapError(f"register map {name!r} not found at {path}",
                       hint=f"known maps: {known}; add a TOML file to {maps_dir()}") from None
    if cached is not None and cached[0] == stamp:
        _cache[path] = (stamp, now, cached[2])
        return cached[2]
    loaded = parse_map(path.read_bytes().decode("utf-8"), path=path)
    _cache[path] = (stamp, now, loaded)
    return loaded


def list_maps() -> list[RegisterMap]:
    """Every shipped map (files starting with `_`, such as the template, are left out)."""
    paths = sorted(maps_dir().glob("*.toml"))
    return [load_map(str(path)) for path in paths if not path.name.startswith("_")]


def parse_map(text: str, *, path: Path) -> RegisterMap:
    """Parse and validate a map's TOML text; errors name `path`, the entry and the reason."""
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise MapError(f"register map {path}: not valid TOML: {exc}",
                       hint="check the file against fixtures/registermaps/_template.toml") from exc
    defaults = {key: raw[key] for key in ("function", "word_order") if key in raw}
    entries = raw.pop("register", [])
    for key in defaults:
        raw.pop(key)
    if not isinstance(entries, list):
        raise MapError(f"register map {path}: `register` must be an array of tables ([[register]])")
    expected_name = path.stem
    if raw.get("name") != expected_name:
        raise MapError(f"register map {path}: name {raw.get('name')!r} differs from the file name",
                       hint=f"write name = \"{expected_name}\"")
    built = []
    for index, entry in enumerate(entries):
        label = f"entry {index + 1} ({entry.get('name', 'unnamed')!r})" if isinstance(entry, dict) else \
            f"entry {index + 1}"
        try:
            built.append(RegisterEntry.model_validate({**defaults, **entry}))
        except (ValidationError, TypeError) as exc:
            raise MapError(f"register map {path}: {label}: {_reason(exc)}",
                           hint="see fixtures/registermaps/_template.toml for each field") from None
    try:
        return RegisterMap.model_validate({**raw, "entries": tuple(built), "path": path})
    except ValidationError as exc:
        raise MapError(f"register map {path}: {_reason(exc)}",
                       hint="see fixtures/registermaps/_template.toml for each field") from None


def _reason(exc: Exception) -> str:
    if not isinstance(exc, ValidationError):
        return str(exc)
    parts = []
    for error in exc.errors():
        where = ".".join(str(p) for p in error["loc"])
        message = str(error["msg"]).removeprefix("Value error, ")
        parts.append(f"{where}: {message}" if where else message)
    return "; ".join(parts)


def describe(register_map: RegisterMap) -> dict[str, Any]:
    """A map's summary for listings (`amr meters maps`)."""
    return {
        "name": register_map.name,
        "title": register_map.title,
        "manufacturer": register_map.manufacturer,
        "manual": register_map.manual,
        "entries": len(register_map.entries),
        "quantities": register_map.quantities,
    }
