from __future__ import annotations

import contextlib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from protocols.dlms import hdlc
from protocols.dlms.errors import FrameError
from protocols.errors import RemoteProtocolError

from .conftest import vectors


def _address(spec: dict[str, int]) -> hdlc.HdlcAddress:
    return hdlc.HdlcAddress(spec["logical"], spec.get("physical"), spec["size"])


@pytest.mark.parametrize("vector", vectors("hdlc"), ids=lambda v: v["name"])
def test_published_frames_decode(vector: dict) -> None:
    frame = hdlc.HdlcFrame.from_bytes(bytes.fromhex(vector["hex"]))
    assert frame.destination == _address(vector["destination"])
    assert frame.source == _address(vector["source_address"])
    assert frame.control == vector["control"]
    assert frame.info == bytes.fromhex(vector["info"])


@pytest.mark.parametrize("vector", vectors("hdlc"), ids=lambda v: v["name"])
def test_published_frames_encode(vector: dict) -> None:
    frame = hdlc.HdlcFrame(
        _address(vector["destination"]),
        _address(vector["source_address"]),
        vector["control"],
        bytes.fromhex(vector["info"]),
    )
    assert frame.to_bytes() == bytes.fromhex(vector["hex"])


def test_snrm_parameters_both_directions() -> None:
    vector = next(v for v in vectors("hdlc") if v["name"] == "snrm-with-parameters")
    params = hdlc.HdlcParameters(**vector["parameters"])
    assert hdlc.HdlcParameters.from_bytes(bytes.fromhex(vector["info"])) == params
    assert params.to_bytes() == bytes.fromhex(vector["info"])


def test_crc_check_value() -> None:
    # CRC-16/X.25 catalogue check value for "123456789".
    assert hdlc.crc16(b"123456789") == 0x906E


def _frame_with_fcs_ending_in_flag() -> bytes:
    for n in range(5000):
        frame = hdlc.HdlcFrame(
            hdlc.HdlcAddress(1), hdlc.HdlcAddress(16), 0x10, n.to_bytes(2, "big")
        ).to_bytes()
        if frame[-2] == hdlc.FLAG:
            return frame
    raise AssertionError("no such frame found")


def test_checksum_ending_in_flag_byte_is_found_by_length() -> None:
    frame = _frame_with_fcs_ending_in_flag()
    decoder = hdlc.HdlcDecoder()
    frames = decoder.feed(frame + frame)
    assert len(frames) == 2 and frames[0] == frames[1]


def test_frames_split_anywhere_reassemble() -> None:
    frames = [
        hdlc.HdlcFrame(
            hdlc.HdlcAddress(1, 17, 4), hdlc.HdlcAddress(16), hdlc.i_control(i, i), bytes(range(i * 9))
        )
        for i in range(1, 6)
    ]
    stream = b"".join(f.to_bytes() for f in frames)
    for cut in range(1, 9):
        decoder = hdlc.HdlcDecoder()
        out = []
        for i in range(0, len(stream), cut):
            out += decoder.feed(stream[i : i + cut])
        assert out == frames


def test_shared_flag_between_frames() -> None:
    one = hdlc.HdlcFrame(hdlc.HdlcAddress(1), hdlc.HdlcAddress(16), hdlc.UA).to_bytes()
    assert len(hdlc.HdlcDecoder().feed(one + one[1:])) == 2


def test_corrupted_checksum_is_a_frame_error() -> None:
    frame = bytearray(hdlc.HdlcFrame(hdlc.HdlcAddress(1), hdlc.HdlcAddress(16), 0x10, b"abc").to_bytes())
    frame[-2] ^= 0x01
    with pytest.raises(FrameError, match="check sequence"):
        hdlc.HdlcDecoder().feed(bytes(frame))


@settings(max_examples=400, deadline=None)
@given(st.binary(max_size=300))
def test_any_bytes_parse_or_raise_remote_error(data: bytes) -> None:
    with contextlib.suppress(RemoteProtocolError):
        hdlc.HdlcDecoder().feed(data)
    with contextlib.suppress(RemoteProtocolError):
        hdlc.HdlcParameters.from_bytes(data)


@settings(max_examples=200, deadline=None)
@given(
    st.integers(0, 0x3FFF),
    st.integers(0, 0x3FFF),
    st.integers(0, 0x7F),
    st.binary(max_size=200),
    st.booleans(),
)
def test_round_trip(logical: int, physical: int, client: int, info: bytes, segmented: bool) -> None:
    frame = hdlc.HdlcFrame(
        hdlc.HdlcAddress(logical, physical, 4), hdlc.HdlcAddress(client), 0x10, info, segmented
    )
    assert hdlc.HdlcDecoder().feed(frame.to_bytes()) == [frame]


def _crc_bitwise(data: bytes) -> int:
    """CRC-16/X.25 straight from its definition (reflected 0x1021 = 0x8408, init and xor 0xFFFF)."""
    crc = 0xFFFF
    for byte in data:
        crc ^= byte
        for _ in range(8):
            crc = (crc >> 1) ^ 0x8408 if crc & 1 else crc >> 1
    return crc ^ 0xFFFF


@settings(max_examples=100, deadline=None)
@given(st.binary(max_size=200))
def test_crc_equals_its_bitwise_definition(data: bytes) -> None:
    assert hdlc.crc16(data) == _crc_bitwise(data)
    assert hdlc.crc16(bytearray(data)) == hdlc.crc16(memoryview(data)) == _crc_bitwise(data)
