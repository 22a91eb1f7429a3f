"""What one client, or a stranger, can hold open on the API port: connections, calls on one
connection, connections with no call, and calls whose request never comes. Each is bounded
(`server.max_connections`, `max_streams_per_connection`, `max_connection_idle_s`,
`max_concurrent_rpcs`), and each test shows what a client sees at the bound.

A real gateway in this process, over loopback: gRPC channels each with a connection of its own
(`grpc.use_local_subchannel_pool`: channels to one address otherwise share one), bare sockets
for connections that send nothing, and a client that speaks HTTP/2 itself
(`tests.fixtures.raw_h2`) for what no gRPC library does: ignore the server's stream limit, or
never send a call's request.
"""

from __future__ import annotations

import asyncio
import base64
import socket
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import grpc
import h2.errors
import h2.settings
import pytest
from google.rpc import error_details_pb2, status_pb2
from grpc_health.v1 import health_pb2, health_pb2_grpc

from gateway._proto import service_pb2, service_pb2_grpc
from gateway.access.interceptor import ClientAccess
from gateway.config.settings import Settings
from gateway.status import DEFAULT_THROTTLED_RETRY_S
from tests.access.helpers import token_access_file
from tests.api.conftest import Start
from tests.api.test_request_id import trailing
from tests.fixtures.accounts import Pki
from tests.fixtures.raw_h2 import RawClient, frame
from tests.integration.helpers import rich_error

WAIT_S = 10.0
# Each channel its own connection (and no reconnect backoff carried over from another one).
OWN_CONNECTION = [("grpc.use_local_subchannel_pool", 1)]
SERVING = health_pb2.HealthCheckResponse.SERVING
CHECK = "/grpc.health.v1.Health/Check"
LIST = "/ci.media.v1.MediaJobService/ListMediaJobs"
RESOURCE_EXHAUSTED = str(grpc.StatusCode.RESOURCE_EXHAUSTED.value[0])
# The RetryInfo of a refusal that names no delay of its own (OVERLOADED).
RETRY_NS = int(DEFAULT_THROTTLED_RETRY_S * 1e9)


def channel(address: str) -> grpc.aio.Channel:
    return grpc.aio.insecure_channel(address, options=OWN_CONNECTION)


async def check(channel: grpc.aio.Channel, timeout: float = WAIT_S) -> int:
    stub = health_pb2_grpc.HealthStub(channel)
    reply = await stub.Check(health_pb2.HealthCheckRequest(), timeout=timeout)
    return int(reply.status)


def watch(channel: grpc.aio.Channel) -> Any:
    """A health Watch: a call that stays in progress until cancelled."""
    stub = health_pb2_grpc.HealthStub(channel)
    return stub.Watch(health_pb2.HealthCheckRequest(), timeout=WAIT_S * 3)


def closed_before_a_byte(address: str) -> bool:
    """Connect a bare socket: does the server close it without sending anything (a served
    connection gets the server's HTTP/2 SETTINGS at once, before the client says a word)?"""
    host, port = address.rsplit(":", 1)
    with socket.create_connection((host, int(port)), timeout=WAIT_S) as sock:
        try:
            return sock.recv(1024) == b""
        except ConnectionResetError:
            return True


def silent_connection_closed(address: str) -> float:
    """Connect a bare socket that never sends a byte: how long until the server closes it
    (read to its end, for at most `WAIT_S`)."""
    host, port = address.rsplit(":", 1)
    started = time.monotonic()
    with socket.create_connection((host, int(port)), timeout=WAIT_S) as sock:
        for _ in range(100):  # the server's SETTINGS (plaintext), then its GOAWAY, then EOF
            try:
                if not sock.recv(65536):
                    return time.monotonic() - started
            except ConnectionResetError:
                return time.monotonic() - started
    raise AssertionError("the server sent more than a connection's preface and goodbye")


async def served_on_a_new_connection(address: str) -> bool:
    """Poll (bounded in count and time) until a new connection's call is served: a closed
    connection's place is given back once the gateway has seen it close."""
    deadline = time.monotonic() + WAIT_S
    while time.monotonic() < deadline:
        async with channel(address) as fresh:
            try:
                return bool(await check(fresh) == SERVING)
            except grpc.aio.AioRpcError as error:
                assert error.code() is grpc.StatusCode.UNAVAILABLE
        await asyncio.sleep(0.05)
    return False


async def test_a_connection_beyond_max_connections_is_closed_and_the_others_keep_working(
    bounded: Start,
) -> None:
    gateway = await bounded(max_connections=2)
    async with channel(gateway.address) as first, channel(gateway.address) as second:
        assert [await check(first), await check(second)] == [SERVING, SERVING]
        # The third is closed as it opens: a bare socket gets not a byte, a gRPC client fails
        # at once with UNAVAILABLE (there is no HTTP/2 yet to carry a status).
        assert await asyncio.to_thread(closed_before_a_byte, gateway.address)
        async with channel(gateway.address) as third:
            started = time.monotonic()
            with pytest.raises(grpc.aio.AioRpcError) as caught:
                await check(third)
            assert caught.value.code() is grpc.StatusCode.UNAVAILABLE
            assert time.monotonic() - started < WAIT_S / 2  # refused, not left to time out
        # The two held connections are served as before.
        assert [await check(first), await check(second)] == [SERVING, SERVING]
    # Both closed: their places come back.
    assert await served_on_a_new_connection(gateway.address)


async def test_calls_beyond_max_streams_per_connection_wait_for_a_place(bounded: Start) -> None:
    """A gRPC client queues a call beyond its connection's bound until one of that
    connection's calls ends; other connections are not held up."""
    gateway = await bounded(max_streams_per_connection=2)
    async with channel(gateway.address) as busy, channel(gateway.address) as other:
        watches = [watch(busy) for _ in range(2)]
        for held in watches:
            assert (await held.read()).status == SERVING
        # The third call on that connection never leaves the client while both are held: its
        # deadline passes unserved.
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await check(busy, timeout=1.0)
        assert caught.value.code() is grpc.StatusCode.DEADLINE_EXCEEDED
        assert await check(other) == SERVING
        # One ends: the connection's next call is served.
        watches[0].cancel()
        assert await check(busy) == SERVING
        watches[1].cancel()


def _streams_beyond_the_limit(address: str) -> tuple[int | None, int, list[str]]:
    """A client that ignores the server's stream limit opens three calls on one connection,
    sending only their headers: the limit the server advertised, the error code the third
    stream was reset with, and the status of the first two once their requests are sent."""
    client = RawClient(address)
    try:
        advertised = client.h2.remote_settings.get(h2.settings.SettingCodes.MAX_CONCURRENT_STREAMS)
        client.ignore_stream_limit()
        streams = [client.open(CHECK) for _ in range(3)]
        refused = client.reset(streams[2])
        request = frame(health_pb2.HealthCheckRequest().SerializeToString())
        for stream in streams[:2]:
            client.send(stream, request)
        return advertised, refused, [client.status(s)["grpc-status"] for s in streams[:2]]
    finally:
        client.close()


async def test_a_stream_beyond_max_streams_per_connection_is_refused(bounded: Start) -> None:
    gateway = await bounded(max_streams_per_connection=2)
    advertised, refused, statuses = await asyncio.to_thread(
        _streams_beyond_the_limit, gateway.address
    )
    assert advertised == 2
    assert refused == h2.errors.ErrorCodes.REFUSED_STREAM  # nothing processed: safe to retry
    assert statuses == ["0", "0"]


async def test_a_connection_with_no_call_in_progress_is_closed_after_the_idle_time(
    bounded: Start,
) -> None:
    gateway = await bounded(max_connection_idle_s=0.5)
    async with channel(gateway.address) as watching, channel(gateway.address) as done:
        held = watch(watching)
        assert (await held.read()).status == SERVING
        assert await check(done) == SERVING
        changes: list[grpc.ChannelConnectivity] = []

        async def record_changes() -> None:
            state = watching.get_state()
            for _ in range(100):  # bounded: the test cancels it long before
                await watching.wait_for_state_change(state)
                state = watching.get_state()
                changes.append(state)

        recorder = asyncio.ensure_future(record_changes())
        try:
            # A connection that has sent nothing but its preface (pings would not count)...
            idle = await asyncio.to_thread(RawClient, gateway.address)
            try:
                assert await asyncio.to_thread(idle.closed)
            finally:
                idle.close()
            # ... and one that has sent nothing at all are closed, each after the idle time
            # (measured from their start; the watching connection's is older).
            assert await asyncio.to_thread(silent_connection_closed, gateway.address) > 0.4
            # The connection whose call finished is closed too; its client reconnects at its
            # next call.
            async with asyncio.timeout(WAIT_S):
                await done.wait_for_state_change(grpc.ChannelConnectivity.READY)
            assert await check(done) == SERVING
            # The one with a call in progress, opened before them, is kept.
            assert changes == []
            assert watching.get_state() is grpc.ChannelConnectivity.READY
            assert not held.done()
        finally:
            recorder.cancel()
            held.cancel()


async def test_a_tls_connection_that_never_finishes_its_handshake_is_closed_after_the_idle_time(
    bounded: Start, pki: Pki, tmp_path: Path
) -> None:
    """grpc's idle timer starts with HTTP/2, after TLS: before it, the handshake time-out
    (grpc's own is 120 s) is what closes a connection that never sends a ClientHello."""
    access = ClientAccess.from_file(
        token_access_file(tmp_path / "access.toml", ("alpha", "t" * 32), tls=pki.directory)
    )
    gateway = await bounded(access=access, max_connection_idle_s=0.5)
    assert 0.4 < await asyncio.to_thread(silent_connection_closed, gateway.address) < WAIT_S


def half_open(client: RawClient, count: int) -> tuple[list[int], dict[str, str]]:
    """`count` ListMediaJobs calls whose request is never sent, then one more on the same
    connection: the first `count` streams, and that one's answer (within a bound). The gateway
    takes a connection's calls in order, so once that one is answered the others are in."""
    streams = [client.open(LIST) for _ in range(count)]
    return streams, client.status(client.open(LIST))


def list_request() -> bytes:
    return frame(service_pb2.ListMediaJobsRequest(size=1).SerializeToString())


@dataclass(frozen=True)
class RichStatus:
    code: int
    reason: str
    metadata: dict[str, str]
    retry_delay_ns: int


def rich_status(answer: dict[str, str]) -> RichStatus:
    """The reason, limit and retry delay of a raw answer's `grpc-status-details-bin`."""
    encoded = answer.get("grpc-status-details-bin", "")
    status = status_pb2.Status.FromString(base64.b64decode(encoded + "=" * (-len(encoded) % 4)))
    info, retry = error_details_pb2.ErrorInfo(), error_details_pb2.RetryInfo()
    for detail in status.details:
        if detail.Is(info.DESCRIPTOR):
            detail.Unpack(info)
        elif detail.Is(retry.DESCRIPTOR):
            detail.Unpack(retry)
    return RichStatus(
        int(answer["grpc-status"]),
        info.reason,
        dict(info.metadata),
        retry.retry_delay.ToNanoseconds(),
    )


def _half_open_then_one_more(address: str, count: int) -> tuple[dict[str, str], str]:
    """`count` half-open calls and one more (`half_open`): that one's answer; then one of the
    first `count` gets its request: its status."""
    client = RawClient(address)
    try:
        streams, beyond = half_open(client, count)
        client.send(streams[0], list_request())
        return beyond, client.status(streams[0])["grpc-status"]
    finally:
        client.close()


async def test_calls_whose_request_never_comes_are_bounded_by_default(
    bounded: Start, settings: Settings
) -> None:
    """The servicer's admission counts a call once its request is in, so a client's calls
    that never send one were held without end. The cap on API calls in progress counts them
    from their arrival; by default it is the sum of the gateway's own bounds, here 2 x 1 +
    2 x 1 (health and reflection are bounded apart, by `max_ops_calls`)."""
    small = replace(
        settings,
        retry=replace(settings.retry, max_in_flight_rpcs=1),
        tracking=replace(settings.tracking, max_watchers=1, max_watchers_per_client=1),
    )
    gateway = await bounded(base=small, max_ops_calls=1)
    assert small.server.max_concurrent_rpcs == 0  # the default: derived
    beyond, served = await asyncio.to_thread(_half_open_then_one_more, gateway.address, 4)
    # At once, not held, before its request: the gateway's own OVERLOADED with RetryInfo.
    assert rich_status(beyond) == RichStatus(
        int(RESOURCE_EXHAUSTED), "OVERLOADED", {"limit": "4", "attempts": "0"}, RETRY_NS
    )
    assert served == "0"  # the calls within the cap are served once their request comes


async def test_a_call_beyond_the_cap_gets_the_gateways_rich_status_and_health_is_apart(
    bounded: Start,
) -> None:
    """The cap is enforced where the gateway counts API calls (their arrival), not by grpc's
    limiter, which refused with a bare RESOURCE_EXHAUSTED and counted health checks too: a
    gRPC client beyond it gets what the admissions give (OVERLOADED, the cap, RetryInfo, its
    request id back), health on the same port is still served, and once the calls holding the
    cap end, none of them, refused ones included, is left in flight."""
    gateway = await bounded(max_concurrent_rpcs=2)
    client = await asyncio.to_thread(RawClient, gateway.address)
    try:
        streams, beyond = await asyncio.to_thread(half_open, client, 2)
        assert rich_status(beyond).reason == "OVERLOADED"
        async with channel(gateway.address) as other:
            stub = service_pb2_grpc.MediaJobServiceStub(other)
            with pytest.raises(grpc.aio.AioRpcError) as caught:
                await stub.ListMediaJobs(
                    service_pb2.ListMediaJobsRequest(size=1),
                    metadata=(("x-request-id", "beyond-the-cap"),),
                    timeout=WAIT_S,
                )
            refused = rich_error(caught.value)
            assert refused.code is grpc.StatusCode.RESOURCE_EXHAUSTED
            assert refused.error_info is not None
            assert refused.error_info.reason == "OVERLOADED"
            assert refused.error_info.domain == "ci-gateway"
            assert refused.error_info.metadata["limit"] == "2"
            assert refused.retry_info is not None
            assert refused.retry_info.retry_delay.ToNanoseconds() > 0
            trailers = trailing(caught.value.trailing_metadata())
            assert trailers["x-request-id"] == ["beyond-the-cap"]
            # Health and reflection are not API calls: `max_ops_calls` bounds them.
            assert await check(other) == SERVING
        # A held call's request comes: it is served.
        await asyncio.to_thread(client.send, streams[0], list_request())
        assert (await asyncio.to_thread(client.status, streams[0]))["grpc-status"] == "0"
    finally:
        client.close()
    # The other held call ends with its connection: nothing is left in flight.
    assert await gateway.in_flight.wait_idle(WAIT_S)


async def test_in_shared_mode_an_unread_or_garbled_request_gets_its_own_error(
    bounded: Start, settings: Settings, tmp_path: Path
) -> None:
    """A call the cap refused is answered without its request: the access check used to judge
    that missing request as one for the default bucket, so a client allowed only other buckets
    was told PERMISSION_DENIED (and charged a rate token) instead of OVERLOADED."""
    token = "t" * 32
    access = ClientAccess.from_file(token_access_file(tmp_path / "access.toml", ("alpha", token)))
    elsewhere = replace(settings, default_bucket="elsewhere-1250000000")  # not alpha's bucket
    gateway = await bounded(access=access, base=elsewhere, max_concurrent_rpcs=1)
    authorized = (("authorization", f"Bearer {token}"),)
    client = await asyncio.to_thread(RawClient, gateway.address)
    try:
        stream = await asyncio.to_thread(client.open, LIST, authorized)
        beyond = await asyncio.to_thread(lambda: client.status(client.open(LIST, authorized)))
        assert rich_status(beyond).reason == "OVERLOADED"
        # The held call, for alpha's own bucket, is served once its request comes.
        request = service_pb2.ListMediaJobsRequest(size=1, bucket=settings.default_bucket)
        await asyncio.to_thread(client.send, stream, frame(request.SerializeToString()))
        assert (await asyncio.to_thread(client.status, stream))["grpc-status"] == "0"
    finally:
        client.close()
    # Likewise bytes that decode to no request: INVALID_ARGUMENT, not the default bucket's policy.
    async with channel(gateway.address) as other:
        garbled = other.unary_unary(LIST, None, None)(b"\xff\xff\xff", metadata=authorized)
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await garbled
    malformed = rich_error(caught.value)
    assert malformed.code is grpc.StatusCode.INVALID_ARGUMENT
    assert malformed.error_info is not None
    assert malformed.error_info.reason == "MALFORMED_REQUEST"
