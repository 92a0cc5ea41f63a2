"""Transports on asyncio: the IEC 62056-47 wrapper over TCP, HDLC over TCP and serial lines.

A transport carries one APDU out and one APDU back (`request`); HDLC segmentation, RR
polling and sequence numbers stay inside. Every wait has a timeout, and a peer that closes
raises `ConnectionLost` at once instead of spinning.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Protocol

from core.meter_url import MeterUrl
from protocols.dlms import hdlc
from protocols.dlms.errors import FrameError
from protocols.dlms.serial_line import open_serial
from protocols.dlms.wrapper import WrapperDecoder, WrapperFrame
from protocols.errors import ConnectionLost, MeterTimeout

READ_CHUNK = 1 << 16


class Transport(Protocol):
    async def request(self, apdu: bytes) -> bytes: ...

    async def close(self) -> None: ...


async def _read(reader: asyncio.StreamReader, where: str, timeout: float) -> bytes:
    try:
        async with asyncio.timeout(timeout):
            data = await reader.read(READ_CHUNK)
    except TimeoutError:
        raise MeterTimeout(
            f"{where}: no answer within {timeout:g} s",
            hint="the meter may be busy or unreachable; raise timeout= if the line is slow",
        ) from None
    except OSError as exc:
        raise ConnectionLost(f"{where}: the line failed while reading: {exc}") from None
    if not data:
        raise ConnectionLost(
            f"{where}: the meter closed the connection",
            hint="the meter or its gateway dropped the session; it may be retried",
        )
    return data


async def _write(writer: asyncio.StreamWriter, data: bytes, where: str, timeout: float) -> None:
    try:
        writer.write(data)
        async with asyncio.timeout(timeout):
            await writer.drain()
    except TimeoutError:
        raise MeterTimeout(f"{where}: the line did not take {len(data)} bytes within {timeout:g} s") from None
    except OSError as exc:
        raise ConnectionLost(f"{where}: the line failed while writing: {exc}") from None


async def _close_writer(writer: asyncio.StreamWriter) -> None:
    writer.close()
    with contextlib.suppress(OSError, TimeoutError):
        async with asyncio.timeout(1.0):
            await writer.wait_closed()


class WrapperTransport:
    def __init__(
        self,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        *,
        client: int,
        server: int,
        timeout: float,
        where: str,
    ) -> None:
        self._reader, self._writer = reader, writer
        self._client, self._server = client, server
        self._timeout, self._where = timeout, where
        self._decoder = WrapperDecoder()
        self._frames: list[WrapperFrame] = []

    async def request(self, apdu: bytes) -> bytes:
        await _write(
            self._writer,
            WrapperFrame(self._client, self._server, apdu).to_bytes(),
            self._where,
            self._timeout,
        )
        while True:
            while self._frames:
                frame = self._frames.pop(0)
                if frame.destination == self._client:
                    return frame.apdu
            self._frames.extend(self._decoder.feed(await _read(self._reader, self._where, self._timeout)))

    async def close(self) -> None:
        await _close_writer(self._writer)


class HdlcTransport:
    """The client (primary station) side of an HDLC link, window size 1."""

    def __init__(
        self,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        *,
        client: hdlc.HdlcAddress,
        server: hdlc.HdlcAddress,
        max_info: int,
        timeout: float,
        where: str,
    ) -> None:
        self._reader, self._writer = reader, writer
        self._client, self._server = client, server
        self._timeout, self._where = timeout, where
        self._decoder = hdlc.HdlcDecoder()
        self._frames: list[hdlc.HdlcFrame] = []
        self._proposed = hdlc.HdlcParameters(max_info, max_info, 1, 1)
        self.parameters = hdlc.HdlcParameters()
        self._send_seq = 0
        self._recv_seq = 0
        self._connected = False

    async def _send(self, control: int, info: bytes = b"", segmented: bool = False) -> None:
        frame = hdlc.HdlcFrame(self._server, self._client, control, info, segmented)
        await _write(self._writer, frame.to_bytes(), self._where, self._timeout)

    async def _receive(self) -> hdlc.HdlcFrame:
        while True:
            while self._frames:
                frame = self._frames.pop(0)
                # On a shared bus, frames for other clients are not ours to read.
                if frame.destination.logical == self._client.logical:
                    return frame
            self._frames.extend(self._decoder.feed(await _read(self._reader, self._where, self._timeout)))

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
                self._timeout = min(self._timeout, 2.0)
                await self._send(hdlc.DISC)
                with contextlib.suppress(MeterTimeout, ConnectionLost, FrameError):
                    await self._receive()
        except (MeterTimeout, ConnectionLost):
            pass
        finally:
            await _close_writer(self._writer)


def hdlc_addresses(url: MeterUrl) -> tuple[hdlc.HdlcAddress, hdlc.HdlcAddress]:
    physical = url.params.get("physical")
    size = url.int_param("addr-size", 1 if physical is None else 4)
    server = hdlc.HdlcAddress(url.int_param("server", 1), None if physical is None else int(physical), size)
    return hdlc.HdlcAddress(url.int_param("client", 16), None, 1), server


async def open_transport(url: MeterUrl, *, timeout: float, hdlc_max_info: int = 128) -> Transport:
    where = str(url)
    try:
        if url.is_serial:
            assert url.device is not None
            reader, writer = await open_serial(
                url.device,
                baudrate=url.int_param("baud", 9600),
                bytesize=url.int_param("bytesize", 8),
                parity=url.params.get("parity", "N").upper()[:1],
                stopbits=url.int_param("stopbits", 1),
            )
        else:
            async with asyncio.timeout(timeout):
                reader, writer = await asyncio.open_connection(url.host, url.port, limit=READ_CHUNK)
    except TimeoutError:
        raise MeterTimeout(f"{where}: no connection within {timeout:g} s") from None
    except OSError as exc:
        raise ConnectionLost(
            f"{where}: cannot connect: {exc.strerror or exc}",
            hint="check host, port and that the meter or gateway is reachable",
        ) from None
    if url.scheme == "dlms+tcp":
        return WrapperTransport(
            reader,
            writer,
            client=url.int_param("client", 16),
            server=url.int_param("server", 1),
            timeout=timeout,
            where=where,
        )
    client, server = hdlc_addresses(url)
    link = HdlcTransport(
        reader, writer, client=client, server=server, max_info=hdlc_max_info, timeout=timeout, where=where
    )
    try:
        await link.connect()
    except BaseException:
        await _close_writer(writer)
        raise
    return link
