"""What a hostile caller can make a traced gateway record.

A real gateway over a real channel, exporting to the in-process OTLP receiver, CI the emulator.
"""

from __future__ import annotations

import logging
import secrets

import grpc

from gateway._proto import service_pb2, service_pb2_grpc
from gateway.api.server import RunningGateway
from gateway.logs import JsonFormatter
from tests.conftest import SAMPLE_KEY
from tests.fixtures.logs import rendered
from tests.fixtures.otlp import OtlpReceiver
from tests.tracing.test_span_tree import WAIT_S, CallerContext, named

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
