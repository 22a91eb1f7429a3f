"""What a client may do to the gateway without credentials, or with its own, and must not
hurt anyone with: hold health and reflection calls open, or calls whose request it never sends,
send huge health requests or garbage to the health port, send a request wrong in thousands of
places, or a bucket name of a megabyte. A real gateway in this process, over real loopback
channels (and, for the half-open calls, a client that speaks HTTP/2 itself).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from dataclasses import replace
from pathlib import Path
from urllib.parse import unquote

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2

from ci_emulator.server import RunningEmulator
from gateway._proto import media_pb2, service_pb2, service_pb2_grpc, xml_pb2
from gateway.access.interceptor import ClientAccess
from gateway.api.health import API_SERVICE
from gateway.api.malformed import MAX_REQUEST_ELEMENTS, OPS_MAX_REQUEST_BYTES
from gateway.api.server import RunningGateway, start_gateway
from gateway.api.tree_checks import MAX_EXTRA_NODES
from gateway.config.settings import Settings
from gateway.credentials import Credentials, StaticCredentialsProvider
from gateway.errors import InvalidRequest
from gateway.status import MAX_MESSAGE_CHARS, MAX_METADATA_CHARS
from tests.access.helpers import token_access_file
from tests.fixtures.accounts import Serve
from tests.fixtures.raw_h2 import RawClient, frame
from tests.integration.helpers import RichError, rich_error
from tests.jobs.helpers import EOF

WAIT_S = 10.0
CALLS = 2
REFLECTION = "/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo"
SERVING = health_pb2.HealthCheckResponse.SERVING
CORRUPT = b"\xff\xff\xff\xff"


@pytest.fixture
async def guarded(settings: Settings, credentials: Credentials) -> AsyncIterator[RunningGateway]:
    """A gateway with its health port, allowing `CALLS` health and reflection calls at once."""
    running = await start_gateway(
        replace(
            settings,
            server=replace(settings.server, max_ops_calls=CALLS),
            health_listen="127.0.0.1:0",
        ),
        StaticCredentialsProvider(credentials),
    )
    try:
        yield running
    finally:
        await running.stop(grace_s=0)


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


async def test_health_and_reflection_calls_are_bounded_on_each_port(
    guarded: RunningGateway, emulator: RunningEmulator
) -> None:
    assert guarded.health_address is not None
    async with (
        grpc.aio.insecure_channel(guarded.address) as api,
        grpc.aio.insecure_channel(guarded.health_address) as port,
    ):
        on_api, on_port = health_pb2_grpc.HealthStub(api), health_pb2_grpc.HealthStub(port)
        # A reflection stream and a Watch: the API port's bound.
        listing = reflection(api)
        await listing.write(reflection_pb2.ServerReflectionRequest(list_services=""))
        listed_services = await listing.read()
        assert isinstance(listed_services, reflection_pb2.ServerReflectionResponse)
        assert listed_services.list_services_response.service
        watch = on_api.Watch(health_pb2.HealthCheckRequest(service=API_SERVICE), timeout=WAIT_S)
        assert (await watch.read()).status == SERVING

        # One more of any kind is refused there, at once.
        error = await refused_stream(on_api.Watch(health_pb2.HealthCheckRequest(), timeout=WAIT_S))
        assert error.code is grpc.StatusCode.RESOURCE_EXHAUSTED
        assert error.error_info is not None and error.error_info.reason == "OVERLOADED"
        assert error.error_info.metadata["limit"] == str(CALLS)
        assert error.retry_info is not None
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await on_api.Check(health_pb2.HealthCheckRequest(), timeout=WAIT_S)
        assert caught.value.code() is grpc.StatusCode.RESOURCE_EXHAUSTED
        extra = reflection(api)
        await extra.write(reflection_pb2.ServerReflectionRequest(list_services=""))
        assert (await refused_stream(extra)).code is grpc.StatusCode.RESOURCE_EXHAUSTED

        # The health port has a bound of its own (kubelet's probes), and the API none.
        assert (await on_port.Check(health_pb2.HealthCheckRequest(), timeout=WAIT_S)).status == (
            SERVING
        )
        listed = await service_pb2_grpc.MediaJobServiceStub(api).ListMediaJobs(
            service_pb2.ListMediaJobsRequest(size=1), timeout=WAIT_S
        )
        assert list(listed.jobs_detail) == []
        port_watches = [
            on_port.Watch(health_pb2.HealthCheckRequest(), timeout=WAIT_S) for _ in range(CALLS)
        ]
        for port_watch in port_watches:
            assert (await port_watch.read()).status == SERVING
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await on_port.Check(health_pb2.HealthCheckRequest(), timeout=WAIT_S)
        assert caught.value.code() is grpc.StatusCode.RESOURCE_EXHAUSTED

        # A call that ends gives its place back (before its client has the status).
        await listing.done_writing()
        assert await listing.read() is EOF
        assert await listing.code() is grpc.StatusCode.OK
        answer = await on_api.Check(health_pb2.HealthCheckRequest(), timeout=WAIT_S)
        assert answer.status == SERVING
        for call in (watch, *port_watches):
            call.cancel()


def _half_open(
    address: str, count: int, path: str, metadata: tuple[tuple[str, str], ...]
) -> list[dict[str, str]]:
    """`count` calls of `path` whose headers are sent and their request never: the status each
    gets (waited for, within a bound)."""
    client = RawClient(address)
    try:
        streams = [client.open(path, metadata) for _ in range(count)]
        return [client.status(stream) for stream in streams]
    finally:
        client.close()


async def test_a_stranger_s_call_is_refused_before_its_request_is_read(
    tmp_path: Path, serve: Serve
) -> None:
    """grpc reads a unary request before any handler runs, and the access check ran in the
    handler: a stranger who sent only a call's headers held the call open, as long as it liked,
    and ten thousand such calls took 200 MB. Refused from their metadata, they end at once."""
    token = "tok-hostile-half-open-0123456789"
    gateway = await serve(
        ClientAccess.from_file(token_access_file(tmp_path / "access.toml", ("alpha", token)))
    )
    path = "/ci.media.v1.MediaJobService/ListMediaJobs"
    for metadata, message in (
        ((), "no valid client credentials"),
        ((("authorization", "Bearer not-a-token"),), "the bearer token is not valid"),
        ((("authorization", f"Basic {token}"),), "must be 'Bearer <token>'"),
    ):
        answers = await asyncio.to_thread(_half_open, gateway.address, 20, path, metadata)
        assert {answer["grpc-status"] for answer in answers} == {"16"}  # UNAUTHENTICATED
        assert all(message in unquote(answer["grpc-message"]) for answer in answers)

    # A client's own call still waits for its request, then is served.
    def served() -> tuple[bool, dict[str, str]]:
        client = RawClient(gateway.address)
        try:
            stream = client.open(path, (("authorization", f"Bearer {token}"),))
            # Another call on the connection, refused: once its status is in, the first
            # call's status would be too, had it been refused.
            client.status(client.open(path))
            waiting = not client.answered(stream)
            client.send(stream, frame(service_pb2.ListMediaJobsRequest(size=1).SerializeToString()))
            return waiting, client.status(stream)
        finally:
            client.close()

    waiting, answer = await asyncio.to_thread(served)
    assert waiting
    assert answer["grpc-status"] == "0"


async def test_health_calls_whose_request_never_comes_count_against_the_bound(
    guarded: RunningGateway,
) -> None:
    assert guarded.health_address is not None
    check = "/grpc.health.v1.Health/Check"
    client = await asyncio.to_thread(RawClient, guarded.health_address)
    try:
        for _ in range(CALLS):
            await asyncio.to_thread(client.open, check)
        # The bound is taken by calls that sent nothing but headers: the next one is refused,
        # on the same connection (so after those two: the gateway takes a connection's calls
        # in order) and on any other.
        refused = await asyncio.to_thread(lambda: client.status(client.open(check)))
        assert refused["grpc-status"] == "8"  # RESOURCE_EXHAUSTED
        async with grpc.aio.insecure_channel(guarded.health_address) as channel:
            for _ in range(3):
                with pytest.raises(grpc.aio.AioRpcError) as caught:
                    await health_pb2_grpc.HealthStub(channel).Check(
                        health_pb2.HealthCheckRequest(), timeout=WAIT_S
                    )
                assert caught.value.code() is grpc.StatusCode.RESOURCE_EXHAUSTED
    finally:
        client.close()


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


async def test_the_health_port_refuses_garbage_with_invalid_argument_and_no_traceback(
    guarded: RunningGateway, caplog: pytest.LogCaptureFixture
) -> None:
    """As on the API port (tests/api/test_malformed.py): the health port answered UNKNOWN and
    logged an ERROR with a traceback per call, to anyone who can reach it."""
    caplog.set_level(logging.INFO)
    assert guarded.health_address is not None
    async with grpc.aio.insecure_channel(guarded.health_address) as channel:
        for _ in range(3):
            with pytest.raises(grpc.aio.AioRpcError) as caught:
                await channel.unary_unary("/grpc.health.v1.Health/Check", None, None)(
                    CORRUPT, timeout=WAIT_S
                )
            error = rich_error(caught.value)
            assert error.code is grpc.StatusCode.INVALID_ARGUMENT
            assert error.error_info is not None
            assert error.error_info.reason == "MALFORMED_REQUEST"
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR or r.exc_info]
    warnings = [r for r in caplog.records if r.name == "gateway.api.malformed"]
    assert len(warnings) == 1  # one line a minute at most, as on the API port


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
