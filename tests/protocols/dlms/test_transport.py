"""Transports over real sockets: whatever a peer sends, the session ends classified, in time."""

from __future__ import annotations

import asyncio

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from core.meter_url import MeterUrl
from protocols.dlms import hdlc
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
