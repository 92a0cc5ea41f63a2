"""The IEC 62056-47 wrapper (COSEM transport over TCP/UDP): an 8-byte header, then the APDU.

    version (2) = 0x0001 | source wPort (2) | destination wPort (2) | length (2) | APDU

`WrapperDecoder` is bytes in, complete frames out: it never waits and never guesses.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

from protocols.dlms.errors import FrameError

VERSION = 1
HEADER_SIZE = 8
_HEADER = struct.Struct(">HHHH")  # version, source wPort, destination wPort, APDU length


@dataclass(frozen=True, slots=True)
class WrapperFrame:
    source: int  # wPort of the sender: the client SAP on requests, the server SAP on answers
    destination: int
    apdu: bytes

    def to_bytes(self) -> bytes:
        if len(self.apdu) > 0xFFFF:
            raise FrameError(
                f"an APDU of {len(self.apdu)} bytes does not fit one wrapper frame",
                retryable=False,
                hint="lower max-pdu so block transfer splits it",
            )
        return (
            VERSION.to_bytes(2, "big")
            + self.source.to_bytes(2, "big")
            + self.destination.to_bytes(2, "big")
            + len(self.apdu).to_bytes(2, "big")
            + self.apdu
        )

    @classmethod
    def from_bytes(cls, data: bytes) -> WrapperFrame:
        decoder = WrapperDecoder()
        frames = decoder.feed(data)
        if len(frames) != 1 or decoder.pending:
            raise FrameError(f"expected exactly one wrapper frame in {len(data)} bytes", retryable=False)
        return frames[0]


class WrapperDecoder:
    """Accumulates bytes from the line and cuts them into wrapper frames by the length field."""

    def __init__(self, max_apdu: int = 0xFFFF) -> None:
        self._buffer = bytearray()
        self._max_apdu = max_apdu

    @property
    def pending(self) -> int:
        return len(self._buffer)

    def feed(self, data: bytes) -> list[WrapperFrame]:
        if not self._buffer and len(data) >= HEADER_SIZE:
            # The usual case: the read holds exactly one whole frame; no copy into the buffer.
            version, source, destination, length = _HEADER.unpack_from(data)
            if version == VERSION and length <= self._max_apdu and len(data) == HEADER_SIZE + length:
                return [WrapperFrame(source, destination, bytes(data[HEADER_SIZE:]))]
        self._buffer += data
        frames: list[WrapperFrame] = []
        buffer = self._buffer
        while len(buffer) >= HEADER_SIZE:
            version, source, destination, length = _HEADER.unpack_from(buffer)
            if version != VERSION:
                raise FrameError(
                    f"wrapper header version is {version}, expected {VERSION}: the stream is "
                    "not IEC 62056-47 or lost sync",
                    hint="check the URL's scheme (dlms+tcp vs dlms+hdlc+tcp)",
                )
            if length > self._max_apdu:
                raise FrameError(
                    f"wrapper frame announces {length} bytes, above the {self._max_apdu} allowed"
                )
            if len(buffer) < HEADER_SIZE + length:
                break
            apdu = bytes(buffer[HEADER_SIZE : HEADER_SIZE + length])
            frames.append(WrapperFrame(source, destination, apdu))
            del buffer[: HEADER_SIZE + length]
        return frames
