"""Watches and waits that CI cannot serve end, and say why: `tracking.unreachable_s`.

Real channel -> in-process gateway -> emulator, with the gateway's trackers on a manual clock:
each poll happens exactly when the test moves time to the moment the poller sleeps for
(`ManualTimer.next_wake`), so the schedule (and its cap at the bound) is asserted exactly and no
test waits real minutes. CI fails on purpose through the emulator's fault plan (jobs' describe)
or a request hook (a refusal, and a workflow run's describe, which the plan does not cover).

The bound here is 5 s on that clock; polls start 0.5 s after a change and double to 4 s. A job
whose first failed read is sent at t1 is read again at t1+1 and t1+3, then at t1+5 (not t1+7:
the last read is made at the bound), and that read failing ends its watchers.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Iterable
from contextlib import asynccontextmanager
from dataclasses import dataclass, replace
from typing import Any, cast

import grpc
import pytest
from aiohttp import web

from ci_emulator.errors import CiError
from ci_emulator.faults import FaultSpec
from ci_emulator.hooks import RequestHook
from ci_emulator.hosts import Target as EmulatorTarget
from ci_emulator.server import RunningEmulator
from gateway._proto import media_pb2, service_pb2, workflows_pb2
from gateway.api.server import RunningGateway, start_gateway
from gateway.config.settings import Settings, Tracking
from gateway.credentials import Credentials, StaticCredentialsProvider
from gateway.errors import UpstreamError
from gateway.jobs.tracking import PollSchedule, TrackerStats
from gateway.model import Target
from gateway.resources.calls import ResourceCalls
from gateway.resources.executions import ExecutionFollower
from gateway.rpc_context import CI_REQUEST_ID_METADATA
from tests.conftest import BUCKET, REGION, SAMPLE_KEY, ci_client
from tests.integration.helpers import RichError, rich_error
from tests.jobs.helpers import Call, ManualTimer, assert_ended, next_detail, submit
from tests.resources.conftest import Stubs, platform_access, stubs_on
from tests.resources.test_workflows import create, queue_of, workflow

M, S, W = media_pb2, service_pb2, workflows_pb2
WaitCall = grpc.aio.UnaryUnaryCall[S.WaitMediaJobRequest, S.WaitMediaJobResponse]
RunCall = grpc.aio.UnaryStreamCall[
    W.WatchWorkflowExecutionRequest, W.WatchWorkflowExecutionResponse
]
BOUND_S = 5.0
TRACKING = Tracking(poll_initial_s=0.5, poll_max_s=4.0, unreachable_s=BOUND_S)
IDLE = TrackerStats(jobs=0, watchers=0, pollers=0)
CALL_TIMEOUT_S = 60.0  # real seconds: far beyond what the manual clock lets happen
DESCRIBE_JOBS = "DescribeMediaJob"  # the emulator's name for GET /jobs/<ids>


@dataclass
class Gateway:
    running: RunningGateway
    stubs: Stubs
    timer: ManualTimer

    async def poll(self) -> float:
        """Move the clock to the next poll the gateway sleeps for; that poll's time."""
        due = await self.timer.next_wake()
        self.timer.advance_to(due)
        return due

    @property
    def watchers(self) -> int:
        return self.running.tracking.tracker.stats().watchers


@pytest.fixture
def tracked(settings: Settings) -> Settings:
    return replace(settings, tracking=TRACKING)


@asynccontextmanager
async def manual_gateway(settings: Settings, credentials: Credentials) -> AsyncIterator[Gateway]:
    timer = ManualTimer()
    running = await start_gateway(
        settings, StaticCredentialsProvider(credentials), access=platform_access(), timer=timer
    )
    try:
        async with grpc.aio.insecure_channel(running.address) as channel:
            yield Gateway(running, stubs_on(channel), timer)
    finally:
        await running.stop(grace_s=0)


def fail_with(code: str, message: str, *, prefix: str) -> RequestHook:
    """A request hook: CI answers every GET under `prefix` with `code` (its error XML, its
    RequestId), anything else goes through."""

    async def hook(request: web.Request, target: EmulatorTarget) -> web.StreamResponse | None:
        if request.method == "GET" and target.path.startswith(prefix):
            raise CiError(code, message)
        return None

    return hook


async def failure(end: Awaitable[object]) -> tuple[RichError, grpc.aio.AioRpcError]:
    """How a watch (`call.read()`) or a wait (the call) ended; it must have failed."""
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await end
    return rich_error(caught.value), caught.value


async def assert_unreachable(
    end: Awaitable[object], what: str, *, failed_reads: int, ci: tuple[str, str] | None
) -> RichError:
    """The call ended UNAVAILABLE, UPSTREAM_UNREACHABLE, with CI's last error in its details
    as any CI error carries it (`ci`: CI's Code and Message; None: CI never answered)."""
    error, raw = await failure(end)
    assert error.code is grpc.StatusCode.UNAVAILABLE, error
    assert f"the state of {what} could not be read from CI for 5 s" in error.message
    assert "may still be running: watch it again" in error.message
    info = error.error_info
    assert info is not None and info.reason == "UPSTREAM_UNREACHABLE"
    assert (info.metadata["failed_reads"], info.metadata["unread_s"]) == (str(failed_reads), "5")
    assert info.metadata["attempts"] == "0"  # the polls were every watcher's, none this call's
    if ci is None:
        assert "ci_code" not in info.metadata and error.request_info is None
        assert info.metadata["last_reason"] == "UPSTREAM_UNAVAILABLE"
        assert info.metadata["request_sent"] in {"true", "false"}
        return error
    code, message = ci
    assert (info.metadata["ci_code"], info.metadata["ci_message"]) == (code, message)
    assert f"CI error {code}: {message} (RequestId " in error.message
    request_id = info.metadata["ci_request_id"]
    assert request_id and error.request_info is not None
    assert (error.request_info.request_id, error.request_info.serving_data) == (request_id, "CI")
    trailers = dict(cast("Iterable[tuple[str, str]]", raw.trailing_metadata() or ()))
    assert trailers[CI_REQUEST_ID_METADATA] == request_id
    return error


# ---- jobs: WatchMediaJob and WaitMediaJob ------------------------------------------------------


async def watched_job(gw: Gateway, emulator: RunningEmulator) -> tuple[str, Call, WaitCall]:
    """A job that stays Submitted, one watch (that has its first message) and one wait on it."""
    emulator.state.pause_scheduling()
    job = await submit(gw.stubs.jobs)
    request = S.WatchMediaJobRequest(job_id=job.job_id)
    watch = gw.stubs.jobs.WatchMediaJob(request, timeout=CALL_TIMEOUT_S)
    wait = gw.stubs.jobs.WaitMediaJob(
        S.WaitMediaJobRequest(job_id=job.job_id), timeout=CALL_TIMEOUT_S
    )
    await gw.running.tracking.tracker.wait_for(lambda stats: stats.watchers == 2)
    await gw.poll()  # the first look, after the linger
    assert (await next_detail(watch)).state == M.JOB_STATE_SUBMITTED
    return job.job_id, watch, wait


@pytest.mark.parametrize(
    ("kind", "ci"),
    [
        ("error_500", ("InternalError", "The server encountered an internal error.")),
        ("slowdown_429", ("SlowDown", "Please reduce your request rate.")),
        ("reset_before", None),
    ],
    ids=["5xx", "429", "no-answer"],
)
async def test_a_job_ci_keeps_failing_to_describe_ends_its_watch_and_wait_unavailable(
    tracked: Settings,
    credentials: Credentials,
    emulator: RunningEmulator,
    kind: str,
    ci: tuple[str, str] | None,
) -> None:
    async with manual_gateway(tracked, credentials) as gw:
        job_id, watch, wait = await watched_job(gw, emulator)
        emulator.state.faults.set(DESCRIBE_JOBS, FaultSpec.from_mapping({kind: 1.0}))
        first = await gw.poll()  # the first failed read: the clock starts
        assert await gw.poll() == pytest.approx(first + 1.0)
        assert await gw.poll() == pytest.approx(first + 3.0)
        # Doubling would make it first + 7: the last read is made at the bound instead.
        assert await gw.timer.next_wake() == pytest.approx(first + BOUND_S)
        assert gw.watchers == 2  # nothing ended before the bound

        await gw.poll()  # fails too: unread for 5 s now
        watched = await assert_unreachable(watch.read(), f"job {job_id}", failed_reads=4, ci=ci)
        waited = await assert_unreachable(wait, f"job {job_id}", failed_reads=4, ci=ci)
        # Wait and Watch end alike: one error, the job's, for every watcher of it.
        assert watched.error_info == waited.error_info
        await gw.running.tracking.tracker.wait_for(lambda stats: stats == IDLE)
    assert emulator.state.faults.injected[f"{DESCRIBE_JOBS}:{kind}"] >= 4


async def test_reads_that_recover_before_the_bound_keep_the_watch_to_its_final_state(
    tracked: Settings, credentials: Credentials, emulator: RunningEmulator
) -> None:
    """Each success stops the clock: two spells of failures, each shorter than the bound but
    together far longer, end nothing; the watch and the wait then get the job's end."""
    state = emulator.state
    failing = FaultSpec(error_500=1.0)
    async with manual_gateway(tracked, credentials) as gw:
        job_id, watch, wait = await watched_job(gw, emulator)
        state.faults.set(DESCRIBE_JOBS, failing)
        first = await gw.poll()
        await gw.poll()
        await gw.poll()
        assert await gw.timer.next_wake() == pytest.approx(first + BOUND_S)  # the bound's read

        state.faults.clear()
        assert await gw.poll() == pytest.approx(first + BOUND_S)  # succeeds: the clock stops
        # Unchanged, so 4 s later: no longer held to the first spell's bound.
        assert await gw.timer.next_wake() == pytest.approx(first + BOUND_S + 4.0)

        state.faults.set(DESCRIBE_JOBS, failing)
        second = await gw.poll()  # a new spell, a new clock
        assert await gw.poll() == pytest.approx(second + 4.0)  # 13 s after the first failure
        assert await gw.timer.next_wake() == pytest.approx(second + BOUND_S)
        assert gw.watchers == 2

        state.faults.clear()
        state.resume_scheduling()
        await state.wait_for_job_state(job_id, {"Success"})
        await gw.poll()
        assert (await next_detail(watch)).state == M.JOB_STATE_SUCCESS
        await assert_ended(watch)
        answer = await wait
        assert answer.jobs_detail.state == M.JOB_STATE_SUCCESS
        await gw.running.tracking.tracker.wait_for(lambda stats: stats == IDLE)


async def test_a_refusal_retrying_cannot_help_still_ends_watch_and_wait_at_once(
    tracked: Settings, credentials: Credentials, emulator: RunningEmulator
) -> None:
    async with manual_gateway(tracked, credentials) as gw:
        _, watch, wait = await watched_job(gw, emulator)
        emulator.state.request_hooks.append(
            fail_with("ResourceAccessDenied", "the bucket is not bound to CI", prefix="/jobs/")
        )
        await gw.poll()  # one read, refused: no bound to wait for
        for end in (watch.read(), wait):
            error, _ = await failure(end)
            assert error.code is grpc.StatusCode.FAILED_PRECONDITION, error
            info = error.error_info
            assert info is not None and info.reason == "UPSTREAM_ACCESS_DENIED"
            assert info.metadata["ci_code"] == "ResourceAccessDenied"
            assert error.request_info is not None and error.request_info.request_id
        await gw.running.tracking.tracker.wait_for(lambda stats: stats == IDLE)


async def test_the_clock_is_the_jobs_a_later_watcher_shares_it_and_one_after_the_end_starts_anew(
    tracked: Settings, credentials: Credentials, emulator: RunningEmulator
) -> None:
    """A watcher that joins a job already failing gets its last state at once and ends with
    it, on the job's clock; one that comes after that end starts a tracking of its own, whose
    clock starts at its own first failed read: it is never handed an expired one."""
    async with manual_gateway(tracked, credentials) as gw:
        job_id, early, wait = await watched_job(gw, emulator)
        emulator.state.faults.set(DESCRIBE_JOBS, FaultSpec(error_500=1.0))
        first = await gw.poll()
        await gw.poll()
        await gw.poll()  # first + 3: two seconds of the bound left
        request = S.WatchMediaJobRequest(job_id=job_id)
        late = gw.stubs.jobs.WatchMediaJob(request, timeout=CALL_TIMEOUT_S)
        assert (await next_detail(late)).state == M.JOB_STATE_SUBMITTED  # the last state read
        assert gw.watchers == 3
        assert await gw.poll() == pytest.approx(first + BOUND_S)
        for end in (early.read(), late.read(), wait):
            await assert_unreachable(end, f"job {job_id}", failed_reads=4, ci=ANY_500)
        await gw.running.tracking.tracker.wait_for(lambda stats: stats == IDLE)

        after = gw.stubs.jobs.WatchMediaJob(request, timeout=CALL_TIMEOUT_S)
        await gw.running.tracking.tracker.wait_for(lambda stats: stats.watchers == 1)
        own = await gw.poll()  # its first read (after the linger) fails: its clock starts here
        reads = 1
        while (due := await gw.timer.next_wake()) < own + BOUND_S - 1e-9:  # at most 4 passes
            assert gw.watchers == 1, "ended before its own bound"
            gw.timer.advance_to(due)
            reads += 1
            assert reads < 6
        assert due == pytest.approx(own + BOUND_S)
        await gw.poll()
        await assert_unreachable(after.read(), f"job {job_id}", failed_reads=reads + 1, ci=ANY_500)


ANY_500 = ("InternalError", "The server encountered an internal error.")


# ---- workflow runs: WatchWorkflowExecution ---------------------------------------------------


async def watched_run(gw: Gateway, emulator: RunningEmulator) -> tuple[str, RunCall]:
    """A run held Running, and a watch of it that has its first message."""
    emulator.state.hold_running()
    created = await create(gw.stubs, workflow(queue_of(emulator)))
    triggered = await gw.stubs.workflows.TriggerMediaWorkflow(
        W.TriggerMediaWorkflowRequest(workflow_id=created.workflow_id, object=SAMPLE_KEY)
    )
    run_id = triggered.instance_id
    await emulator.state.resources.wait_for_run(run_id, {"Running"})
    call = gw.stubs.workflows.WatchWorkflowExecution(
        W.WatchWorkflowExecutionRequest(run_id=run_id), timeout=CALL_TIMEOUT_S
    )
    await gw.poll()  # the first look, after the linger
    first = await call.read()
    assert isinstance(first, W.WatchWorkflowExecutionResponse)
    assert first.workflow_execution.state == M.JOB_STATE_RUNNING
    return run_id, call


def run_hook(code: str, message: str, run_id: str) -> RequestHook:
    return fail_with(code, message, prefix=f"/workflowexecution/{run_id}")


async def ends_in_success(call: Any) -> None:
    """The run watch's next message is the run's Success, and then the stream ends."""
    final = await call.read()
    assert isinstance(final, W.WatchWorkflowExecutionResponse)
    assert final.workflow_execution.state == M.JOB_STATE_SUCCESS
    assert await call.read() is grpc.aio.EOF  # type: ignore[attr-defined]


async def test_a_run_ci_keeps_failing_to_describe_ends_its_watch_unavailable_then_a_new_one_starts(
    tracked: Settings, credentials: Credentials, emulator: RunningEmulator
) -> None:
    state = emulator.state
    try:
        async with manual_gateway(tracked, credentials) as gw:
            run_id, call = await watched_run(gw, emulator)
            hook = run_hook(*ANY_500, run_id)
            state.request_hooks.append(hook)
            first = await gw.poll()
            assert await gw.poll() == pytest.approx(first + 1.0)
            assert await gw.poll() == pytest.approx(first + 3.0)
            assert await gw.timer.next_wake() == pytest.approx(first + BOUND_S)
            await gw.poll()
            await assert_unreachable(
                call.read(), f"workflow run {run_id}", failed_reads=4, ci=ANY_500
            )

            # The ended run is not kept: a new watch reads CI afresh and follows it to its end.
            state.request_hooks.remove(hook)
            again = gw.stubs.workflows.WatchWorkflowExecution(
                W.WatchWorkflowExecutionRequest(run_id=run_id), timeout=CALL_TIMEOUT_S
            )
            await gw.poll()
            reply = await again.read()
            assert isinstance(reply, W.WatchWorkflowExecutionResponse)
            assert reply.workflow_execution.state == M.JOB_STATE_RUNNING
            state.release_running()
            await state.resources.wait_for_run(run_id, {"Success"})
            await gw.poll()
            await ends_in_success(again)
            assert await again.code() is grpc.StatusCode.OK
    finally:
        state.release_running()


async def test_a_run_whose_reads_recover_before_the_bound_is_watched_to_its_end(
    tracked: Settings, credentials: Credentials, emulator: RunningEmulator
) -> None:
    state = emulator.state
    try:
        async with manual_gateway(tracked, credentials) as gw:
            run_id, call = await watched_run(gw, emulator)
            hook = run_hook(*ANY_500, run_id)
            state.request_hooks.append(hook)
            first = await gw.poll()
            await gw.poll()
            await gw.poll()
            assert await gw.timer.next_wake() == pytest.approx(first + BOUND_S)

            state.request_hooks.remove(hook)
            state.release_running()
            await state.resources.wait_for_run(run_id, {"Success"})
            await gw.poll()  # the bound's read succeeds
            await ends_in_success(call)
    finally:
        state.release_running()


async def test_a_run_refusal_retrying_cannot_help_still_ends_the_watch_at_once(
    tracked: Settings, credentials: Credentials, emulator: RunningEmulator
) -> None:
    state = emulator.state
    try:
        async with manual_gateway(tracked, credentials) as gw:
            run_id, call = await watched_run(gw, emulator)
            state.request_hooks.append(
                run_hook("ResourceAccessDenied", "the bucket is not bound to CI", run_id)
            )
            await gw.poll()
            error, _ = await failure(call.read())
            assert error.code is grpc.StatusCode.FAILED_PRECONDITION, error
            assert error.error_info is not None
            assert error.error_info.metadata["ci_code"] == "ResourceAccessDenied"
    finally:
        state.release_running()


async def test_a_run_ended_on_an_error_is_forgotten_while_its_watchers_are_still_leaving(
    tracked: Settings, credentials: Credentials, emulator: RunningEmulator
) -> None:
    """A job the tracker gives up on is forgotten at once (`JobTracker._drop`); so is a run: a
    watcher that arrives before the ended run's watchers have left follows it afresh instead of
    joining the end. Held open here through the follower itself, which a gRPC watch leaves at
    once."""
    state = emulator.state
    try:
        async with manual_gateway(tracked, credentials) as gw:
            run_id, call = await watched_run(gw, emulator)
            call.cancel()
        timer = ManualTimer()
        client = ci_client(tracked, credentials)
        follower = ExecutionFollower(
            ResourceCalls(client),
            schedule=PollSchedule(initial_s=0.5, max_s=4.0),
            timer=timer,
            unreachable_s=BOUND_S,
        )
        target = Target(BUCKET, REGION)
        refuse = run_hook("ResourceAccessDenied", "the bucket is not bound to CI", run_id)
        state.request_hooks.append(refuse)
        try:
            async with follower.watch(target, run_id, "early") as early:
                timer.advance_to(await timer.next_wake())
                with pytest.raises(UpstreamError):
                    await anext(early)
                state.request_hooks.remove(refuse)
                async with follower.watch(target, run_id, "later") as later:
                    timer.advance_to(await timer.next_wake())  # its own first look
                    assert (await anext(later)).state == M.JOB_STATE_RUNNING
        finally:
            await follower.close()
            await client.close()
    finally:
        state.release_running()
