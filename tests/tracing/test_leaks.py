"""What a hostile caller or a peer echoing the request can make a traced gateway record.

A real gateway over a real channel, exporting to the in-process OTLP receiver, CI the emulator.
"""

from __future__ import annotations

import logging
import secrets

import grpc
import pytest
from aiohttp import web

from ci_emulator.hosts import Target
from ci_emulator.server import RunningEmulator
from gateway._proto import service_pb2, service_pb2_grpc
from gateway.api.server import RunningGateway
from gateway.credentials import Credentials
from gateway.logs import JsonFormatter
from tests.conftest import SAMPLE_KEY
from tests.fixtures.logs import rendered
from tests.fixtures.otlp import OtlpReceiver
from tests.tracing.test_span_tree import WAIT_S, CallerContext, attribute_values, named

S = service_pb2
GET_MEDIA_INFO = "ci.media.v1.MediaJobService/GetMediaInfo"


async def test_malformed_trace_headers_are_neither_logged_nor_fatal(
    traced_gateway: RunningGateway, receiver: OtlpReceiver
) -> None:
    """The propagators complain about a malformed `baggage` or `tracestate` by quoting it in a
    WARNING: the caller's baggage (which may be anything) would reach the gateway's log, up to
    a line per list-member, on every call. The call itself goes on, a child of the caller's
    valid traceparent."""
    marker = "hostile" + secrets.token_hex(8)
    caller = CallerContext.new()
    metadata = (
        ("traceparent", f"00-{caller.trace_id}-{caller.span_id}-01"),
        ("tracestate", f"vendor=ok,{marker} no-equals-sign"),
        ("baggage", f"{marker}-not-a-pair,user=alice"),
    )
    # The level a gateway logs at by default.
    with rendered(JsonFormatter(), level=logging.INFO) as logs:
        async with grpc.aio.insecure_channel(traced_gateway.address) as channel:
            stub = service_pb2_grpc.MediaJobServiceStub(channel)
            await stub.GetMediaInfo(
                S.GetMediaInfoRequest(object=SAMPLE_KEY), metadata=metadata, timeout=WAIT_S
            )
    await traced_gateway.stop()
    assert marker not in logs.getvalue()
    (server,) = named(receiver.spans(), GET_MEDIA_INFO)
    assert (server.trace_id, server.parent_span_id) == (caller.trace_id, caller.span_id)


async def test_a_request_id_echoing_the_signature_is_redacted_on_the_attempt_span(
    traced_gateway: RunningGateway,
    receiver: OtlpReceiver,
    emulator: RunningEmulator,
    credentials: Credentials,
) -> None:
    """A peer (a proxy, a misrouted endpoint) that answers with the request's Authorization in
    its RequestId: the gateway redacts it for the caller and the access log, and the attempt's
    span must not carry it either."""

    async def echo(request: web.Request, target: Target) -> web.StreamResponse | None:
        authorization = request.headers.get("Authorization", "")
        return web.Response(status=404, headers={"x-ci-request-id": authorization})

    emulator.state.request_hooks.append(echo)
    async with grpc.aio.insecure_channel(traced_gateway.address) as channel:
        stub = service_pb2_grpc.MediaJobServiceStub(channel)
        call = stub.GetMediaInfo(S.GetMediaInfoRequest(object=SAMPLE_KEY), timeout=WAIT_S)
        with pytest.raises(grpc.aio.AioRpcError):
            await call
        trailing = dict(await call.trailing_metadata() or ())
    await traced_gateway.stop()
    assert credentials.secret_id not in str(trailing)  # the gateway's own redaction, as before
    spans = receiver.spans()
    (attempt,) = named(spans, "CI GetMediaInfo")
    assert attempt.attributes["ci.request_id"]  # recorded, redacted
    values = attribute_values(spans)
    assert not [value for value in values if credentials.secret_id in value]
    assert not [value for value in values if "q-signature=" in value and "REDACTED" not in value]
