"""HDLC frames of IEC 62056-46: codec and a stream decoder that cuts frames by their length.

    7E | format (A0xx: type 3, segmentation bit, 11-bit length) | destination | source |
    control | HCS (if there is an information field) | information | FCS | 7E

Frames are found by the format field's length, never by scanning for the 0x7E flag: a
checksum may legitimately end in 0x7E, and scanning would stall there. Checksums are
CRC-16/X.25, little-endian. No I/O here.
"""

from __future__ import annotations

import binascii
from dataclasses import dataclass

from protocols.dlms.errors import FrameError

FLAG = 0x7E
FORMAT_TYPE_3 = 0xA000
SEGMENTED = 0x0800
MAX_FRAME_LENGTH = 0x7FF

# Control field values with the poll/final bit set, as DLMS uses them.
SNRM, UA, DISC, DM, FRMR, UI = 0x93, 0x73, 0x53, 0x1F, 0x97, 0x13
POLL_FINAL = 0x10

LLC_REQUEST = b"\xe6\xe6\x00"  # client -> server, first segment of an APDU
LLC_RESPONSE = b"\xe6\xe7\x00"


# CRC-16/X.25 is the bit-reflected form of the CCITT CRC that binascii computes in C: reflect
# each input byte, run crc_hqx with the same (symmetric) initial value, reflect the result.
_REFLECT = bytes(int(f"{byte:08b}"[::-1], 2) for byte in range(256))


def crc16(data: bytes | bytearray | memoryview) -> int:
    """CRC-16/X.25 (HDLC FCS): reflected 0x1021, init 0xFFFF, final xor 0xFFFF."""
    crc = binascii.crc_hqx(bytes(data).translate(_REFLECT), 0xFFFF)
    return ((_REFLECT[crc & 0xFF] << 8) | _REFLECT[crc >> 8]) ^ 0xFFFF


@dataclass(frozen=True, slots=True)
class HdlcAddress:
    """An HDLC address: 1 byte (logical only), 2 bytes (upper, lower) or 4 bytes (2 + 2)."""

    logical: int
    physical: int | None = None
    size: int = 1

    def to_bytes(self) -> bytes:
        if self.size == 1:
            if self.logical > 0x7F:
                raise FrameError(
                    f"HDLC address {self.logical} does not fit one byte",
                    retryable=False,
                    hint="use addr-size=2 or 4",
                )
            return bytes(((self.logical << 1) | 1,))
        physical = self.physical if self.physical is not None else 0
        if self.size == 2:
            if self.logical > 0x7F or physical > 0x7F:
                raise FrameError(
                    f"HDLC address {self.logical}/{physical} does not fit 2 bytes",
                    retryable=False,
                    hint="use addr-size=4",
                )
            return bytes((self.logical << 1, (physical << 1) | 1))
        if self.size == 4:
            if self.logical > 0x3FFF or physical > 0x3FFF:
                raise FrameError(
                    f"HDLC address {self.logical}/{physical} does not fit 4 bytes", retryable=False
                )
            return bytes(
                (
                    (self.logical >> 7) << 1,
                    (self.logical & 0x7F) << 1,
                    (physical >> 7) << 1,
                    ((physical & 0x7F) << 1) | 1,
                )
            )
        raise FrameError(f"HDLC address size {self.size} is not 1, 2 or 4", retryable=False)

    @classmethod
    def decode(cls, data: bytes, pos: int) -> tuple[HdlcAddress, int]:
        """Decode the address starting at `pos`; it ends at the first byte with bit 0 set."""
        end = pos
        while end < len(data) and not data[end] & 1:
            end += 1
            if end - pos >= 4:
                break
        if end >= len(data) or not data[end] & 1:
            raise FrameError(f"HDLC address at offset {pos} has no final byte within 4 bytes")
        raw = data[pos : end + 1]
        if len(raw) == 1:
            return cls(raw[0] >> 1, None, 1), end + 1
        if len(raw) == 2:
            return cls(raw[0] >> 1, raw[1] >> 1, 2), end + 1
        if len(raw) == 4:
            return cls(((raw[0] >> 1) << 7) | (raw[1] >> 1), ((raw[2] >> 1) << 7) | (raw[3] >> 1), 4), end + 1
        raise FrameError(f"HDLC address at offset {pos} is 3 bytes long; 1, 2 or 4 are allowed")


def is_information(control: int) -> bool:
    return not control & 1


def is_receive_ready(control: int) -> bool:
    return control & 0x0F == 0x01


def i_control(send_seq: int, recv_seq: int, final: bool = True) -> int:
    return ((recv_seq & 7) << 5) | (POLL_FINAL if final else 0) | ((send_seq & 7) << 1)


def rr_control(recv_seq: int) -> int:
    return ((recv_seq & 7) << 5) | POLL_FINAL | 0x01


@dataclass(frozen=True, slots=True)
class HdlcFrame:
    destination: HdlcAddress
    source: HdlcAddress
    control: int
    info: bytes = b""
    segmented: bool = False

    @property
    def send_seq(self) -> int:
        return (self.control >> 1) & 7

    @property
    def recv_seq(self) -> int:
        return (self.control >> 5) & 7

    def to_bytes(self) -> bytes:
        header = self.destination.to_bytes() + self.source.to_bytes() + bytes((self.control,))
        length = 2 + len(header) + 2 + (len(self.info) + 2 if self.info else 0)
        if length > MAX_FRAME_LENGTH:
            raise FrameError(f"an HDLC frame of {length} bytes exceeds {MAX_FRAME_LENGTH}", retryable=False)
        fmt = (FORMAT_TYPE_3 | (SEGMENTED if self.segmented else 0) | length).to_bytes(2, "big")
        body = bytearray(fmt + header)
        if self.info:
            body += crc16(body).to_bytes(2, "little")
            body += self.info
        body += crc16(body).to_bytes(2, "little")
        return bytes((FLAG,)) + bytes(body) + bytes((FLAG,))

    @classmethod
    def from_bytes(cls, data: bytes) -> HdlcFrame:
        decoder = HdlcDecoder()
        frames = decoder.feed(data)
        if len(frames) != 1:
            raise FrameError(f"expected one HDLC frame in {len(data)} bytes, found {len(frames)}")
        return frames[0]


def _parse_body(body: bytes) -> HdlcFrame:
    """Parse the bytes between the flags (format field to FCS included)."""
    fmt = int.from_bytes(body[0:2], "big")
    if crc16(body[:-2]) != int.from_bytes(body[-2:], "little"):
        raise FrameError(
            f"HDLC frame check sequence is wrong (frame {body[:16].hex()}...)",
            hint="line noise or a wrong baud rate; the read may be retried",
        )
    destination, pos = HdlcAddress.decode(body, 2)
    source, pos = HdlcAddress.decode(body, pos)
    if pos >= len(body) - 2:
        raise FrameError("HDLC frame ends before its control field")
    control = body[pos]
    pos += 1
    info = b""
    if pos < len(body) - 2:
        if pos + 2 > len(body) - 2:
            raise FrameError("HDLC frame has a header check sequence cut short")
        if crc16(body[:pos]) != int.from_bytes(body[pos : pos + 2], "little"):
            raise FrameError("HDLC header check sequence is wrong")
        info = bytes(body[pos + 2 : -2])
    return HdlcFrame(destination, source, control, info, bool(fmt & SEGMENTED))


class HdlcDecoder:
    """Bytes from the line in, whole frames out; bytes between frames are skipped."""

    def __init__(self) -> None:
        self._buffer = bytearray()

    @property
    def pending(self) -> int:
        return len(self._buffer)

    def feed(self, data: bytes) -> list[HdlcFrame]:
        buffer = self._buffer
        buffer += data
        frames: list[HdlcFrame] = []
        while True:
            start = buffer.find(FLAG)
            if start < 0:
                buffer.clear()
                return frames
            if start:
                del buffer[:start]
            if len(buffer) < 3:
                return frames
            if buffer[1] == FLAG:  # a closing flag followed by an opening one
                del buffer[:1]
                continue
            fmt = int.from_bytes(buffer[1:3], "big")
            if fmt & 0xF000 != FORMAT_TYPE_3:
                del buffer[:1]  # not a frame start: look for the next flag
                continue
            length = fmt & MAX_FRAME_LENGTH
            if length < 7:
                raise FrameError(f"HDLC frame announces {length} bytes, too short for a frame")
            if len(buffer) < length + 2:
                return frames
            if buffer[length + 1] != FLAG:
                raise FrameError(
                    f"HDLC frame of {length} bytes does not end with a flag",
                    hint="the line lost bytes; the read may be retried",
                )
            body = bytes(buffer[1 : length + 1])
            # Keep the closing flag: it may also open the next frame.
            del buffer[: length + 1]
            frames.append(_parse_body(body))


@dataclass(frozen=True, slots=True)
class HdlcParameters:
    """SNRM/UA parameter negotiation (IEC 62056-46 6.4.4.4.3.2), from the sender's side."""

    max_info_tx: int = 128
    max_info_rx: int = 128
    window_tx: int = 1
    window_rx: int = 1

    def to_bytes(self) -> bytes:
        def field(ident: int, value: int, size: int | None = None) -> bytes:
            width = size or (1 if value < 0x100 else 2)
            return bytes((ident, width)) + value.to_bytes(width, "big")

        params = (
            field(5, self.max_info_tx)
            + field(6, self.max_info_rx)
            + field(7, self.window_tx, 4)
            + field(8, self.window_rx, 4)
        )
        return bytes((0x81, 0x80, len(params))) + params

    @classmethod
    def from_bytes(cls, data: bytes) -> HdlcParameters:
        if not data:
            return cls()
        if len(data) < 3 or data[0] != 0x81 or data[1] != 0x80 or data[2] != len(data) - 3:
            raise FrameError(f"HDLC parameter field {data.hex()} is not format 81 80 with its length")
        values = {5: 128, 6: 128, 7: 1, 8: 1}
        pos = 3
        while pos < len(data):
            if pos + 2 > len(data):
                raise FrameError(f"HDLC parameter field {data.hex()} is cut short")
            ident, width = data[pos], data[pos + 1]
            if pos + 2 + width > len(data) or width > 4:
                raise FrameError(f"HDLC parameter {ident} in {data.hex()} is cut short")
            values[ident] = int.from_bytes(data[pos + 2 : pos + 2 + width], "big")
            pos += 2 + width
        return cls(values[5], values[6], values[7], values[8])
