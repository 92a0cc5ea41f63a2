"""Protocol errors: ours (local) and the meter's or the line's (remote).

A `RemoteProtocolError` says whether trying again may help (`retryable`): a timeout or a
dropped connection may; a rejected password or an object the meter does not have won't.
The head-end's polling policy is the only layer that retries.
"""

from __future__ import annotations

from core.errors import AmrError


class ProtocolError(AmrError):
    """Anything that went wrong talking to a meter."""

    error_class = "protocol"


class LocalProtocolError(ProtocolError):
    """We were asked to do something the protocol or the meter's settings do not allow."""

    error_class = "local"


class RemoteProtocolError(ProtocolError):
    """The meter or the line answered badly, or not at all."""

    error_class = "remote"

    def __init__(self, message: str, *, retryable: bool, hint: str | None = None) -> None:
        super().__init__(message, hint=hint)
        self.retryable = retryable


class MeterTimeout(RemoteProtocolError):
    error_class = "timeout"

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        super().__init__(message, retryable=True, hint=hint)


class ConnectionLost(RemoteProtocolError):
    error_class = "connection"

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        super().__init__(message, retryable=True, hint=hint)


class AuthenticationFailed(RemoteProtocolError):
    error_class = "authentication"

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        super().__init__(message, retryable=False, hint=hint)


class BadValue(RemoteProtocolError):
    """A value that decodes to NaN, infinity, or outside its declared range: never stored as good."""

    error_class = "bad-value"

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        super().__init__(message, retryable=False, hint=hint)
