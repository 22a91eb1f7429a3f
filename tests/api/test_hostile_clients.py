"""What a client may do to the gateway without credentials, or with its own, and must not
hurt anyone with: hold health and reflection calls open, or calls whose request it never sends,
send huge health requests or garbage to the health port, send a request wrong in thousands of
places, or a bucket name of a megabyte. A real gateway in this process, over real loopback
channels (and, for the half-open calls, a client that speaks HTTP/2 itself).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
import time
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
from gateway.api.ops_calls import check_places, stream_places
from gateway.api.server import RunningGateway, start_gateway
from gateway.api.tree_checks import MAX_EXTRA_NODES
from gateway.config.settings import ServerLimits, Settings
from gateway.credentials import Credentials, StaticCredentialsProvider
from gateway.errors import InvalidRequest
from gateway.status import MAX_MESSAGE_CHARS, MAX_METADATA_CHARS
from tests.access.helpers import token_access_file
from tests.api.conftest import Start
from tests.fixtures.accounts import Serve
from tests.fixtures.raw_h2 import RawClient, frame
from tests.integration.helpers import RichError, rich_error
from tests.jobs.helpers import EOF

WAIT_S = 10.0
CALLS = 3
# Of `CALLS`, the places of streams (Watch, reflection) and of Checks: 2 and 1.
STREAMS, CHECKS = stream_places(CALLS), check_places(CALLS)
REFLECTION = "/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo"
CHECK = "/grpc.health.v1.Health/Check"
WATCH = "/grpc.health.v1.Health/Watch"
# Each channel its own connection, as each of kubelet's probes.
OWN_CONNECTION = [("grpc.use_local_subchannel_pool", 1)]
SERVING = health_pb2.HealthCheckResponse.SERVING
CORRUPT = b"\xff\xff\xff\xff"


@pytest.fixture
async def guarded(bounded: Start, settings: Settings) -> RunningGateway:
    """A gateway with its health port, allowing `CALLS` health and reflection calls at once:
    `STREAMS` streams and `CHECKS` Checks."""
    return await bounded(base=replace(settings, health_listen="127.0.0.1:0"), max_ops_calls=CALLS)


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


async def test_streams_are_bounded_on_each_port_and_never_refuse_a_check(
    guarded: RunningGateway, emulator: RunningEmulator
) -> None:
    """One shared bound let anyone who reaches the health port hold it with Watch streams, after
    which kubelet's Check was refused and kubelet restarted a healthy pod. Streams have their
    places (`stream_places`), Checks theirs (`check_places`), on each port. (One of each port's
    two stream places is another peer's, 127.0.0.2: one peer holds no more than it leaves free,
    tests/api/test_ops_peers.py.)"""
    assert guarded.health_address is not None
    others = [
        await asyncio.to_thread(_watching_peer, address)
        for address in (guarded.address, guarded.health_address)
    ]
    async with (
        grpc.aio.insecure_channel(guarded.address) as api,
        grpc.aio.insecure_channel(guarded.health_address) as port,
    ):
        on_api, on_port = health_pb2_grpc.HealthStub(api), health_pb2_grpc.HealthStub(port)
        # A reflection stream and the other peer's Watch: the API port's stream places.
        listing = reflection(api)
        await listing.write(reflection_pb2.ServerReflectionRequest(list_services=""))
        listed_services = await listing.read()
        assert isinstance(listed_services, reflection_pb2.ServerReflectionResponse)
        assert listed_services.list_services_response.service
        # (and the other peer's Watch.)

        # One more stream of either kind is refused there, at once...
        error = await refused_stream(on_api.Watch(health_pb2.HealthCheckRequest(), timeout=WAIT_S))
        assert error.code is grpc.StatusCode.RESOURCE_EXHAUSTED
        assert error.error_info is not None and error.error_info.reason == "OVERLOADED"
        assert error.error_info.metadata["limit"] == str(STREAMS)
        assert error.retry_info is not None
        extra = reflection(api)
        await extra.write(reflection_pb2.ServerReflectionRequest(list_services=""))
        assert (await refused_stream(extra)).code is grpc.StatusCode.RESOURCE_EXHAUSTED
        # ... and a Check still answered.
        answer = await on_api.Check(health_pb2.HealthCheckRequest(), timeout=WAIT_S)
        assert answer.status == SERVING

        # The health port has places of its own (kubelet's probes), and the API none.
        listed = await service_pb2_grpc.MediaJobServiceStub(api).ListMediaJobs(
            service_pb2.ListMediaJobsRequest(size=1), timeout=WAIT_S
        )
        assert list(listed.jobs_detail) == []
        port_watches = [
            on_port.Watch(health_pb2.HealthCheckRequest(), timeout=WAIT_S)
            for _ in range(STREAMS - 1)  # and the other peer's
        ]
        for port_watch in port_watches:
            assert (await port_watch.read()).status == SERVING
        error = await refused_stream(on_port.Watch(health_pb2.HealthCheckRequest(), timeout=WAIT_S))
        assert error.code is grpc.StatusCode.RESOURCE_EXHAUSTED
        # The probe, while strangers hold every stream place: answered, every time.
        for service in ("", API_SERVICE, "", API_SERVICE):
            answer = await on_port.Check(health_pb2.HealthCheckRequest(service=service), timeout=5)
            assert answer.status == SERVING

        # A stream that ends gives its place back (before its client has the status).
        await listing.done_writing()
        assert await listing.read() is EOF
        assert await listing.code() is grpc.StatusCode.OK
        again = on_api.Watch(health_pb2.HealthCheckRequest(), timeout=WAIT_S)
        assert (await again.read()).status == SERVING
        for call in (again, *port_watches):
            call.cancel()
    for other in others:
        other.close()


def _watching_peer(address: str) -> RawClient:
    """A client from another peer address (127.0.0.2) holding one Watch at `address`."""
    client = RawClient(address, source="127.0.0.2")
    stream = client.open(WATCH)
    client.send(stream, frame(health_pb2.HealthCheckRequest().SerializeToString()))
    assert "grpc-status" not in client.headers(stream)  # being answered, not refused
    return client


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


async def test_checks_whose_request_never_comes_are_bounded_and_never_refuse_a_probe(
    guarded: RunningGateway,
) -> None:
    """Checks that send their headers and never their request are as long-lived as a Watch:
    they are counted (`check_places`), and when they hold every place, the next Check ends the
    oldest of them instead of being refused: that used to lock kubelet out just as well."""
    assert CHECKS == 1
    assert guarded.health_address is not None
    client = await asyncio.to_thread(RawClient, guarded.health_address)
    try:
        streams = [await asyncio.to_thread(client.open, CHECK) for _ in range(4)]
        answers = [await asyncio.to_thread(client.status, stream) for stream in streams[:-1]]
        # Each ended by the next, at once: the gateway's OVERLOADED, RetryInfo included. So the
        # last one has come too (the gateway takes a connection's calls in order), and holds
        # the place now.
        assert [answer["grpc-status"] for answer in answers] == ["8"] * 3
        assert all("waiting for their request" in unquote(a["grpc-message"]) for a in answers)
        assert all("grpc-status-details-bin" in answer for answer in answers)
        async with grpc.aio.insecure_channel(guarded.health_address) as channel:
            for _ in range(3):  # the probe ends the held one, and each probe ends at once
                answer = await health_pb2_grpc.HealthStub(channel).Check(
                    health_pb2.HealthCheckRequest(), timeout=WAIT_S
                )
                assert answer.status == SERVING
        assert (await asyncio.to_thread(client.status, streams[-1]))["grpc-status"] == "8"
        # A Check that ends its side without a request gets INVALID_ARGUMENT, not a wait.
        empty = await asyncio.to_thread(client.open, CHECK)
        await asyncio.to_thread(client.send, empty, b"")
        assert (await asyncio.to_thread(client.status, empty))["grpc-status"] == "3"
    finally:
        client.close()


async def test_watches_whose_request_never_comes_take_stream_places_only(
    guarded: RunningGateway,
) -> None:
    """A Watch whose request never comes holds a stream place like any Watch, so the Watch
    beyond is refused, on the same connection (after those: the gateway takes a connection's
    calls in order) and on any other; a Check is answered all the while."""
    assert guarded.health_address is not None
    client = await asyncio.to_thread(RawClient, guarded.health_address)
    try:
        for _ in range(STREAMS):
            await asyncio.to_thread(client.open, WATCH)
        refused = await asyncio.to_thread(lambda: client.status(client.open(WATCH)))
        assert refused["grpc-status"] == "8"  # RESOURCE_EXHAUSTED
        async with grpc.aio.insecure_channel(guarded.health_address) as channel:
            health = health_pb2_grpc.HealthStub(channel)
            error = await refused_stream(health.Watch(health_pb2.HealthCheckRequest()))
            assert error.code is grpc.StatusCode.RESOURCE_EXHAUSTED
            for _ in range(3):
                answer = await health.Check(health_pb2.HealthCheckRequest(), timeout=WAIT_S)
                assert answer.status == SERVING
    finally:
        client.close()


async def test_on_the_api_port_checks_have_their_places_and_nothing_is_ended(
    guarded: RunningGateway,
) -> None:
    """No probe asks on the API port, and ending a Check that waits for its request would
    change its metrics' grpc_type there (`gateway.api.ops_calls`): a Check beyond its places is
    refused; streams are not, their places are their own."""
    client = await asyncio.to_thread(RawClient, guarded.address)
    try:
        held = [await asyncio.to_thread(client.open, CHECK) for _ in range(CHECKS)]
        refused = await asyncio.to_thread(lambda: client.status(client.open(CHECK)))
        assert refused["grpc-status"] == "8"
        async with grpc.aio.insecure_channel(guarded.address) as channel:
            watch = health_pb2_grpc.HealthStub(channel).Watch(
                health_pb2.HealthCheckRequest(), timeout=WAIT_S
            )
            assert (await watch.read()).status == SERVING
            watch.cancel()
        # The held ones are served once their request comes (then give their places back).
        request = frame(health_pb2.HealthCheckRequest().SerializeToString())
        for stream in held:
            await asyncio.to_thread(client.send, stream, request)
            assert (await asyncio.to_thread(client.status, stream))["grpc-status"] == "0"
    finally:
        client.close()
    async with grpc.aio.insecure_channel(guarded.address) as channel:
        answer = await health_pb2_grpc.HealthStub(channel).Check(
            health_pb2.HealthCheckRequest(), timeout=WAIT_S
        )
        assert answer.status == SERVING


class Flood:
    """A stranger who keeps `held` Checks that never send their request open on `connections`
    connections: each one the gateway ends, it opens again at once, until `stop` (or `MOST`
    opened, or `WAIT_S`). `filled` is set (in the test's loop) once the gateway has ended
    `places` of them: from then on every place is held, again and again.

    Not faster than the gateway answers: a stranger who sends more calls than the gateway can
    take in fails probes on any server (they wait behind the flood in grpc's own queue), and no
    bound on calls held changes that."""

    ROUNDS = 100_000

    def __init__(self, address: str, places: int, held: int, connections: int = 4) -> None:
        self.address = address
        self.places = places
        self.held = held
        self.connections = connections
        self.stop = threading.Event()
        self.filled = asyncio.Event()
        self._loop = asyncio.get_running_loop()

    def run(self) -> tuple[int, set[str]]:
        """How many of its Checks the gateway ended, and with which statuses."""
        clients = [RawClient(self.address) for _ in range(self.connections)]
        waiting: list[tuple[RawClient, int]] = []
        ended: list[tuple[RawClient, int]] = []
        try:
            deadline = time.monotonic() + WAIT_S
            for _ in range(self.ROUNDS):
                if self.stop.is_set():
                    break
                if time.monotonic() > deadline:
                    raise AssertionError("the probes took too long")
                while len(waiting) < self.held:
                    client = clients[len(waiting) % len(clients)]
                    waiting.append((client, client.open(CHECK)))
                for client in clients:
                    with contextlib.suppress(TimeoutError):
                        client.receive(0.001)
                ended += [(c, stream) for c, stream in waiting if c.answered(stream)]
                waiting = [(c, stream) for c, stream in waiting if not c.answered(stream)]
                if not self.filled.is_set() and len(ended) >= self.places:
                    self._loop.call_soon_threadsafe(self.filled.set)
            return len(ended), {c.status(stream)["grpc-status"] for c, stream in ended}
        finally:
            for client in clients:
                client.close()


async def test_a_flood_of_checks_that_never_send_their_request_does_not_fail_a_probe(
    settings: Settings, credentials: Credentials
) -> None:
    """With the default bound (its `check_places`: 20 Checks) and a stranger holding 240 Checks
    that never send their request, opening one more for each the gateway ends, every probe (a
    new connection and a Check, as kubelet's) is answered: to end one, the stranger must bring
    20 Checks within the moment it waits for its request, which comes with its headers."""
    gateway = await start_gateway(
        replace(settings, health_listen="127.0.0.1:0"), StaticCredentialsProvider(credentials)
    )
    places = check_places(gateway.settings.server.max_ops_calls)
    try:
        assert gateway.health_address is not None
        # More than the whole bound: one shared bound was full with them.
        held = gateway.settings.server.max_ops_calls + 2 * places
        flood = Flood(gateway.health_address, places, held)
        flooding = asyncio.ensure_future(asyncio.to_thread(flood.run))
        answers = []
        try:
            await asyncio.wait_for(flood.filled.wait(), WAIT_S)
            for _ in range(30):
                async with grpc.aio.insecure_channel(
                    gateway.health_address, options=OWN_CONNECTION
                ) as probe:
                    reply = await health_pb2_grpc.HealthStub(probe).Check(
                        health_pb2.HealthCheckRequest(), timeout=WAIT_S
                    )
                    answers.append(reply.status)
        finally:
            flood.stop.set()
            ended, statuses = await asyncio.wait_for(flooding, WAIT_S * 3)
        assert answers == [SERVING] * 30
        # The flood held every place meanwhile (`filled`, and it kept `held` open), each of its
        # Checks ended RESOURCE_EXHAUSTED when a newer one (a probe's, or its own) came.
        assert ended > places
        assert statuses == {"8"}
    finally:
        await gateway.stop(grace_s=0)


async def test_a_health_or_reflection_request_over_4_kib_is_refused_on_the_api_port(
    gateway: RunningGateway,
) -> None:
    """A Watch keeps its request for as long as it stays open and a reflection answer echoes
    its request: 8 MiB each (the API's limit) let a few dozen streams hold gigabytes. (On the
    health port grpc refuses one from its length prefix: tests/api/test_ops_reads.py.)"""
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


async def test_a_refused_bucket_as_long_as_a_request_may_be_is_not_echoed_whole(
    tmp_path: Path, serve: Serve
) -> None:
    """The access refusal names the bucket the caller asked for: all of it (a megabyte, before
    requests had their own size limit), in the message and in ErrorInfo, made trailers no client
    accepts (RESOURCE_EXHAUSTED "Stream removed")."""
    token = "tok-hostile-megabyte-bucket-0123456789"
    gateway = await serve(
        ClientAccess.from_file(token_access_file(tmp_path / "access.toml", ("alpha", token)))
    )
    bucket = "b" * (ServerLimits().max_request_bytes - 100) + "-1250000000"
    async with grpc.aio.insecure_channel(gateway.address) as channel:
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
