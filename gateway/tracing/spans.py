"""The span tree, on OpenTelemetry's API; imported only once tracing is installed.

What one traced SubmitMediaJob looks like when CI answers the first attempt 503:

    ci.media.v1.MediaJobService/SubmitMediaJob   SERVER, child of the caller's traceparent
    ├── CI CreateMediaJobs       CLIENT  ci.retry=0  http.response.status_code=503
    ├── reconcile submit         INTERNAL  ci_gateway.reconcile.found=false   (at once)
    │   └── CI DescribeMediaJobs CLIENT  ci.retry=0  200
    │      (event on the SERVER span: retry scheduled, ci_gateway.retry_delay_ms: CI settling)
    ├── reconcile submit         INTERNAL  ci_gateway.reconcile.found=false   (CI settled)
    │   └── CI DescribeMediaJobs CLIENT  ci.retry=0  200
    └── CI CreateMediaJobs       CLIENT  ci.retry=1  200

and each callback CI sends is a trace of its own: `CI job callback` (SERVER), with the
`CI DescribeMediaJob` that verifies it as a child. Every CI attempt sends its span's
`traceparent` to CI (W3C trace context only: the caller's `baggage` stays in the gateway, since
CI is a third party).

Attributes follow what the access log already records, and nothing more: the gRPC method and
code, the caller's request id, CI's RequestId, the error reason, attempt counts and outcomes.
No bucket, object key, job id, URL path (the callback path holds a secret token) or exception
message (which may quote any of those) goes into a span.

**Units.** An RPC and a callback each open a unit, the context in which their CI attempts are
numbered: an attempt's `ci.retry` is how many attempts at the same CI operation failed in a way
worth retrying (5xx, 429, no answer) just before it, in the same unit. That counts the retry
loop's attempts and exactly-once submit's resends after a reconcile alike, and starts again at 0
after any other answer. Work outside any open unit (the job tracker's polls, which run in tasks
that may outlive the RPC that started them) gets a unit of its own and starts new traces,
rather than hanging off an RPC that already ended.
"""

from __future__ import annotations

import contextlib
import contextvars
import logging
from collections.abc import Callable, Iterable, Iterator, MutableMapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from opentelemetry import context as otel_context
from opentelemetry import propagate, trace
from opentelemetry.context import Context
from opentelemetry.propagators.textmap import Getter
from opentelemetry.trace import Span, SpanKind, Status, StatusCode, Tracer
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

from gateway.rpc_context import RpcScope
from gateway.tracing.hooks import SpanHandle

# OpenTelemetry semantic conventions (RPC, HTTP, errors).
RPC_SYSTEM = "rpc.system"
RPC_SERVICE = "rpc.service"
RPC_METHOD = "rpc.method"
RPC_GRPC_STATUS_CODE = "rpc.grpc.status_code"
HTTP_METHOD = "http.request.method"
HTTP_ROUTE = "http.route"
HTTP_STATUS = "http.response.status_code"
HTTP_RESEND_COUNT = "http.request.resend_count"
ERROR_TYPE = "error.type"
# CI's facts, and the gateway's.
CI_OPERATION = "ci.operation"
CI_RETRY = "ci.retry"
CI_OUTCOME = "ci.outcome"
CI_REQUEST_ID = "ci.request_id"
REQUEST_ID = "ci_gateway.request_id"
REASON = "ci_gateway.reason"
ATTEMPTS = "ci_gateway.attempts"
RETRY_DELAY_MS = "ci_gateway.retry_delay_ms"
RETRY_EVENT = "retry scheduled"

# Server-side gRPC codes that mark a span as failed (the semantic conventions' list): the others
# (INVALID_ARGUMENT, NOT_FOUND...) are the caller's mistake, not the server's.
_GRPC_SERVER_ERRORS = frozenset({2, 4, 12, 13, 14, 15})
# An empty context: a span started under it begins a new trace.
_ROOT = Context()
_W3C = TraceContextTextMapPropagator()

# OpenTelemetry's propagators (and `TraceState`, which parses `tracestate`) refuse a malformed
# or oversized header with a WARNING quoting it: any caller could write its `baggage` (anything
# at all, up to a line per list-member) into the gateway's log on every call. The caller's
# headers are its own business; they are dropped as the propagators drop them, silently.
for _name in (
    "opentelemetry.baggage.propagation",
    "opentelemetry.trace.propagation.tracecontext",
    "opentelemetry.trace.span",
):
    logging.getLogger(_name).setLevel(logging.ERROR)


@dataclass
class _Unit:
    """Where CI attempts are numbered (see the module docstring). `parent` None: spans start
    under the current span; `_ROOT`: each starts a new trace (background work)."""

    parent: Context | None = None
    failed: dict[str, int] = field(default_factory=dict)
    open: bool = True


@dataclass
class _Attempt:
    span: Span
    context: Context
    token: contextvars.Token[Context]
    unit: _Unit


_UNIT: contextvars.ContextVar[_Unit | None] = contextvars.ContextVar(
    "ci_gateway_trace_unit", default=None
)
_ATTEMPT: contextvars.ContextVar[_Attempt | None] = contextvars.ContextVar(
    "ci_gateway_trace_attempt", default=None
)


class _MetadataGetter(Getter[Sequence[tuple[str, str]]]):
    """gRPC metadata (lower-case keys, repeatable) as a carrier for the W3C propagators."""

    def get(self, carrier: Sequence[tuple[str, str]], key: str) -> list[str] | None:
        values = [value for name, value in carrier if name == key]
        return values or None

    def keys(self, carrier: Sequence[tuple[str, str]]) -> list[str]:
        return [name for name, _ in carrier]


_METADATA = _MetadataGetter()


def _text_pairs(metadata: Iterable[Any] | None) -> tuple[tuple[str, str], ...]:
    """Text entries only: `-bin` values are bytes, and no trace header is binary."""
    return tuple((item[0], item[1]) for item in metadata or () if isinstance(item[1], str))


def _failed(span: Span, error_type: str) -> None:
    span.set_attribute(ERROR_TYPE, error_type)
    span.set_status(Status(StatusCode.ERROR, error_type))


def _parent() -> Context | None:
    """Under the current span inside an open unit; a new trace once the unit has ended."""
    unit = _UNIT.get()
    if unit is not None and not unit.open:
        return _ROOT
    return None if unit is None else unit.parent


class _Opened:
    """A span made current for a unit of work (an RPC, a callback); `close` undoes it all."""

    def __init__(self, span: Span, parent: Context) -> None:
        self.span = span
        self.unit = _Unit()
        self._context = trace.set_span_in_context(span, parent)
        self._token = otel_context.attach(self._context)
        self._unit_token = _UNIT.set(self.unit)

    def close(self) -> None:
        self.unit.open = False
        # A streaming handler may be finalised from another context (grpc closing the
        # generator), where nothing of ours is current and resetting would fail.
        if otel_context.get_current() is self._context:
            otel_context.detach(self._token)
        if _UNIT.get() is self.unit:
            with contextlib.suppress(ValueError):
                _UNIT.reset(self._unit_token)
        self.span.end()


class _RpcTrace(_Opened):
    def log_ids(self) -> dict[str, str]:
        # Sampled out or not, the span has the trace's ids (the caller's, or new ones): the
        # line can still be matched with the caller's and CI's side of the same trace.
        context = self.span.get_span_context()
        if not context.is_valid:
            return {}
        return {
            "trace_id": format(context.trace_id, "032x"),
            "span_id": format(context.span_id, "016x"),
        }

    def end(self, status_code: int, status_name: str, scope: RpcScope) -> None:
        span = self.span
        span.set_attribute(RPC_GRPC_STATUS_CODE, status_code)
        span.set_attribute(ATTEMPTS, scope.attempts)
        if scope.ci_request_id:
            span.set_attribute(CI_REQUEST_ID, scope.ci_request_id)
        if scope.reason:
            span.set_attribute(REASON, scope.reason)
        if status_code in _GRPC_SERVER_ERRORS:
            _failed(span, status_name)
        self.close()


class Spans:
    """The hooks' backend (`gateway.tracing.hooks`), on one tracer."""

    def __init__(self, tracer: Tracer) -> None:
        self.tracer = tracer

    def start_rpc(self, method: str, metadata: Iterable[Any] | None, request_id: str) -> _RpcTrace:
        # From an empty context: only what the caller sent counts, nothing the server's own
        # task happened to carry.
        parent = propagate.extract(_text_pairs(metadata), context=Context(), getter=_METADATA)
        full = method.lstrip("/")
        service, _, name = full.rpartition("/")
        span = self.tracer.start_span(
            full,
            parent,
            SpanKind.SERVER,
            {RPC_SYSTEM: "grpc", RPC_SERVICE: service, RPC_METHOD: name, REQUEST_ID: request_id},
        )
        return _RpcTrace(span, parent)

    @contextlib.contextmanager
    def internal(self, name: str) -> Iterator[SpanHandle]:
        # Neither the SDK's exception event nor its status text: both quote the message.
        with self.tracer.start_as_current_span(
            name,
            _parent(),
            SpanKind.INTERNAL,
            record_exception=False,
            set_status_on_exception=False,
        ) as span:
            try:
                yield span
            except BaseException as error:
                _failed(span, type(error).__name__)
                raise

    @contextlib.contextmanager
    def http_server(self, name: str, method: str, route: str) -> Iterator[Callable[[int], None]]:
        # A new trace: CI sends no trace context, and whoever else reaches the URL is not
        # trusted to choose the trace a callback joins.
        span = self.tracer.start_span(
            name, _ROOT, SpanKind.SERVER, {HTTP_METHOD: method, HTTP_ROUTE: route}
        )
        opened = _Opened(span, _ROOT)

        def answered(status: int) -> None:
            span.set_attribute(HTTP_STATUS, status)
            if status >= 500:
                _failed(span, str(status))

        try:
            yield answered
        except BaseException as error:
            status = getattr(error, "status", None)
            if isinstance(status, int):  # an answer raised, as aiohttp's HTTPException is
                answered(status)
            else:
                _failed(span, type(error).__name__)
            raise
        finally:
            opened.close()

    def inject(self, headers: MutableMapping[str, str]) -> None:
        attempt = _ATTEMPT.get()
        if attempt is not None:
            _W3C.inject(headers, context=attempt.context)

    def attempt_answered(self, ci_request_id: str) -> None:
        attempt = _ATTEMPT.get()
        if attempt is not None:
            attempt.span.set_attribute(CI_REQUEST_ID, ci_request_id)


def _attempt_unit() -> _Unit:
    unit = _UNIT.get()
    if unit is None or not unit.open:
        # Background work, or a task outliving its RPC: a unit of this task's own.
        unit = _Unit(parent=_ROOT)
        _UNIT.set(unit)
    return unit


def _retryable(outcome: str) -> bool:
    """An outcome the retry loop or exactly-once submit may try again after."""
    return not outcome.isdigit() or outcome == "429" or outcome.startswith("5")


class AttemptSpans:
    """The `gateway.telemetry.Telemetry` sink that makes a client span of every CI attempt.

    The CI client calls `attempt_started` and `attempt_finished` around each attempt in one
    coroutine, so the attempt's span is current (and its `traceparent` injectable) in between.
    """

    def __init__(self, spans: Spans) -> None:
        self._tracer = spans.tracer

    def attempt_started(self, operation: str) -> None:
        unit = _attempt_unit()
        retry = unit.failed.get(operation, 0)
        attributes: dict[str, str | int] = {CI_OPERATION: operation, CI_RETRY: retry}
        if retry:
            attributes[HTTP_RESEND_COUNT] = retry
        span = self._tracer.start_span(f"CI {operation}", unit.parent, SpanKind.CLIENT, attributes)
        context = trace.set_span_in_context(span)
        _ATTEMPT.set(_Attempt(span, context, otel_context.attach(context), unit))

    def attempt_finished(self, operation: str, outcome: str, seconds: float) -> None:
        attempt = _ATTEMPT.get()
        if attempt is None:
            return
        _ATTEMPT.set(None)
        otel_context.detach(attempt.token)
        span = attempt.span
        span.set_attribute(CI_OUTCOME, outcome)
        if outcome.isdigit():
            span.set_attribute(HTTP_STATUS, int(outcome))
        if not (outcome.isdigit() and 200 <= int(outcome) < 300):
            _failed(span, outcome)
        failed = attempt.unit.failed
        if _retryable(outcome):
            failed[operation] = failed.get(operation, 0) + 1
        else:
            failed.pop(operation, None)
        span.end()

    def retry_scheduled(self, operation: str, reason: str, delay_s: float) -> None:
        """An event on the span the retries happen under (the RPC's, a reconcile's)."""
        unit = _UNIT.get()
        if unit is None or not unit.open or unit.parent is not None:
            return  # background work: no live span above the attempts
        trace.get_current_span().add_event(
            RETRY_EVENT,
            {CI_OPERATION: operation, REASON: reason, RETRY_DELAY_MS: round(delay_s * 1000, 1)},
        )
