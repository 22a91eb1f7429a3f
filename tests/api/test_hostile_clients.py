"""What a client may do to the gateway without credentials, or with its own, and must not
hurt anyone with: send huge health or reflection requests, a request far larger than any valid
one, a request wrong in thousands of places, or a bucket name of a megabyte. A real gateway in
this process, over real loopback channels.
"""

from __future__ import annotations

from pathlib import Path

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2

from ci_emulator.server import RunningEmulator
from gateway._proto import media_pb2, service_pb2, service_pb2_grpc, xml_pb2
from gateway.access.interceptor import ClientAccess
from gateway.api.malformed import MAX_REQUEST_ELEMENTS, OPS_MAX_REQUEST_BYTES
from gateway.api.server import RunningGateway
from gateway.api.tree_checks import MAX_EXTRA_NODES
from gateway.errors import InvalidRequest
from gateway.status import MAX_MESSAGE_CHARS, MAX_METADATA_CHARS
from tests.access.helpers import token_access_file
from tests.fixtures.accounts import Serve
from tests.integration.helpers import RichError, rich_error

WAIT_S = 10.0
REFLECTION = "/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo"


def reflection(channel: grpc.aio.Channel) -> grpc.aio.StreamStreamCall:  # type: ignore[type-arg]
    info = channel.stream_stream(
        REFLECTION,
        reflection_pb2.ServerReflectionRequest.SerializeToString,
        reflection_pb2.ServerReflectionResponse.FromString,
    )
    return info(timeout=WAIT_S)  # type: ignore[call-arg]  # written and read below


async def refused_stream(call: grpc.aio.Call) -> RichError:
    """The rich error a stream ends with before its first answer."""
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await call.read()  # type: ignore[attr-defined]
    return rich_error(caught.value)


async def test_a_health_or_reflection_request_over_64_kib_is_refused(
    gateway: RunningGateway,
) -> None:
    """A Watch keeps its request for as long as it stays open and a reflection answer echoes
    its request: 8 MiB each (the API's limit) let a few dozen streams hold gigabytes."""
    huge = "x" * (OPS_MAX_REQUEST_BYTES + 1)
    async with grpc.aio.insecure_channel(gateway.address) as channel:
        health = health_pb2_grpc.HealthStub(channel)
        watch = health.Watch(health_pb2.HealthCheckRequest(service=huge), timeout=WAIT_S)
        big_reflection = reflection(channel)
        await big_reflection.write(
            reflection_pb2.ServerReflectionRequest(file_containing_symbol=huge)
        )
        for call in (watch, big_reflection):
            error = await refused_stream(call)
            assert error.code is grpc.StatusCode.INVALID_ARGUMENT
            assert error.error_info is not None
            assert error.error_info.reason == "MALFORMED_REQUEST"
            assert f"is larger than {OPS_MAX_REQUEST_BYTES} bytes" in error.message
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await health.Check(health_pb2.HealthCheckRequest(service=huge), timeout=WAIT_S)
        assert caught.value.code() is grpc.StatusCode.INVALID_ARGUMENT
        # A name of ordinary length is answered as before (SERVICE_UNKNOWN, kept open).
        unknown = health.Watch(health_pb2.HealthCheckRequest(service="x" * 200), timeout=WAIT_S)
        assert (await unknown.read()).status == health_pb2.HealthCheckResponse.SERVICE_UNKNOWN
        unknown.cancel()


async def test_a_request_wrong_in_thousands_of_places_gets_a_status_every_client_reads(
    stub: service_pb2_grpc.MediaJobServiceAsyncStub, emulator: RunningEmulator
) -> None:
    """Each violation was checked against every one before it (hours of the event loop for a
    million), and the status named them all: trailers no gRPC client accepts (it saw
    RESOURCE_EXHAUSTED "received metadata size exceeds hard limit")."""
    count = MAX_REQUEST_ELEMENTS - 10
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await stub.DescribeMediaJobs(
            service_pb2.DescribeMediaJobsRequest(job_ids=[""] * count), timeout=WAIT_S
        )
    error = rich_error(caught.value)
    assert error.code is grpc.StatusCode.INVALID_ARGUMENT
    assert len(error.violations) == InvalidRequest.MAX_REPORTED
    assert "job_ids" in error.violations  # the count, the first check
    assert error.message.endswith(
        f"and more (only the first {InvalidRequest.MAX_REPORTED} are listed)"
    )
    assert sum(emulator.state.operations.values()) == 0


async def test_requests_beyond_the_element_bound_are_refused_and_those_within_are_judged(
    stub: service_pb2_grpc.MediaJobServiceAsyncStub, emulator: RunningEmulator
) -> None:
    too_many = service_pb2.SubmitMediaJobsRequest(
        request=media_pb2.MultiOperationRequest(
            operation=[media_pb2.Operation() for _ in range(MAX_REQUEST_ELEMENTS)]
        )
    )
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await stub.SubmitMediaJobs(too_many, timeout=WAIT_S)
    error = rich_error(caught.value)
    assert error.code is grpc.StatusCode.INVALID_ARGUMENT
    assert error.error_info is not None and error.error_info.reason == "MALFORMED_REQUEST"
    assert "SubmitMediaJobs request holds more than" in error.message
    # The largest request validation has a rule for still reaches it, and gets its answer.
    nodes = [xml_pb2.XmlNode(name=f"N{i}", text="v") for i in range(MAX_EXTRA_NODES + 1)]
    judged = service_pb2.SubmitMediaJobRequest(
        request=media_pb2.Request(
            input=media_pb2.Input(object="input/sample.mp4"),
            tag="MediaInfo",
            operation=media_pb2.Operation(extra_nodes=nodes),
        )
    )
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await stub.SubmitMediaJob(judged, timeout=WAIT_S)
    error = rich_error(caught.value)
    assert error.error_info is not None and error.error_info.reason == "INVALID_REQUEST"
    assert any(f"more than {MAX_EXTRA_NODES}" in why for why in error.violations.values())
    assert sum(emulator.state.operations.values()) == 0


async def test_a_refused_bucket_of_a_megabyte_is_not_echoed_whole(
    tmp_path: Path, serve: Serve
) -> None:
    """The access refusal names the bucket the caller asked for: all of it, in the message and
    in ErrorInfo, made trailers no client accepts (RESOURCE_EXHAUSTED "Stream removed")."""
    token = "tok-hostile-megabyte-bucket-0123456789"
    gateway = await serve(
        ClientAccess.from_file(token_access_file(tmp_path / "access.toml", ("alpha", token)))
    )
    bucket = "b" * 1_000_000 + "-1250000000"
    async with grpc.aio.insecure_channel(
        gateway.address, options=[("grpc.max_send_message_length", 2 * 1024 * 1024)]
    ) as channel:
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await service_pb2_grpc.MediaJobServiceStub(channel).ListMediaJobs(
                service_pb2.ListMediaJobsRequest(bucket=bucket),
                metadata=(("authorization", f"Bearer {token}"),),
                timeout=WAIT_S,
            )
    error = rich_error(caught.value)
    assert error.code is grpc.StatusCode.PERMISSION_DENIED
    assert error.error_info is not None and error.error_info.reason == "BUCKET_NOT_ALLOWED"
    assert error.message.startswith("this client may not use bucket 'bbbb")
    assert len(error.message) == MAX_MESSAGE_CHARS and error.message.endswith("\u2026")
    assert all(len(value) <= MAX_METADATA_CHARS for value in error.error_info.metadata.values())
