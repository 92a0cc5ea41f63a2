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


@settings(max_examples=60, deadline=None)
@given(
    st.lists(st.tuples(st.integers(0, 0xFFFF), st.integers(0, 0xFFFF), st.binary(max_size=300)), max_size=6),
    st.lists(st.integers(1, 400), max_size=8),
)
def test_frames_split_anywhere_come_out_whole(frames: list[tuple[int, int, bytes]], cuts: list[int]) -> None:
    stream = b"".join(WrapperFrame(s, d, a).to_bytes() for s, d, a in frames)
    decoder, out, pos = WrapperDecoder(), [], 0
    for size in [*cuts, len(stream)]:
        out += decoder.feed(stream[pos : pos + size])
        pos += size
    assert [(f.source, f.destination, f.apdu) for f in out] == frames
    assert all(type(f.apdu) is bytes for f in out) and decoder.pending == 0
