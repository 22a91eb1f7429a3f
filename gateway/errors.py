"""The gateway's exception tree and the one table that maps CI errors onto gRPC.

::

    GatewayError
    ├── InvalidRequest        a caller's field is wrong (carries field violations)
    ├── UpstreamError         CI answered with an <Error> (carries Code, Message, RequestId, ...)
    ├── UpstreamProtocolError CI's answer could not be understood (bad XML, a redirect, ...)
    ├── TransportError        no answer: connect failure, reset, time-out
    │   └── UpstreamTimeout
    ├── DeadlineExceeded      the caller's deadline ran out before an answer
    ├── RetryBudgetExhausted  a retry was due but the upstream's retry budget is empty
    ├── Overloaded            the gateway sheds load instead of queueing it
    ├── SubmitOutcomeUnknown  a submit may or may not have created a job; retry with its request_id
    └── RequestIdReused       a request_id came back with a different request

Two places read `CI_ERRORS`: the retry predicate (`classify`) and the servicer-side converter in
`gateway.status`. A CI `Code` missing from the table falls back on its HTTP status, so a new CI
code is still mapped sensibly and its raw text still reaches the caller.

CI signature and access failures are the gateway's fault (its credentials, its clock, its signer),
never the caller's, so none of them is PERMISSION_DENIED or UNAUTHENTICATED: those would send a
caller hunting for a credential it does not hold.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

import grpc


class RetryClass(enum.Enum):
    """How the retry layer treats an outcome."""

    TERMINAL = "terminal"  # retrying cannot help
    TRANSIENT = "transient"  # CI or the network failed; a later attempt may succeed
    THROTTLED = "throttled"  # CI asked us to slow down


class Reason(enum.StrEnum):
    """`google.rpc.ErrorInfo.reason` values: stable, UPPER_SNAKE, one per cause."""

    INVALID_REQUEST = "INVALID_REQUEST"
    UPSTREAM_REJECTED = "UPSTREAM_REJECTED"
    UPSTREAM_NOT_FOUND = "UPSTREAM_NOT_FOUND"
    UPSTREAM_THROTTLED = "UPSTREAM_THROTTLED"
    UPSTREAM_UNAVAILABLE = "UPSTREAM_UNAVAILABLE"
    UPSTREAM_AUTH_FAILED = "UPSTREAM_AUTH_FAILED"
    UPSTREAM_ACCESS_DENIED = "UPSTREAM_ACCESS_DENIED"
    UPSTREAM_PROTOCOL_ERROR = "UPSTREAM_PROTOCOL_ERROR"
    UPSTREAM_TIMEOUT = "UPSTREAM_TIMEOUT"
    DEADLINE_EXCEEDED = "DEADLINE_EXCEEDED"
    RETRY_BUDGET_EXHAUSTED = "RETRY_BUDGET_EXHAUSTED"
    OVERLOADED = "OVERLOADED"
    SUBMIT_OUTCOME_UNKNOWN = "SUBMIT_OUTCOME_UNKNOWN"
    REQUEST_ID_REUSED = "REQUEST_ID_REUSED"
    # Upstream credentials (gateway.credentials) and client access (gateway.auth).
    CREDENTIALS_UNAVAILABLE = "CREDENTIALS_UNAVAILABLE"
    CLIENT_NOT_AUTHENTICATED = "CLIENT_NOT_AUTHENTICATED"
    OPERATION_NOT_ALLOWED = "OPERATION_NOT_ALLOWED"
    BUCKET_NOT_ALLOWED = "BUCKET_NOT_ALLOWED"
    TAG_NOT_ALLOWED = "TAG_NOT_ALLOWED"
    CLIENT_RATE_LIMITED = "CLIENT_RATE_LIMITED"


@dataclass(frozen=True)
class ErrorRule:
    status: grpc.StatusCode
    retry: RetryClass
    reason: Reason


_S = grpc.StatusCode
_T, _R, _X = RetryClass.TERMINAL, RetryClass.TRANSIENT, RetryClass.THROTTLED

CI_ERRORS: dict[str, ErrorRule] = {
    # The caller's request was wrong in a way only CI could tell (e.g. an unknown QueueId).
    "InvalidArgument": ErrorRule(_S.INVALID_ARGUMENT, _T, Reason.UPSTREAM_REJECTED),
    # Malformed requests are the gateway's bug: the caller cannot fix them.
    "MissingContent": ErrorRule(_S.INTERNAL, _T, Reason.UPSTREAM_REJECTED),
    "InvalidContent": ErrorRule(_S.INTERNAL, _T, Reason.UPSTREAM_REJECTED),
    "InvalidHost": ErrorRule(_S.INTERNAL, _T, Reason.UPSTREAM_REJECTED),
    "InvalidUrl": ErrorRule(_S.INTERNAL, _T, Reason.UPSTREAM_REJECTED),
    "MissingContentLength": ErrorRule(_S.INTERNAL, _T, Reason.UPSTREAM_REJECTED),
    "MethodNotAllowed": ErrorRule(_S.INTERNAL, _T, Reason.UPSTREAM_REJECTED),
    "PermanentRedirect": ErrorRule(_S.INTERNAL, _T, Reason.UPSTREAM_PROTOCOL_ERROR),
    "TemporaryRedirect": ErrorRule(_S.INTERNAL, _T, Reason.UPSTREAM_PROTOCOL_ERROR),
    # Objects, buckets and jobs that do not exist.
    "ResourceNotFound": ErrorRule(_S.NOT_FOUND, _T, Reason.UPSTREAM_NOT_FOUND),
    "NoSuchKey": ErrorRule(_S.NOT_FOUND, _T, Reason.UPSTREAM_NOT_FOUND),
    "NoSuchBucket": ErrorRule(_S.NOT_FOUND, _T, Reason.UPSTREAM_NOT_FOUND),
    # The gateway's credentials, clock or signer: an operator must act, not the caller.
    "MissingAuthorization": ErrorRule(_S.INTERNAL, _T, Reason.UPSTREAM_AUTH_FAILED),
    "InvalidAuthorization": ErrorRule(_S.INTERNAL, _T, Reason.UPSTREAM_AUTH_FAILED),
    "SecretidNotExist": ErrorRule(_S.INTERNAL, _T, Reason.UPSTREAM_AUTH_FAILED),
    "InvalidAccessKeyId": ErrorRule(_S.INTERNAL, _T, Reason.UPSTREAM_AUTH_FAILED),
    "SignatureExpired": ErrorRule(_S.INTERNAL, _T, Reason.UPSTREAM_AUTH_FAILED),
    "SignatureDoesNotMatch": ErrorRule(_S.INTERNAL, _T, Reason.UPSTREAM_AUTH_FAILED),
    "RequestTimeTooSkewed": ErrorRule(_S.INTERNAL, _T, Reason.UPSTREAM_AUTH_FAILED),
    "ExpiredToken": ErrorRule(_S.INTERNAL, _T, Reason.UPSTREAM_AUTH_FAILED),
    "InvalidToken": ErrorRule(_S.INTERNAL, _T, Reason.UPSTREAM_AUTH_FAILED),
    # The account or bucket is not set up for what was asked.
    "AccessDenied": ErrorRule(_S.FAILED_PRECONDITION, _T, Reason.UPSTREAM_ACCESS_DENIED),
    "ResourceAccessDenied": ErrorRule(_S.FAILED_PRECONDITION, _T, Reason.UPSTREAM_ACCESS_DENIED),
    "CIRoleNotExist": ErrorRule(_S.FAILED_PRECONDITION, _T, Reason.UPSTREAM_ACCESS_DENIED),
    "MediaBucketAlreadyBinded": ErrorRule(_S.FAILED_PRECONDITION, _T, Reason.UPSTREAM_REJECTED),
    "UnavailableForLegalReasons": ErrorRule(_S.FAILED_PRECONDITION, _T, Reason.UPSTREAM_REJECTED),
    "QueuePaused": ErrorRule(_S.FAILED_PRECONDITION, _T, Reason.UPSTREAM_REJECTED),
    # Throttling: CI wants fewer requests (429 on CI hosts, 503 on COS hosts, a full queue).
    "SlowDown": ErrorRule(_S.RESOURCE_EXHAUSTED, _X, Reason.UPSTREAM_THROTTLED),
    "QueueSaturated": ErrorRule(_S.RESOURCE_EXHAUSTED, _X, Reason.UPSTREAM_THROTTLED),
    # CI is failing; a later attempt may succeed.
    "InternalError": ErrorRule(_S.UNAVAILABLE, _R, Reason.UPSTREAM_UNAVAILABLE),
    "InternalErrror": ErrorRule(_S.UNAVAILABLE, _R, Reason.UPSTREAM_UNAVAILABLE),  # doc spelling
    "ServiceUnavailable": ErrorRule(_S.UNAVAILABLE, _R, Reason.UPSTREAM_UNAVAILABLE),
    "ResourceDownloadFailed": ErrorRule(_S.UNAVAILABLE, _R, Reason.UPSTREAM_UNAVAILABLE),
    "NotImplemented": ErrorRule(_S.UNIMPLEMENTED, _T, Reason.UPSTREAM_REJECTED),
}

_TRANSIENT_HTTP = frozenset({500, 502, 503, 504})


def rule_for_http_status(http_status: int) -> ErrorRule:
    """The fallback for a CI `Code` the table does not know (or an answer without one)."""
    if http_status == 429:
        return ErrorRule(_S.RESOURCE_EXHAUSTED, _X, Reason.UPSTREAM_THROTTLED)
    if http_status in _TRANSIENT_HTTP:
        return ErrorRule(_S.UNAVAILABLE, _R, Reason.UPSTREAM_UNAVAILABLE)
    if http_status == 501:
        return ErrorRule(_S.UNIMPLEMENTED, _T, Reason.UPSTREAM_REJECTED)
    if http_status >= 500:
        return ErrorRule(_S.UNAVAILABLE, _T, Reason.UPSTREAM_UNAVAILABLE)
    if http_status == 400:
        return ErrorRule(_S.INVALID_ARGUMENT, _T, Reason.UPSTREAM_REJECTED)
    if http_status in (401, 403):
        return ErrorRule(_S.INTERNAL, _T, Reason.UPSTREAM_AUTH_FAILED)
    if http_status == 404:
        return ErrorRule(_S.NOT_FOUND, _T, Reason.UPSTREAM_NOT_FOUND)
    return ErrorRule(_S.INTERNAL, _T, Reason.UPSTREAM_PROTOCOL_ERROR)


def rule_for(code: str, http_status: int) -> ErrorRule:
    """Map CI's `Code`; a code the table does not know falls back on the HTTP status, so that
    `SlowDown` is throttling on both its 429 (CI) and 503 (COS) forms and an unknown 5xx stays
    retryable."""
    return CI_ERRORS.get(code) or rule_for_http_status(http_status)


class GatewayError(Exception):
    """Base of every error the gateway raises on purpose. Messages never carry secrets."""

    status: grpc.StatusCode = grpc.StatusCode.INTERNAL
    reason: Reason = Reason.UPSTREAM_PROTOCOL_ERROR
    retry: RetryClass = RetryClass.TERMINAL
    # Upstream attempts made before this error was final (set by the retry loop).
    attempts: int = 1
    # When the caller (or the retry loop) may try again, if whoever refused said so: CI's
    # Retry-After, a client rate limiter's next token. Becomes `google.rpc.RetryInfo`.
    retry_after_s: float | None = None

    def __init__(self, *args: object) -> None:
        super().__init__(*args)
        # Further ErrorInfo metadata added on the error's way out (e.g. the submit's request_id).
        self.extra: dict[str, str] = {}

    def metadata(self) -> dict[str, str]:
        """`ErrorInfo.metadata`: string facts a client can act on."""
        return {}


@dataclass(frozen=True)
class FieldViolation:
    field: str
    description: str


class InvalidRequest(GatewayError):
    """One or more RPC fields are invalid; each violation names the field's path."""

    status = grpc.StatusCode.INVALID_ARGUMENT
    reason = Reason.INVALID_REQUEST

    def __init__(self, violations: list[FieldViolation]) -> None:
        self.violations = violations
        summary = "; ".join(f"{v.field}: {v.description}" for v in violations)
        super().__init__(f"invalid request: {summary}")


class UpstreamError(GatewayError):
    """CI answered with an error. Every field is CI's own text, kept verbatim."""

    def __init__(
        self,
        *,
        http_status: int,
        code: str,
        message: str,
        request_id: str = "",
        trace_id: str = "",
        resource: str = "",
        attempts: int = 1,
        retry_after_s: float | None = None,
    ) -> None:
        self.http_status = http_status
        self.retry_after_s = retry_after_s
        self.code = code
        self.message = message
        self.request_id = request_id
        self.trace_id = trace_id
        self.resource = resource
        self.attempts = attempts
        rule = rule_for(code, http_status)
        self.status, self.reason, self.retry = rule.status, rule.reason, rule.retry
        super().__init__(str(self))

    def __str__(self) -> str:
        code = self.code or f"HTTP {self.http_status}"
        text = f"CI error {code}"
        if self.message:
            text += f": {self.message}"
        if self.request_id:
            text += f" (RequestId {self.request_id})"
        return text

    def metadata(self) -> dict[str, str]:
        data = {
            "ci_code": self.code,
            "ci_message": self.message,
            "ci_request_id": self.request_id,
            "ci_trace_id": self.trace_id,
            "http_status": str(self.http_status),
        }
        return {key: value for key, value in data.items() if value}


class UpstreamProtocolError(GatewayError):
    """CI's answer was not what the protocol promises (bad XML, a redirect, a wrong root)."""

    status = grpc.StatusCode.UNAVAILABLE
    reason = Reason.UPSTREAM_PROTOCOL_ERROR

    def __init__(self, message: str, *, http_status: int = 0, request_id: str = "") -> None:
        super().__init__(message)
        self.http_status = http_status
        self.request_id = request_id

    def metadata(self) -> dict[str, str]:
        data = {
            "http_status": str(self.http_status) if self.http_status else "",
            "ci_request_id": self.request_id,
        }
        return {key: value for key, value in data.items() if value}


class TransportError(GatewayError):
    """No answer from CI. `sent` says whether the request may have reached CI, which decides
    whether a non-idempotent call may be replayed."""

    status = grpc.StatusCode.UNAVAILABLE
    reason = Reason.UPSTREAM_UNAVAILABLE
    retry = RetryClass.TRANSIENT

    def __init__(self, message: str, *, sent: bool) -> None:
        super().__init__(message)
        self.sent = sent

    def metadata(self) -> dict[str, str]:
        return {"request_sent": "true" if self.sent else "false"}


class UpstreamTimeout(TransportError):
    """An attempt's own time-out ran out (not the caller's deadline)."""

    reason = Reason.UPSTREAM_TIMEOUT


class DeadlineExceeded(GatewayError):
    """The caller's deadline left no time for (another) attempt."""

    status = grpc.StatusCode.DEADLINE_EXCEEDED
    reason = Reason.DEADLINE_EXCEEDED


class RetryBudgetExhausted(GatewayError):
    """Retries towards one upstream are spent: CI is failing, and retrying would multiply it."""

    status = grpc.StatusCode.UNAVAILABLE
    reason = Reason.RETRY_BUDGET_EXHAUSTED

    def __init__(self, last: GatewayError, attempts: int) -> None:
        super().__init__(f"retry budget exhausted after {attempts} attempt(s); last error: {last}")
        self.last = last
        self.attempts = attempts

    def metadata(self) -> dict[str, str]:
        return {
            **self.last.metadata(),
            "attempts": str(self.attempts),
            "last_reason": self.last.reason.value,
        }


class Overloaded(GatewayError):
    """More work than the configured bound: refused at once rather than queued without limit."""

    status = grpc.StatusCode.RESOURCE_EXHAUSTED
    reason = Reason.OVERLOADED
    # Not retried inside the gateway: waiting for room would be the queue this error avoids.
    retry = RetryClass.TERMINAL

    def __init__(self, what: str, limit: int) -> None:
        super().__init__(f"gateway overloaded: {what} at its limit of {limit}; retry later")
        self.limit = limit

    def metadata(self) -> dict[str, str]:
        return {"limit": str(self.limit)}


class SubmitOutcomeUnknown(GatewayError):
    """CI may have created the job, and checking failed too. The request_id is remembered: a
    retry with it reconciles first and never creates a second job."""

    status = grpc.StatusCode.UNAVAILABLE
    reason = Reason.SUBMIT_OUTCOME_UNKNOWN

    def __init__(self, request_id: str, cause: GatewayError) -> None:
        super().__init__(
            f"the submit's outcome is unknown ({cause}); retry with request_id {request_id!r}, "
            "which cannot create a second job"
        )
        self.request_id = request_id
        self.cause = cause

    def metadata(self) -> dict[str, str]:
        return {**self.cause.metadata(), "request_id": self.request_id}


class RequestIdReused(GatewayError):
    """AIP-155: one request_id names one request; a different body under it is the caller's bug."""

    status = grpc.StatusCode.INVALID_ARGUMENT
    reason = Reason.REQUEST_ID_REUSED

    def __init__(self, request_id: str) -> None:
        super().__init__(
            f"request_id {request_id!r} was already used for a different request; "
            "use a new request_id for a new job"
        )
        self.request_id = request_id

    def metadata(self) -> dict[str, str]:
        return {"request_id": self.request_id}
