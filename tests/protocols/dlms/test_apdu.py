from __future__ import annotations

import asyncio
import contextlib
from decimal import Decimal

import pytest
from dlms_cosem import cosem, enumerations
from dlms_cosem.protocol import acse, xdlms
from hypothesis import given, settings
from hypothesis import strategies as st

from protocols.dlms import apdu, axdr
from protocols.dlms.apdu import AttributeRef
from protocols.dlms.association import ClientAssociation
from protocols.dlms.errors import AccessDenied, DlmsLocalError
from protocols.dlms.session import DlmsSession, _scaled
from protocols.dlms.settings import DlmsMeterSettings
from protocols.errors import RemoteProtocolError

from .conftest import vectors

GB = {v["name"]: v for v in vectors("apdu")}


def test_green_book_aarq_both_directions() -> None:
    vector = GB["green-book-aarq-public"]
    raw = bytes.fromhex(vector["hex"])
    aarq = acse.ApplicationAssociationRequest.from_bytes(raw)
    initiate = aarq.user_information.content
    assert initiate.client_max_receive_pdu_size == vector["max_pdu"]
    granted = {name for name in vector["conformance"]}
    assert {
        n for n in vars(initiate.proposed_conformance) if getattr(initiate.proposed_conformance, n)
    } == granted
    assert bytes(aarq.to_bytes()) == raw


def test_green_book_aare_is_taken_with_its_conformance() -> None:
    vector = GB["green-book-aare-accepted"]
    association = ClientAssociation()
    association.accept_aare(bytes.fromhex(vector["hex"]))
    assert association.associated
    assert association.server_max_pdu == vector["max_pdu"]
    assert association.conformance.multiple_references is vector["multiple_references"]


def test_aare_with_system_title() -> None:
    vector = GB["aare-with-system-title"]
    association = ClientAssociation()
    association.accept_aare(bytes.fromhex(vector["hex"]))
    assert association.meter_title == bytes.fromhex(vector["system_title"])


class _Recording:
    """A transport that answers every GET from a table and records what was asked."""

    def __init__(self) -> None:
        self.sent: list[bytes] = []

    async def request(self, data: bytes) -> bytes:
        self.sent.append(data)
        return bytes((apdu.GET_RESPONSE, apdu.NORMAL, data[2], 0)) + axdr.integer(axdr.UNSIGNED, 7)

    async def close(self) -> None:
        return None


def test_no_get_with_list_toward_a_meter_that_did_not_grant_it() -> None:
    association = ClientAssociation()
    association.accept_aare(bytes.fromhex(GB["green-book-aare-accepted"]["hex"]))
    transport = _Recording()
    session = DlmsSession(transport, association, DlmsMeterSettings(), "test meter")
    refs = [AttributeRef(3, "1.0.1.8.0.255", 2), AttributeRef(3, "1.0.2.8.0.255", 2)]
    assert asyncio.run(session.get_many(refs)) == [7, 7]
    assert [m[1] for m in transport.sent] == [apdu.NORMAL, apdu.NORMAL]


def test_no_block_transfer_or_selective_access_unless_granted() -> None:
    association = ClientAssociation()
    association.accept_aare(bytes.fromhex(GB["green-book-aare-accepted"]["hex"]))
    association.conformance.selective_access = False
    session = DlmsSession(_Recording(), association, DlmsMeterSettings(), "test meter")
    with pytest.raises(DlmsLocalError, match="selective-access"):
        asyncio.run(session.get(AttributeRef(7, "1.0.99.1.0.255", 2), b"\x01\x02\x00"))


def test_get_request_golden_bytes() -> None:
    # GET-request-normal of 0.0.96.1.0.255 attribute 2, class 1, invoke id 7 (published I-frame above)
    frame = next(v for v in vectors("hdlc") if v["name"] == "get-request-i-frame")
    expected = bytes.fromhex(frame["info"])[3:]
    request = bytes(xdlms.GetRequestNormal.from_bytes(expected).to_bytes())
    assert request == expected
    assert apdu.get_request(AttributeRef(1, "0.0.96.1.0.255", 2), invoke_id=7)[3:] == expected[3:]


def test_get_response_golden_value() -> None:
    frame = next(v for v in vectors("hdlc") if v["name"] == "get-response-serial-number")
    response = apdu.parse_get_response(bytes.fromhex(frame["info"])[3:])
    assert axdr.decode(response.data) == frame["value"]


def test_refusal_names_the_result() -> None:
    response = apdu.parse_get_response(bytes((0xC4, 1, 0xC1, 1, 4)))
    with pytest.raises(AccessDenied, match="object-undefined"):
        response.value_bytes("1.0.1.8.0.255")


@settings(max_examples=500, deadline=None)
@given(st.binary(max_size=120))
def test_any_bytes_to_response_parsers_raise_only_remote_errors(data: bytes) -> None:
    for parse in (apdu.parse_get_response, apdu.parse_set_response, apdu.parse_action_response):
        with contextlib.suppress(RemoteProtocolError):
            parse(data)
    with contextlib.suppress(RemoteProtocolError):
        ClientAssociation().accept_aare(b"\x61" + data)
    with contextlib.suppress(RemoteProtocolError):
        ClientAssociation().accept_aare(data)


@settings(max_examples=200, deadline=None)
@given(
    st.decimals(allow_nan=False, allow_infinity=False, places=4, min_value=-(10**9), max_value=10**9),
    st.integers(-3, 3),
)
def test_float_registers_scale_exactly(value: Decimal, scaler: int) -> None:
    number, scale = _scaled(value, scaler, "test")
    assert Decimal(number).scaleb(scale) == value.scaleb(scaler)


def test_integer_registers_keep_their_scaler() -> None:
    assert _scaled(123456, -2, "test") == (123456, -2)
    with pytest.raises(RemoteProtocolError):
        _scaled(b"\x01", 0, "test")


obis_codes = st.tuples(*[st.integers(0, 255)] * 6).map(lambda g: ".".join(map(str, g)))
# Classes dlms-cosem knows; attribute ids it can encode (it writes them unsigned).
classes = st.sampled_from([interface.value for interface in enumerations.CosemInterface])
refs = st.builds(AttributeRef, classes, obis_codes, st.integers(0, 127))


def _theirs_invoke(invoke_id: int) -> xdlms.InvokeIdAndPriority:
    return xdlms.InvokeIdAndPriority(invoke_id=invoke_id, confirmed=True, high_priority=True)


@settings(max_examples=60, deadline=None)
@given(refs, st.integers(0, 15), st.integers(0, 2**32 - 1))
def test_requests_are_byte_for_byte_dlms_cosems(ref: AttributeRef, invoke: int, block: int) -> None:
    # Our requests are encoded by hand from cached descriptors; dlms-cosem's classes are the reference.
    theirs = xdlms.GetRequestNormal(
        cosem_attribute=ref.to_cosem(), invoke_id_and_priority=_theirs_invoke(invoke)
    )
    assert apdu.get_request(ref, invoke) == bytes(theirs.to_bytes())
    following = xdlms.GetRequestNext(block_number=block, invoke_id_and_priority=_theirs_invoke(invoke))
    assert apdu.get_next(block, invoke) == bytes(following.to_bytes())
    setting = xdlms.SetRequestNormal(
        cosem_attribute=ref.to_cosem(), data=b"\x11\x05", invoke_id_and_priority=_theirs_invoke(invoke)
    )
    assert apdu.set_request(ref, b"\x11\x05", invoke) == bytes(setting.to_bytes())


@settings(max_examples=30, deadline=None)
@given(st.lists(refs, min_size=2, max_size=24), st.integers(0, 15))
def test_get_with_list_is_dlms_cosems(many: list[AttributeRef], invoke: int) -> None:
    items = [cosem.CosemAttributeWithSelection(attribute=r.to_cosem(), access_selection=None) for r in many]
    theirs = xdlms.GetRequestWithList(
        cosem_attributes_with_selection=items, invoke_id_and_priority=_theirs_invoke(invoke)
    )
    assert apdu.get_with_list(many, invoke) == bytes(theirs.to_bytes())


def test_an_attribute_that_cannot_be_addressed_is_a_local_error() -> None:
    with pytest.raises(DlmsLocalError, match="cannot be addressed"):
        apdu.get_request(AttributeRef(3, "1.0.1.8.0.255", 200))
