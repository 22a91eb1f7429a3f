"""A burst of new calls started at once: every call gets the gateway's own answer (served, or
OVERLOADED with RetryInfo beyond its bounds), none ends bare before the gateway saw it.

grpc core's default backlog of calls not yet picked up answered part of such a burst itself,
before grpc.aio handed the call to the gateway (so without an access line): it ended a random
share CANCELLED from 1,000 calls waiting. `gateway.api.server.server_options` sets it; its
docstring has the measurements.

A real gateway in this process, over loopback, against the emulator; the burst comes from
gRPC channels each with a connection of its own.
"""

from __future__ import annotations

import asyncio
import collections
import logging

import grpc

from gateway._proto import service_pb2, service_pb2_grpc
from gateway.api.server import server_options
from gateway.config.settings import ServerLimits
from tests.api.conftest import Start
from tests.fixtures.logs import attached
from tests.integration.helpers import rich_error

# Each channel its own connection (channels to one address otherwise share one).
OWN_CONNECTION = [("grpc.use_local_subchannel_pool", 1)]
# One bound on the whole burst: every call ends (answered) well within it.
BURST_WAIT_S = 60.0
LIST = service_pb2.ListMediaJobsRequest(tag="MediaInfo", size=1)
# What the gateway logs for each answer its client got (`_answer`).
LOGGED_AS = {"OK": "OK", "OVERLOADED": "RESOURCE_EXHAUSTED"}


class _Count(logging.Handler):
    """Counts the access lines (one per call the gateway saw end) by their `grpc_code`."""

    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.codes: collections.Counter[str] = collections.Counter()

    def emit(self, record: logging.LogRecord) -> None:
        fields = getattr(record, "fields", None) or {}
        self.codes[str(fields.get("grpc_code"))] += 1


def _answer(error: grpc.aio.AioRpcError | None) -> str:
    """`OK`, `OVERLOADED` (the gateway's own refusal: RESOURCE_EXHAUSTED with its ErrorInfo
    and a RetryInfo), or the bare code and details of anything else."""
    if error is None:
        return "OK"
    rich = rich_error(error)
    if (
        rich.code is grpc.StatusCode.RESOURCE_EXHAUSTED
        and rich.error_info is not None
        and rich.error_info.reason == "OVERLOADED"
        and rich.retry_info is not None
    ):
        return "OVERLOADED"
    return f"{rich.code.name}: {rich.message}"


async def _burst(address: str, calls: int, connections: int) -> collections.Counter[str]:
    """Start `calls` ListMediaJobs at once, spread over `connections` connections (each
    connected first, so that the calls leave together); how each ended."""
    channels = [
        grpc.aio.insecure_channel(address, options=OWN_CONNECTION) for _ in range(connections)
    ]
    try:
        for channel in channels:
            await asyncio.wait_for(channel.channel_ready(), BURST_WAIT_S)
        stubs = [service_pb2_grpc.MediaJobServiceStub(channel) for channel in channels]

        async def one(index: int) -> str:
            try:
                await stubs[index % connections].ListMediaJobs(LIST, timeout=BURST_WAIT_S)
            except grpc.aio.AioRpcError as error:
                return _answer(error)
            return _answer(None)

        answers = await asyncio.wait_for(
            asyncio.gather(*(one(index) for index in range(calls))), BURST_WAIT_S
        )
    finally:
        for channel in channels:
            await channel.close(None)
    return collections.Counter(answers)


async def _answered(address: str, calls: int, connections: int) -> collections.Counter[str]:
    """`_burst`, checking that the gateway logged an access line for each call, with the code
    its client got."""
    with attached(_Count(), "gateway.access", logging.INFO) as lines:
        answers = await _burst(address, calls, connections)
    logged = collections.Counter(
        {LOGGED_AS.get(answer, answer): n for answer, n in answers.items()}
    )
    assert lines.codes == logged, answers
    return answers


async def test_a_burst_past_grpcs_own_backlog_is_answered_by_the_gateway(bounded: Start) -> None:
    """2,500 calls at once over 5 connections, far more than grpc's own backlog let wait
    (1,000; before, ~18% of such a burst ended CANCELLED): each is served, or refused by the
    gateway with OVERLOADED and RetryInfo, and logged with the code its client got."""
    gateway = await bounded()
    answers = await _answered(gateway.address, 2500, connections=5)
    assert set(answers) <= {"OK", "OVERLOADED"}, answers


def test_grpcs_backlog_holds_a_connections_calls_and_sheds_none_at_random() -> None:
    """Both backlog bounds one value (no random shedding below it): a connection's full window
    of calls, never below grpc's own 3,000."""
    options = dict(server_options(ServerLimits()))
    assert options["grpc.server.max_pending_requests"] == 3000
    assert options["grpc.server.max_pending_requests_hard_limit"] == 3000
    wide = dict(server_options(ServerLimits(max_streams_per_connection=5000)))
    assert wide["grpc.server.max_pending_requests"] == 5000
    assert wide["grpc.server.max_pending_requests_hard_limit"] == 5000
