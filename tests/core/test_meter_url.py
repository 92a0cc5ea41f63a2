from __future__ import annotations

import contextlib

import pytest
from hypothesis import given
from hypothesis import strategies as st

from core.errors import ContractError
from core.meter_url import MeterUrl, redact


@pytest.mark.parametrize(
    "url",
    [
        "dlms+tcp://127.0.0.1:4059?client=16&server=1",
        "dlms+hdlc+tcp://gw.example:5000?client=16&server=1&physical=17&addr-size=2",
        "dlms+hdlc+serial:///dev/ttyUSB0?baud=9600",
        "dlms+tcp://10.0.0.1:4059?client=1&server=1&auth=hls-gmac&key=meter-keys:M1",
        "modbus+tcp://127.0.0.1:502?unit=1&map=eastron-sdm630",
        "modbus+rtu:///dev/ttyUSB0?baud=9600&unit=1&map=eastron-sdm120",
        "modbus+rtu+tcp://gw:4001?unit=7&map=schneider-iem3000",
    ],
)
def test_examples_parse_and_print_back(url: str) -> None:
    parsed = MeterUrl.parse(url)
    assert MeterUrl.parse(str(parsed)) == parsed


def test_default_port_and_line() -> None:
    url = MeterUrl.parse("dlms+tcp://meter7?client=16&server=1")
    assert url.port == 4059 and url.line == "meter7:4059"
    assert MeterUrl.parse("modbus+rtu:///dev/ttyS1?unit=1&map=m").line == "/dev/ttyS1"


@pytest.mark.parametrize(
    ("url", "part"),
    [
        ("http://host", "scheme"),
        ("modbus+tcp://host:502?unit=1", "parameter map"),
        ("modbus+tcp://host:70000?unit=1&map=m", "port"),
        ("modbus+tcp://host:502?unit=one&map=m", "parameter unit"),
        ("dlms+tcp://host?client=16&colour=red", "parameter colour"),
        ("dlms+tcp://host?auth=lls", "parameter key"),
        ("dlms+tcp://host?auth=lls&key=rawsecret", "parameter key"),
        ("dlms+hdlc+serial://host/dev/ttyUSB0", "host"),
        ("modbus+tcp://:502?map=m", "host"),
    ],
)
def test_errors_name_the_part_that_is_wrong(url: str, part: str) -> None:
    with pytest.raises(ContractError) as info:
        MeterUrl.parse(url)
    assert part in str(info.value)


def test_inline_secrets_are_refused_and_never_echoed() -> None:
    with pytest.raises(ContractError) as info:
        MeterUrl.parse("dlms+tcp://host?client=16&password=hunter2")
    assert "hunter2" not in str(info.value)
    assert "hunter2" not in redact("dlms+tcp://host?password=hunter2")


@given(st.text(max_size=60))
def test_any_text_parses_or_raises_contract_error(text: str) -> None:
    with contextlib.suppress(ContractError):
        MeterUrl.parse(text)
