"""The portal's errors. Each carries the HTTP status the API answers with."""

from __future__ import annotations

from core.errors import AmrError


class PortalError(AmrError):
    """Base of every error the portal raises on purpose."""

    status = 500
    code = "portal_error"


class InvalidRequest(PortalError):
    status = 422
    code = "invalid_request"


class Unauthenticated(PortalError):
    status = 401
    code = "unauthenticated"


class Forbidden(PortalError):
    status = 403
    code = "forbidden"


class NotFound(PortalError):
    status = 404
    code = "not_found"


class Conflict(PortalError):
    status = 409
    code = "conflict"


class RateLimited(PortalError):
    status = 429
    code = "rate_limited"

    def __init__(self, message: str, *, retry_after_s: float, hint: str | None = None) -> None:
        super().__init__(message, hint=hint)
        self.retry_after_s = retry_after_s


class SnapshotUnavailable(PortalError):
    status = 503
    code = "snapshot_unavailable"


class PublishError(PortalError):
    """The intake could not be reached or refused a bill; `retryable` says whether to try again."""

    code = "publish_failed"

    def __init__(self, message: str, *, retryable: bool, hint: str | None = None) -> None:
        super().__init__(message, hint=hint)
        self.retryable = retryable


class NotConfigured(PortalError):
    status = 500
    code = "not_configured"


class BadTokenRequest(PortalError):
    """A token request RFC 6749 answers with 400 (unknown grant type, oversized form)."""

    status = 400
    code = "invalid_request"
