"""The server interceptor: request id, metrics, access log and drain accounting for every RPC.

`ObservabilityInterceptor` wraps each handler the server resolves (unary or streaming, ours or the
health and reflection services) so that one place sees every call start and end:

- the request id: the caller's `x-request-id` when sane, else a generated one, kept in
  `gateway.rpc_context` for every log line of the call and returned in trailing metadata;
- `grpc_server_started_total` / `_handled_total` / `_handling_seconds`;
- one access-log line per RPC (INFO for the API, DEBUG for health checks and reflection, which
  probes call every few seconds);
- `InFlight`, the count of API calls in progress that a graceful shutdown waits for.

The servicer sets its own trailing metadata (`x-ci-request-id`, and a rich status on errors), and
grpc's `set_trailing_metadata` and `abort` *replace* what was set before. So the handler is given
a `_Context` that delegates to grpc's context but appends the interceptor's pair to whatever the
servicer sets: both survive, on success and on error alike. The same wrapper notes CI's RequestId
(from `x-ci-request-id` or the error's `google.rpc.RequestInfo`) for the access log.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Sequence
from typing import TYPE_CHECKING, Any, NoReturn

import grpc
from google.rpc import error_details_pb2, status_pb2

from gateway import rpc_context
from gateway.api.metrics import GatewayMetrics
from gateway.logs import ACCESS_LOGGER, event

OPS_SERVICES = frozenset(
    {
        "grpc.health.v1.Health",
        "grpc.reflection.v1alpha.ServerReflection",
        "grpc.reflection.v1.ServerReflection",
    }
)
CI_REQUEST_ID_METADATA = "x-ci-request-id"
STATUS_DETAILS_METADATA = "grpc-status-details-bin"
_MAX_LOGGED_AGENT = 200

access_log = logging.getLogger(ACCESS_LOGGER)

if TYPE_CHECKING:  # grpc's RpcMethodHandler is generic in its stubs only
    Handler = grpc.RpcMethodHandler[Any, Any]


class InFlight:
    """API calls in progress (health and reflection excluded): what a drain waits for."""

    def __init__(self) -> None:
        self._count = 0
        self._idle = asyncio.Event()
        self._idle.set()

    @property
    def count(self) -> int:
        return self._count

    def enter(self) -> None:
        self._count += 1
        self._idle.clear()

    def leave(self) -> None:
        self._count -= 1
        if self._count == 0:
            self._idle.set()

    async def wait_idle(self, timeout_s: float) -> bool:
        """True once no API call is in progress; False if `timeout_s` passed first."""
        try:
            await asyncio.wait_for(self._idle.wait(), max(timeout_s, 0.0))
        except TimeoutError:
            return self._count == 0
        return True


def split_method(full_method: str) -> tuple[str, str]:
    """`/ci.media.v1.MediaJobService/SubmitMediaJob` -> (`ci.media.v1.MediaJobService`, ...)."""
    service, _, method = full_method.lstrip("/").rpartition("/")
    return service or "unknown", method


def grpc_type(handler: grpc.RpcMethodHandler[Any, Any]) -> str:
    if handler.request_streaming and handler.response_streaming:
        return "bidi_stream"
    if handler.request_streaming:
        return "client_stream"
    if handler.response_streaming:
        return "server_stream"
    return "unary"


class _Context(grpc.aio.ServicerContext[Any, Any]):
    """grpc's servicer context, with the interceptor's trailing metadata always appended."""

    def __init__(self, real: grpc.aio.ServicerContext[Any, Any], extra: Sequence[tuple[str, str]]):
        self._real = real
        self._extra = tuple(extra)
        self.aborted_with: grpc.StatusCode | None = None
        self.ci_request_id = ""
        self.reason = ""
        real.set_trailing_metadata(self._extra)

    def _note(self, metadata: Iterable[tuple[str, str | bytes]]) -> None:
        for key, value in metadata:
            if key == CI_REQUEST_ID_METADATA and isinstance(value, str):
                self.ci_request_id = value
            elif key == STATUS_DETAILS_METADATA and isinstance(value, bytes):
                self._note_status(value)

    def _note_status(self, raw: bytes) -> None:
        status = status_pb2.Status.FromString(raw)
        for detail in status.details:
            if detail.Is(error_details_pb2.RequestInfo.DESCRIPTOR):
                info = error_details_pb2.RequestInfo()
                detail.Unpack(info)
                self.ci_request_id = info.request_id
            elif detail.Is(error_details_pb2.ErrorInfo.DESCRIPTOR):
                error = error_details_pb2.ErrorInfo()
                detail.Unpack(error)
                self.reason = error.reason

    # The two methods that replace trailing metadata: keep ours. ---------------------------------

    def set_trailing_metadata(self, trailing_metadata: Any) -> None:
        pairs = tuple(trailing_metadata)
        self._note(pairs)
        self._real.set_trailing_metadata(pairs + self._extra)

    async def abort(
        self, code: grpc.StatusCode, details: str = "", trailing_metadata: Any = ()
    ) -> NoReturn:
        self.aborted_with = code
        pairs = tuple(trailing_metadata)
        self._note(pairs)
        # Empty means "keep what was set", which already ends with ours.
        await self._real.abort(code, details, pairs + self._extra if pairs else ())
        raise AssertionError("abort returned")  # pragma: no cover

    async def abort_with_status(self, status: Any) -> NoReturn:
        await self.abort(status.code, status.details, status.trailing_metadata)
        raise AssertionError("abort returned")  # pragma: no cover

    # Plain delegation. --------------------------------------------------------------------------

    async def read(self) -> Any:
        return await self._real.read()

    async def write(self, message: Any) -> None:
        await self._real.write(message)

    async def send_initial_metadata(self, initial_metadata: Any) -> None:
        await self._real.send_initial_metadata(initial_metadata)

    def add_done_callback(self, callback: Any) -> None:
        self._real.add_done_callback(callback)

    def invocation_metadata(self) -> Any:
        return self._real.invocation_metadata()

    def set_code(self, code: grpc.StatusCode) -> None:
        self._real.set_code(code)

    def set_details(self, details: str) -> None:
        self._real.set_details(details)

    def set_compression(self, compression: grpc.Compression) -> None:
        self._real.set_compression(compression)

    def disable_next_message_compression(self) -> None:
        self._real.disable_next_message_compression()

    def peer(self) -> str:
        return self._real.peer()

    def peer_identities(self) -> Iterable[bytes] | None:
        return self._real.peer_identities()

    def peer_identity_key(self) -> str | None:
        return self._real.peer_identity_key()

    def auth_context(self) -> Any:
        return self._real.auth_context()

    def time_remaining(self) -> Any:
        return self._real.time_remaining()

    def trailing_metadata(self) -> Any:
        return self._real.trailing_metadata()

    def code(self) -> Any:
        return self._real.code()

    def details(self) -> Any:
        return self._real.details()

    def cancelled(self) -> bool:
        return self._real.cancelled()

    def done(self) -> bool:
        return self._real.done()


def _metadata_value(metadata: Any, key: str) -> str | None:
    for item in metadata or ():
        name, value = item[0], item[1]
        if name == key and isinstance(value, str):
            return value
    return None


class _Call:
    """Book-keeping for one RPC, from the handler's first line to its status."""

    def __init__(
        self,
        interceptor: ObservabilityInterceptor,
        details: grpc.HandlerCallDetails,
        kind: str,
    ) -> None:
        self._ic = interceptor
        self.full_method = details.method
        self.service, self.method = split_method(details.method)
        self.kind = kind
        self.ops = self.service in OPS_SERVICES
        metadata = details.invocation_metadata
        self.scope = rpc_context.RpcScope(
            method=self.full_method,
            request_id=rpc_context.request_id_from(
                _metadata_value(metadata, rpc_context.REQUEST_ID_METADATA)
            ),
        )
        self.user_agent = (_metadata_value(metadata, "user-agent") or "")[:_MAX_LOGGED_AGENT]
        self._labels = (kind, self.service, self.method)
        self._started = 0.0
        self._token: Any = None

    def begin(self, context: grpc.aio.ServicerContext[Any, Any]) -> _Context:
        self._started = time.monotonic()
        self._ic.metrics.grpc_started.labels(*self._labels).inc()
        if not self.ops:
            self._ic.in_flight.enter()
        self._token = rpc_context.enter(self.scope)
        return _Context(context, ((rpc_context.REQUEST_ID_METADATA, self.scope.request_id),))

    def finish(self, context: _Context, error: BaseException | None) -> None:
        seconds = time.monotonic() - self._started
        code = self._code(context, error)
        metrics = self._ic.metrics
        metrics.grpc_handled.labels(*self._labels, code.name).inc()
        metrics.grpc_handling.labels(*self._labels).observe(seconds)
        if not self.ops:
            self._ic.in_flight.leave()
        identities = [i.decode(errors="replace") for i in context.peer_identities() or ()]
        event(
            access_log,
            logging.DEBUG if self.ops else logging.INFO,
            "rpc",
            grpc_method=self.full_method,
            grpc_code=code.name,
            duration_ms=round(seconds * 1000, 1),
            peer=context.peer(),
            client_identity=identities or None,
            user_agent=self.user_agent or None,
            ci_request_id=context.ci_request_id or None,
            reason=context.reason or None,
            attempts=self.scope.attempts,
        )
        # The access line above still carries the request id; only then leave the scope.
        with contextlib.suppress(ValueError):  # a generator closed from another context
            rpc_context.leave(self._token)

    @staticmethod
    def _code(context: _Context, error: BaseException | None) -> grpc.StatusCode:
        if error is None:
            code = context.code()
            return code if isinstance(code, grpc.StatusCode) else grpc.StatusCode.OK
        if context.aborted_with is not None:
            return context.aborted_with
        if isinstance(error, asyncio.CancelledError):
            remaining = context.time_remaining()
            expired = remaining is not None and remaining <= 0
            return grpc.StatusCode.DEADLINE_EXCEEDED if expired else grpc.StatusCode.CANCELLED
        return grpc.StatusCode.UNKNOWN


Behavior = Callable[..., Any]


class ObservabilityInterceptor(grpc.aio.ServerInterceptor):  # type: ignore[type-arg]
    def __init__(self, metrics: GatewayMetrics, in_flight: InFlight) -> None:
        self.metrics = metrics
        self.in_flight = in_flight

    async def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Awaitable[Handler]],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> Handler:
        handler = await continuation(handler_call_details)
        if handler is None:  # unknown method: grpc answers UNIMPLEMENTED
            return handler
        kind = grpc_type(handler)
        details = handler_call_details
        make = {
            "unary": grpc.unary_unary_rpc_method_handler,
            "client_stream": grpc.stream_unary_rpc_method_handler,
            "server_stream": grpc.unary_stream_rpc_method_handler,
            "bidi_stream": grpc.stream_stream_rpc_method_handler,
        }[kind]
        behavior: Behavior | None = {
            "unary": handler.unary_unary,
            "client_stream": handler.stream_unary,
            "server_stream": handler.unary_stream,
            "bidi_stream": handler.stream_stream,
        }[kind]
        assert behavior is not None, f"{handler_call_details.method}: no {kind} behavior"
        if handler.response_streaming:
            wrapped = self._wrap_streaming(behavior, details, kind)
        else:
            wrapped = self._wrap_unary(behavior, details, kind)
        return make(
            wrapped,
            request_deserializer=handler.request_deserializer,
            response_serializer=handler.response_serializer,
        )

    def _wrap_unary(
        self, behavior: Behavior, details: grpc.HandlerCallDetails, kind: str
    ) -> Behavior:
        async def unary_response(request: Any, context: grpc.aio.ServicerContext[Any, Any]) -> Any:
            call = _Call(self, details, kind)
            proxy = call.begin(context)
            try:
                response = behavior(request, proxy)
                if inspect.isawaitable(response):
                    response = await response
            except BaseException as error:
                call.finish(proxy, error)
                raise
            call.finish(proxy, None)
            return response

        return unary_response

    def _wrap_streaming(
        self, behavior: Behavior, details: grpc.HandlerCallDetails, kind: str
    ) -> Behavior:
        if inspect.isasyncgenfunction(behavior):

            async def generator(
                request: Any, context: grpc.aio.ServicerContext[Any, Any]
            ) -> AsyncIterator[Any]:
                call = _Call(self, details, kind)
                proxy = call.begin(context)
                try:
                    async for message in behavior(request, proxy):
                        yield message
                except BaseException as error:
                    call.finish(proxy, error)
                    raise
                call.finish(proxy, None)

            return generator

        # A handler that writes with `context.write` and returns None (grpc's health Watch).
        return self._wrap_unary(behavior, details, kind)
