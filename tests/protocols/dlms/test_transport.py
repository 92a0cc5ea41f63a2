"""Transports over real sockets: whatever a peer sends, the session ends classified, in time."""

from __future__ import annotations

import asyncio

import pytest
from dlms_cosem import enumerations
from dlms_cosem.protocol import acse
from hypothesis import given, settings
from hypothesis import strategies as st

from core.meter_url import MeterUrl
from protocols.dlms import hdlc
from protocols.dlms.errors import AssociationRejected
from protocols.dlms.session import open_session
from protocols.dlms.transport import hdlc_addresses
from protocols.errors import RemoteProtocolError


async def _garbage_meter(answer: bytes, scheme: str) -> None:
    async def reply(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.read(4096)
        writer.write(answer)
        await writer.drain()
        await reader.read(4096)  # then hold the line open: the client must give up on its own
        writer.close()

    server = await asyncio.start_server(reply, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    async with server:
        url = MeterUrl.parse(f"{scheme}://127.0.0.1:{port}?client=16&server=1")
        with pytest.raises(RemoteProtocolError):
            async with asyncio.timeout(5), open_session(url, timeout=0.2):
                pass


@settings(max_examples=12, deadline=None)
@given(st.binary(min_size=1, max_size=200), st.sampled_from(["dlms+tcp", "dlms+hdlc+tcp"]))
def test_any_answer_ends_in_a_remote_error(answer: bytes, scheme: str) -> None:
    asyncio.run(_garbage_meter(answer, scheme))


@pytest.mark.parametrize(
    ("scheme", "prefix"), [("dlms+tcp", b"\x00\x01\x00\x01\x00\x10\x00\x05"), ("dlms+hdlc+tcp", b"")]
)
def test_well_framed_nonsense_ends_in_a_remote_error(scheme: str, prefix: bytes) -> None:
    asyncio.run(_garbage_meter(prefix + b"\x61\x03\x02\x01\x00", scheme))


def test_hdlc_addresses_from_the_url() -> None:
    client, server = hdlc_addresses(MeterUrl.parse("dlms+hdlc+tcp://h:1?client=1&server=1&physical=17"))
    assert client == hdlc.HdlcAddress(1) and server == hdlc.HdlcAddress(1, 17, 4)
    _, small = hdlc_addresses(MeterUrl.parse("dlms+hdlc+tcp://h:1?server=1&physical=5&addr-size=2"))
    assert small.to_bytes() == bytes((0x02, 0x0B))


def test_hdlc_frames_for_another_client_on_a_shared_line_are_skipped() -> None:
    async def body() -> None:
        async def gateway(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            decoder = hdlc.HdlcDecoder()
            while data := await reader.read(4096):
                for frame in decoder.feed(data):
                    if frame.control == hdlc.SNRM:
                        # a refusal for another client first (taken as ours, it would end the session),
                        # then our UA
                        other = hdlc.HdlcFrame(hdlc.HdlcAddress(99), frame.destination, hdlc.DM)
                        ours = hdlc.HdlcFrame(frame.source, frame.destination, hdlc.UA)
                        writer.write(other.to_bytes() + ours.to_bytes())
                    elif frame.control == hdlc.DISC:
                        writer.write(hdlc.HdlcFrame(frame.source, frame.destination, hdlc.UA).to_bytes())
                    else:  # any request: refuse the association, so the session ends at once
                        aare = bytes(
                            acse.ApplicationAssociationResponse(
                                result=enumerations.AssociationResult.REJECTED_PERMANENT,
                                result_source_diagnostics=enumerations.AcseServiceUserDiagnostics.NO_REASON_GIVEN,
                            ).to_bytes()
                        )
                        info = hdlc.LLC_RESPONSE + aare
                        writer.write(
                            hdlc.HdlcFrame(
                                frame.source, frame.destination, hdlc.i_control(0, 1), info
                            ).to_bytes()
                        )
                await writer.drain()
            writer.close()

        server = await asyncio.start_server(gateway, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        async with server:
            url = MeterUrl.parse(f"dlms+hdlc+tcp://127.0.0.1:{port}?client=16&server=1&physical=17")
            with pytest.raises(AssociationRejected, match="rejected the association"):
                async with asyncio.timeout(10), open_session(url, timeout=2):
                    pass

    asyncio.run(body())
