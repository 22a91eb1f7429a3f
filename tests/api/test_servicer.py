"""`gateway.api.servicer.rpc` around a handler, in a real grpc.aio server on loopback: a
`GatewayError` becomes its rich status, and a bug (any other exception) becomes INTERNAL with a
fixed message: never UNKNOWN, never the exception's own text, which may quote anything."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from typing import Any

import grpc
import pytest
from google.protobuf import empty_pb2

from gateway.api.servicer import UNEXPECTED, Admission, Servicer, rpc
from gateway.config.settings import Settings
from gateway.errors import FieldViolation, InvalidRequest
from tests.integration.helpers import rich_error

METHOD = "/test.Probe/Call"
LEAKY = "AKIDleakyleakyleakyleaky q-signature=0123abcd"


class Probe(Servicer):
    def __init__(self) -> None:
        super().__init__(Settings(), Admission(10))
        self.raise_: BaseException | None = None

    @rpc
    async def Call(
        self, request: empty_pb2.Empty, context: grpc.aio.ServicerContext[Any, Any]
    ) -> empty_pb2.Empty:
        if self.raise_ is not None:
            raise self.raise_
        return empty_pb2.Empty()


@pytest.fixture
async def probe() -> AsyncIterator[tuple[Probe, grpc.aio.UnaryUnaryMultiCallable[Any, Any]]]:
    servicer = Probe()
    server = grpc.aio.server()
    handler = grpc.unary_unary_rpc_method_handler(
        servicer.Call,
        request_deserializer=empty_pb2.Empty.FromString,
        response_serializer=empty_pb2.Empty.SerializeToString,
    )
    server.add_generic_rpc_handlers(
        (grpc.method_handlers_generic_handler("test.Probe", {"Call": handler}),)
    )
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    try:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
            call = channel.unary_unary(
                METHOD,
                request_serializer=empty_pb2.Empty.SerializeToString,
                response_deserializer=empty_pb2.Empty.FromString,
            )
            yield servicer, call
    finally:
        await server.stop(None)


async def test_a_gateway_error_is_its_rich_status(probe: Any) -> None:
    servicer, call = probe
    servicer.raise_ = InvalidRequest([FieldViolation("job_id", "required")])
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await call(empty_pb2.Empty(), timeout=10)
    error = rich_error(caught.value)
    assert error.code is grpc.StatusCode.INVALID_ARGUMENT
    assert error.violations == {"job_id": "required"}


async def test_a_bug_is_internal_with_a_fixed_message_and_a_logged_traceback(
    probe: Any, caplog: pytest.LogCaptureFixture
) -> None:
    servicer, call = probe
    servicer.raise_ = RuntimeError(f"bug that quotes {LEAKY}")
    with caplog.at_level(logging.ERROR, logger="gateway.api.servicer"):
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await call(empty_pb2.Empty(), timeout=10)
    error = rich_error(caught.value)
    assert error.code is grpc.StatusCode.INTERNAL  # not UNKNOWN
    assert error.message == UNEXPECTED
    assert error.error_info is not None and error.error_info.reason == "INTERNAL"
    assert "AKID" not in str(caught.value) and "q-signature" not in str(caught.value)
    assert [record.exc_info[0] for record in caplog.records if record.exc_info] == [RuntimeError]
    # The servicer still serves after it.
    servicer.raise_ = None
    assert await call(empty_pb2.Empty(), timeout=10) == empty_pb2.Empty()
