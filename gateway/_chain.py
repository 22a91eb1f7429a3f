"""The server's interceptors as one, applied once per method instead of once per call.

grpc.aio runs a server's interceptors on every RPC: it resolves the handler through each
`intercept_service` coroutine in turn, and each of ours built a new wrapped handler (closures, a
new `RpcMethodHandler`) for it. What they wrap depends only on the method and its handler, both
fixed once the servicers are registered (every handler here is chosen by method name alone:
generated services, health, reflection), so `PerMethodChain` asks each of them once per method
(`MethodInterceptor.wrap`, outermost first, as grpc's own chain would nest them) and from then on
answers every call of that method with the same wrapped handler. One dict lookup per call is
left of the chain; what each wrapper does *inside* a call is unchanged.

Only methods that have a handler are remembered (an unknown name gets None, and grpc answers
UNIMPLEMENTED, every time), so a caller inventing method names cannot grow the table.

Some calls must be refused before their request is read (`MethodInterceptor.gate`): grpc reads a
unary request before any handler runs, and a client may send a call's headers and never its
request, holding the call (and its memory) open for as long as it likes. A gate looks at the
call's method and metadata only, and only for the methods it says it `gates` (asked once per
method too, so that the calls of a method no gate is for pass none: the bound on health and
reflection calls gates no API method); a call it refuses is answered by the method's own wrapped
handler, served as a client stream that is never read (`unread`), with a `NotRead` stand-in for
the request, which the innermost guard refuses with the gate's error. So the refusal passes
through every wrapper as any call does: counted, logged, with its request id.
"""

from __future__ import annotations

import inspect
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from typing import TYPE_CHECKING, Any

import grpc

if TYPE_CHECKING:  # grpc's RpcMethodHandler is generic in its stubs only
    Handler = grpc.RpcMethodHandler[Any, Any]
    Context = grpc.aio.ServicerContext[Any, Any]

Metadata = Sequence[tuple[str, str | bytes]]
Behavior = Callable[..., Any]


# The services anyone may call, on every port, without client credentials: health, and
# reflection in both versions. The access check exempts them, and the wrappers that bound
# what strangers can do (`gateway.api.ops_calls`, `gateway.api.malformed`) hold them apart.
OPS_SERVICES = frozenset(
    {
        "grpc.health.v1.Health",
        "grpc.reflection.v1alpha.ServerReflection",
        "grpc.reflection.v1.ServerReflection",
    }
)
# The same, as the prefixes of their methods' paths.
OPS_PREFIXES = tuple(f"/{service}/" for service in sorted(OPS_SERVICES))


class NotRead:
    """The request of a call answered without parsing it: the error it is refused with (a
    gate's, before its request was read; or the bound on the memory requests hold, once its
    request came: `gateway.api.request_memory`)."""

    __slots__ = ("error",)

    def __init__(self, error: Exception) -> None:
        self.error = error


class MethodInterceptor(grpc.aio.ServerInterceptor):  # type: ignore[type-arg]
    """Base of the gateway's interceptors: each decides from the method and its handler alone
    (`wrap`), so it works in `PerMethodChain` and, per call, as a plain grpc interceptor."""

    async def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Awaitable[Handler]],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> Handler:
        method = handler_call_details.method
        handler = self.wrap(method, await continuation(handler_call_details))
        if handler is None or not self.gates(method):
            return handler
        error = self.gate(method, _metadata(handler_call_details))
        return handler if error is None else unread(handler, NotRead(error))

    def wrap(self, method: str, handler: Handler) -> Handler:
        """`handler` as this interceptor would have every call of `method` see it (None, which
        grpc's stubs do not admit, stays None)."""
        raise NotImplementedError

    def gates(self, method: str) -> bool:
        """Whether `gate` is to be asked about the calls of `method`. `PerMethodChain` asks once
        per method, as it asks `wrap`, so the answer must hold while the server runs; a method
        no gate is for then costs its calls no gate at all. The default: whether this class
        has a `gate` of its own."""
        return type(self).gate is not MethodInterceptor.gate

    def gate(self, method: str, metadata: Metadata) -> Exception | None:
        """Per call of a method it `gates`, before its request is read: the error to refuse it
        with, or None (go on). The default lets every call through."""
        return None


def _metadata(details: grpc.HandlerCallDetails) -> Metadata:
    return details.invocation_metadata or ()


class Unread:
    """The requests of a client-streaming call a gate refused: its stand-in, once. A handler
    that reads its own request (`gateway.api.receive_timeout`) takes `stand_in` from it instead
    of reading the call."""

    __slots__ = ("_given", "stand_in")

    def __init__(self, stand_in: NotRead) -> None:
        self.stand_in = stand_in
        self._given = False

    def __aiter__(self) -> Unread:
        return self

    async def __anext__(self) -> NotRead:
        if self._given:
            raise StopAsyncIteration
        self._given = True
        return self.stand_in


def unread(handler: Handler, stand_in: NotRead) -> Handler:
    """`handler`, served without reading the call's request: as a client stream (which grpc
    does not read until asked), whose behaviour calls `handler`'s with `stand_in` for the
    request (or, for a client-streaming method, for its only request: `Unread`)."""
    request: Any = Unread(stand_in) if handler.request_streaming else stand_in
    serializer = handler.response_serializer
    behavior: Behavior
    if handler.response_streaming:
        streams: Behavior | None = (
            handler.stream_stream if handler.request_streaming else handler.unary_stream
        )
        assert streams is not None
        if inspect.isasyncgenfunction(streams):

            async def answers(requests: Any, context: Context) -> AsyncIterator[Any]:
                async for answer in streams(request, context):
                    yield answer

            return grpc.stream_stream_rpc_method_handler(answers, None, serializer)
        behavior = streams  # writes with `context.write`
    else:
        unary: Behavior | None = (
            handler.stream_unary if handler.request_streaming else handler.unary_unary
        )
        assert unary is not None
        behavior = unary

    async def answer(requests: Any, context: Context) -> Any:
        result = behavior(request, context)
        return await result if inspect.isawaitable(result) else result

    make = (
        grpc.stream_stream_rpc_method_handler
        if handler.response_streaming
        else grpc.stream_unary_rpc_method_handler
    )
    return make(answer, None, serializer)


class PerMethodChain(grpc.aio.ServerInterceptor):  # type: ignore[type-arg]
    def __init__(self, wrappers: Sequence[MethodInterceptor]) -> None:
        """`wrappers` outermost first, as `grpc.aio.server(interceptors=...)` takes them."""
        self._outermost_first = tuple(wrappers)
        # Per method: its wrapped handler, and the wrappers whose gate its calls pass (outermost
        # first), both decided on its first call.
        self._handlers: dict[str, tuple[Handler, tuple[MethodInterceptor, ...]]] = {}

    async def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Awaitable[Handler]],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> Handler:
        method = handler_call_details.method
        known = self._handlers.get(method)
        if known is None:
            handler = await continuation(handler_call_details)
            if handler is None:  # unknown method: grpc answers UNIMPLEMENTED; nothing remembered
                return handler
            for wrapper in reversed(self._outermost_first):
                handler = wrapper.wrap(method, handler)
            gates = tuple(w for w in self._outermost_first if w.gates(method))
            self._handlers[method] = known = (handler, gates)
        wrapped, gates = known
        for gate in gates:
            error = gate.gate(method, _metadata(handler_call_details))
            if error is not None:
                return unread(wrapped, NotRead(error))
        return wrapped
