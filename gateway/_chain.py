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
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from typing import TYPE_CHECKING, Any

import grpc

if TYPE_CHECKING:  # grpc's RpcMethodHandler is generic in its stubs only
    Handler = grpc.RpcMethodHandler[Any, Any]


class MethodInterceptor(grpc.aio.ServerInterceptor):  # type: ignore[type-arg]
    """Base of the gateway's interceptors: each decides from the method and its handler alone
    (`wrap`), so it works in `PerMethodChain` and, per call, as a plain grpc interceptor."""

    async def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Awaitable[Handler]],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> Handler:
        return self.wrap(handler_call_details.method, await continuation(handler_call_details))

    def wrap(self, method: str, handler: Handler) -> Handler:
        """`handler` as this interceptor would have every call of `method` see it (None, which
        grpc's stubs do not admit, stays None)."""
        raise NotImplementedError


class PerMethodChain(grpc.aio.ServerInterceptor):  # type: ignore[type-arg]
    def __init__(self, wrappers: Sequence[MethodInterceptor]) -> None:
        """`wrappers` outermost first, as `grpc.aio.server(interceptors=...)` takes them."""
        self._wrappers = tuple(reversed(wrappers))
        self._handlers: dict[str, Handler] = {}

    async def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Awaitable[Handler]],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> Handler:
        method = handler_call_details.method
        wrapped = self._handlers.get(method)
        if wrapped is not None:
            return wrapped
        handler = await continuation(handler_call_details)
        if handler is None:  # unknown method: grpc answers UNIMPLEMENTED; nothing remembered
            return handler
        for wrapper in self._wrappers:
            handler = wrapper.wrap(method, handler)
        self._handlers[method] = handler
        return handler
