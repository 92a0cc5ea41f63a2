from __future__ import annotations

import datetime as dt

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from protocols.dlms.cosem_time import CosemDateTime
from protocols.dlms.errors import ApduError

NOON_HANOI = bytes.fromhex("07EA030A02 0C000000 FE5C 00".replace(" ", ""))  # 2026-03-10 12:00 local, dev -420
UTC_METER = bytes.fromhex("07EA030A02 05000000 0000 00".replace(" ", ""))  # 2026-03-10 05:00, deviation 0
UNSPECIFIED = bytes.fromhex("07EA030A02 0C000000 8000 FF".replace(" ", ""))


def test_meter_at_utc_plus_7_with_blue_book_deviation() -> None:
    assert CosemDateTime.from_bytes(NOON_HANOI).to_utc() == dt.datetime(2026, 3, 10, 5, tzinfo=dt.UTC)


def test_meter_at_utc_is_aware_utc() -> None:
    when = CosemDateTime.from_bytes(UTC_METER).to_utc()
    assert when == dt.datetime(2026, 3, 10, 5, tzinfo=dt.UTC) and when.tzinfo is not None


def test_inverted_sign_is_a_named_setting() -> None:
    inverted = NOON_HANOI[:9] + (420).to_bytes(2, "big", signed=True) + b"\x00"
    assert CosemDateTime.from_bytes(inverted).to_utc(deviation_inverted=True) == dt.datetime(
        2026, 3, 10, 5, tzinfo=dt.UTC
    )


def test_unspecified_deviation_is_local_to_the_configured_zone() -> None:
    stamp = CosemDateTime.from_bytes(UNSPECIFIED)
    assert stamp.deviation is None and stamp.status == 0
    assert stamp.to_utc(unspecified_zone="Asia/Ho_Chi_Minh") == dt.datetime(2026, 3, 10, 5, tzinfo=dt.UTC)


def test_encode_matches_the_hand_written_bytes() -> None:
    assert CosemDateTime.from_utc(dt.datetime(2026, 3, 10, 5, tzinfo=dt.UTC), -420).to_bytes() == NOON_HANOI


@settings(max_examples=200, deadline=None)
@given(
    st.datetimes(min_value=dt.datetime(2000, 1, 2), max_value=dt.datetime(2099, 12, 30)),
    st.sampled_from([-420, 0, 60, -330, None]),
    st.booleans(),
)
def test_round_trip(naive: dt.datetime, deviation: int | None, inverted: bool) -> None:
    when = naive.replace(microsecond=naive.microsecond // 10_000 * 10_000, tzinfo=dt.UTC)
    stamp = CosemDateTime.from_utc(when, deviation, deviation_inverted=inverted)
    back = CosemDateTime.from_bytes(stamp.to_bytes()).to_utc(deviation_inverted=inverted)
    assert back == when


@pytest.mark.parametrize(
    "raw",
    [b"", b"\x07" * 11, bytes.fromhex("FFFF030A020C000000FE5C00"), bytes.fromhex("07EA0D0A020C000000FE5C00")],
)
def test_bad_date_times_raise(raw: bytes) -> None:
    with pytest.raises(ApduError):
        CosemDateTime.from_bytes(raw)
