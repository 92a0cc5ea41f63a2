"""The server side of an association, without I/O: APDU bytes in, APDU bytes out.

AARQ/AARE, RLRQ/RLRE and the xDLMS requests are dlms-cosem's classes; authentication
follows the standard: a wrong LLS password is rejected in the AARE (authentication-failed),
HLS-GMAC is accepted with "authentication required" and fails at reply_to_HLS.
"""

from __future__ import annotations

import os
from typing import Any

from dlms_cosem import enumerations
from dlms_cosem.protocol import acse, xdlms
from dlms_cosem.protocol.xdlms.conformance import Conformance

from protocols.dlms import apdu, axdr, ciphering
from protocols.dlms.association import GMAC_CONTROL, gmac_tag
from protocols.dlms.errors import ApduError, DlmsRemoteError
from protocols.dlms.simulator.meter import READ_WRITE_DENIED, SimulatedMeter

PUBLIC_CLIENT = 16
SERVER_MAX_PDU = 1024
Diag = enumerations.AcseServiceUserDiagnostics
SERVER_CONFORMANCE = Conformance(
    general_protection=True,
    block_transfer_with_get_or_read=True,
    multiple_references=True,
    get=True,
    set=True,
    selective_access=True,
    action=True,
    priority_management_supported=True,
)
_EXCEPTION = bytes((apdu.EXCEPTION_RESPONSE, 1, 2))  # state-error: service-not-allowed


class _Malformed(Exception):
    """A request dlms-cosem could not parse: answered with an exception-response."""


def _parse(parser: Any, data: bytes) -> Any:
    try:
        return parser(data)
    except Exception as exc:  # dlms-cosem raises ValueError, KeyError, IndexError ... on bad bytes
        raise _Malformed(str(exc)) from None


def _intersect(proposed: Conformance, offered: Conformance) -> Conformance:
    fields = [f for f in vars(offered) if not f.startswith("_")]
    return Conformance(**{f: bool(getattr(proposed, f)) and bool(getattr(offered, f)) for f in fields})


class ServerAssociation:
    def __init__(
        self,
        meter: SimulatedMeter,
        *,
        auth: str,
        password: bytes = b"",
        keys: ciphering.Keys | None = None,
        system_title: bytes = b"SIM\x00\x00\x00\x00\x01",
    ) -> None:
        self.meter, self.auth, self.password, self.keys = meter, auth, password, keys
        self.system_title = system_title
        self.client_sap = PUBLIC_CLIENT
        self.associated = False
        self.hls_pending = False
        self.ciphered = False
        self.cipher_initiate = False
        self.general = True
        self.client_title = b""
        self.challenge = b""
        self.client_challenge = b""
        self.conformance = Conformance()
        self.client_max_pdu = SERVER_MAX_PDU
        self._counter = 0
        self._blocks: list[bytes] = []
        self._block_number = 0
        self.blocks_served = 0

    # --- envelope -------------------------------------------------------------------------

    def _unprotect(self, data: bytes) -> bytes | None:
        if not self.ciphered:
            return None if ciphering.is_ciphered(data) else data
        if not ciphering.is_ciphered(data):
            return None  # the security policy requires ciphering
        envelope = ciphering.parse(data)
        assert self.keys is not None
        if envelope.invocation_counter <= self.meter.frame_counter:
            return None  # a replayed or reused counter
        try:
            plain = ciphering.decrypt(
                envelope.ciphertext,
                self.keys,
                envelope.system_title or self.client_title,
                envelope.invocation_counter,
            )
        except DlmsRemoteError:
            return None  # wrong keys: answered in plain with an exception-response
        self.meter.frame_counter = envelope.invocation_counter
        self.general = envelope.tag == ciphering.GENERAL_GLO
        return plain

    def _protect(self, plain: bytes) -> bytes:
        if not self.ciphered or plain[0] == apdu.EXCEPTION_RESPONSE:
            return plain
        assert self.keys is not None
        self._counter += 1
        return ciphering.wrap(plain, self.keys, self.system_title, self._counter, general=self.general)

    # --- dispatch -------------------------------------------------------------------------

    def handle(self, data: bytes) -> bytes:
        if not data:
            return _EXCEPTION
        if data[0] == 0x60:
            return self._aarq(data)
        if data[0] == 0x62:
            self.associated = self.hls_pending = False
            self.meter.releases += 1
            return bytes(acse.ReleaseResponse(reason=enumerations.ReleaseResponseReason.NORMAL).to_bytes())
        if not (self.associated or self.hls_pending):
            return _EXCEPTION
        plain = self._unprotect(data)
        if plain is None:
            return _EXCEPTION
        return self._protect(self._service(plain))

    def _aarq(self, data: bytes) -> bytes:
        try:
            request = acse.ApplicationAssociationRequest.from_bytes(data)
        except Exception:  # dlms-cosem's parser: any failure means a malformed AARQ
            return self._aare(enumerations.AssociationResult.REJECTED_PERMANENT, Diag.NO_REASON_GIVEN)
        mechanism = request.authentication or enumerations.AuthenticationMechanism.NONE
        public = self.client_sap == PUBLIC_CLIENT
        wanted = {"none": 0, "lls": 1, "hls-gmac": 5}[self.auth]
        if not public and int(mechanism) != wanted:
            return self._aare(
                enumerations.AssociationResult.REJECTED_PERMANENT, Diag.AUTHENTICATION_MECHANISM_NAME_REQUIRED
            )
        if not public and self.auth == "lls" and request.authentication_value != self.password:
            return self._aare(enumerations.AssociationResult.REJECTED_PERMANENT, Diag.AUTHENTICATION_FAILED)
        content: Any = request.user_information.content
        self.ciphered = bool(request.ciphered)
        if self.ciphered:
            if self.keys is None or not request.system_title:
                return self._aare(
                    enumerations.AssociationResult.REJECTED_PERMANENT,
                    Diag.APPLICATION_CONTEXT_NAME_NOT_SUPPORTED,
                )
            self.client_title = request.system_title
        self.cipher_initiate = isinstance(content, xdlms.GlobalCipherInitiateRequest)
        if self.cipher_initiate:
            if self.keys is None:
                return self._aare(enumerations.AssociationResult.REJECTED_PERMANENT, Diag.NO_REASON_GIVEN)
            try:
                plain = ciphering.decrypt(
                    content.ciphered_text, self.keys, self.client_title, content.invocation_counter
                )
            except Exception:  # a wrong key: the initiate request does not authenticate
                return self._aare(enumerations.AssociationResult.REJECTED_PERMANENT, Diag.NO_REASON_GIVEN)
            self.meter.frame_counter = max(self.meter.frame_counter, content.invocation_counter)
            content = xdlms.InitiateRequest.from_bytes(plain)
        self.conformance = _intersect(content.proposed_conformance, SERVER_CONFORMANCE)
        self.client_max_pdu = content.client_max_receive_pdu_size or 0xFFFF
        if not public and self.auth == "hls-gmac":
            self.client_challenge = request.authentication_value or b""
            self.challenge = os.urandom(16)
            self.hls_pending = True
            return self._aare(enumerations.AssociationResult.ACCEPTED, Diag.AUTHENTICATION_REQUIRED)
        self.associated = True
        return self._aare(enumerations.AssociationResult.ACCEPTED, Diag.NULL)

    def _aare(self, result: enumerations.AssociationResult, diagnostic: Any) -> bytes:
        accepted = result == enumerations.AssociationResult.ACCEPTED
        content: Any = None
        if accepted:
            content = xdlms.InitiateResponse(
                negotiated_conformance=self.conformance, server_max_receive_pdu_size=SERVER_MAX_PDU
            )
            if self.cipher_initiate:  # answer in kind: ciphered only if the request was
                assert self.keys is not None
                self._counter += 1
                content = xdlms.GlobalCipherInitiateResponse(
                    security_control=ciphering.SECURITY_CONTROL,
                    invocation_counter=self._counter,
                    ciphered_text=ciphering.encrypt(
                        content.to_bytes(), self.keys, self.system_title, self._counter
                    ),
                )
        hls = diagnostic == Diag.AUTHENTICATION_REQUIRED
        response = acse.ApplicationAssociationResponse(
            result=result,
            result_source_diagnostics=diagnostic,
            ciphered=self.ciphered and accepted,
            authentication=enumerations.AuthenticationMechanism.HLS_GMAC if hls else None,
            system_title=self.system_title if self.ciphered and accepted else None,
            authentication_value=self.challenge if hls else None,
            user_information=acse.UserInformation(content=content) if content is not None else None,
        )
        return bytes(response.to_bytes())

    # --- xDLMS services -----------------------------------------------------------------------

    def _service(self, plain: bytes) -> bytes:
        tag = plain[0]
        if self.hls_pending and tag != apdu.ACTION_REQUEST:
            return _EXCEPTION
        try:
            if tag == apdu.GET_REQUEST and len(plain) >= 3:
                return self._get(plain)
            if tag == apdu.SET_REQUEST and len(plain) >= 3:
                return self._set(plain)
            if tag == apdu.ACTION_REQUEST and len(plain) >= 3:
                return self._action(plain)
        except (_Malformed, ApduError):
            return _EXCEPTION
        return _EXCEPTION

    def _get(self, plain: bytes) -> bytes:
        kind, invoke = plain[1], plain[2]
        if kind == apdu.NEXT_OR_BLOCK:
            request = _parse(xdlms.GetRequestNext.from_bytes, plain)
            return self._next_block(invoke, request.block_number)
        if kind == apdu.WITH_LIST:
            if not self.conformance.multiple_references:
                return _EXCEPTION
            request = _parse(xdlms.GetRequestWithList.from_bytes, plain)
            out = bytearray((apdu.GET_RESPONSE, apdu.WITH_LIST, invoke))
            out += axdr.encode_length(len(request.cosem_attributes_with_selection))
            for item in request.cosem_attributes_with_selection:
                value = self._read(item.attribute, None)
                out += (b"\x00" + value) if isinstance(value, bytes) else bytes((1, value))
            return bytes(out)
        request = _parse(xdlms.GetRequestNormal.from_bytes, plain[:12] + b"\x00")
        access = plain[13:] if len(plain) > 13 and plain[12] == 1 else None
        if access is not None and not self.conformance.selective_access:
            return _EXCEPTION
        value = self._read(request.cosem_attribute, access)
        if isinstance(value, int):
            return bytes((apdu.GET_RESPONSE, apdu.NORMAL, invoke, 1, value))
        room = min(self.client_max_pdu, SERVER_MAX_PDU) - 16 - (32 if self.ciphered else 0)
        if len(value) + 4 <= room + 8 or not self.conformance.block_transfer_with_get_or_read:
            return bytes((apdu.GET_RESPONSE, apdu.NORMAL, invoke, 0)) + value
        self._blocks = [value[i : i + room] for i in range(0, len(value), room)]
        self._block_number = 0
        return self._next_block(invoke, 0)

    def _next_block(self, invoke: int, acknowledged: int) -> bytes:
        if not self._blocks or acknowledged != self._block_number:
            return (
                bytes((apdu.GET_RESPONSE, apdu.NEXT_OR_BLOCK, invoke, 1))
                + (acknowledged + 1).to_bytes(4, "big")
                + bytes((1, 16))
            )  # no-long-get-in-progress
        block = self._blocks.pop(0)
        self._block_number += 1
        self.blocks_served += 1
        last = 0 if self._blocks else 1
        return (
            bytes((apdu.GET_RESPONSE, apdu.NEXT_OR_BLOCK, invoke, last))
            + self._block_number.to_bytes(4, "big")
            + b"\x00"
            + axdr.encode_length(len(block))
            + block
        )

    def _read(self, attribute: Any, access: bytes | None) -> bytes | int:
        obis = ".".join(str(b) for b in attribute.instance.to_bytes())
        if (
            self.client_sap == PUBLIC_CLIENT
            and self.auth != "none"
            and obis not in ("0.0.43.1.0.255", "0.0.1.0.0.255", "0.0.40.0.0.255")
        ):
            return READ_WRITE_DENIED  # the public client sees only the clock and the frame counter
        try:
            return self.meter.get(int(attribute.interface), obis, attribute.attribute, access)
        except ValueError:
            return 12  # type-unmatched: a selective access we do not understand

    def _set(self, plain: bytes) -> bytes:
        request = _parse(xdlms.SetRequestNormal.from_bytes, plain)
        obis = ".".join(str(b) for b in request.cosem_attribute.instance.to_bytes())
        result = (
            READ_WRITE_DENIED
            if self.client_sap == PUBLIC_CLIENT
            else self.meter.set(
                int(request.cosem_attribute.interface), obis, request.cosem_attribute.attribute, request.data
            )
        )
        return bytes((apdu.SET_RESPONSE, apdu.NORMAL, plain[2], result))

    def _action(self, plain: bytes) -> bytes:
        request = _parse(xdlms.ActionRequestNormal.from_bytes, plain)
        obis = ".".join(str(b) for b in request.cosem_method.instance.to_bytes())
        invoke = plain[2]
        if obis == "0.0.40.0.0.255" and request.cosem_method.method == 1 and self.hls_pending:
            return self._reply_to_hls(invoke, request.data or b"")
        if self.hls_pending:
            return _EXCEPTION
        if obis == "0.0.1.0.0.255" and request.cosem_method.method == 6 and self.client_sap != PUBLIC_CLIENT:
            seconds = axdr.decode(request.data or b"")
            status = self.meter.shift_time(seconds) if isinstance(seconds, int) else 12
            return bytes((apdu.ACTION_RESPONSE, apdu.NORMAL, invoke, status, 0))
        return bytes((apdu.ACTION_RESPONSE, apdu.NORMAL, invoke, READ_WRITE_DENIED, 0))

    def _reply_to_hls(self, invoke: int, data: bytes) -> bytes:
        assert self.keys is not None
        value = axdr.decode(data)
        ok = isinstance(value, bytes) and len(value) == 17 and value[0] == GMAC_CONTROL.to_bytes()[0]
        if ok:
            assert isinstance(value, bytes)
            counter = int.from_bytes(value[1:5], "big")
            ok = value[5:] == gmac_tag(self.keys, self.client_title, counter, self.challenge)
        if not ok:
            self.hls_pending = False
            return bytes((apdu.ACTION_RESPONSE, apdu.NORMAL, invoke, READ_WRITE_DENIED, 0))
        self.hls_pending = False
        self.associated = True
        self._counter += 1
        proof = (
            GMAC_CONTROL.to_bytes()
            + self._counter.to_bytes(4, "big")
            + gmac_tag(self.keys, self.system_title, self._counter, self.client_challenge)
        )
        return bytes((apdu.ACTION_RESPONSE, apdu.NORMAL, invoke, 0, 1, 0)) + axdr.octets(proof)
