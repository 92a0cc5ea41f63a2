"""The `--fault` spelling."""

from __future__ import annotations

from decimal import Decimal

import pytest

from protocols.modbus.faults import Fault, FaultKind, FaultSpecError


def test_parses_kind_argument_share_and_rate() -> None:
    assert Fault.parse("no-answer") == Fault(FaultKind.NO_ANSWER)
    fault = Fault.parse("exception:6@0.5%0.25")
    assert (fault.kind, fault.exception_code, fault.share, fault.rate) == (FaultKind.EXCEPTION, 6, 0.5, 0.25)
    assert Fault.parse("exception").exception_code == 4
    assert Fault.parse("wrap:100").arg == Decimal(100)
    assert Fault.parse("CRC@0.1").kind is FaultKind.CRC


@pytest.mark.parametrize(
    ("text", "message"),
    [("smoke", "KIND"), ("no-answer:3", "takes no argument"), ("exception:x", "not a number"),
     ("exception:0", "1..255"), ("wrap:-1", "above 0"), ("crc@2", "between 0 and 1"),
     ("crc%x", "not a number")],
)
def test_bad_specs_say_what_is_wrong(text: str, message: str) -> None:
    with pytest.raises(FaultSpecError, match=message):
        Fault.parse(text)
