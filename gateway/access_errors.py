"""Refusals of client access, as `GatewayError`s so `gateway.status` renders them like any other.

    GatewayError
    └── AccessError                refused before CI was asked (ErrorInfo attempts = 0)
        ├── ClientNotAuthenticated UNAUTHENTICATED     no, or no valid, client credentials
        ├── AccessDenied           PERMISSION_DENIED   a known client, not allowed this
        │                                              (OPERATION/BUCKET/TAG_NOT_ALLOWED)
        └── ClientRateLimited      RESOURCE_EXHAUSTED  the client's own rate limit

Messages and `ErrorInfo` metadata name only what the caller sent and which rule refused it:
never another client, a bucket the caller did not name, or what the caller would be allowed.
"""

from __future__ import annotations

import grpc

from gateway.errors import GatewayError, Reason, RetryClass


class AccessError(GatewayError):
    """Refused before CI was asked: no upstream attempt was made."""

    attempts = 0


class ClientNotAuthenticated(AccessError):
    status = grpc.StatusCode.UNAUTHENTICATED
    reason = Reason.CLIENT_NOT_AUTHENTICATED


class AccessDenied(AccessError):
    """The client is known but the rule `reason` refuses the call; `metadata` says what was
    asked (`operation`, `bucket` or `tag`), which the caller already knows."""

    status = grpc.StatusCode.PERMISSION_DENIED

    def __init__(self, reason: Reason, message: str, asked: dict[str, str]) -> None:
        super().__init__(message)
        self.reason = reason
        self._asked = asked

    def metadata(self) -> dict[str, str]:
        return dict(self._asked)


class ClientRateLimited(AccessError):
    status = grpc.StatusCode.RESOURCE_EXHAUSTED
    reason = Reason.CLIENT_RATE_LIMITED
    retry = RetryClass.TERMINAL

    def __init__(self, retry_after_s: float) -> None:
        super().__init__("this client's request rate is over its limit; retry later")
        self.retry_after_s = retry_after_s  # the bucket's next token: RetryInfo says exactly that
        self._retry_after_ms = max(1, round(retry_after_s * 1000))

    def metadata(self) -> dict[str, str]:
        return {"retry_after_ms": str(self._retry_after_ms)}
