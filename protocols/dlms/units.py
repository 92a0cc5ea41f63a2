"""COSEM unit enumeration (Blue Book 4.3.2, table 4) for the units meters report."""

from __future__ import annotations

UNITS = {
    1: "a",
    2: "mo",
    3: "wk",
    4: "d",
    5: "h",
    6: "min",
    7: "s",
    8: "°",
    9: "°C",
    10: "currency",
    27: "W",
    28: "VA",
    29: "var",
    30: "Wh",
    31: "VAh",
    32: "varh",
    33: "A",
    34: "C",
    35: "V",
    44: "Hz",
    45: "1/(Wh)",
    46: "1/(varh)",
    47: "1/(VAh)",
    255: "",
}


def unit_name(code: int) -> str:
    return UNITS.get(code, f"unit-{code}")


def unit_code(name: str) -> int:
    for code, spelled in UNITS.items():
        if spelled == name:
            return code
    raise KeyError(name)
