"""A call the drain cuts (its grace ran out, or a second signal) ends with the gateway's own status,
which tells its caller what to do, not with grpc's bare UNAVAILABLE "Cancelling all calls".

That matters most for a submit CI may already be acting on: UNAVAILABLE invites a retry, and a
retry without the request_id the gateway made for the call gets a new id, hence maybe a second
job. So such a submit ends SUBMIT_OUTCOME_UNKNOWN with its request_id, and a retry with that id,
even on another gateway (a restart: the embedded store is empty), finds the job by its marker
instead of making another. Any other call ends UNAVAILABLE with the SHUTTING_DOWN reason.

CI requests are held inside the emulator (a request hook that waits for a release), so the calls
are certainly running when the drain begins and when its grace runs out.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any

import grpc
import pytest
from aiohttp import web

from ci_emulator.faults import FaultSpec
from ci_emulator.hosts import Target
from ci_emulator.server import RunningEmulator
from gateway._proto import media_pb2, service_pb2, service_pb2_grpc
from gateway.api.server import CLOSE_WAIT_S, CUT_ANSWER_S, RunningGateway, start_gateway
from gateway.api.service import REQUEST_ID_METADATA, submit_cut
from gateway.config.settings import Settings
from gateway.credentials import Credentials, StaticCredentialsProvider
from gateway.errors import Reason
from gateway.logs import ACCESS_LOGGER
from tests.api.test_drain import stopped_lines
from tests.conftest import SAMPLE_KEY
from tests.integration.helpers import RichError, rich_error

WAIT_S = 10.0
HOLD_S = 20.0
GRACE_S = 0.5
# The drain's end past its grace: the cut calls' answers, grpc's closing of connections and a
# margin for a loaded machine.
OVERSTAY_S = CUT_ANSWER_S + CLOSE_WAIT_S + 2.0
SERVICE = "ci.media.v1.MediaJobService"
JOB_ID = "j" + "0" * 32


class HeldCi:
    """A request hook that holds the CI requests `matches` picks until released (the others go
    through), and says when one is held. A held request whose client has gone by its release
    is not served: CI could not read its body any more either."""

    def __init__(self, matches: Callable[[web.Request, Target], bool]) -> None:
        self._matches = matches
        self.held = asyncio.Event()
        self.release = asyncio.Event()

    async def __call__(self, request: web.Request, target: Target) -> web.StreamResponse | None:
        if not self._matches(request, target):
            return None
        self.held.set()
        async with asyncio.timeout(HOLD_S):  # bounded: a failing test still ends
            await self.release.wait()
        if request.transport is None or request.transport.is_closing():
            return web.Response(status=503)  # to nobody
        return None


def is_submit(request: web.Request, target: Target) -> bool:
    return request.method == "POST" and target.path == "/jobs"


def is_listing(request: web.Request, target: Target) -> bool:
    return request.method == "GET" and target.path == "/jobs"


def is_describe(request: web.Request, target: Target) -> bool:
    return request.method == "GET" and target.path.startswith("/jobs/")


def nothing(request: web.Request, target: Target) -> bool:
    return False


@asynccontextmanager
async def gateway_holding(
    settings: Settings, credentials: Credentials, emulator: RunningEmulator, hold: HeldCi
) -> AsyncIterator[tuple[RunningGateway, service_pb2_grpc.MediaJobServiceAsyncStub]]:
    emulator.state.request_hooks.append(hold)
    running = await start_gateway(settings, StaticCredentialsProvider(credentials))
    try:
        async with grpc.aio.insecure_channel(running.address) as channel:
            yield running, service_pb2_grpc.MediaJobServiceStub(channel)
    finally:
        hold.release.set()
        emulator.state.request_hooks.remove(hold)
        await running.stop(grace_s=0)


async def cut(running: RunningGateway, call: Awaitable[Any], how: str) -> grpc.aio.AioRpcError:
    """Drain `running` while `call` is held in CI, until the grace runs out or a second signal
    forces the end at once; the drain must keep its bound. Returns the call's error."""
    if how == "forced":
        running.force_stop()  # the second signal, before the grace could run
        await asyncio.wait_for(running.stop(grace_s=WAIT_S * 3), OVERSTAY_S)
    else:
        await asyncio.wait_for(running.stop(grace_s=GRACE_S), GRACE_S + OVERSTAY_S)
    with pytest.raises(grpc.aio.AioRpcError) as ended:
        await asyncio.wait_for(call, WAIT_S)
    return ended.value


def access_lines(caplog: pytest.LogCaptureFixture, method: str) -> list[dict[str, Any]]:
    return [
        record.__dict__["fields"]
        for record in caplog.records
        if record.name == ACCESS_LOGGER
        and record.getMessage() == "rpc"
        and record.__dict__["fields"]["grpc_method"] == f"/{SERVICE}/{method}"
    ]


def handled(running: RunningGateway, method: str, code: str) -> float | None:
    return running.metrics.registry.get_sample_value(
        "grpc_server_handled_total",
        {"grpc_type": "unary", "grpc_service": SERVICE, "grpc_method": method, "grpc_code": code},
    )


def error_info(error: RichError) -> tuple[str, dict[str, str]]:
    assert error.error_info is not None, error  # the gateway's own status, not grpc's bare one
    return error.error_info.reason, dict(error.error_info.metadata)


# Where the submit is held when the drain cuts it, and the attempts it has made by then.
HELD = {
    # Its POST, which CI never gets to act on.
    "post": (is_submit, 1),
    # Its look for the job after CI made it and the answer was lost: POST, then the listing.
    "look-after-a-lost-answer": (is_listing, 2),
}


@pytest.mark.parametrize("held", list(HELD))
@pytest.mark.parametrize("how", ["grace-ran-out", "forced"])
async def test_a_submit_held_in_ci_when_cut_gets_its_request_id_and_a_retry_makes_no_second_job(
    settings: Settings,
    credentials: Credentials,
    emulator: RunningEmulator,
    caplog: pytest.LogCaptureFixture,
    how: str,
    held: str,
) -> None:
    caplog.set_level(logging.INFO)
    emulator.state.pause_scheduling()  # the job stays as created
    matches, attempts = HELD[held]
    if held == "look-after-a-lost-answer":
        emulator.state.faults.set("CreateMediaJobs", FaultSpec(commit_then_drop=1.0))
    hold = HeldCi(matches)
    request = service_pb2.SubmitMediaJobRequest(
        request=media_pb2.Request(input=media_pb2.Input(object=SAMPLE_KEY))
    )  # no request_id: the gateway makes one, which only this call's answer tells
    async with gateway_holding(settings, credentials, emulator, hold) as (running, stub):
        call = stub.SubmitMediaJob(request, timeout=WAIT_S * 3)
        await asyncio.wait_for(hold.held.wait(), WAIT_S)
        failed = await cut(running, call, how)
        trailers = dict(await call.trailing_metadata() or ())

    error = rich_error(failed)
    assert error.code == grpc.StatusCode.UNAVAILABLE
    reason, metadata = error_info(error)
    assert reason == Reason.SUBMIT_OUTCOME_UNKNOWN
    request_id = metadata["request_id"]
    assert request_id and trailers[REQUEST_ID_METADATA] == request_id
    assert request_id in error.message
    assert metadata["attempts"] == str(attempts)
    (line,) = access_lines(caplog, "SubmitMediaJob")
    assert (line["grpc_code"], line["reason"], line["attempts"]) == (
        "UNAVAILABLE",
        "SUBMIT_OUTCOME_UNKNOWN",
        attempts,
    )
    assert handled(running, "SubmitMediaJob", "UNAVAILABLE") == 1
    assert [line["cut_off"] for line in stopped_lines(caplog)] == [1]
    made_before = list(emulator.state.jobs)

    # The gateway restarted (its embedded store empty), CI is well again, and the caller
    # retries with the id: the job CI made is found by its marker, not made again.
    emulator.state.faults.clear()
    retry = service_pb2.SubmitMediaJobRequest(request=request.request, request_id=request_id)
    async with gateway_holding(settings, credentials, emulator, HeldCi(nothing)) as (_, stub):
        answer = await stub.SubmitMediaJob(retry, timeout=WAIT_S)
    assert emulator.state.jobs_created == 1
    assert list(emulator.state.jobs) == [answer.jobs_detail.job_id]
    # CI made the job before the cut when the answer was lost, and never when the POST was held.
    expected_before = [answer.jobs_detail.job_id] if held == "look-after-a-lost-answer" else []
    assert made_before == expected_before


@pytest.mark.parametrize("how", ["grace-ran-out", "forced"])
async def test_a_describe_held_in_ci_when_cut_gets_shutting_down(
    settings: Settings,
    credentials: Credentials,
    emulator: RunningEmulator,
    caplog: pytest.LogCaptureFixture,
    how: str,
) -> None:
    caplog.set_level(logging.INFO)
    hold = HeldCi(is_describe)
    request = service_pb2.DescribeMediaJobsRequest(job_ids=[JOB_ID])
    async with gateway_holding(settings, credentials, emulator, hold) as (running, stub):
        call = stub.DescribeMediaJobs(request, timeout=WAIT_S * 3)
        await asyncio.wait_for(hold.held.wait(), WAIT_S)
        failed = await cut(running, call, how)

    error = rich_error(failed)
    assert error.code == grpc.StatusCode.UNAVAILABLE
    reason, metadata = error_info(error)
    assert reason == Reason.SHUTTING_DOWN
    assert metadata["attempts"] == "1"
    (line,) = access_lines(caplog, "DescribeMediaJobs")
    assert (line["grpc_code"], line["reason"], line["attempts"]) == (
        "UNAVAILABLE",
        "SHUTTING_DOWN",
        1,
    )
    assert handled(running, "DescribeMediaJobs", "UNAVAILABLE") == 1
    assert [line["cut_off"] for line in stopped_lines(caplog)] == [1]


@pytest.mark.parametrize(
    ("attempts", "caller_supplied", "reason"),
    [
        # The gateway's own id, nothing sent: nobody else knows the id, no job can exist.
        (0, False, Reason.SHUTTING_DOWN),
        # Its first attempt is its POST.
        (1, False, Reason.SUBMIT_OUTCOME_UNKNOWN),
        # A caller's id: its look for an earlier job of it was cut, or it waited on another
        # call's (or replica's) send of it.
        (1, True, Reason.SUBMIT_OUTCOME_UNKNOWN),
        (0, True, Reason.SUBMIT_OUTCOME_UNKNOWN),
    ],
)
def test_a_cut_submit_is_in_doubt_unless_it_cannot_have_reached_ci(
    attempts: int, caller_supplied: bool, reason: Reason
) -> None:
    error = submit_cut("rid-1", caller_supplied, attempts)
    assert (error.status, error.reason) == (grpc.StatusCode.UNAVAILABLE, reason)
    if reason is Reason.SUBMIT_OUTCOME_UNKNOWN:
        assert error.metadata()["request_id"] == "rid-1"
