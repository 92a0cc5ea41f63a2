from __future__ import annotations

import contextlib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from protocols.dlms.errors import FrameError
from protocols.dlms.wrapper import WrapperDecoder, WrapperFrame
from protocols.errors import RemoteProtocolError

from .conftest import vectors


@pytest.mark.parametrize("vector", vectors("wrapper"), ids=lambda v: v["name"])
def test_published_wrapper_both_directions(vector: dict) -> None:
    raw = bytes.fromhex(vector["hex"])
    frame = WrapperFrame.from_bytes(raw)
    assert (frame.source, frame.destination) == (vector["source_port"], vector["destination_port"])
    assert frame.apdu == raw[8:]
    assert WrapperFrame(vector["source_port"], vector["destination_port"], raw[8:]).to_bytes() == raw


def test_frames_cut_by_length_across_reads() -> None:
    frames = [WrapperFrame(16, 1, bytes([n]) * n) for n in range(1, 20)]
    stream = b"".join(f.to_bytes() for f in frames)
    decoder = WrapperDecoder()
    out = []
    for i in range(0, len(stream), 7):
        out += decoder.feed(stream[i : i + 7])
    assert out == frames and decoder.pending == 0


def test_wrong_version_is_a_frame_error() -> None:
    with pytest.raises(FrameError, match="version"):
        WrapperDecoder().feed(b"\x00\x02\x00\x10\x00\x01\x00\x01\x00")


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=200))
def test_any_bytes_parse_or_raise_remote_error(data: bytes) -> None:
    with contextlib.suppress(RemoteProtocolError):
        WrapperDecoder().feed(data)
