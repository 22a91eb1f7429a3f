"""Health and reflection calls read their requests under a time-out on both ports, and on the API
port, where grpc may buffer `server.max_request_bytes` for a read, a bounded number at once
(`gateway.api.ops_reads`).

Before, anyone who reached a port could open health Watch, Check and reflection calls that sent
all but the last byte of their request, each buffered by grpc (128 KiB on the API port, 64 KiB
on the health port) within the calls' places (`server.max_ops_calls`), and hold them for as
long as the client liked: 200 on each port took a `serve` process +47 MiB
(tests/api/test_request_floods.py measures what they take now).

A real gateway in this process with its health port, its receive time-out short, over
loopback: a client that speaks HTTP/2 itself for the requests that never finish (no gRPC library
sends such calls), gRPC channels and grpc's own reflection client for the rest.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable
from dataclasses import replace

import aiohttp
import grpc
import pytest
from google.protobuf import descriptor_pool
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2
from grpc_reflection.v1alpha.proto_reflection_descriptor_database import (
    ProtoReflectionDescriptorDatabase,
)

from gateway.api.health import API_SERVICE
from gateway.api.malformed import OPS_MAX_REQUEST_BYTES
from gateway.api.ops_reads import WHAT, OpsReads, check_reserve, read_places
from gateway.api.server import RunningGateway
from gateway.config.settings import ServerLimits, Settings
from tests.api.conftest import Start, labels, scrape
from tests.api.test_connection_bounds import rich_status
from tests.fixtures.raw_h2 import RawClient, frame
from tests.integration.helpers import rich_error

WAIT_S = 10.0
TIMEOUT_S = 3.0  # the bound under test: the calls it ends are held at least this long
PATIENT_S = 120.0  # a time-out no test here reaches
DEFAULTS = ServerLimits()
PLACES = read_places(DEFAULTS.max_request_bytes)  # 8 reads at once on the API port
STREAM_READS = PLACES - check_reserve(PLACES)  # 6: the last 2 only Checks may take
WATCH = "/grpc.health.v1.Health/Watch"
CHECK = "/grpc.health.v1.Health/Check"
REFLECTION = "/grpc.reflection.v1.ServerReflection/ServerReflectionInfo"
SERVING = health_pb2.HealthCheckResponse.SERVING
DEADLINE_EXCEEDED = grpc.StatusCode.DEADLINE_EXCEEDED.value[0]
RESOURCE_EXHAUSTED = grpc.StatusCode.RESOURCE_EXHAUSTED.value[0]


@pytest.fixture
async def gateway(bounded: Start, settings: Settings) -> RunningGateway:
    base = replace(settings, metrics_listen="127.0.0.1:0", health_listen="127.0.0.1:0")
    return await bounded(base=base, request_receive_timeout_s=TIMEOUT_S)


def reads(gateway: RunningGateway, *, health_port: bool = False) -> OpsReads:
    assert gateway.guards is not None
    return gateway.guards.health_port_reads if health_port else gateway.guards.api_reads


async def until(done: Callable[[], bool], what: str) -> None:
    """Poll the gateway's state (on this loop) until `done()`, for at most `WAIT_S`."""
    deadline = time.monotonic() + WAIT_S
    while not done():
        assert time.monotonic() < deadline, f"{what} not within {WAIT_S} s"
        await asyncio.sleep(0.01)


def stall(client: RawClient, paths: list[str], size: int) -> tuple[list[int], list[int]]:
    """One call of each of `paths`, each sending all but the last byte of a request of `size`
    bytes, as far as the windows let it: the streams still open and those answered meanwhile
    (refused). A request larger than a call's window (8 KiB) is sent whole only once the
    gateway reads it, so for those this returns once each call is read or refused."""
    almost = frame(b"\x0a" + b"\x00" * (size - 1))[:-1]  # never complete
    streams = [client.open(path) for path in paths]
    client.push(dict.fromkeys(streams, almost))
    answered = [stream for stream in streams if client.answered(stream)]
    return [stream for stream in streams if stream not in answered], answered


def overloaded(client: RawClient, streams: list[int]) -> None:
    for stream in streams:
        status = rich_status(client.status(stream))
        assert (status.code, status.reason) == (RESOURCE_EXHAUSTED, "OVERLOADED")
        assert status.metadata["limit"] == str(PLACES) and status.retry_delay_ns > 0
        assert WHAT in client.status(stream)["grpc-message"].replace("%20", " ")


def timed_out(client: RawClient, streams: list[int]) -> None:
    """Each of `streams` ends DEADLINE_EXCEEDED (REQUEST_TIMEOUT), within the bound."""
    for stream in streams:
        status = rich_status(client.status(stream, timeout=TIMEOUT_S + WAIT_S))
        assert (status.code, status.reason) == (DEADLINE_EXCEEDED, "REQUEST_TIMEOUT")
        assert status.metadata["timeout_s"] == f"{TIMEOUT_S:g}"


def describe(address: str) -> list[str]:
    """What a reflection client (grpc's own, on a blocking channel, as grpcurl's `describe`)
    finds: the input types of MediaJobService's methods."""
    with grpc.insecure_channel(address) as channel:
        pool = descriptor_pool.DescriptorPool(ProtoReflectionDescriptorDatabase(channel))
        service = pool.FindServiceByName(API_SERVICE)
        return [method.input_type.full_name for method in service.methods]


def ended(client: RawClient, streams: list[int], count: int) -> list[int]:
    """The first `count` of `streams` to be answered (read until they are, within `WAIT_S`)."""
    deadline = time.monotonic() + WAIT_S
    while len(answered := [s for s in streams if client.answered(s)]) < count:
        assert time.monotonic() < deadline, f"{len(answered)} of {count} answered"
        with contextlib.suppress(TimeoutError):
            client.receive(deadline - time.monotonic())
    assert len(answered) == count, answered
    return answered


async def test_reads_on_the_api_port_are_bounded_and_end_when_their_time_is_up(
    gateway: RunningGateway, http: aiohttp.ClientSession
) -> None:
    max_request = gateway.settings.server.max_request_bytes
    client = await asyncio.to_thread(RawClient, gateway.address)
    try:
        client.ignore_stream_limit()
        # Streams whose request never finishes (the largest the port takes), more than their
        # places: each beyond ends the oldest read (one peer's all, here), OVERLOADED at once.
        paths = [WATCH] * STREAM_READS + [REFLECTION, WATCH]
        streams, refused = await asyncio.to_thread(stall, client, paths, max_request)
        assert len(streams) == STREAM_READS and len(refused) == 2
        overloaded(client, refused)
        assert reads(gateway).reading == STREAM_READS
        # Checks whose request never finishes take the last places, which streams cannot.
        checks, refused = await asyncio.to_thread(stall, client, [CHECK] * 2, max_request)
        assert len(checks) == PLACES - STREAM_READS and not refused
        assert reads(gateway).reading == PLACES
        async with grpc.aio.insecure_channel(gateway.address) as channel:
            health = health_pb2_grpc.HealthStub(channel)
            # A Watch and a Check are still answered: the Watch in the place of the oldest
            # read (a stream's), the Check in the one the Watch gave back once read.
            watch = health.Watch(health_pb2.HealthCheckRequest(service=API_SERVICE))
            assert (await watch.read()).status == SERVING
            watch.cancel()
            answer = await health.Check(health_pb2.HealthCheckRequest(), timeout=WAIT_S)
            assert answer.status == SERVING
        refused = await asyncio.to_thread(ended, client, streams + checks, 1)
        overloaded(client, refused)
        assert set(refused) <= set(streams)  # the oldest: the first calls' streams
        held = [stream for stream in streams + checks if stream not in refused]
        assert reads(gateway).reading == len(held) == PLACES - 1

        # Each is ended once its time is up, and its place is free again.
        started = time.monotonic()
        await asyncio.to_thread(timed_out, client, held)
        assert time.monotonic() - started <= TIMEOUT_S + WAIT_S
    finally:
        client.close()
    assert reads(gateway).reading == 0
    await until(lambda: not reads(gateway).deadline_armed, "the timer disarmed")
    inputs = await asyncio.to_thread(describe, gateway.address)
    assert "ci.media.v1.SubmitMediaJobRequest" in inputs
    # Counted as any call, each as its method's own kind (which held a read when the calls
    # came at once is the gateway's pick: its tasks run in turn).
    handled = (await scrape(http, gateway))["grpc_server_handled_total"]
    timed = {
        (kind, method): handled.get(
            labels(
                grpc_type=kind,
                grpc_service=service,
                grpc_method=method,
                grpc_code="DEADLINE_EXCEEDED",
            ),
            0,
        )
        for kind, service, method in (
            ("server_stream", "grpc.health.v1.Health", "Watch"),
            ("bidi_stream", "grpc.reflection.v1.ServerReflection", "ServerReflectionInfo"),
            ("unary", "grpc.health.v1.Health", "Check"),
        )
    }
    assert timed.pop(("unary", "Check")) == len(checks)
    assert sum(timed.values()) == len(held) - len(checks), timed


def stalled_peer(address: str, source: str) -> RawClient:
    """A client from `source`, a loopback address of its own: another peer than a gRPC channel
    from this machine (127.0.0.1)."""
    client = RawClient(address, source=source)
    client.ignore_stream_limit()
    return client


def stalled(client: RawClient, paths: list[str]) -> list[int]:
    """A call of each of `paths` that never sends a byte of its request."""
    return [client.open(path) for path in paths]


async def test_a_peer_stalling_every_read_cannot_keep_other_peers_out(bounded: Start) -> None:
    """The attack: one peer (127.0.0.2) holds every place with calls that send nothing, and
    opens new ones as its calls are ended (by the time-out, or here, for others' reads).
    Before, every other client's reflection (and, with stalled Checks in the last places, its
    Checks) was refused OVERLOADED for as long as it kept that up. Now another peer's calls are
    served, each ending one of the stalling peer's reads; and that peer's newer reads end its
    own, never a third peer's slow one. (The time-out is longer than the test: every call
    ended here is ended for another.)"""
    gateway = await bounded(request_receive_timeout_s=PATIENT_S)
    slow = await asyncio.to_thread(stalled_peer, gateway.address, "127.0.0.3")
    attacker = await asyncio.to_thread(stalled_peer, gateway.address, "127.0.0.2")
    calls: list[int] = []

    async def fill() -> None:
        """The stalling peer opens twice the places in streams and Checks for the last places:
        it holds every place again but the slow peer's, each of its calls beyond ending its
        own oldest."""
        paths = [REFLECTION, WATCH] * PLACES + [CHECK] * (PLACES - STREAM_READS)
        calls.extend(await asyncio.to_thread(stalled, attacker, paths))
        refused = await asyncio.to_thread(ended, attacker, calls, len(calls) - (PLACES - 1))
        overloaded(attacker, refused)
        await until(lambda: reads(gateway).reading == PLACES, "every place held")
        # None of them the slow peer's: it still holds its one.
        assert reads(gateway).held() == {"ipv4:127.0.0.2": PLACES - 1, "ipv4:127.0.0.3": 1}

    try:
        await asyncio.to_thread(stalled, slow, [REFLECTION])
        await until(lambda: reads(gateway).reading == 1, "the slow read")
        await fill()
        # Another peer (gRPC channels from 127.0.0.1): its reflection and Checks are served.
        inputs = await asyncio.to_thread(describe, gateway.address)
        assert "ci.media.v1.SubmitMediaJobRequest" in inputs
        await fill()  # the stalling peer, again
        async with grpc.aio.insecure_channel(gateway.address) as channel:
            health = health_pb2_grpc.HealthStub(channel)
            answer = await health.Check(health_pb2.HealthCheckRequest(), timeout=WAIT_S)
            assert answer.status == SERVING
        await fill()
    finally:
        attacker.close()
        slow.close()


async def test_a_reflection_stream_waiting_for_its_next_request_is_ended_and_a_new_one_serves(
    gateway: RunningGateway,
) -> None:
    """grpcurl keeps its reflection stream open during the call it makes, waiting for nothing:
    the stream is ended once its time is up (its reflection client opens a new one when it next
    asks), which frees its read."""
    async with grpc.aio.insecure_channel(gateway.address) as channel:
        info = channel.stream_stream(
            REFLECTION,
            reflection_pb2.ServerReflectionRequest.SerializeToString,
            reflection_pb2.ServerReflectionResponse.FromString,
        )
        stream = info(timeout=TIMEOUT_S + WAIT_S)  # type: ignore[call-arg]
        for symbol in (API_SERVICE, "grpc.health.v1.Health"):
            request = reflection_pb2.ServerReflectionRequest(file_containing_symbol=symbol)
            await stream.write(request)
            answer = await stream.read()
            assert isinstance(answer, reflection_pb2.ServerReflectionResponse)
            assert answer.file_descriptor_response.file_descriptor_proto
        # The wait for its next request (begun once its answer is sent).
        await until(lambda: reads(gateway).reading == 1, "the next read")
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await stream.read()
        ended = rich_error(caught.value)
        assert ended.code is grpc.StatusCode.DEADLINE_EXCEEDED
        assert ended.error_info is not None and ended.error_info.reason == "REQUEST_TIMEOUT"
        assert f"within {TIMEOUT_S:g} s of the stream's last answer" in ended.message
        assert reads(gateway).reading == 0
    inputs = await asyncio.to_thread(describe, gateway.address)
    assert "ci.media.v1.WatchMediaJobRequest" in inputs


async def test_on_the_health_port_reads_are_timed_never_refused_and_hold_a_window_at_most(
    gateway: RunningGateway,
) -> None:
    """kubelet's Check must never be refused for want of a read: a read there holds no more
    than a call not read does (grpc refuses a larger request from its length prefix), so reads
    are timed, not counted. A Watch whose request came stays open past the time-out."""
    address = gateway.health_address
    assert address is not None
    async with grpc.aio.insecure_channel(address) as channel:
        health = health_pb2_grpc.HealthStub(channel)
        kept = health.Watch(health_pb2.HealthCheckRequest(service=API_SERVICE))
        assert (await kept.read()).status == SERVING
        client = await asyncio.to_thread(RawClient, address)
        try:
            # More calls than the API port's reads, each with the largest request the port
            # takes, all but its last byte: all read, none refused.
            paths = [WATCH] * 2 * PLACES + [CHECK] * 2
            streams, refused = await asyncio.to_thread(stall, client, paths, OPS_MAX_REQUEST_BYTES)
            assert not refused
            await until(lambda: reads(gateway, health_port=True).reading == len(paths), "read")
            for _ in range(3):  # the probe, meanwhile
                answer = await health.Check(health_pb2.HealthCheckRequest(), timeout=WAIT_S)
                assert answer.status == SERVING
            # One byte more than the limit: refused by grpc from the length prefix, before
            # anything of it is buffered.
            with pytest.raises(grpc.aio.AioRpcError) as caught:
                large = "x" * OPS_MAX_REQUEST_BYTES
                await health.Check(health_pb2.HealthCheckRequest(service=large), timeout=WAIT_S)
            assert caught.value.code() is grpc.StatusCode.RESOURCE_EXHAUSTED
            assert f"vs. {OPS_MAX_REQUEST_BYTES})" in str(caught.value.details())

            await asyncio.to_thread(timed_out, client, streams)
        finally:
            client.close()
        assert reads(gateway, health_port=True).reading == 0
        assert not kept.done()  # its request came: only the read is timed
        kept.cancel()


@pytest.mark.parametrize(
    ("max_request", "places", "streams"),
    [(128 * 1024, 8, 6), (16 * 1024, 64, 48), (512 * 1024, 2, 1), (2**20, 1, 1), (8 * 2**20, 1, 1)],
)
def test_reads_at_once_hold_at_most_a_mebibyte_and_streams_always_have_one(
    max_request: int, places: int, streams: int
) -> None:
    assert read_places(max_request) == places
    assert places - check_reserve(places) == streams
