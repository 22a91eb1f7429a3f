"""`PerMethodChain`: the interceptors nest as grpc's chain nests them, once per method."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any

import grpc
import pytest

from gateway._chain import Metadata, MethodInterceptor, PerMethodChain

if TYPE_CHECKING:  # generic in grpc's stubs only
    Handler = grpc.RpcMethodHandler[Any, Any]
    Context = grpc.aio.ServicerContext[Any, Any]


class Tagging(MethodInterceptor):
    """Appends its name to every answer, and counts how often it was asked to wrap."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.wrapped: list[str] = []

    def wrap(self, method: str, handler: Handler) -> Handler:
        self.wrapped.append(method)
        inner: Any = handler.unary_unary
        assert inner is not None
        tag = self.name.encode()

        async def tagged(request: bytes, context: Context) -> bytes:
            return bytes(await inner(request, context)) + tag

        return grpc.unary_unary_rpc_method_handler(tagged)


class Gating(Tagging):
    """Gates the methods named `gated` only (letting every call through), noting each time it
    is asked whether it gates a method, and each call its gate sees."""

    def __init__(self, name: str, gated: str) -> None:
        super().__init__(name)
        self._gated = gated
        self.asked: list[str] = []
        self.gated: list[str] = []

    def gates(self, method: str) -> bool:
        self.asked.append(method)
        return method.endswith(self._gated)

    def gate(self, method: str, metadata: Metadata) -> Exception | None:
        self.gated.append(method)
        return None


@pytest.fixture
async def chained() -> AsyncIterator[tuple[grpc.aio.Channel, Gating, Tagging, PerMethodChain]]:
    async def echo(request: bytes, context: Context) -> bytes:
        return request

    outer, inner = Gating("<outer", "/Again"), Tagging("<inner")
    chain = PerMethodChain([outer, inner])
    server = grpc.aio.server(interceptors=[chain])
    server.add_generic_rpc_handlers(
        (grpc.method_handlers_generic_handler("test.Probe", {
            "Echo": grpc.unary_unary_rpc_method_handler(echo),
            "Again": grpc.unary_unary_rpc_method_handler(echo),
        }),)
    )  # fmt: skip
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    try:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
            yield channel, outer, inner, chain
    finally:
        await server.stop(None)


async def test_wrappers_nest_outermost_first_and_wrap_each_method_once(
    chained: tuple[grpc.aio.Channel, Gating, Tagging, PerMethodChain],
) -> None:
    channel, outer, inner, _ = chained
    echo = channel.unary_unary("/test.Probe/Echo", None, None)
    again = channel.unary_unary("/test.Probe/Again", None, None)
    for _ in range(3):
        assert await echo(b"x", timeout=10) == b"x<inner<outer"  # inner runs nearest the servicer
    assert await again(b"y", timeout=10) == b"y<inner<outer"
    assert inner.wrapped == outer.wrapped == ["/test.Probe/Echo", "/test.Probe/Again"]


async def test_unknown_methods_are_unimplemented_and_never_remembered(
    chained: tuple[grpc.aio.Channel, Gating, Tagging, PerMethodChain],
) -> None:
    channel, outer, _, chain = chained
    for index in range(5):
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await channel.unary_unary(f"/test.Probe/Made{index}", None, None)(b"", timeout=10)
        assert caught.value.code() == grpc.StatusCode.UNIMPLEMENTED
    assert outer.wrapped == []
    assert chain._handlers == {}


async def test_a_gate_is_asked_once_per_method_and_sees_only_the_calls_of_those_it_gates(
    chained: tuple[grpc.aio.Channel, Gating, Tagging, PerMethodChain],
) -> None:
    """What every call pays for the gates is decided on a method's first call, as its wrapping
    is: a method no gate is for (every API method in sidecar mode) passes none."""
    channel, outer, _, _ = chained
    echo = channel.unary_unary("/test.Probe/Echo", None, None)
    again = channel.unary_unary("/test.Probe/Again", None, None)
    for _ in range(3):
        assert await echo(b"x", timeout=10) == b"x<inner<outer"
        assert await again(b"y", timeout=10) == b"y<inner<outer"
    assert outer.asked == ["/test.Probe/Echo", "/test.Probe/Again"]
    assert outer.gated == ["/test.Probe/Again"] * 3
