"""A call's request has `server.request_receive_timeout_s` to come, from the call's arrival
(`gateway.api.receive_timeout`): a call whose request is still coming then is ended
DEADLINE_EXCEEDED (REQUEST_TIMEOUT), and its place among the calls in flight and its request
memory are given back at once.

Before, a client that opened 128 calls and never finished their requests held the requests'
bound (`server.max_request_memory_mb`, 16 MiB at 128 KiB a call still coming) for as long as it
kept them, and every new call was refused OVERLOADED meanwhile. A real gateway in this process
at its default bounds (its counts read from `RunningGateway.in_flight`), over loopback: a client
that speaks HTTP/2 itself for the requests that never finish (no gRPC library can send such
calls), gRPC channels for the rest, the emulator as CI.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import replace

import aiohttp
import grpc
import pytest

from gateway._proto import media_pb2, service_pb2, service_pb2_grpc
from gateway.api.server import RunningGateway, start_gateway
from gateway.config.settings import ServerLimits, Settings
from gateway.credentials import Credentials, StaticCredentialsProvider
from tests.api.conftest import labels, scrape
from tests.api.test_connection_bounds import rich_status
from tests.api.test_drain import stopped_lines
from tests.api.test_drain_arrivals import SERVER_LOG, half_sent, start_drain
from tests.conftest import SAMPLE_KEY
from tests.fixtures.raw_h2 import RawClient, frame
from tests.integration.helpers import rich_error

WAIT_S = 10.0
TIMEOUT_S = 3.0  # the bound under test: the calls it ends are held at least this long
DEFAULTS = ServerLimits()
MAX_REQUEST = DEFAULTS.max_request_bytes
# Calls whose request is still coming that fill the requests' bound: 128 at the defaults.
FILL = DEFAULTS.max_request_memory_mb * 2**20 // MAX_REQUEST
SUBMIT = "/ci.media.v1.MediaJobService/SubmitMediaJob"
SUBMIT_REQUEST = service_pb2.SubmitMediaJobRequest(
    request=media_pb2.Request(tag="MediaInfo", input=media_pb2.Input(object=SAMPLE_KEY))
)
DEADLINE_EXCEEDED = grpc.StatusCode.DEADLINE_EXCEEDED.value[0]
RESOURCE_EXHAUSTED = grpc.StatusCode.RESOURCE_EXHAUSTED.value[0]


@pytest.fixture
async def gateway(settings: Settings, credentials: Credentials) -> AsyncIterator[RunningGateway]:
    server = replace(settings.server, request_receive_timeout_s=TIMEOUT_S)
    running = await start_gateway(
        replace(settings, server=server, metrics_listen="127.0.0.1:0"),
        StaticCredentialsProvider(credentials),
    )
    try:
        yield running
    finally:
        await running.stop(grace_s=0)


def counted(gateway: RunningGateway) -> int:
    requests = gateway.in_flight.requests
    assert requests is not None
    return requests.used


async def until(done: Callable[[], bool], what: str) -> None:
    """Poll the gateway's state (on this loop) until `done()`, for at most `WAIT_S`."""
    deadline = time.monotonic() + WAIT_S
    while not done():
        assert time.monotonic() < deadline, f"{what} not within {WAIT_S} s"
        await asyncio.sleep(0.01)


def _never_finished(address: str, calls: int) -> tuple[RawClient, list[int], list[int]]:
    """`calls` submits on one connection, every other one sending its headers only and the rest
    all but the last byte of a request of the largest size: the client (still connected), the
    streams still open and those answered meanwhile."""
    client = RawClient(address)
    almost = frame(b"\x1a" + b"\x00" * (MAX_REQUEST - 1))[:-1]  # never complete
    streams = [client.open(SUBMIT) for _ in range(calls)]
    client.push({stream: almost for stream in streams[1::2]})
    answered = [stream for stream in streams if client.answered(stream)]
    return client, [stream for stream in streams if stream not in answered], answered


async def test_calls_whose_request_never_comes_are_ended_and_give_back_their_places(
    gateway: RunningGateway, http: aiohttp.ClientSession
) -> None:
    client, held, refused = await asyncio.to_thread(_never_finished, gateway.address, FILL + 2)
    try:
        # While they are held, the requests' bound is full: every new call is refused.
        assert len(held) == FILL and len(refused) == 2
        for stream in refused:
            status = rich_status(client.status(stream))
            assert (status.code, status.reason) == (RESOURCE_EXHAUSTED, "OVERLOADED")
        assert gateway.in_flight.count == FILL
        assert counted(gateway) == FILL * MAX_REQUEST
        async with grpc.aio.insecure_channel(gateway.address) as channel:
            stub = service_pb2_grpc.MediaJobServiceStub(channel)
            with pytest.raises(grpc.aio.AioRpcError) as refusal:
                await stub.SubmitMediaJob(SUBMIT_REQUEST, timeout=WAIT_S)
        assert refusal.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
        error_info = rich_error(refusal.value).error_info
        assert error_info is not None and error_info.reason == "OVERLOADED"

        # Then each is ended, with a status that says why, and its stream is closed.
        started = time.monotonic()
        answers = await asyncio.to_thread(
            lambda: [client.status(stream, timeout=TIMEOUT_S + WAIT_S) for stream in held]
        )
        await asyncio.to_thread(lambda: [client.reset(stream) for stream in held])
        for answer in answers:
            status = rich_status(answer)
            assert (status.code, status.reason) == (DEADLINE_EXCEEDED, "REQUEST_TIMEOUT"), answer
            assert status.metadata == {"timeout_s": "3", "attempts": "0"}
            assert "did not come within 3 s" in answer["grpc-message"]
        assert time.monotonic() - started <= TIMEOUT_S + WAIT_S
        # No request memory is counted for them any more, and grpc has closed their streams
        # (RST_STREAM NO_ERROR after the status: the client need send nothing more).
        assert counted(gateway) == 0
        assert all(client.resets[stream] == 0 for stream in held)
    finally:
        client.close()
    # Out of the count from their deadline on (but for the moment each answers its status, as
    # for any refusal), and the timer disarmed with no call arriving.
    assert await gateway.in_flight.wait_idle(WAIT_S)
    await until(lambda: not gateway.in_flight.deadline_armed, "the timer disarmed")
    async with grpc.aio.insecure_channel(gateway.address) as channel:
        stub = service_pb2_grpc.MediaJobServiceStub(channel)
        served = await stub.SubmitMediaJob(SUBMIT_REQUEST, timeout=WAIT_S)
    assert served.jobs_detail.job_id
    # Counted and logged as any call: the method's own kind, the gateway's status.
    samples = await scrape(http, gateway)
    handled = samples["grpc_server_handled_total"]
    key = labels(
        grpc_type="unary",
        grpc_service="ci.media.v1.MediaJobService",
        grpc_method="SubmitMediaJob",
        grpc_code="DEADLINE_EXCEEDED",
    )
    assert handled[key] == FILL


def _in_two_parts(address: str, first_sent: Callable[[], None]) -> dict[str, str]:
    """A submit whose request comes in two parts, the second once `first_sent()` returns: its
    answer."""
    client = RawClient(address)
    try:
        whole = frame(SUBMIT_REQUEST.SerializeToString())
        stream = client.open(SUBMIT)
        client.send(stream, whole[:10], end=False)
        first_sent()
        client.send(stream, whole[10:])
        return client.status(stream)
    finally:
        client.close()


async def test_a_request_that_comes_in_time_is_served_however_it_comes(
    gateway: RunningGateway,
) -> None:
    loop = asyncio.get_running_loop()
    counted_in = asyncio.Event()

    def first_sent() -> None:  # in the client's thread: until the gateway counts the call
        asyncio.run_coroutine_threadsafe(until_counted(), loop).result(WAIT_S)

    async def until_counted() -> None:
        await until(lambda: gateway.in_flight.count == 1, "the call counted")
        assert gateway.in_flight.deadline_armed  # for this call, still arriving
        counted_in.set()

    answer = await asyncio.to_thread(_in_two_parts, gateway.address, first_sent)
    assert counted_in.is_set()
    assert answer["grpc-status"] == "0", answer
    assert await gateway.in_flight.wait_idle(WAIT_S) and counted(gateway) == 0


def _ended_without_a_request(address: str) -> dict[str, str]:
    client = RawClient(address)
    try:
        stream = client.open(SUBMIT)
        client.send(stream, b"")  # END_STREAM, no message
        return client.status(stream)
    finally:
        client.close()


async def test_a_call_whose_client_ends_it_without_a_request_is_answered_at_once(
    gateway: RunningGateway,
) -> None:
    """grpc's own read of a unary request answered such a call nothing and kept it until its
    client left (measured); the gateway's read answers INVALID_ARGUMENT, well before the
    receive time-out."""
    started = time.monotonic()
    answer = await asyncio.to_thread(_ended_without_a_request, gateway.address)
    assert time.monotonic() - started < TIMEOUT_S
    status = rich_status(answer)
    assert (status.code, status.reason) == (
        grpc.StatusCode.INVALID_ARGUMENT.value[0],
        "MALFORMED_REQUEST",
    )
    assert await gateway.in_flight.wait_idle(WAIT_S) and counted(gateway) == 0


async def test_a_drain_waits_for_a_call_still_arriving_until_its_time_runs_out_not_its_grace(
    gateway: RunningGateway, caplog: pytest.LogCaptureFixture
) -> None:
    """The drain waits for a call whose request is coming (it may still come), but no longer
    than that request may take: the call ends DEADLINE_EXCEEDED at its own deadline, and the
    drain with it, long before its grace (which would have cut it UNAVAILABLE)."""
    caplog.set_level(logging.INFO, logger=SERVER_LOG)
    grace_s = 3 * WAIT_S
    client = await asyncio.to_thread(RawClient, gateway.address)
    try:
        stream, _ = await asyncio.to_thread(half_sent, client)
        stopping = await start_drain(gateway, grace_s)
        answer = await asyncio.to_thread(client.status, stream, TIMEOUT_S + WAIT_S)
        await asyncio.wait_for(stopping, WAIT_S)  # well before the grace's end
    finally:
        client.close()
    status = rich_status(answer)
    assert (status.code, status.reason) == (DEADLINE_EXCEEDED, "REQUEST_TIMEOUT"), answer
    assert [line["cut_off"] for line in stopped_lines(caplog)] == [0]
