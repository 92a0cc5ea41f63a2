"""DLMS errors: each is a protocol error from protocols.errors, so callers classify them alike.

`DlmsRemoteError` covers anything the meter or the line sent that we cannot accept (bad
frames, bad APDUs, refusals); `DlmsLocalError` covers requests our side cannot make (a
service the meter did not grant, a setting that does not exist).
"""

from __future__ import annotations

from protocols.errors import AuthenticationFailed, LocalProtocolError, RemoteProtocolError


class DlmsRemoteError(RemoteProtocolError):
    """The meter or the line sent something we cannot accept."""

    error_class = "dlms-remote"


class FrameError(DlmsRemoteError):
    """A wrapper or HDLC frame that is malformed or fails its checksum."""

    error_class = "frame"

    def __init__(self, message: str, *, retryable: bool = True, hint: str | None = None) -> None:
        super().__init__(message, retryable=retryable, hint=hint)


class ApduError(DlmsRemoteError):
    """An APDU or A-XDR value that does not decode."""

    error_class = "apdu"

    def __init__(self, message: str, *, retryable: bool = False, hint: str | None = None) -> None:
        super().__init__(message, retryable=retryable, hint=hint)


class AccessDenied(DlmsRemoteError):
    """The meter answered a GET/SET/ACTION with a data-access-result other than success."""

    error_class = "access"

    def __init__(self, message: str, *, result: int, hint: str | None = None) -> None:
        # temporary-failure (2) may clear; everything else is a property of the meter.
        super().__init__(message, retryable=result == 2, hint=hint)
        self.result = result


class AssociationRejected(DlmsRemoteError):
    """The AARE refused the association for a reason other than authentication."""

    error_class = "association"

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        super().__init__(message, retryable=False, hint=hint)


class DlmsAuthenticationFailed(AuthenticationFailed):
    """Wrong LLS password (AARE rejected) or wrong HLS key (reply_to_HLS failed)."""


class IncompleteProfile(DlmsRemoteError):
    """A profile read ended before its last block: never returned as if complete."""

    error_class = "incomplete-profile"

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        super().__init__(message, retryable=True, hint=hint)


class DlmsLocalError(LocalProtocolError):
    """Our side cannot make the request: a service not granted, an unknown setting."""

    error_class = "dlms-local"
