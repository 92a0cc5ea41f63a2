"""xDLMS GET/SET/ACTION APDUs: requests encoded here, responses parsed here.

Responses are parsed by our own code because it must raise a precise `ApduError` for any
bytes a meter or a line can produce, and because a profile's raw data must reach the
columnar decoder untouched. GET and SET requests are a few fixed bytes around a cached
attribute descriptor (dlms-cosem's attrs classes cost more per request than the rest of
the exchange; tests check ours byte for byte against its `GetRequestNormal`, ...); the
rare ACTION requests are dlms-cosem's.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import dataclass, field

from dlms_cosem import cosem, enumerations
from dlms_cosem.protocol import xdlms

from core.obis import Obis
from protocols.dlms import axdr
from protocols.dlms.errors import AccessDenied, ApduError, DlmsLocalError

GET_REQUEST, SET_REQUEST, ACTION_REQUEST = 0xC0, 0xC1, 0xC3
GET_RESPONSE, SET_RESPONSE, ACTION_RESPONSE = 0xC4, 0xC5, 0xC7
EXCEPTION_RESPONSE, CONFIRMED_SERVICE_ERROR = 0xD8, 0x0E
NORMAL, NEXT_OR_BLOCK, WITH_LIST = 1, 2, 3

DATA_ACCESS_RESULTS: dict[int, str] = {
    r.value: r.name.lower().replace("_", "-") for r in enumerations.DataAccessResult
}


def result_name(code: int) -> str:
    return DATA_ACCESS_RESULTS.get(code, f"result {code}")


@dataclass(frozen=True, slots=True)
class AttributeRef:
    """One COSEM attribute: interface class, logical name, attribute index."""

    class_id: int
    obis: str
    attribute: int

    def to_cosem(self) -> cosem.CosemAttribute:
        code = Obis.parse(self.obis)
        return cosem.CosemAttribute(
            interface=enumerations.CosemInterface(self.class_id),
            instance=cosem.Obis(code.a, code.b, code.c, code.d, code.e, code.f),
            attribute=self.attribute,
        )


def _invoke(invoke_id: int) -> xdlms.InvokeIdAndPriority:
    return xdlms.InvokeIdAndPriority(invoke_id=invoke_id & 0x0F, confirmed=True, high_priority=True)


# Invoke-Id-And-Priority with "confirmed" and "high priority" set, for each invoke id.
_INVOKE = [bytes((0xC0 | invoke_id,)) for invoke_id in range(16)]


@functools.lru_cache(maxsize=1 << 12)
def descriptor(ref: AttributeRef) -> bytes:
    """Cosem-Attribute-Descriptor: class-id (2 bytes), instance-id (6), attribute-id (Integer8)."""
    if not 0 <= ref.class_id <= 0xFFFF or not -128 <= ref.attribute <= 127:
        raise DlmsLocalError(
            f"attribute {ref.attribute} of class {ref.class_id} ({ref.obis}) cannot be addressed",
            hint="class ids are 0 to 65535 and attribute ids -128 to 127",
        )
    return (
        ref.class_id.to_bytes(2, "big")
        + Obis.parse(ref.obis).to_bytes()
        + ref.attribute.to_bytes(1, "big", signed=True)
    )


def get_request(ref: AttributeRef, invoke_id: int = 1, access_selection: bytes | None = None) -> bytes:
    """Get-Request-Normal; `access_selection` is the selector and its parameters (A-XDR)."""
    access = b"\x00" if access_selection is None else b"\x01" + access_selection
    return b"\xc0\x01" + _INVOKE[invoke_id & 0x0F] + descriptor(ref) + access


def get_next(block_number: int, invoke_id: int = 1) -> bytes:
    """Get-Request-Next: the block after `block_number` of a block transfer."""
    return b"\xc0\x02" + _INVOKE[invoke_id & 0x0F] + block_number.to_bytes(4, "big")


def get_with_list(refs: Sequence[AttributeRef], invoke_id: int = 1) -> bytes:
    """Get-Request-With-List, no selective access on any attribute."""
    items = b"".join([descriptor(ref) + b"\x00" for ref in refs])
    return b"\xc0\x03" + _INVOKE[invoke_id & 0x0F] + axdr.encode_length(len(refs)) + items


def set_request(ref: AttributeRef, data: bytes, invoke_id: int = 1) -> bytes:
    """Set-Request-Normal of one attribute to the A-XDR value `data`."""
    return b"\xc1\x01" + _INVOKE[invoke_id & 0x0F] + descriptor(ref) + b"\x00" + data


def action_request(class_id: int, obis: str, method: int, data: bytes | None, invoke_id: int = 1) -> bytes:
    code = Obis.parse(obis)
    target = cosem.CosemMethod(
        enumerations.CosemInterface(class_id),
        cosem.Obis(code.a, code.b, code.c, code.d, code.e, code.f),
        method,
    )
    return bytes(
        xdlms.ActionRequestNormal(
            cosem_method=target, data=data, invoke_id_and_priority=_invoke(invoke_id)
        ).to_bytes()
    )


def range_descriptor(restricting: bytes, start: bytes, end: bytes) -> bytes:
    """Selective access by range (descriptor 1) on the capture object `restricting` (A-XDR structure)."""
    return b"\x01" + axdr.structure([restricting, axdr.octets(start), axdr.octets(end), axdr.array([])])


@dataclass(frozen=True, slots=True)
class GetResponse:
    """A GET response: `data` is the raw A-XDR of the value (or of this block's part of it)."""

    invoke_id: int
    data: bytes = b""
    error: int | None = None
    block_number: int | None = None  # set on block transfer
    last_block: bool = True
    items: list[axdr.DlmsValue | AccessDenied] = field(default_factory=list)  # WITH-LIST answers

    def value_bytes(self, what: str) -> bytes:
        if self.error is not None:
            raise AccessDenied(
                f"the meter refused to read {what}: {result_name(self.error)}",
                result=self.error,
                hint="check the object exists on this meter model and the client may read it",
            )
        return self.data


def _check_service_error(data: bytes) -> None:
    if not data:
        raise ApduError("the meter sent an empty APDU")
    if data[0] == EXCEPTION_RESPONSE:
        detail = data[1:3].hex() if len(data) >= 3 else data.hex()
        raise ApduError(
            f"the meter answered with an exception-response ({detail})",
            hint="the request was not understood in the current state; check conformance",
        )
    if data[0] == CONFIRMED_SERVICE_ERROR:
        raise ApduError(f"the meter answered with a confirmed-service-error ({data[1:].hex()})")


def parse_get_response(data: bytes) -> GetResponse:
    _check_service_error(data)
    if len(data) < 4 or data[0] != GET_RESPONSE:
        raise ApduError(f"expected a get-response (C4), got {data[:4].hex()}")
    kind, invoke_id = data[1], data[2] & 0x0F
    if kind == NORMAL:
        if data[3] == 0:
            return GetResponse(invoke_id, data=bytes(data[4:]))
        if data[3] == 1 and len(data) == 5:
            return GetResponse(invoke_id, error=data[4])
        raise ApduError(f"get-response-normal has a bad result choice {data[3]} or length {len(data)}")
    if kind == NEXT_OR_BLOCK:
        if len(data) < 10:
            raise ApduError(f"get-response-with-datablock is {len(data)} bytes, too short")
        last = data[3] != 0
        block_number = int.from_bytes(data[4:8], "big")
        if data[8] == 1:
            return GetResponse(invoke_id, error=data[9], block_number=block_number, last_block=True)
        if data[8] != 0:
            raise ApduError(f"get-response-with-datablock has a bad result choice {data[8]}")
        length, pos = axdr.decode_length(data, 9)
        if pos + length != len(data):
            raise ApduError(
                f"data block {block_number} announces {length} bytes but carries {len(data) - pos}"
            )
        return GetResponse(invoke_id, data=bytes(data[pos:]), block_number=block_number, last_block=last)
    if kind == WITH_LIST:
        count, pos = axdr.decode_length(data, 3)
        items: list[axdr.DlmsValue | AccessDenied] = []
        for index in range(count):
            if pos >= len(data):
                raise ApduError(f"get-response-with-list ends before item {index} of {count}")
            choice = data[pos]
            if choice == 0:
                value, pos = axdr.decode_prefix(data, pos + 1)
                items.append(value)
            elif choice == 1 and pos + 1 < len(data):
                code = data[pos + 1]
                items.append(AccessDenied(f"item {index}: {result_name(code)}", result=code))
                pos += 2
            else:
                raise ApduError(f"get-response-with-list item {index} has a bad result choice {choice}")
        if pos != len(data):
            raise ApduError(f"get-response-with-list has {len(data) - pos} byte(s) after its last item")
        return GetResponse(invoke_id, items=items)
    raise ApduError(f"get-response type {kind} is not normal, with-datablock or with-list")


def parse_set_response(data: bytes) -> int:
    """The data-access-result of a set-response-normal."""
    _check_service_error(data)
    if len(data) != 4 or data[0] != SET_RESPONSE or data[1] != NORMAL:
        raise ApduError(f"expected a set-response-normal (C5 01), got {data[:6].hex()}")
    return data[3]


def parse_action_response(data: bytes) -> tuple[int, bytes | None]:
    """(action-result, return data A-XDR or None) of an action-response-normal."""
    _check_service_error(data)
    if len(data) < 5 or data[0] != ACTION_RESPONSE or data[1] != NORMAL:
        raise ApduError(f"expected an action-response-normal (C7 01), got {data[:6].hex()}")
    status = data[3]
    if data[4] == 0:
        if len(data) != 5:
            raise ApduError("action-response-normal without data has trailing bytes")
        return status, None
    if len(data) < 6:
        raise ApduError("action-response-normal is cut short before its return parameters")
    if data[5] == 0:
        return status, bytes(data[6:])
    if data[5] == 1 and len(data) == 7:
        return data[6], None
    raise ApduError(f"action-response-normal has bad return parameters {data[4:8].hex()}")
