"""The client side of a COSEM application association, without I/O.

Built on dlms-cosem's ACSE and xDLMS classes (AARQ/AARE, InitiateRequest/Response,
Conformance, RLRQ) and its AES-GCM functions; the bookkeeping is ours rather than
`DlmsConnection`'s because that class logs every APDU, the LLS password in the AARQ
included, and we may never log a secret. Mechanisms: none, LLS (1), HLS-GMAC (5) with
security suite 0; ciphered associations use general-glo or service-specific glo ciphering.
"""

from __future__ import annotations

import copy
import functools
import os
from collections.abc import Callable
from typing import Any, Literal

from dlms_cosem import enumerations, security
from dlms_cosem.protocol import acse, xdlms
from dlms_cosem.protocol.xdlms.conformance import Conformance

from protocols.dlms import apdu, axdr, ciphering
from protocols.dlms.errors import (
    ApduError,
    AssociationRejected,
    DlmsAuthenticationFailed,
    DlmsLocalError,
    DlmsRemoteError,
)

Auth = Literal["none", "lls", "hls-gmac"]
ASSOCIATION_LN = "0.0.40.0.0.255"
REPLY_TO_HLS = 1
_MECHANISM = {
    "none": enumerations.AuthenticationMechanism.NONE,
    "lls": enumerations.AuthenticationMechanism.LLS,
    "hls-gmac": enumerations.AuthenticationMechanism.HLS_GMAC,
}
HLS_HINT = (
    "either the keys in the key store do not match the meter's, or the invocation counter was "
    "used before (a counter store that forgot its blocks: pass a durable StateCounterStore, or "
    "recover the counter from the meter's frame counter with recover_invocation_counter)"
)
GMAC_CONTROL = security.SecurityControlField(security_suite=0, authenticated=True, encrypted=False)


def proposed_conformance(ciphered: bool) -> Conformance:
    return Conformance(
        general_protection=ciphered,
        block_transfer_with_get_or_read=True,
        multiple_references=True,
        get=True,
        set=True,
        selective_access=True,
        action=True,
        priority_management_supported=True,
    )


def gmac_tag(keys: ciphering.Keys, system_title: bytes, counter: int, challenge: bytes) -> bytes:
    return bytes(
        security.gmac(
            GMAC_CONTROL,
            system_title=system_title,
            invocation_counter=counter,
            key=keys.encryption,
            auth_key=keys.authentication,
            challenge=challenge,
        )
    )


@functools.lru_cache(maxsize=64)
def _public_aarq(max_pdu: int) -> bytes:
    """The AARQ of the public client carries nothing per session: built once per PDU size."""
    initiate = xdlms.InitiateRequest(
        proposed_conformance=proposed_conformance(False), client_max_receive_pdu_size=max_pdu
    )
    request = acse.ApplicationAssociationRequest(
        ciphered=False,
        system_title=None,
        authentication=None,
        authentication_value=None,
        user_information=acse.UserInformation(content=initiate),
    )
    return bytes(request.to_bytes())


def _parse_aare(data: bytes) -> acse.ApplicationAssociationResponse:
    aare: acse.ApplicationAssociationResponse = _dlms_cosem(
        "the AARE", acse.ApplicationAssociationResponse.from_bytes, data
    )
    return aare


# An AARE without a challenge or ciphering is the same every time a meter answers the same
# AARQ, so its parsed form is kept (read-only) rather than parsed again per session.
_parse_plain_aare = functools.lru_cache(maxsize=256)(_parse_aare)

RLRQ = bytes(acse.ReleaseRequest(reason=enumerations.ReleaseRequestReason.NORMAL).to_bytes())


def _dlms_cosem(what: str, parse: Callable[[bytes], Any], data: bytes) -> Any:
    """Call a dlms-cosem parser; whatever it raises means the meter's bytes are bad."""
    try:
        return parse(data)
    except Exception as exc:  # dlms-cosem raises ValueError, KeyError, IndexError, ... on bad input
        raise ApduError(
            f"{what} does not decode ({type(exc).__name__}: {exc}); bytes {data[:24].hex()}"
        ) from None


class ClientAssociation:
    def __init__(
        self,
        *,
        auth: Auth = "none",
        password: bytes | None = None,
        keys: ciphering.Keys | None = None,
        system_title: bytes = b"AMR\x00\x00\x00\x00\x01",
        counter: Callable[[], int] | None = None,
        general_ciphering: bool = True,
        max_pdu: int = 1024,
        where: str = "meter",
    ) -> None:
        if auth == "lls" and not password:
            raise DlmsLocalError(f"{where}: auth=lls needs a password from the key store")
        if auth == "hls-gmac" and keys is None:
            raise DlmsLocalError(
                f"{where}: auth=hls-gmac needs the meter's encryption and authentication keys"
            )
        if keys is not None and counter is None:
            raise DlmsLocalError(f"{where}: a ciphered association needs an invocation counter store")
        self.auth, self._password, self.keys = auth, password, keys
        self.system_title = system_title
        self._counter = counter
        self._general = general_ciphering
        self._max_pdu = max_pdu
        self.where = where
        self.challenge = os.urandom(16) if auth == "hls-gmac" else b""
        self.conformance = Conformance()
        self.server_max_pdu = 0
        self.meter_title: bytes | None = None
        self.meter_challenge: bytes | None = None
        self.hls_pending = False
        self.associated = False
        self._last_meter_counter = -1

    @property
    def ciphered(self) -> bool:
        return self.keys is not None

    def _next_counter(self) -> int:
        assert self._counter is not None
        return self._counter()

    # --- association establishment ----------------------------------------------------

    def aarq(self) -> bytes:
        if self.auth == "none" and not self.ciphered:
            return _public_aarq(self._max_pdu)
        # The InitiateRequest goes in plain: it carries no dedicated key, and a wrong key must
        # then fail where the standard says, at reply_to_HLS_authentication.
        initiate = xdlms.InitiateRequest(
            proposed_conformance=proposed_conformance(self.ciphered),
            client_max_receive_pdu_size=self._max_pdu,
        )
        request = acse.ApplicationAssociationRequest(
            ciphered=self.ciphered,
            system_title=self.system_title if self.ciphered else None,
            authentication=_MECHANISM[self.auth] if self.auth != "none" else None,
            authentication_value=self._password if self.auth == "lls" else (self.challenge or None),
            user_information=acse.UserInformation(content=initiate),
        )
        return bytes(request.to_bytes())

    def accept_aare(self, data: bytes) -> None:
        """Take the AARE: raise on refusal, else note conformance, PDU size and the HLS challenge."""
        if not data or data[0] != 0x61:
            raise ApduError(f"{self.where}: expected an AARE (61), got {data[:8].hex()}")
        aare = _parse_plain_aare(data) if self.auth == "none" else _parse_aare(data)
        diagnostic = aare.result_source_diagnostics
        if aare.result != enumerations.AssociationResult.ACCEPTED:
            if diagnostic == enumerations.AcseServiceUserDiagnostics.AUTHENTICATION_FAILED:
                raise DlmsAuthenticationFailed(
                    f"{self.where}: the meter rejected the association: authentication failed",
                    hint="the password in the key store does not match the meter's (LLS)",
                )
            if diagnostic in (
                enumerations.AcseServiceUserDiagnostics.AUTHENTICATION_MECHANISM_NAME_REQUIRED,
                enumerations.AcseServiceUserDiagnostics.AUTHENTICATION_MECHANISM_NAME_NOT_RECOGNIZED,
            ):
                raise DlmsAuthenticationFailed(
                    f"{self.where}: the meter does not accept auth={self.auth} for this client "
                    f"({diagnostic.name})",
                    hint="use the client address and auth= mechanism configured in the meter",
                )
            raise AssociationRejected(
                f"{self.where}: the meter rejected the association ({diagnostic!r})",
                hint="check the client address and application context",
            )
        self.meter_title = aare.system_title
        info = aare.user_information.content if aare.user_information else None
        if isinstance(info, xdlms.GlobalCipherInitiateResponse):
            if self.keys is None or self.meter_title is None:
                raise ApduError(f"{self.where}: the AARE is ciphered but the association is not")
            self._check_meter_counter(info.invocation_counter)
            plain = ciphering.decrypt(
                info.ciphered_text, self.keys, self.meter_title, info.invocation_counter
            )
            info = _dlms_cosem("the AARE's initiate-response", xdlms.InitiateResponse.from_bytes, plain)
        if isinstance(info, xdlms.ConfirmedServiceError):
            raise AssociationRejected(f"{self.where}: the meter refused the xDLMS context ({info!r})")
        if not isinstance(info, xdlms.InitiateResponse):
            raise ApduError(f"{self.where}: the AARE carries no initiate-response")
        # A copy: a parsed AARE may be shared (cached) by every session that received the same bytes.
        self.conformance = copy.copy(info.negotiated_conformance)
        self.server_max_pdu = info.server_max_receive_pdu_size or 0xFFFF
        if self.ciphered and not self.meter_title:
            raise ApduError(f"{self.where}: a ciphered AARE must carry the meter's system title")
        if (
            diagnostic == enumerations.AcseServiceUserDiagnostics.AUTHENTICATION_REQUIRED
            or self.auth == "hls-gmac"
        ):
            if self.auth != "hls-gmac" or not aare.authentication_value:
                raise AssociationRejected(
                    f"{self.where}: the meter asks for HLS authentication",
                    hint="use auth=hls-gmac with the meter's keys",
                )
            self.meter_challenge = aare.authentication_value
            self.hls_pending = True
        else:
            self.associated = True

    def hls_request(self, invoke_id: int) -> bytes:
        """reply_to_HLS_authentication: f(StoC) = SC || IC || GMAC(SC || AK || StoC)."""
        assert self.keys is not None and self.meter_challenge is not None
        counter = self._next_counter()
        reply = (
            GMAC_CONTROL.to_bytes()
            + counter.to_bytes(4, "big")
            + gmac_tag(self.keys, self.system_title, counter, self.meter_challenge)
        )
        return self.protect(
            apdu.action_request(15, ASSOCIATION_LN, REPLY_TO_HLS, axdr.octets(reply), invoke_id)
        )

    def accept_hls_response(self, data: bytes) -> None:
        try:
            status, returned = apdu.parse_action_response(self.unprotect(data))
        except DlmsRemoteError as exc:
            # A meter that cannot decipher our reply (wrong keys) answers with an exception.
            raise DlmsAuthenticationFailed(
                f"{self.where}: reply_to_HLS_authentication failed: {exc}",
                hint=HLS_HINT,
            ) from None
        if status != 0 or returned is None:
            raise DlmsAuthenticationFailed(
                f"{self.where}: the meter refused reply_to_HLS_authentication ({apdu.result_name(status)})",
                hint=HLS_HINT,
            )
        value = axdr.decode(returned)
        assert self.keys is not None and self.meter_title is not None
        if not isinstance(value, bytes) or len(value) != 17:
            raise DlmsAuthenticationFailed(f"{self.where}: the meter's HLS answer is not SC || IC || GMAC")
        counter = int.from_bytes(value[1:5], "big")
        if value[5:] != gmac_tag(self.keys, self.meter_title, counter, self.challenge):
            raise DlmsAuthenticationFailed(
                f"{self.where}: the meter failed to prove it holds the keys (HLS)",
                hint="a different meter answers at this address, or keys are wrong",
            )
        self.hls_pending = False
        self.associated = True

    def rlrq(self) -> bytes:
        return RLRQ

    # --- protection ---------------------------------------------------------------------

    def require(self, service: str) -> None:
        """Refuse a service the meter did not grant in the negotiated conformance."""
        if not getattr(self.conformance, service):
            raise DlmsLocalError(
                f"{self.where}: the meter did not grant {service.replace('_', '-')} "
                "in the association's conformance",
                hint="the meter's association for this client does not allow it",
            )

    def protect(self, plain: bytes) -> bytes:
        if self.keys is None:
            return plain
        return ciphering.wrap(
            plain, self.keys, self.system_title, self._next_counter(), general=self._general
        )

    def _check_meter_counter(self, counter: int) -> None:
        if counter <= self._last_meter_counter:
            raise DlmsRemoteError(
                f"{self.where}: the meter reused invocation counter {counter} (replay?)",
                retryable=False,
                hint="the answer was discarded as a possible replay",
            )
        self._last_meter_counter = counter

    def unprotect(self, data: bytes) -> bytes:
        if self.keys is None:
            if ciphering.is_ciphered(data):
                raise ApduError(f"{self.where}: ciphered APDU on an unciphered association")
            return data
        if not ciphering.is_ciphered(data):
            if data and data[0] in (apdu.EXCEPTION_RESPONSE, apdu.CONFIRMED_SERVICE_ERROR):
                return data
            raise DlmsRemoteError(
                f"{self.where}: an unciphered APDU on a ciphered association was refused",
                retryable=False,
                hint="the meter's security policy must cipher every answer",
            )
        envelope = ciphering.parse(data)
        title = envelope.system_title or self.meter_title
        assert title is not None
        self._check_meter_counter(envelope.invocation_counter)
        return ciphering.decrypt(envelope.ciphertext, self.keys, title, envelope.invocation_counter)
