"""Watches and waits a drain ends are logged and counted with what their clients got.

The drain closes the job tracker first: every WatchMediaJob stream and WaitMediaJob call ends
with TrackerClosed (UNAVAILABLE, reason SHUTTING_DOWN), whatever the grace. A client that stays
gets that status, and its access line and `grpc_server_handled_total` must say so. A client that
leaves as the drain begins may be gone before the status can be sent: grpc's batch fails, and
that call was logged and counted UNKNOWN, a status nobody sent; it ended as a cancellation does
(CANCELLED), or, when the status did go out before the client's leaving reached the gateway,
UNAVAILABLE as for the others.

The job is held Running in the emulator, so every watch and wait is certainly open when the
drain begins. Which of the leaving clients' calls the race catches varies from run to run (with
a grace, dozens of the 200 were; without one, the drain's cut mostly ends them first, and its
answer counts with the status it was sending); none may ever be logged UNKNOWN. The race itself
is pinned down in tests/api/test_interceptors.py.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import replace
from typing import Any

import grpc
import pytest

from ci_emulator.server import RunningEmulator
from gateway import rpc_context
from gateway._proto import media_pb2, service_pb2, service_pb2_grpc
from gateway.api.server import RunningGateway, start_gateway
from gateway.config.settings import Settings, Tracking
from gateway.credentials import Credentials, StaticCredentialsProvider
from gateway.errors import Reason
from gateway.logs import ACCESS_LOGGER
from tests.fixtures.logs import attached
from tests.integration.helpers import rich_error
from tests.jobs.helpers import next_detail, submit

WAIT_S = 10.0
SERVICE = "ci.media.v1.MediaJobService"
# Calls of each method whose clients stay, and whose clients leave as the drain begins.
KEPT, LEFT = 4, 100
# Room for every call (one client holds them all).
TRACKING = Tracking(
    poll_initial_s=0.05, poll_max_s=0.2, max_watchers=1000, max_watchers_per_client=1000
)


class AccessLines(logging.Handler):
    """The access lines' fields by the request id of the call each is for (read from the
    call's scope while the line is emitted, as the formatters do)."""

    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.by_request_id: dict[str, list[dict[str, Any]]] = {}

    def emit(self, record: logging.LogRecord) -> None:
        scope = rpc_context.current()
        if record.getMessage() == "rpc" and scope is not None:
            self.by_request_id.setdefault(scope.request_id, []).append(record.__dict__["fields"])

    def line(self, request_id: str) -> dict[str, Any]:
        (line,) = self.by_request_id[request_id]  # exactly one per call
        return line


async def immediate(running: RunningGateway) -> None:
    await running.stop(grace_s=0)


async def forced(running: RunningGateway) -> None:
    running.force_stop()  # the second signal, before the grace could run
    await running.stop(grace_s=WAIT_S * 3)


async def with_grace(running: RunningGateway) -> None:
    # Every watch and wait ends at once (the tracker closes): the drain waits for no grace.
    await running.stop(grace_s=WAIT_S * 3)


STOPS: dict[str, Callable[[RunningGateway], Awaitable[None]]] = {
    "immediate": immediate,
    "forced": forced,
    "grace": with_grace,
}


def metadata(request_id: str) -> tuple[tuple[str, str]]:
    return ((rpc_context.REQUEST_ID_METADATA, request_id),)


@asynccontextmanager
async def gateway(
    settings: Settings, credentials: Credentials
) -> AsyncIterator[tuple[RunningGateway, service_pb2_grpc.MediaJobServiceAsyncStub]]:
    running = await start_gateway(
        replace(settings, tracking=TRACKING), StaticCredentialsProvider(credentials)
    )
    try:
        async with grpc.aio.insecure_channel(running.address) as channel:
            yield running, service_pb2_grpc.MediaJobServiceStub(channel)
    finally:
        await running.stop(grace_s=0)


@pytest.mark.parametrize("how", list(STOPS))
async def test_watches_and_waits_the_drain_ends_are_logged_with_what_their_clients_got(
    settings: Settings, credentials: Credentials, emulator: RunningEmulator, how: str
) -> None:
    emulator.state.hold_running()
    kept = [f"kept-{method}-{index}" for method in ("watch", "wait") for index in range(KEPT)]
    left = [f"left-{method}-{index}" for method in ("watch", "wait") for index in range(LEFT)]
    with attached(AccessLines(), ACCESS_LOGGER, logging.INFO) as access:
        async with gateway(settings, credentials) as (running, stub):
            job = await submit(stub)
            await emulator.state.wait_for_job_state(job.job_id, {"Running"})
            calls: dict[str, Any] = {}
            for request_id in kept + left:
                if "-watch-" in request_id:
                    watch = service_pb2.WatchMediaJobRequest(job_id=job.job_id)
                    calls[request_id] = stub.WatchMediaJob(
                        watch, metadata=metadata(request_id), timeout=WAIT_S * 3
                    )
                else:
                    wait = service_pb2.WaitMediaJobRequest(job_id=job.job_id)
                    calls[request_id] = stub.WaitMediaJob(
                        wait, metadata=metadata(request_id), timeout=WAIT_S * 3
                    )
            for request_id, call in calls.items():
                if "-watch-" in request_id:  # each stream is open and has its first state
                    detail = await next_detail(call, WAIT_S)
                    assert detail.state == media_pb2.JOB_STATE_RUNNING
            total = len(calls)
            await running.tracking.tracker.wait_for(lambda s: s.watchers == total, timeout=WAIT_S)

            for request_id in left:
                calls[request_id].cancel()
            await asyncio.wait_for(STOPS[how](running), WAIT_S)

            for request_id in kept:
                call = calls[request_id]
                ending = call.read() if "-watch-" in request_id else call
                with pytest.raises(grpc.aio.AioRpcError) as ended:
                    await asyncio.wait_for(ending, WAIT_S)
                error = rich_error(ended.value)
                assert error.code == grpc.StatusCode.UNAVAILABLE, request_id
                assert error.error_info is not None, request_id  # the gateway's own status
                assert error.error_info.reason == Reason.SHUTTING_DOWN

    for request_id in kept:
        line = access.line(request_id)
        assert (line["grpc_code"], line["reason"]) == ("UNAVAILABLE", "SHUTTING_DOWN"), request_id
    for request_id in left:
        line = access.line(request_id)
        # Cancelled before the tracker ended it (no reason) or while its status was being
        # sent (the reason it was ending with), or ended with that status before its leaving
        # reached the gateway.
        assert (line["grpc_code"], line["reason"]) in {
            ("CANCELLED", None),
            ("CANCELLED", "SHUTTING_DOWN"),
            ("UNAVAILABLE", "SHUTTING_DOWN"),
        }, (request_id, line)
    # The metric counts each call as its line does, under the same code.
    for method, kind in (("WatchMediaJob", "server_stream"), ("WaitMediaJob", "unary")):
        counted = {
            labels["grpc_code"]: value
            for labels, value in running.metrics.samples("grpc_server_handled_total")
            if labels["grpc_method"] == method and labels["grpc_type"] == kind and value
        }
        expected: dict[str, float] = {}
        for request_id in kept + left:
            if f"-{'watch' if method == 'WatchMediaJob' else 'wait'}-" in request_id:
                code = access.line(request_id)["grpc_code"]
                expected[code] = expected.get(code, 0.0) + 1
        assert counted == expected, method
