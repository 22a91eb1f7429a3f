"""The gateway's exception tree and the one table that maps CI errors onto gRPC.

Every error the gateway raises on purpose is a `GatewayError` defined here, so this tree is the
whole list (tests/test_errors.py keeps it equal to the classes). The gRPC code is the class's;
`UpstreamError` takes its code and reason from `CI_ERRORS`, and `AccessDenied` names the rule.

::

    GatewayError                   INTERNAL            a bug inside the gateway (reason INTERNAL)
    ├── InvalidRequest             INVALID_ARGUMENT    a caller's field is wrong (field violations)
    ├── MalformedRequest           INVALID_ARGUMENT    no valid Protobuf message, or far too large
    ├── RequestIdReused            INVALID_ARGUMENT    a request_id came back with another request
    ├── UpstreamError              *                   CI answered with an <Error> (Code, Message)
    ├── UpstreamProtocolError      UNAVAILABLE         CI's answer made no sense (bad XML, 3xx)
    ├── TransportError             UNAVAILABLE         no answer: connect failure, reset, time-out
    │   ├── UpstreamTimeout        UNAVAILABLE         an attempt's own time-out ran out
    │   └── ProxyRefused           UNAVAILABLE         the egress proxy refused CONNECT
    ├── DeadlineExceeded           DEADLINE_EXCEEDED   the caller's deadline ran out first
    ├── RequestTimeout             DEADLINE_EXCEEDED   the call's request did not come in time
    ├── RetryBudgetExhausted       UNAVAILABLE         a retry was due; the retry budget is empty
    ├── Overloaded                 RESOURCE_EXHAUSTED  the gateway sheds load instead of queueing
    ├── SubmitOutcomeUnknown       UNAVAILABLE         a job may exist; retry with its request_id
    ├── SubmitStoreUnavailable     UNAVAILABLE         the shared request_id store (Redis) failed
    ├── NoCredentialsError         UNAVAILABLE         no usable Tencent credentials to sign with
    ├── JobNotFound                NOT_FOUND           CI has no such job (tracking)
    ├── ResourceNotFound           NOT_FOUND           CI has no such queue or workflow run
    ├── ShuttingDown               UNAVAILABLE         the gateway's stop ended the call: send again
    │   └── TrackerClosed          UNAVAILABLE         the gateway is shutting down: watch again
    ├── TrackerFailed              INTERNAL            job tracking stopped on a gateway bug
    ├── UpstreamUnreachable        UNAVAILABLE         a watched job's (run's) reads failed too long
    └── AccessError                *                   refused before CI was asked (attempts = 0)
        ├── ClientNotAuthenticated UNAUTHENTICATED     no, or no valid, client credentials
        ├── AccessDenied           PERMISSION_DENIED   a known client, not allowed this
        └── ClientRateLimited      RESOURCE_EXHAUSTED  the client's own rate limit

`CI_ERRORS` is read in one place, `UpstreamError` (through `rule_for`), which takes its gRPC code,
reason and retry class from it; the retry loop (`gateway.upstream.retry`) and the servicer-side
converter (`gateway.status`) read them off the error. A CI `Code` missing from the table falls
back on its HTTP status, so a new CI code is still mapped sensibly and its raw text still reaches
the caller.

CI signature and access failures are the gateway's fault (its credentials, its clock, its signer),
never the caller's, so none of them is PERMISSION_DENIED or UNAUTHENTICATED: those would send a
caller hunting for a credential it does not hold. UNAUTHENTICATED and PERMISSION_DENIED are kept
for the access errors, which are about the caller's own credentials.

Access errors' messages and `ErrorInfo` metadata name only what the caller sent and which rule
refused it: never another client, a bucket the caller did not name, or what it would be allowed.
No message or metadata carries a secret: errors name sources (a path, a role), never values.
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
    MALFORMED_REQUEST = "MALFORMED_REQUEST"
    UPSTREAM_REJECTED = "UPSTREAM_REJECTED"
    UPSTREAM_NOT_FOUND = "UPSTREAM_NOT_FOUND"
    UPSTREAM_THROTTLED = "UPSTREAM_THROTTLED"
    UPSTREAM_UNAVAILABLE = "UPSTREAM_UNAVAILABLE"
    UPSTREAM_AUTH_FAILED = "UPSTREAM_AUTH_FAILED"
    UPSTREAM_ACCESS_DENIED = "UPSTREAM_ACCESS_DENIED"
    UPSTREAM_PROTOCOL_ERROR = "UPSTREAM_PROTOCOL_ERROR"
    UPSTREAM_TIMEOUT = "UPSTREAM_TIMEOUT"
    UPSTREAM_PROXY_REFUSED = "UPSTREAM_PROXY_REFUSED"
    # A watched job's or run's state could not be read from CI for `tracking.unreachable_s`.
    UPSTREAM_UNREACHABLE = "UPSTREAM_UNREACHABLE"
    DEADLINE_EXCEEDED = "DEADLINE_EXCEEDED"
    # The call's request did not come within `server.request_receive_timeout_s` of its start.
    REQUEST_TIMEOUT = "REQUEST_TIMEOUT"
    RETRY_BUDGET_EXHAUSTED = "RETRY_BUDGET_EXHAUSTED"
    OVERLOADED = "OVERLOADED"
    SUBMIT_OUTCOME_UNKNOWN = "SUBMIT_OUTCOME_UNKNOWN"
    REQUEST_ID_REUSED = "REQUEST_ID_REUSED"
    # The gateway's own dependency, the shared request_id store: not CI (no UPSTREAM_ prefix).
    SUBMIT_STORE_UNAVAILABLE = "SUBMIT_STORE_UNAVAILABLE"
    # The gateway itself: a bug (never the caller's or CI's fault), or a replica going away.
    INTERNAL = "INTERNAL"
    SHUTTING_DOWN = "SHUTTING_DOWN"
    # Upstream credentials (gateway.credentials) and client access (gateway.access).
    CREDENTIALS_UNAVAILABLE = "CREDENTIALS_UNAVAILABLE"
    CLIENT_NOT_AUTHENTICATED = "CLIENT_NOT_AUTHENTICATED"
    OPERATION_NOT_ALLOWED = "OPERATION_NOT_ALLOWED"
    BUCKET_NOT_ALLOWED = "BUCKET_NOT_ALLOWED"
    REGION_NOT_ALLOWED = "REGION_NOT_ALLOWED"
    TAG_NOT_ALLOWED = "TAG_NOT_ALLOWED"
    CLIENT_RATE_LIMITED = "CLIENT_RATE_LIMITED"
    # A submit CI refused because of its queue: paused (resume it, or use another queue), or
    # holding MaxSize jobs already (retry later: the queue drains).
    QUEUE_PAUSED = "QUEUE_PAUSED"
    QUEUE_SATURATED = "QUEUE_SATURATED"


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
    "QueuePaused": ErrorRule(_S.FAILED_PRECONDITION, _T, Reason.QUEUE_PAUSED),
    # Throttling: CI wants fewer requests (429 on CI hosts, 503 on COS hosts, a full queue).
    "SlowDown": ErrorRule(_S.RESOURCE_EXHAUSTED, _X, Reason.UPSTREAM_THROTTLED),
    "QueueSaturated": ErrorRule(_S.RESOURCE_EXHAUSTED, _X, Reason.QUEUE_SATURATED),
    # CI is failing; a later attempt may succeed.
    "InternalError": ErrorRule(_S.UNAVAILABLE, _R, Reason.UPSTREAM_UNAVAILABLE),
    "InternalErrror": ErrorRule(_S.UNAVAILABLE, _R, Reason.UPSTREAM_UNAVAILABLE),  # doc spelling
    "ServiceUnavailable": ErrorRule(_S.UNAVAILABLE, _R, Reason.UPSTREAM_UNAVAILABLE),
    "ResourceDownloadFailed": ErrorRule(_S.UNAVAILABLE, _R, Reason.UPSTREAM_UNAVAILABLE),
    "NotImplemented": ErrorRule(_S.UNIMPLEMENTED, _T, Reason.UPSTREAM_REJECTED),
}

# What the caller can do about a refusal it can act on: `ErrorInfo.metadata["action"]`.
CI_ACTIONS: dict[str, str] = {
    "QueuePaused": (
        "the queue is paused: resume it (UpdateMediaQueue with state QUEUE_STATE_ACTIVE) or "
        "submit to another queue"
    ),
    "QueueSaturated": (
        "the queue already holds MaxSize waiting jobs: retry after the RetryInfo delay, or "
        "submit to another queue"
    ),
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
    if 200 <= http_status < 300:
        # An `<Error>` under a 2xx whose Code says nothing: an answer that makes no sense, as
        # an unreadable `<Response>` is (`UpstreamProtocolError`).
        return ErrorRule(_S.UNAVAILABLE, _T, Reason.UPSTREAM_PROTOCOL_ERROR)
    return ErrorRule(_S.INTERNAL, _T, Reason.UPSTREAM_PROTOCOL_ERROR)


# A code that means two things, told apart by the HTTP status (ci-api-notes §6.2): CI's
# `InvalidContent` is a malformed body (the gateway's bug) on 400, but "body too large" on 413,
# which is what the caller sent (say, megabytes of pass-through nodes): theirs to fix.
CI_ERRORS_BY_STATUS: dict[tuple[str, int], ErrorRule] = {
    ("InvalidContent", 413): ErrorRule(_S.INVALID_ARGUMENT, _T, Reason.UPSTREAM_REJECTED),
}


# Codes that refuse the credentials a request was signed with besides UPSTREAM_AUTH_FAILED's:
# COS answers AccessDenied for a missing, expired or token-less signature, and CI's table has an
# AccessDenied 401. UNCONFIRMED what either answers for a key disabled in CAM; the tolerant
# reading counts AccessDenied as a refusal of the keys too (it matters only once the gateway
# holds other keys: see `UpstreamError.refuses_credentials`).
_CREDENTIAL_REFUSAL_CODES = frozenset({"AccessDenied"})


def rule_for(code: str, http_status: int) -> ErrorRule:
    """Map CI's `Code` (with its HTTP status where that tells two meanings apart); a code the
    table does not know falls back on the HTTP status, so that `SlowDown` is throttling on both
    its 429 (CI) and 503 (COS) forms and an unknown 5xx stays retryable."""
    return (
        CI_ERRORS_BY_STATUS.get((code, http_status))
        or CI_ERRORS.get(code)
        or rule_for_http_status(http_status)
    )


class GatewayError(Exception):
    """Base of every error the gateway raises on purpose. Messages never carry secrets."""

    # A subclass that forgets to say otherwise is the gateway's bug, not CI's: INTERNAL.
    status: grpc.StatusCode = grpc.StatusCode.INTERNAL
    reason: Reason = Reason.INTERNAL
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
    attempts = 0  # refused before CI was asked

    # The most violations one status carries (its message and its BadRequest both list them).
    # A request can be wrong in thousands of places (a list of a million empty ids), and a
    # status naming each would be trailers no client accepts: grpc refuses received metadata
    # beyond 16 KiB by default (Java beyond 8 KiB), and the caller would see RESOURCE_EXHAUSTED
    # instead of what to fix. The first few say that well enough.
    MAX_REPORTED = 10

    def __init__(self, violations: list[FieldViolation], *, more: bool = False) -> None:
        """`more`: the caller found violations beyond these and did not keep them."""
        self.violations = violations[: self.MAX_REPORTED]
        summary = "; ".join(f"{v.field}: {v.description}" for v in self.violations)
        if more or len(violations) > self.MAX_REPORTED:
            summary += f"; and more (only the first {self.MAX_REPORTED} are listed)"
        super().__init__(f"invalid request: {summary}")


class MalformedRequest(GatewayError):
    """The request's bytes are no valid message of the RPC's type (corrupt wire format, invalid
    UTF-8 in a string), or far larger than any valid one (`too_large` says how): no field can be
    named, and nothing was sent to CI."""

    status = grpc.StatusCode.INVALID_ARGUMENT
    reason = Reason.MALFORMED_REQUEST
    attempts = 0

    def __init__(self, rpc: str, too_large: str | None = None) -> None:
        if too_large is None:
            super().__init__(f"the request is not a valid {rpc} request message (Protobuf)")
        else:
            super().__init__(f"the {rpc} request {too_large}: no valid one is that large")


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
        # Set by the CI client: CI refused the credentials this attempt was signed with, and
        # the gateway holds other ones now (rotated meanwhile, or re-read on this refusal).
        self.credentials_replaced = False
        super().__init__(str(self))

    @property
    def refuses_credentials(self) -> bool:
        """CI refused the keys the request was signed with, before acting on it (a 4xx)."""
        if not 400 <= self.http_status < 500:
            return False
        return self.reason is Reason.UPSTREAM_AUTH_FAILED or self.code in _CREDENTIAL_REFUSAL_CODES

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
            "action": CI_ACTIONS.get(self.code, ""),
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


class ProxyRefused(TransportError):
    """The egress proxy answered CONNECT with something other than 2xx: CI was never asked.

    Its own reason, because the fix is the operator's (the proxy's credentials or its allow
    list), not CI's. A 4xx (407 wrong credentials, 403 host not allowed) is TERMINAL: every
    attempt within the call would be refused the same way, and each would only add to the
    proxy's load and the caller's wait; a 5xx (the proxy could not reach CI) is TRANSIENT."""

    reason = Reason.UPSTREAM_PROXY_REFUSED

    def __init__(self, message: str, *, proxy_status: int) -> None:
        super().__init__(message, sent=False)
        self.proxy_status = proxy_status
        self.retry = RetryClass.TERMINAL if 400 <= proxy_status < 500 else RetryClass.TRANSIENT

    def metadata(self) -> dict[str, str]:
        return {**super().metadata(), "proxy_status": str(self.proxy_status)}


class DeadlineExceeded(GatewayError):
    """The caller's deadline left no time for (another) attempt."""

    status = grpc.StatusCode.DEADLINE_EXCEEDED
    reason = Reason.DEADLINE_EXCEEDED


class RequestTimeout(GatewayError):
    """The call's request had not come `timeout_s` after the call began (its headers), so the
    gateway ended it (`gateway.api.receive_timeout`): nothing of it was read, nothing reached
    CI. DEADLINE_EXCEEDED: a deadline ran out before the call could be served, the gateway's
    own on receiving the request. Every RPC here has one small request that a gRPC client
    sends with the call's headers, so only a client that stalls, or a link slower than the
    largest request allows for, meets it; sending the call again is safe."""

    status = grpc.StatusCode.DEADLINE_EXCEEDED
    reason = Reason.REQUEST_TIMEOUT
    attempts = 0

    def __init__(self, timeout_s: float, *, after: str | None = None) -> None:
        """`after`: what the time ran from, when not the call's start (a reflection stream's
        next request: its last answer)."""
        super().__init__(
            f"the call's request did not come within {timeout_s:g} s of {after or 'its start'}; "
            "the gateway ended the call (nothing of it reached CI)"
        )
        self.timeout_s = timeout_s

    def metadata(self) -> dict[str, str]:
        return {"timeout_s": f"{self.timeout_s:g}"}


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
    # Refused before CI was asked (the retry loop counts a refused attempt when it ran one).
    attempts = 0

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
    attempts = 0  # refused before CI was asked

    def __init__(self, request_id: str) -> None:
        super().__init__(
            f"request_id {request_id!r} was already used for a different request; "
            "use a new request_id for a new job"
        )
        self.request_id = request_id

    def metadata(self) -> dict[str, str]:
        return {"request_id": self.request_id}


class SubmitStoreUnavailable(GatewayError):
    """The shared request_id store (Redis) failed. Retrying with the same request_id is safe: the
    in-doubt record is written before anything is sent to CI (see `gateway.jobs.redis_store`).
    Its own reason, not UPSTREAM_UNAVAILABLE: CI is fine, and an operator looks at Redis."""

    status = grpc.StatusCode.UNAVAILABLE
    reason = Reason.SUBMIT_STORE_UNAVAILABLE
    retry = RetryClass.TRANSIENT
    attempts = 0  # the store is asked before CI, and a later failure never surfaces

    def __init__(self, cause: Exception) -> None:
        # The class name only: a Redis error's text may carry its URL, password included.
        super().__init__(f"the shared submit store (Redis) is unavailable: {type(cause).__name__}")

    def metadata(self) -> dict[str, str]:
        return {"dependency": "redis"}


class NoCredentialsError(GatewayError):
    """No valid credentials to sign with (none loaded yet, or expired and not renewed).

    The gateway's problem, not the caller's: UNAVAILABLE, and readiness is NOT_SERVING meanwhile.
    Messages name the source (a path, "environment", a role), never a value.
    """

    status = grpc.StatusCode.UNAVAILABLE
    reason = Reason.CREDENTIALS_UNAVAILABLE


class JobNotFound(GatewayError):
    """CI lists the job among its `NonExistJobIds`."""

    status = grpc.StatusCode.NOT_FOUND
    reason = Reason.UPSTREAM_NOT_FOUND

    def __init__(self, job_id: str) -> None:
        super().__init__(f"CI has no job {job_id}")
        self.job_id = job_id

    def metadata(self) -> dict[str, str]:
        return {"job_id": self.job_id}


class ResourceNotFound(GatewayError):
    """CI does not know the queue, workflow or workflow run a call names (its answer lists none,
    or lists the id among the missing)."""

    status = grpc.StatusCode.NOT_FOUND
    reason = Reason.UPSTREAM_NOT_FOUND

    def __init__(self, kind: str, resource_id: str) -> None:
        super().__init__(f"CI has no {kind} {resource_id}")
        self.kind = kind
        self.resource_id = resource_id

    def metadata(self) -> dict[str, str]:
        return {"resource": self.kind, "id": self.resource_id}


class ShuttingDown(GatewayError):
    """The gateway is stopping and ended the call before it finished: its drain's grace ran
    out, or a second signal cut it short (`gateway.api.interceptors.InFlight.cut`). Send it
    again (another replica serves it). Not OVERLOADED: nothing is over a limit, and a client
    backing off as if it were would only come back later than it could. A submit that may have
    reached CI is not ended with this but with `SubmitOutcomeUnknown` and its request_id: sent
    again without it, it could make a second job."""

    status = grpc.StatusCode.UNAVAILABLE
    reason = Reason.SHUTTING_DOWN
    retry = RetryClass.TRANSIENT
    # The cut sets the attempts the call had made towards CI (`RpcScope.attempts`).
    attempts = 0

    def __init__(self, message: str = "") -> None:
        super().__init__(
            message
            or "the gateway is shutting down and ended this call before it finished; send it again"
        )


class TrackerClosed(ShuttingDown):
    """The gateway is shutting down: watch again (on another replica); the first message of a
    new watch is the job's current state, so nothing is lost. Its `attempts` stay 0: the
    tracker's polls serve every watcher, none was this call's."""

    def __init__(self) -> None:
        super().__init__("the gateway is shutting down; watch the job again")


class TrackerFailed(GatewayError):
    """The poller stopped on a bug; its watchers are told instead of waiting forever. The
    gateway's fault, not CI's, hence INTERNAL rather than an upstream reason."""

    status = grpc.StatusCode.INTERNAL
    reason = Reason.INTERNAL
    attempts = 0  # the tracker's polls serve every watcher: none was this call's

    def __init__(self) -> None:
        super().__init__("job tracking failed inside the gateway")


class UpstreamUnreachable(GatewayError):
    """Every read of a watched job's (or workflow run's) state has failed retryably for
    `tracking.unreachable_s`: CI answered 5xx or 429, or could not be reached, or timed out.
    Its watchers and waiters end with this rather than wait without a sign that the gateway
    cannot see the job (`gateway.jobs.unreadable`). The job itself may well be running: watch
    again. `last` is CI's last answer (or the transport's failure): its Code, Message and
    RequestId reach the status as those of any CI error do."""

    status = grpc.StatusCode.UNAVAILABLE
    reason = Reason.UPSTREAM_UNREACHABLE
    retry = RetryClass.TRANSIENT
    attempts = 0  # the tracker's polls serve every watcher: none was this call's

    def __init__(self, what: str, unread_s: float, failed_reads: int, last: GatewayError) -> None:
        seconds = f"{round(unread_s, 1):g}"
        super().__init__(
            f"the state of {what} could not be read from CI for {seconds} s "
            f"({failed_reads} failed read(s); last error: {last}); it may still be running: "
            "watch it again"
        )
        self.last = last
        self.unread_s = unread_s
        self.failed_reads = failed_reads

    def metadata(self) -> dict[str, str]:
        return {
            **self.last.metadata(),
            "last_reason": self.last.reason.value,
            "failed_reads": str(self.failed_reads),
            "unread_s": f"{round(self.unread_s, 1):g}",
        }


class AccessError(GatewayError):
    """Refused before CI was asked: no upstream attempt was made."""

    attempts = 0


class ClientNotAuthenticated(AccessError):
    status = grpc.StatusCode.UNAUTHENTICATED
    reason = Reason.CLIENT_NOT_AUTHENTICATED


class AccessDenied(AccessError):
    """The client is known but the rule `reason` (OPERATION/BUCKET/REGION/TAG_NOT_ALLOWED)
    refuses the call; `metadata` says what was asked (`operation`, `bucket`, `region` or `tag`,
    and the `field` that named a bucket or region inside the request), which the caller already
    knows."""

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
