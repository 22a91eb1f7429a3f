"""The memory the requests of API calls in progress hold is bounded (`server.max_request_memory_mb`,
`gateway.api.request_memory`): a request still coming counts for `server.max_request_bytes`,
one that has come for `REQUEST_HELD_FACTOR` times its size, until its call ends; a call that does
not fit is refused OVERLOADED with RetryInfo, at its arrival or once its request has come.

A real gateway in this process (its count read from `RunningGateway.in_flight`), over loopback:
a client that speaks HTTP/2 itself for requests that never finish, gRPC channels for the rest,
and the emulator as CI, holding submits where a test says so. What the bound saves in RSS is
measured against a `serve` process in tests/api/test_request_floods.py.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import replace

import grpc
import pytest
from aiohttp import web

from ci_emulator.hosts import Target
from ci_emulator.server import RunningEmulator
from gateway._proto import media_pb2, service_pb2, service_pb2_grpc, xml_pb2
from gateway.api.request_memory import REQUEST_HELD_FACTOR, RequestMemory
from gateway.api.server import RunningGateway, start_gateway
from gateway.config.settings import Settings
from gateway.credentials import Credentials, StaticCredentialsProvider
from tests.api.test_connection_bounds import rich_status
from tests.conftest import SAMPLE_KEY
from tests.fixtures.raw_h2 import RawClient, frame
from tests.integration.helpers import rich_error

WAIT_S = 10.0
KIB = 1024
# Small bounds, so that a few calls fill them: 48 requests still coming fit in 3 MiB.
MAX_REQUEST = 64 * KIB
LIMIT_MB = 3
COMING = LIMIT_MB * 2**20 // MAX_REQUEST
SUBMIT = "/ci.media.v1.MediaJobService/SubmitMediaJob"


@pytest.fixture
async def small(settings: Settings, credentials: Credentials) -> AsyncIterator[RunningGateway]:
    server = replace(settings.server, max_request_bytes=MAX_REQUEST, max_request_memory_mb=LIMIT_MB)
    gateway = await start_gateway(
        replace(settings, server=server), StaticCredentialsProvider(credentials)
    )
    try:
        yield gateway
    finally:
        await gateway.stop(grace_s=0)


def counted(gateway: RunningGateway) -> int:
    requests = gateway.in_flight.requests
    assert requests is not None
    return requests.used


def submit(text_bytes: int) -> service_pb2.SubmitMediaJobRequest:
    """A MediaInfo submit carrying `text_bytes` of text in an unknown node."""
    request = media_pb2.Request(tag="MediaInfo", input=media_pb2.Input(object=SAMPLE_KEY))
    request.extra_nodes.append(xml_pb2.XmlNode(name="Note", text="x" * text_bytes))
    return service_pb2.SubmitMediaJobRequest(request=request)


def test_a_request_counts_for_the_most_grpc_buffers_then_for_what_it_holds() -> None:
    memory = RequestMemory(limit_mb=1, max_request_bytes=256 * KIB)
    first, second, third, fourth = (memory.arrive() for _ in range(4))
    assert first == second == third == fourth == 256 * KIB
    assert memory.arrive() is None  # a fifth would pass the limit
    assert memory.received(256 * KIB, 100) == 100 * REQUEST_HELD_FACTOR  # less: always fits
    assert memory.received(256 * KIB, 20 * KIB) is None  # 800 KiB do not fit in what is left
    assert memory.used == 2 * 256 * KIB + 100 * REQUEST_HELD_FACTOR  # the refused one: nothing
    memory.release(256 * KIB)
    memory.release(256 * KIB)
    memory.release(100 * REQUEST_HELD_FACTOR)
    assert memory.used == 0


def _open_and_fill(address: str, calls: int) -> tuple[RawClient, list[int]]:
    """`calls` submits, each sending all but the last byte of a request of the largest size
    (`MAX_REQUEST`); the client (still connected) and the streams answered meanwhile."""
    client = RawClient(address)
    # What a call not being read may hold (`REQUEST_WINDOW_OPTIONS`): grpc's own was 4 MiB.
    assert client.h2.remote_settings.initial_window_size == 8 * KIB
    client.ignore_stream_limit()
    almost = frame(b"\x1a" + b"\x00" * (MAX_REQUEST - 1))[:-1]  # never complete
    streams = [client.open(SUBMIT) for _ in range(calls)]
    client.push(dict.fromkeys(streams, almost))
    return client, [stream for stream in streams if client.answered(stream)]


async def test_calls_whose_request_is_still_coming_count_for_the_largest_request(
    small: RunningGateway,
) -> None:
    """grpc buffers a request, as it comes, before the gateway sees any of it; the gateway
    cannot see how much has come, so it counts the most that may: `max_request_bytes`."""
    client, answered = await asyncio.to_thread(_open_and_fill, small.address, COMING + 2)
    try:
        assert len(answered) == 2  # refused at their arrival, before anything was read
        for stream in answered:
            status = rich_status(client.status(stream))
            assert (status.code, status.reason) == (
                grpc.StatusCode.RESOURCE_EXHAUSTED.value[0],
                "OVERLOADED",
            )
            assert status.metadata["limit"] == str(LIMIT_MB) and status.retry_delay_ns > 0
        assert counted(small) == COMING * MAX_REQUEST
    finally:
        client.close()  # the calls end with their connection: their count is given back
    assert await small.in_flight.wait_idle(WAIT_S)
    assert counted(small) == 0
    async with grpc.aio.insecure_channel(small.address) as channel:
        stub = service_pb2_grpc.MediaJobServiceStub(channel)
        answer = await stub.SubmitMediaJob(submit(100), timeout=WAIT_S)
    assert answer.jobs_detail.job_id


async def test_a_request_that_has_come_counts_for_what_it_holds_until_its_call_ends(
    small: RunningGateway, emulator: RunningEmulator
) -> None:
    """Two submits of ~30 and ~40 KiB held by CI count for 40 times their size (2.8 MiB of 3);
    a third of ~30 KiB fits while it comes (64 KiB), not once it has come (1.2 MiB): it is
    refused without being parsed, and CI never sees it."""
    arrived, release = asyncio.Semaphore(0), asyncio.Event()
    submits: list[str] = []

    async def hold(request: web.Request, target: Target) -> web.StreamResponse | None:
        if request.method == "POST":
            submits.append(target.path)
            arrived.release()
            await release.wait()
        return None

    emulator.state.request_hooks.append(hold)
    held = [submit(30 * KIB), submit(40 * KIB)]
    async with grpc.aio.insecure_channel(small.address) as channel:
        stub = service_pb2_grpc.MediaJobServiceStub(channel)
        calls = [asyncio.ensure_future(stub.SubmitMediaJob(r, timeout=WAIT_S)) for r in held]
        for _ in held:
            await asyncio.wait_for(arrived.acquire(), WAIT_S)
        assert counted(small) == REQUEST_HELD_FACTOR * sum(r.ByteSize() for r in held)
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await stub.SubmitMediaJob(submit(30 * KIB), timeout=WAIT_S)
        refused = rich_error(caught.value)
        assert refused.code is grpc.StatusCode.RESOURCE_EXHAUSTED
        assert refused.error_info is not None and refused.error_info.reason == "OVERLOADED"
        assert refused.error_info.metadata["limit"] == str(LIMIT_MB)
        assert refused.retry_info is not None
        assert "memory held by requests (MiB) at its limit of 3" in refused.message
        assert len(submits) == 2  # CI never saw the third
        release.set()
        for call in calls:
            assert (await call).jobs_detail.job_id
    assert await small.in_flight.wait_idle(WAIT_S)
    assert counted(small) == 0
