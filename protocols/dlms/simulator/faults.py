"""Faults a simulated meter can be told to show, by name (`--fault latency=0.3`, `--fault drop-block`)."""

from __future__ import annotations

from dataclasses import dataclass

from protocols.dlms.errors import DlmsLocalError

KNOWN = {
    "latency": "seconds added before every answer (latency=0.3)",
    "no-answer": "the meter never answers anything after the connection opens",
    "drop-block": "the connection is dropped in the middle of a block transfer",
    "bad-checksum": "every answer frame carries a corrupted checksum (HDLC) or header (wrapper)",
    "clock-drift": "the meter's clock runs ahead by N seconds (clock-drift=120)",
    "missing-intervals": "every Nth load-profile interval is missing (missing-intervals=7)",
    "rollover": "the energy register wraps at 10^N Wh (rollover=6)",
    "inverted-deviation": "the clock writes +420 for UTC+7, as some meter models do (a quirk, not a fault)",
}


@dataclass(frozen=True, slots=True)
class Faults:
    latency: float = 0.0
    no_answer: bool = False
    drop_block: bool = False
    bad_checksum: bool = False
    clock_drift: int = 0
    missing_every: int = 0
    rollover_digits: int = 0
    inverted_deviation: bool = False

    @classmethod
    def parse(cls, specs: list[str] | tuple[str, ...]) -> Faults:
        values: dict[str, object] = {}
        for spec in specs:
            name, _, arg = spec.partition("=")
            name = name.strip()
            if name not in KNOWN:
                raise DlmsLocalError(
                    f"simulator fault {spec!r} is not known",
                    hint="known faults: " + "; ".join(f"{k}: {v}" for k, v in KNOWN.items()),
                )
            try:
                if name == "latency":
                    values["latency"] = float(arg or "0.3")
                elif name == "clock-drift":
                    values["clock_drift"] = int(arg or "120")
                elif name == "missing-intervals":
                    values["missing_every"] = int(arg or "7")
                elif name == "rollover":
                    values["rollover_digits"] = int(arg or "6")
                else:
                    values[name.replace("-", "_")] = True
            except ValueError:
                raise DlmsLocalError(f"simulator fault {spec!r}: {arg!r} is not a number") from None
        return cls(**values)  # type: ignore[arg-type]
