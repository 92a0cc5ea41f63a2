"""The simulator's association: answers any request bytes, or fails with a protocol error."""

from __future__ import annotations

import contextlib
import datetime as dt

from hypothesis import given, settings
from hypothesis import strategies as st

from core.clock import VirtualClock
from protocols.dlms import apdu
from protocols.dlms.association import ClientAssociation
from protocols.dlms.simulator.meter import SimulatedMeter
from protocols.dlms.simulator.server import ServerAssociation
from protocols.errors import RemoteProtocolError

METER = SimulatedMeter("M1", VirtualClock(dt.datetime(2026, 3, 10, 5, tzinfo=dt.UTC)))


def _associated() -> ServerAssociation:
    server = ServerAssociation(METER, auth="none")
    client = ClientAssociation()
    client.accept_aare(server.handle(client.aarq()))
    return server


@settings(max_examples=300, deadline=None)
@given(st.sampled_from([0xC0, 0xC1, 0xC3, 0x60, 0x62, 0xDB]), st.binary(max_size=80))
def test_any_request_gets_an_answer_or_a_protocol_error(tag: int, body: bytes) -> None:
    server = _associated()
    with contextlib.suppress(RemoteProtocolError):
        answer = server.handle(bytes((tag,)) + body)
        assert isinstance(answer, bytes) and answer


def test_requests_before_association_get_an_exception_response() -> None:
    server = ServerAssociation(METER, auth="none")
    assert server.handle(bytes((apdu.GET_REQUEST, 1, 0xC1)))[0] == apdu.EXCEPTION_RESPONSE
