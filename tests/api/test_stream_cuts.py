"""Watch streams cut while grpc is writing one of their messages give back all they hold at
once, and each is logged and counted once, as cancelled.

WatchMediaJob and WatchWorkflowExecution are async generators. While grpc writes a message one
of them yielded, the generator is suspended at its `yield` and none of its code runs: a client
that resets the stream, closes its channel or goes away ends grpc's call without the generator
seeing it (grpc stops iterating it; it does not close it). What the stream holds (its place in
flight, its watcher places in all and per client, its access line and its metrics) is given
back when the generator is finalised: as soon as grpc's task lets go of it, through the event
loop's async-generator finaliser, which throws GeneratorExit at the `yield` (the interceptor
logs that CANCELLED, or DEADLINE_EXCEEDED past the call's deadline). The tests hold this with
the cyclic garbage collector off, so that a release that waited for it (it may not run for
minutes on an idle gateway) fails here instead of passing now and then, and on both event
loops the gateway runs on (the finaliser is the loop's: tests/api/conftest.py).

"While grpc is writing" is made certain, not hoped for: the clients leave no room in their
flow-control windows for the message, and each test waits until the handlers' generators are
suspended at their `yield` (`writing`) before it cuts. A grpc client keeps HTTP/2's 64 KiB
window per stream (no BDP probing) and reads nothing after a watch's first state, and the job's
next state, handed to the tracker as a callback CI's describe confirmed is, carries 256 KiB of
details. A hand-made HTTP/2 client (`tests.fixtures.raw_h2`) never reads at all: its watches'
first states alone fill its connection's window.

Afterwards, for each way of leaving: nothing in flight, no watcher left (in all and per
client: a client may open as many watches again, none refused), each call's one access line
with its code, `grpc_server_handled_total` counting as many as started, and a drain that finds
nothing to wait for.
"""

from __future__ import annotations

import asyncio
import gc
import inspect
import logging
import time
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager
from dataclasses import replace
from typing import Any

import grpc
import pytest

from ci_emulator.server import RunningEmulator
from gateway import rpc_context
from gateway._proto import media_pb2, service_pb2, service_pb2_grpc, workflows_pb2
from gateway.access.interceptor import ClientAccess
from gateway.api.server import RunningGateway, start_gateway
from gateway.config.settings import Settings, Tracking
from gateway.credentials import Credentials, StaticCredentialsProvider
from gateway.logs import ACCESS_LOGGER
from gateway.model import Target
from gateway.resources.executions import ExecutionFollower
from tests.api.test_drain_watches import AccessLines
from tests.conftest import BUCKET, REGION, SAMPLE_KEY
from tests.fixtures.logs import attached
from tests.fixtures.raw_h2 import RawClient, frame
from tests.jobs.helpers import next_detail, submit
from tests.resources.conftest import platform_access, stubs_on
from tests.resources.test_workflows import create, queue_of, workflow

WAIT_S = 20.0
POLL_S = 0.02
GRACE_S = 10.0
JOB_SERVICE = "ci.media.v1.MediaJobService"
RUN_SERVICE = "ci.media.v1.MediaWorkflowService"
WATCH_JOB = f"/{JOB_SERVICE}/WatchMediaJob"
WATCH_RUN = f"/{RUN_SERVICE}/WatchWorkflowExecution"
# HTTP/2's initial window, which the clients here never let grow.
WINDOW = 65535
# A job change far larger than a stream's window: grpc cannot finish writing it.
BIG_DETAILS = 256 * 1024
# Job watches of the hand-made client: their first states alone are more than its connection's
# window (a Running JobsDetail is about 230 bytes on the wire).
RAW_JOB_WATCHES = 400
RAW_RUN_WATCHES = 40


def tracking(watches: int) -> Tracking:
    """Room for exactly `watches` watches of one client (every client here is 127.0.0.1), so
    that a single place still held refuses one of them when they are opened again."""
    return Tracking(
        poll_initial_s=0.05,
        poll_max_s=0.2,
        max_watchers=watches,
        max_watchers_per_client=watches,
    )


@pytest.fixture
def no_cyclic_gc() -> Iterator[None]:
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def writing(handler: str) -> int:
    """How many of `handler`'s generators are suspended at a `yield`: their message handed to
    grpc and not written yet (a generator waiting for the next change is suspended in an
    `await` instead, `ag_await` set). The gateway has no view of this; the interpreter has."""
    return sum(
        1
        for item in gc.get_objects()
        if inspect.isasyncgen(item)
        and item.ag_code.co_name == handler
        and item.ag_frame is not None
        and not item.ag_running
        and item.ag_await is None
    )


async def until(condition: Callable[[], bool], what: str) -> None:
    """Poll `condition` every `POLL_S`, for `WAIT_S` at most (for what has no event)."""
    for _ in range(int(WAIT_S / POLL_S)):
        if condition():
            return
        await asyncio.sleep(POLL_S)
    raise AssertionError(f"not within {WAIT_S} s: {what}")


def metadata(request_id: str) -> tuple[tuple[str, str]]:
    return ((rpc_context.REQUEST_ID_METADATA, request_id),)


def handled(running: RunningGateway, method: str) -> dict[str, float]:
    return {
        labels["grpc_code"]: value
        for labels, value in running.metrics.samples("grpc_server_handled_total")
        if labels["grpc_method"] == method and value
    }


def started(running: RunningGateway, method: str) -> float:
    return sum(
        value
        for labels, value in running.metrics.samples("grpc_server_started_total")
        if labels["grpc_method"] == method
    )


def run_follower(running: RunningGateway) -> ExecutionFollower:
    """The workflow-run follower (the gateway hands it to its drain, and to nobody else)."""
    owners = [getattr(close, "__self__", None) for close in running.tracking.also_drain]
    (follower,) = [owner for owner in owners if isinstance(owner, ExecutionFollower)]
    return follower


class ServerEvents(logging.Handler):
    """The drain's `draining` and `stopped` lines, by message."""

    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.fields: dict[str, dict[str, Any]] = {}

    def emit(self, record: logging.LogRecord) -> None:
        self.fields[record.getMessage()] = record.__dict__.get("fields", {})


@asynccontextmanager
async def gateway(
    settings: Settings, credentials: Credentials, watches: int, access: ClientAccess | None = None
) -> AsyncIterator[RunningGateway]:
    running = await start_gateway(
        replace(settings, tracking=tracking(watches)),
        StaticCredentialsProvider(credentials),
        access=access,
    )
    try:
        yield running
    finally:
        await running.stop(grace_s=0)


async def assert_released(
    running: RunningGateway,
    access: AccessLines,
    calls: dict[str, str],
    code: str,
) -> None:
    """Everything the cut `calls` (request id -> method) held is back; each is logged once."""
    assert await running.in_flight.wait_idle(WAIT_S)
    await running.tracking.tracker.wait_for(lambda s: s.watchers == 0 and s.jobs == 0)
    follower = run_follower(running)
    await until(lambda: follower.watchers == 0, "no run watcher left")
    await until(
        lambda: all(request_id in access.by_request_id for request_id in calls),
        "an access line for every call",
    )
    for request_id in calls:
        line = access.line(request_id)  # exactly one
        assert line["grpc_code"] == code, (request_id, line)
    for method in set(calls.values()):
        name = method.rpartition("/")[2]
        count = sum(1 for m in calls.values() if m == method)
        assert handled(running, name) == {code: count}, method
        assert started(running, name) == count, method
    # The gateway's one in-flight gauge counts CI requests: the pollers' end with the watches.
    await until(
        lambda: all(v == 0 for _, v in running.metrics.samples("ci_upstream_requests_in_flight")),
        "no request to CI in flight",
    )


async def assert_admitted_again(running: RunningGateway, job_id: str, watches: int) -> None:
    """The client may open as many job watches as before the cut: none is refused."""
    async with grpc.aio.insecure_channel(running.address) as channel:
        stub = service_pb2_grpc.MediaJobServiceStub(channel)
        calls = [
            stub.WatchMediaJob(service_pb2.WatchMediaJobRequest(job_id=job_id), timeout=WAIT_S)
            for _ in range(watches)
        ]
        for call in calls:
            detail = await next_detail(call, WAIT_S)  # RESOURCE_EXHAUSTED would raise here
            assert detail.job_id == job_id
        for call in calls:
            call.cancel()
    assert await running.in_flight.wait_idle(WAIT_S)
    await running.tracking.tracker.wait_for(lambda s: s.watchers == 0)


async def assert_drains_at_once(running: RunningGateway) -> None:
    with attached(ServerEvents(), "gateway.api.server", logging.INFO) as events:
        began = time.monotonic()
        await asyncio.wait_for(running.stop(grace_s=GRACE_S), GRACE_S)
        took = time.monotonic() - began
    assert events.fields["draining"]["in_flight"] == 0
    assert events.fields["stopped"]["cut_off"] == 0
    assert took < GRACE_S / 2, took  # nothing was waited for


# ---- grpc clients -----------------------------------------------------------------------------

GRPC_WATCHES = 40
CHANNELS = 4
# A stream's window stays HTTP/2's 64 KiB: with BDP probing grpc grows it to take what comes.
SMALL_WINDOWS = [("grpc.http2.bdp_probe", 0)]
# The "deadline" case's own time: opening 40 watches, their first states and the bigger state
# all have to happen before it runs out. 6 s failed once with the 2 CPUs at load 9, 10 s once
# with four whole suites running beside it (session 13).
DEADLINE_S = 15.0


@pytest.mark.parametrize("how", ["cancel", "close", "deadline"])
async def test_watches_cut_while_their_message_is_written_give_everything_back(
    settings: Settings,
    credentials: Credentials,
    emulator: RunningEmulator,
    no_cyclic_gc: None,
    how: str,
) -> None:
    emulator.state.hold_running()
    code = "DEADLINE_EXCEEDED" if how == "deadline" else "CANCELLED"
    with attached(AccessLines(), ACCESS_LOGGER, logging.INFO) as access:
        async with gateway(settings, credentials, GRPC_WATCHES) as running:
            async with grpc.aio.insecure_channel(running.address) as control:
                job = await submit(service_pb2_grpc.MediaJobServiceStub(control))
            await emulator.state.wait_for_job_state(job.job_id, {"Running"})
            channels = [
                grpc.aio.insecure_channel(running.address, options=SMALL_WINDOWS)
                for _ in range(CHANNELS)
            ]
            try:
                request = service_pb2.WatchMediaJobRequest(job_id=job.job_id)
                timeout = DEADLINE_S if how == "deadline" else WAIT_S * 3
                calls = {
                    f"cut-{index}": service_pb2_grpc.MediaJobServiceStub(
                        channels[index % CHANNELS]
                    ).WatchMediaJob(request, metadata=metadata(f"cut-{index}"), timeout=timeout)
                    for index in range(GRPC_WATCHES)
                }
                for call in calls.values():
                    assert (await next_detail(call, WAIT_S)).state == media_pb2.JOB_STATE_RUNNING
                # The job's next state, as a callback verified with CI's describe hands it on.
                target = Target(BUCKET, REGION)
                latest = running.tracking.tracker.latest(target, job.job_id)
                assert latest is not None
                bigger = media_pb2.JobsDetail()
                bigger.CopyFrom(latest)
                bigger.progress, bigger.message = "50", "x" * BIG_DETAILS
                assert running.tracking.tracker.apply(target, bigger)
                await until(
                    lambda: writing("WatchMediaJob") == GRPC_WATCHES,
                    "every watch's generator suspended while grpc writes its message",
                )
                if how == "cancel":
                    for call in calls.values():
                        call.cancel()
                elif how == "close":
                    for channel in channels:
                        await channel.close(None)
                # "deadline": the calls' own time runs out
                await assert_released(running, access, dict.fromkeys(calls, WATCH_JOB), code)
            finally:
                for channel in channels:
                    await channel.close(None)
            await assert_admitted_again(running, job.job_id, GRPC_WATCHES)
            await assert_drains_at_once(running)
    emulator.state.release_running()


# ---- a client that stopped reading ----------------------------------------------------------


def open_watches(
    client: RawClient, path: str, request: bytes, name: str, count: int
) -> dict[int, str]:
    """`count` calls of `path` with `request` on `client`: stream id -> request id."""
    streams: dict[int, str] = {}
    for index in range(count):
        request_id = f"{name}-{index}"
        stream = client.open(path, metadata(request_id))
        client.send(stream, frame(request))
        streams[stream] = request_id
    return streams


@pytest.mark.parametrize("how", ["reset", "vanish"])
async def test_watches_of_a_client_that_stopped_reading_give_everything_back_when_it_goes(
    settings: Settings,
    credentials: Credentials,
    emulator: RunningEmulator,
    no_cyclic_gc: None,
    how: str,
) -> None:
    assert RAW_JOB_WATCHES * 200 > WINDOW  # their first states cannot all be written
    emulator.state.hold_running()
    with attached(AccessLines(), ACCESS_LOGGER, logging.INFO) as access:
        async with gateway(
            settings, credentials, RAW_JOB_WATCHES, access=platform_access()
        ) as running:
            async with grpc.aio.insecure_channel(running.address) as control:
                stubs = stubs_on(control)
                job = await submit(stubs.jobs)
                created = await create(stubs, workflow(queue_of(emulator)))
                triggered = await stubs.workflows.TriggerMediaWorkflow(
                    workflows_pb2.TriggerMediaWorkflowRequest(
                        workflow_id=created.workflow_id, object=SAMPLE_KEY
                    )
                )
            await emulator.state.wait_for_job_state(job.job_id, {"Running"})
            client = await asyncio.to_thread(RawClient, running.address)
            try:
                # The job watches' first states fill the connection's window ...
                job_request = service_pb2.WatchMediaJobRequest(job_id=job.job_id)
                streams = await asyncio.to_thread(
                    open_watches,
                    client,
                    WATCH_JOB,
                    job_request.SerializeToString(),
                    "job",
                    RAW_JOB_WATCHES,
                )
                await running.tracking.tracker.wait_for(
                    lambda s: s.watchers == RAW_JOB_WATCHES, timeout=WAIT_S
                )
                await until(
                    lambda: writing("WatchMediaJob") > 0,
                    "job watches suspended while grpc writes their first state",
                )
                # ... so that none of the run watches' first states can be written.
                run_request = workflows_pb2.WatchWorkflowExecutionRequest(
                    run_id=triggered.instance_id
                )
                streams |= await asyncio.to_thread(
                    open_watches,
                    client,
                    WATCH_RUN,
                    run_request.SerializeToString(),
                    "run",
                    RAW_RUN_WATCHES,
                )
                follower = run_follower(running)
                await until(lambda: follower.watchers == RAW_RUN_WATCHES, "every run watched")
                await until(
                    lambda: writing("WatchWorkflowExecution") == RAW_RUN_WATCHES,
                    "every run watch suspended while grpc writes its first state",
                )
                if how == "reset":
                    await asyncio.to_thread(client.cancel, streams)
                else:
                    # Gone: its socket closed with what it never read (the kernel resets it),
                    # as when its process dies.
                    client.close()
                calls = {
                    request_id: WATCH_JOB if request_id.startswith("job") else WATCH_RUN
                    for request_id in streams.values()
                }
                await assert_released(running, access, calls, "CANCELLED")
            finally:
                client.close()
            await assert_admitted_again(running, job.job_id, RAW_JOB_WATCHES)
            await assert_drains_at_once(running)
    emulator.state.release_running()
