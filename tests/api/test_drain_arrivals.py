"""A drain that begins while a call's request is still arriving: grpc has taken the call (its
headers are in) but not its whole request, so no handler runs yet.

Such a call is in flight from its arrival, so the drain waits for it instead of ending at once
(the drain, counting only calls whose handler had begun, found none and cut it): served when the
rest comes within the grace (nothing is lost: the job is created and the caller has it), and
ended when the grace runs out with UNAVAILABLE, which tells the caller that nothing reached CI
and the call is safe to send again. A peer that never sends the rest holds no drain past its
grace.

The client speaks HTTP/2 itself (`tests.fixtures.raw_h2`): no gRPC client sends half a request.
It is blocking, so it runs in a thread while this loop serves the gateway.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager

import pytest

from ci_emulator.server import RunningEmulator
from gateway._proto import media_pb2, service_pb2
from gateway.api.server import CLOSE_WAIT_S, RunningGateway, start_gateway
from gateway.config.settings import Settings
from gateway.credentials import Credentials, StaticCredentialsProvider
from tests.api.test_drain import stopped_lines
from tests.conftest import SAMPLE_KEY
from tests.fixtures.raw_h2 import RawClient, frame

WAIT_S = 10.0
SUBMIT = "/ci.media.v1.MediaJobService/SubmitMediaJob"
UNKNOWN = "/ci.media.v1.MediaJobService/NoSuchMethod"
SERVER_LOG = "gateway.api.server"
# How much of the request goes before the drain: the length prefix and a few bytes.
FIRST_PART = 8
GRACE_S = 1.0
# The drain's end past its grace: grpc's cut and its closing of connections (`CLOSE_WAIT_S`)
# and a margin for a loaded machine.
OVERSTAY_S = CLOSE_WAIT_S + 2.0


def submit_request() -> bytes:
    request = service_pb2.SubmitMediaJobRequest(
        request=media_pb2.Request(input=media_pb2.Input(object=SAMPLE_KEY))
    )
    return frame(request.SerializeToString())


def half_sent(client: RawClient) -> tuple[int, bytes]:
    """A SubmitMediaJob call with its headers and the first part of its request sent: its
    stream and the rest. Returns once the gateway has taken the call: it takes a connection's
    calls in order, and has answered one opened after it (UNIMPLEMENTED)."""
    request = submit_request()
    stream = client.open(SUBMIT)
    client.send(stream, request[:FIRST_PART], end=False)
    assert client.status(client.open(UNKNOWN))["grpc-status"] == "12"
    assert not client.answered(stream)
    return stream, request[FIRST_PART:]


@asynccontextmanager
async def raw_client(running: RunningGateway) -> AsyncIterator[RawClient]:
    client = await asyncio.to_thread(RawClient, running.address)
    try:
        yield client
    finally:
        client.close()


class _Seen(logging.Handler):
    def __init__(self, message: str) -> None:
        super().__init__()
        self.message = message
        self.seen = asyncio.Event()

    def emit(self, record: logging.LogRecord) -> None:
        if record.getMessage() == self.message:
            self.seen.set()  # logged from the loop's own thread, by the drain


@contextmanager
def logged(message: str) -> Iterator[asyncio.Event]:
    """An event set once the gateway's server logs `message`."""
    handler = _Seen(message)
    logger = logging.getLogger(SERVER_LOG)
    logger.addHandler(handler)
    try:
        yield handler.seen
    finally:
        logger.removeHandler(handler)


def draining_lines(caplog: pytest.LogCaptureFixture) -> list[dict[str, object]]:
    return [
        record.__dict__["fields"]
        for record in caplog.records
        if record.name == SERVER_LOG and record.getMessage() == "draining"
    ]


async def start_drain(running: RunningGateway, grace_s: float) -> asyncio.Future[None]:
    """The drain, once it refuses new calls and waits for those in flight."""
    with logged("refusing new RPCs") as refusing:
        stopping = asyncio.ensure_future(running.stop(grace_s=grace_s))
        await asyncio.wait_for(refusing.wait(), WAIT_S)
    return stopping


@asynccontextmanager
async def draining_with_a_half_sent_call(
    settings: Settings, credentials: Credentials, grace_s: float
) -> AsyncIterator[tuple[RawClient, int, bytes, asyncio.Future[None]]]:
    """A gateway with a SubmitMediaJob whose request is half sent, whose drain (`grace_s`) has
    begun: the client, the call's stream, the rest of its request, and the drain."""
    running = await start_gateway(settings, StaticCredentialsProvider(credentials))
    try:
        async with raw_client(running) as client:
            stream, rest = await asyncio.to_thread(half_sent, client)
            yield client, stream, rest, await start_drain(running, grace_s)
    finally:
        await running.stop(grace_s=0)


async def test_a_call_whose_request_completes_within_the_grace_is_served(
    settings: Settings,
    credentials: Credentials,
    emulator: RunningEmulator,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger=SERVER_LOG)
    async with draining_with_a_half_sent_call(settings, credentials, WAIT_S * 3) as drain:
        client, stream, rest, stopping = drain
        await asyncio.to_thread(client.send, stream, rest)
        answer = await asyncio.to_thread(client.status, stream)
        # Ends as soon as the call is served, not when the grace runs out.
        await asyncio.wait_for(stopping, WAIT_S)
    assert client.goaway is not None  # told the server was going away, and served still
    assert answer["grpc-status"] == "0", answer
    assert answer.get("x-ci-request-id")  # CI's answer to the submit
    assert emulator.state.jobs_created == 1
    assert [line["in_flight"] for line in draining_lines(caplog)] == [1]
    assert [line["cut_off"] for line in stopped_lines(caplog)] == [0]


async def test_a_call_whose_request_never_completes_ends_the_drain_at_its_grace(
    settings: Settings,
    credentials: Credentials,
    emulator: RunningEmulator,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger=SERVER_LOG)
    async with draining_with_a_half_sent_call(settings, credentials, GRACE_S) as drain:
        client, stream, _, stopping = drain
        await asyncio.wait_for(stopping, GRACE_S + OVERSTAY_S)
        answer = await asyncio.to_thread(client.status, stream)
    # Ended without its request, as retryable: UNAVAILABLE, and nothing reached CI.
    assert answer["grpc-status"] == "14", answer
    assert emulator.state.jobs_created == 0
    assert [line["in_flight"] for line in draining_lines(caplog)] == [1]
    assert [line["cut_off"] for line in stopped_lines(caplog)] == [1]
