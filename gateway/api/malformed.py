"""Requests that are not valid Protobuf, or far larger than any valid one: INVALID_ARGUMENT, and at
most one warning line a minute.

Why an interceptor: grpc.aio deserializes a request before any handler or interceptor behaviour
runs. A deserializer that raises (corrupt bytes, invalid UTF-8 in a string field) ends the call
with UNKNOWN and an ERROR log record with a multi-line traceback, per call: anyone who can reach
the port can flood the log, and the caller is told nothing useful.

Far too large, two ways, both refused here, before any code walks the request:

- more than `MAX_REQUEST_ELEMENTS` messages and list items, counted from the bytes before they
  are parsed (`gateway.api.wire_scan`). Within what was then the request limit (8 MiB) a
  request could hold four million empty list items (two bytes each): parsed, they took over a
  gigabyte, and
  everything that reads a whole request in Python (the access policy's search for places, the
  validation) then took seconds of the event loop, every other call waiting meanwhile;
- for health and reflection, more than `OPS_MAX_REQUEST_BYTES`. Anyone may call them (no
  client credentials), a health Watch keeps its request for as long as the stream stays open,
  and a reflection answer echoes its request: with the API's 8 MiB, forty Watch streams of
  4 MiB names held 800 MB. Their real requests are a service, symbol or file name, tens of
  bytes. On the health port grpc itself refuses a larger one, from its length prefix
  (`gateway.api.server.health_server_options`); on the API port it buffers up to the API's
  limit first (`gateway.api.ops_reads` bounds those reads), and this refuses it.

`MalformedRequestInterceptor` swaps every handler's deserializer for one that never raises: bytes
it cannot decode become an `Undecodable` stand-in, which the handler's wrapper refuses with
INVALID_ARGUMENT (reason MALFORMED_REQUEST) before the servicer sees it. It sits innermost, so the
access interceptor still authenticates the caller first (and spends its rate), and the
observability interceptor still counts and logs the call like any other. The log gets one line
per `warn_every_s` at most, counting the refusals it did not report. Being innermost, its guards
also refuse the stand-in for the request of a call a gate refused before reading it
(`gateway._chain.NotRead`), with the gate's error, once every wrapper has seen the call.
"""

from __future__ import annotations

import inspect
import logging
import time
from collections.abc import AsyncIterator, Callable
from typing import TYPE_CHECKING, Any

import grpc
from google.protobuf.descriptor import Descriptor
from google.protobuf.message import DecodeError

from gateway._chain import OPS_PREFIXES, MethodInterceptor, NotRead
from gateway._log_budget import LineBudget, LineWindow
from gateway.api import wire_scan
from gateway.errors import GatewayError, MalformedRequest
from gateway.logs import event
from gateway.status import abort

if TYPE_CHECKING:  # grpc's RpcMethodHandler and ServicerContext are generic in its stubs only
    Handler = grpc.RpcMethodHandler[Any, Any]
    Context = grpc.aio.ServicerContext[Any, Any]

log = logging.getLogger(__name__)

Behavior = Callable[..., Any]
WARN_EVERY_S = 60.0
MAX_REQUEST_ELEMENTS = 20_000
"""Most messages and list items one request may hold: ten times the unknown XML nodes a submit
may carry (`tree_checks.MAX_EXTRA_NODES`); every typed list has a bound of a few dozen at most.
Counting stops at the bound, so a refusal costs at most this many steps."""
OPS_MAX_REQUEST_BYTES = 4 * 1024
"""Largest health or reflection request (a service, symbol or file name; the longest name the
gateway serves is ~60 bytes), and the health port's receive limit: less than HTTP/2's window a
call may fill unread (8 KiB), so that a read there buffers no more than a call not read does."""


class Undecodable:
    """What the tolerant deserializer returns for bytes that are no valid request; `too_large`
    (what is too large) for a valid one refused for its size."""

    __slots__ = ("problem", "size", "too_large")

    def __init__(self, problem: str, size: int, too_large: str | None = None) -> None:
        self.problem = problem
        self.size = size
        self.too_large = too_large


def _descriptor(deserializer: Callable[[bytes], Any]) -> Descriptor | None:
    """The message type a generated `FromString` (a class method) decodes, if it is one."""
    descriptor = getattr(getattr(deserializer, "__self__", None), "DESCRIPTOR", None)
    return descriptor if isinstance(descriptor, Descriptor) else None


def tolerant(
    deserializer: Callable[[bytes], Any], *, max_bytes: int | None = None
) -> Callable[[bytes], Any]:
    """`deserializer` that never raises: bytes larger than `max_bytes`, holding more than
    `MAX_REQUEST_ELEMENTS` elements (counted before parsing: `gateway.api.wire_scan`), or that
    cannot be decoded become an `Undecodable`."""
    descriptor = _descriptor(deserializer)

    def deserialize(data: bytes) -> Any:
        if max_bytes is not None and len(data) > max_bytes:
            what = f"is larger than {max_bytes} bytes"
            return Undecodable(what, len(data), what)
        # Every element takes a byte on the wire at least (a packed number one, any other
        # field two), so no request of up to MAX_REQUEST_ELEMENTS bytes can hold too many: the
        # scan is skipped for them, which is every request a client really sends (a submit is
        # a few hundred bytes), and the parser alone judges their wire format.
        if descriptor is not None and len(data) > MAX_REQUEST_ELEMENTS:
            verdict = wire_scan.scan(data, descriptor, MAX_REQUEST_ELEMENTS)
            if verdict is wire_scan.Verdict.TOO_MANY:
                what = f"holds more than {MAX_REQUEST_ELEMENTS} fields and list items"
                return Undecodable(what, len(data), what)
            if verdict is wire_scan.Verdict.CORRUPT:
                return Undecodable(verdict.value, len(data))
        try:
            return deserializer(data)
        except DecodeError as exc:  # corrupt wire format, bad UTF-8, nesting too deep
            return Undecodable(str(exc).split("\n", 1)[0][:200], len(data))

    return deserialize


class RateLimitedWarning:
    """One warning line per `every_s` at most (a `LineWindow` of one line); the next line says
    how many were not logged (`unreported`)."""

    def __init__(self, every_s: float = WARN_EVERY_S, clock: Callable[[], float] = time.monotonic):
        self._window = LineWindow(LineBudget(lines=1, per_s=every_s), clock)

    def note(self, method: str, peer: str, bad: Undecodable) -> None:
        unreported = self._window.admit()
        if unreported is not None:
            event(log, logging.WARNING, "malformed request refused", method=method, peer=peer,
                  bytes=bad.size, problem=bad.problem, unreported=unreported)  # fmt: skip


# What the guards refuse instead of passing to the servicer: bytes that are no request, and the
# stand-in for a request a gate refused to read (`gateway._chain`), innermost guard being here.
_REFUSED = (Undecodable, NotRead)


class MalformedRequestInterceptor(MethodInterceptor):
    def __init__(self, warning: RateLimitedWarning | None = None) -> None:
        self.warning = warning or RateLimitedWarning()

    def wrap(self, method: str, handler: Handler) -> Handler:
        """`handler` with a deserializer that never raises and a guard that refuses what it
        could not decode."""
        if handler is None or handler.request_deserializer is None:
            return handler
        ops = method.startswith(OPS_PREFIXES)
        deserializer = tolerant(
            handler.request_deserializer, max_bytes=OPS_MAX_REQUEST_BYTES if ops else None
        )
        serializer = handler.response_serializer
        if handler.request_streaming:
            behavior = handler.stream_stream or handler.stream_unary
            assert behavior is not None
            make = (
                grpc.stream_stream_rpc_method_handler
                if handler.response_streaming
                else grpc.stream_unary_rpc_method_handler
            )
            return make(self._guard_requests(method, behavior), deserializer, serializer)
        if handler.response_streaming:
            assert handler.unary_stream is not None
            return grpc.unary_stream_rpc_method_handler(
                self._guard_stream(method, handler.unary_stream), deserializer, serializer
            )
        assert handler.unary_unary is not None
        return grpc.unary_unary_rpc_method_handler(
            self._guard_unary(method, handler.unary_unary), deserializer, serializer
        )

    async def _refuse(self, method: str, bad: Undecodable | NotRead, context: Context) -> None:
        if isinstance(bad, NotRead):  # refused before its request was parsed: its error
            assert isinstance(bad.error, GatewayError)
            await abort(context, bad.error)
        self.warning.note(method, context.peer(), bad)
        await abort(context, MalformedRequest(method.rsplit("/", 1)[-1], bad.too_large))

    def _guard_unary(self, method: str, behavior: Behavior) -> Behavior:
        if inspect.iscoroutinefunction(behavior):
            # Known to answer with a coroutine (every servicer method here): awaited without
            # asking each call.
            async def coroutine(request: Any, context: Context) -> Any:
                if isinstance(request, _REFUSED):
                    await self._refuse(method, request, context)
                return await behavior(request, context)

            return coroutine

        async def unary(request: Any, context: Context) -> Any:
            if isinstance(request, _REFUSED):
                await self._refuse(method, request, context)
            response = behavior(request, context)
            return await response if inspect.isawaitable(response) else response

        return unary

    def _guard_stream(self, method: str, behavior: Behavior) -> Behavior:
        if not inspect.isasyncgenfunction(behavior):
            return self._guard_unary(method, behavior)  # writes with `context.write`

        async def stream(request: Any, context: Context) -> AsyncIterator[Any]:
            if isinstance(request, _REFUSED):
                await self._refuse(method, request, context)
            async for message in behavior(request, context):
                yield message

        return stream

    def _guard_requests(self, method: str, behavior: Behavior) -> Behavior:
        """Client streams (reflection): each message is checked as the servicer iterates.
        (A servicer reading with `context.read()` would bypass this; none of ours does.)"""

        async def checked(requests: AsyncIterator[Any], context: Context) -> AsyncIterator[Any]:
            async for request in requests:  # ends with the client's stream
                if isinstance(request, _REFUSED):
                    await self._refuse(method, request, context)
                yield request

        if inspect.isasyncgenfunction(behavior):

            async def stream(requests: AsyncIterator[Any], context: Context) -> AsyncIterator[Any]:
                async for message in behavior(checked(requests, context), context):
                    yield message

            return stream

        async def unary(requests: AsyncIterator[Any], context: Context) -> Any:
            response = behavior(checked(requests, context), context)
            return await response if inspect.isawaitable(response) else response

        return unary
