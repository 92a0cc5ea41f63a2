"""Transports on asyncio: the IEC 62056-47 wrapper over TCP, HDLC over TCP and serial lines.

A transport carries one APDU out and one APDU back (`request`); HDLC segmentation, RR
polling and sequence numbers stay inside. Every wait has a timeout, and a peer that closes
raises `ConnectionLost` at once instead of spinning.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from typing import Any, Protocol

from core.meter_url import MeterUrl
from protocols.dlms import hdlc
from protocols.dlms.errors import FrameError
from protocols.dlms.line import FramedLine
from protocols.dlms.serial_line import open_serial
from protocols.dlms.wrapper import VERSION, WrapperDecoder, WrapperFrame
from protocols.errors import ConnectionLost, MeterTimeout


class Transport(Protocol):
    async def request(self, apdu: bytes) -> bytes: ...

    async def close(self) -> None: ...


class WrapperTransport:
    def __init__(self, line: FramedLine[WrapperFrame], *, client: int, server: int) -> None:
        self._line = line
        self._client, self._server = client, server
        # The 8-byte header toward this server is the same on every request but for the length.
        self._header = VERSION.to_bytes(2, "big") + client.to_bytes(2, "big") + server.to_bytes(2, "big")

    async def request(self, apdu: bytes) -> bytes:
        if len(apdu) > 0xFFFF:
            WrapperFrame(self._client, self._server, apdu).to_bytes()  # raises the precise FrameError
        await self._line.write(self._header + len(apdu).to_bytes(2, "big") + apdu)
        while True:
            frame = await self._line.frame()
            if frame.destination == self._client:
                return frame.apdu

    async def close(self) -> None:
        await self._line.close()


class HdlcTransport:
    """The client (primary station) side of an HDLC link, window size 1."""

    def __init__(
        self,
        line: FramedLine[hdlc.HdlcFrame],
        *,
        client: hdlc.HdlcAddress,
        server: hdlc.HdlcAddress,
        max_info: int,
    ) -> None:
        self._line = line
        self._client, self._server = client, server
        self._where = line.where
        self._proposed = hdlc.HdlcParameters(max_info, max_info, 1, 1)
        self.parameters = hdlc.HdlcParameters()
        self._send_seq = 0
        self._recv_seq = 0
        self._connected = False

    async def _send(self, control: int, info: bytes = b"", segmented: bool = False) -> None:
        frame = hdlc.HdlcFrame(self._server, self._client, control, info, segmented)
        await self._line.write(frame.to_bytes())

    async def _receive(self) -> hdlc.HdlcFrame:
        while True:
            frame = await self._line.frame()
            # On a shared bus, frames for other clients are not ours to read.
            if frame.destination.logical == self._client.logical:
                return frame

    async def connect(self) -> None:
        await self._send(hdlc.SNRM, self._proposed.to_bytes())
        answer = await self._receive()
        if answer.control == hdlc.DM:
            raise ConnectionLost(
                f"{self._where}: the meter refused the HDLC connection (DM)",
                hint="check the server and physical addresses and addr-size",
            )
        if answer.control != hdlc.UA:
            raise FrameError(f"{self._where}: expected UA to SNRM, got control {answer.control:#04x}")
        offered = hdlc.HdlcParameters.from_bytes(answer.info)
        # The UA gives the server's view: its transmit size is what we receive, and back.
        self.parameters = hdlc.HdlcParameters(
            max_info_tx=min(self._proposed.max_info_tx, offered.max_info_rx),
            max_info_rx=min(self._proposed.max_info_rx, offered.max_info_tx),
            window_tx=1,
            window_rx=1,
        )
        self._connected = True

    async def request(self, apdu: bytes) -> bytes:
        payload = hdlc.LLC_REQUEST + apdu
        size = max(self.parameters.max_info_tx, 16)
        chunks = [payload[i : i + size] for i in range(0, len(payload), size)]
        for index, chunk in enumerate(chunks):
            last = index == len(chunks) - 1
            await self._send(hdlc.i_control(self._send_seq, self._recv_seq), chunk, segmented=not last)
            self._send_seq = (self._send_seq + 1) & 7
            if not last:
                ack = await self._receive()
                if not hdlc.is_receive_ready(ack.control):
                    raise FrameError(f"{self._where}: expected RR after a segment, got {ack.control:#04x}")
        received = bytearray()
        spare_acks = 4
        while True:
            frame = await self._receive()
            if frame.control in (hdlc.DM, hdlc.DISC):
                raise ConnectionLost(
                    f"{self._where}: the meter ended the HDLC link in the middle of a request"
                )
            if hdlc.is_receive_ready(frame.control) and spare_acks > 0:
                spare_acks -= 1  # some meters acknowledge a request before answering; a few, not forever
                continue
            if not hdlc.is_information(frame.control):
                raise FrameError(f"{self._where}: expected an I-frame, got control {frame.control:#04x}")
            if frame.send_seq != self._recv_seq:
                raise FrameError(
                    f"{self._where}: I-frame out of sequence (N(S) {frame.send_seq}, "
                    f"expected {self._recv_seq})"
                )
            self._recv_seq = (self._recv_seq + 1) & 7
            received += frame.info
            if not frame.segmented:
                break
            await self._send(hdlc.rr_control(self._recv_seq))
        if received[:3] != hdlc.LLC_RESPONSE:
            raise FrameError(
                f"{self._where}: response lacks the LLC header E6 E7 00 ({bytes(received[:3]).hex()})"
            )
        return bytes(received[3:])

    async def close(self) -> None:
        try:
            if self._connected:
                self._connected = False
                self._line.timeout = min(self._line.timeout, 2.0)
                await self._send(hdlc.DISC)
                with contextlib.suppress(MeterTimeout, ConnectionLost, FrameError):
                    await self._receive()
        except (MeterTimeout, ConnectionLost):
            pass
        finally:
            await self._line.close()


def hdlc_addresses(url: MeterUrl) -> tuple[hdlc.HdlcAddress, hdlc.HdlcAddress]:
    physical = url.params.get("physical")
    size = url.int_param("addr-size", 1 if physical is None else 4)
    server = hdlc.HdlcAddress(url.int_param("server", 1), None if physical is None else int(physical), size)
    return hdlc.HdlcAddress(url.int_param("client", 16), None, 1), server


async def open_transport(
    url: MeterUrl, *, timeout: float, hdlc_max_info: int = 128, where: str | None = None
) -> Transport:
    """Connect to the meter at `url`; `where` names it in errors (default: the URL)."""
    where = where or str(url)
    feed: Callable[[bytes], list[Any]] = (
        WrapperDecoder().feed if url.scheme == "dlms+tcp" else hdlc.HdlcDecoder().feed
    )
    line: FramedLine[Any] = FramedLine(feed, where=where, timeout=timeout)
    loop = asyncio.get_running_loop()
    try:
        if url.is_serial:
            assert url.device is not None
            await open_serial(
                url.device,
                line,
                baudrate=url.int_param("baud", 9600),
                bytesize=url.int_param("bytesize", 8),
                parity=url.params.get("parity", "N").upper()[:1],
                stopbits=url.int_param("stopbits", 1),
            )
        else:
            assert url.host is not None and url.port is not None
            async with asyncio.timeout(timeout):
                await loop.create_connection(lambda: line, url.host, url.port)
    except TimeoutError:
        raise MeterTimeout(f"{where}: no connection within {timeout:g} s") from None
    except OSError as exc:
        raise ConnectionLost(
            f"{where}: cannot connect: {exc.strerror or exc}",
            hint="check host, port and that the meter or gateway is reachable",
        ) from None
    if url.scheme == "dlms+tcp":
        return WrapperTransport(line, client=url.int_param("client", 16), server=url.int_param("server", 1))
    client, server = hdlc_addresses(url)
    link = HdlcTransport(line, client=client, server=server, max_info=hdlc_max_info)
    try:
        await link.connect()
    except BaseException:
        await line.close()
        raise
    return link
