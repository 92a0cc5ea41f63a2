from __future__ import annotations

import contextlib

import pytest
from hypothesis import given
from hypothesis import strategies as st

from core.errors import ContractError
from core.obis import Obis, ValueKind, canonical

groups = st.tuples(*[st.integers(0, 255)] * 6)


@given(groups)
def test_dotted_text_round_trips(values: tuple[int, ...]) -> None:
    code = Obis(*values)
    assert Obis.parse(str(code)) == code
    assert Obis.from_bytes(code.to_bytes()) == code


def test_standard_spelling_is_accepted_and_canonicalised() -> None:
    assert canonical("1-0:1.8.0.255") == "1.0.1.8.0.255"
    assert canonical("1-0:1.8.0*255") == "1.0.1.8.0.255"
    assert canonical("1-0:1.8.0") == "1.0.1.8.0.255"


@pytest.mark.parametrize("text", ["", "1.0.1.8.0", "1.0.1.8.0.256", "a.b.c.d.e.f", "1.0.1.8.0.255.1"])
def test_malformed_codes_are_refused_naming_the_input(text: str) -> None:
    with pytest.raises(ContractError) as info:
        Obis.parse(text)
    assert repr(text) in str(info.value)


@given(st.text(max_size=30))
def test_any_text_parses_or_raises_contract_error(text: str) -> None:
    with contextlib.suppress(ContractError):
        Obis.parse(text)


def test_kinds_follow_the_d_group() -> None:
    assert Obis.parse("1.0.1.8.0.255").kind is ValueKind.REGISTER
    assert Obis.parse("1.0.1.29.0.255").kind is ValueKind.INTERVAL
    assert Obis.parse("0.0.1.0.0.255").kind is ValueKind.INSTANT
