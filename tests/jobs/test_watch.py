"""WatchMediaJob end to end: real channel -> gateway -> tracker -> emulator, polling only."""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING

import grpc
import pytest

from ci_emulator.queues import QueueState
from ci_emulator.server import RunningEmulator
from gateway._proto import media_pb2, service_pb2, service_pb2_grpc
from gateway.access.interceptor import ClientAccess
from gateway.api.server import start_gateway
from gateway.config.settings import Settings, Tracking
from gateway.credentials import Credentials, StaticCredentialsProvider
from gateway.jobs.tracking import TrackerStats
from gateway.model import Target
from tests.access.helpers import bearer, token_access_file
from tests.conftest import BUCKET, REGION, SAMPLE_KEY
from tests.integration.helpers import rich_error
from tests.integration.test_jobs import assert_matches_sample
from tests.jobs.helpers import Call, assert_ended, gateway, next_detail, submit, watch

if TYPE_CHECKING:
    from gateway._proto.service_pb2_grpc import MediaJobServiceAsyncStub as Stub

M, S = media_pb2, service_pb2
FAST = Tracking(poll_initial_s=0.05, poll_max_s=0.2)
IDLE = TrackerStats(jobs=0, watchers=0, pollers=0)


@pytest.fixture
def fast(settings: Settings) -> Settings:
    return replace(settings, tracking=FAST)


async def test_watch_sees_each_transition_once_in_order_and_ends_with_media_info(
    fast: Settings, credentials: Credentials, emulator: RunningEmulator
) -> None:
    state = emulator.state
    async with gateway(fast, credentials) as gw:
        state.pause_scheduling()
        job = await submit(gw.stub, operation=M.Operation(user_data="mine"))
        call = watch(gw.stub, job.job_id)
        first = await next_detail(call)
        assert (first.job_id, first.state) == (job.job_id, M.JOB_STATE_SUBMITTED)

        state.hold_running()
        state.resume_scheduling()
        running = await next_detail(call)
        assert running.state == M.JOB_STATE_RUNNING
        assert running.start_time and not running.end_time

        state.release_running()
        final = await next_detail(call)
        assert final.state == M.JOB_STATE_SUCCESS, (final.code, final.message)
        assert_matches_sample(final.operation.media_info)
        await assert_ended(call)

        # The exactly-once marker never reaches a watcher.
        assert {d.operation.user_data for d in (first, running, final)} == {"mine"}
        await gw.tracker.wait_for(lambda stats: stats == IDLE)


async def test_a_late_watcher_starts_at_the_current_state_and_shares_the_tracker(
    fast: Settings, credentials: Credentials, emulator: RunningEmulator
) -> None:
    state = emulator.state
    async with gateway(fast, credentials) as gw:
        state.pause_scheduling()
        job = await submit(gw.stub)
        early = watch(gw.stub, job.job_id)
        assert (await next_detail(early)).state == M.JOB_STATE_SUBMITTED
        state.hold_running()
        state.resume_scheduling()
        await state.wait_for_job_state(job.job_id, {"Running"})
        assert (await next_detail(early)).state == M.JOB_STATE_RUNNING

        late = watch(gw.stub, job.job_id)
        assert (await next_detail(late)).state == M.JOB_STATE_RUNNING  # not the old Submitted
        assert gw.tracker.stats() == TrackerStats(jobs=1, watchers=2, pollers=1)

        state.release_running()
        for call in (early, late):
            assert (await next_detail(call)).state == M.JOB_STATE_SUCCESS
            await assert_ended(call)


async def test_a_failed_job_ends_the_stream_with_its_code(
    fast: Settings, credentials: Credentials, emulator: RunningEmulator
) -> None:
    async with gateway(fast, credentials) as gw:
        job = await submit(gw.stub, key="input/notes.txt")
        call = watch(gw.stub, job.job_id)
        states = []
        for _ in range(3):  # Submitted, Running, Failed at most; fewer if polls miss one
            detail = await next_detail(call)
            states.append(detail.state)
            if detail.state == M.JOB_STATE_FAILED:
                break
        assert states[-1] == M.JOB_STATE_FAILED
        assert detail.code and detail.code != "Success"
        assert len(states) == len(set(states))
        await assert_ended(call)


async def test_cancelling_the_stream_releases_the_tracker(
    fast: Settings, credentials: Credentials, emulator: RunningEmulator
) -> None:
    emulator.state.pause_scheduling()
    async with gateway(fast, credentials) as gw:
        job = await submit(gw.stub)
        one, two = watch(gw.stub, job.job_id), watch(gw.stub, job.job_id)
        await next_detail(one)
        await next_detail(two)
        target = Target(BUCKET, REGION)
        assert gw.tracker.stats() == TrackerStats(jobs=1, watchers=2, pollers=1)

        one.cancel()
        await gw.tracker.wait_for(lambda stats: stats.watchers == 1)
        assert gw.tracker.stats() == TrackerStats(jobs=1, watchers=1, pollers=1)

        two.cancel()
        await gw.tracker.wait_for(lambda stats: stats == IDLE)
        assert gw.tracker.latest(target, job.job_id) is None
        assert await one.code() is grpc.StatusCode.CANCELLED


async def test_the_deadline_ends_a_watch_and_releases_it(
    fast: Settings, credentials: Credentials, emulator: RunningEmulator
) -> None:
    emulator.state.pause_scheduling()
    async with gateway(fast, credentials) as gw:
        job = await submit(gw.stub)
        call = watch(gw.stub, job.job_id, timeout=1.0)
        await next_detail(call)
        assert await call.code() is grpc.StatusCode.DEADLINE_EXCEEDED
        await gw.tracker.wait_for(lambda stats: stats == IDLE)


async def test_an_unknown_job_is_not_found(
    fast: Settings, credentials: Credentials, emulator: RunningEmulator
) -> None:
    async with gateway(fast, credentials) as gw:
        call = watch(gw.stub, "j" + "0" * 32)
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await call.read()
        error = rich_error(caught.value)
        assert error.code is grpc.StatusCode.NOT_FOUND
        assert error.error_info is not None and error.error_info.reason == "UPSTREAM_NOT_FOUND"
        await gw.tracker.wait_for(lambda stats: stats == IDLE)


async def test_an_invalid_job_id_is_refused_before_ci_is_asked(
    fast: Settings, credentials: Credentials, emulator: RunningEmulator
) -> None:
    async with gateway(fast, credentials) as gw:
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await watch(gw.stub, "j1,j2").read()
        error = rich_error(caught.value)
        assert error.code is grpc.StatusCode.INVALID_ARGUMENT
        assert "job_id" in error.violations
    assert emulator.state.operations["DescribeMediaJob"] == 0


async def test_watcher_caps_per_client_and_in_total_are_resource_exhausted(
    settings: Settings, credentials: Credentials, emulator: RunningEmulator
) -> None:
    capped = replace(settings, tracking=replace(FAST, max_watchers=3, max_watchers_per_client=2))
    emulator.state.pause_scheduling()
    async with gateway(capped, credentials) as gw:
        job = await submit(gw.stub)
        a1, a2 = watch(gw.stub, job.job_id), watch(gw.stub, job.job_id)
        await next_detail(a1)
        await next_detail(a2)

        with pytest.raises(grpc.aio.AioRpcError) as per_client:
            await watch(gw.stub, job.job_id).read()
        error = rich_error(per_client.value)
        assert error.code is grpc.StatusCode.RESOURCE_EXHAUSTED
        assert error.error_info is not None and error.error_info.metadata["limit"] == "2"
        assert error.retry_info is not None

        # Another connection from the same address is the same caller (the peer's port does
        # not make a new client): still over its cap of two.
        async with gateway_channel(gw.running.address) as other:
            with pytest.raises(grpc.aio.AioRpcError) as same_caller:
                await watch(other, job.job_id).read()
            error = rich_error(same_caller.value)
            assert error.error_info is not None and error.error_info.metadata["limit"] == "2"

            # A watcher that leaves frees its place, on any of the caller's connections.
            a1.cancel()
            await gw.tracker.wait_for(lambda stats: stats.watchers == 1)
            b1 = watch(other, job.job_id)
            assert (await next_detail(b1)).state == M.JOB_STATE_SUBMITTED


async def test_the_total_watcher_cap_is_resource_exhausted(
    settings: Settings, credentials: Credentials, emulator: RunningEmulator
) -> None:
    capped = replace(settings, tracking=replace(FAST, max_watchers=2, max_watchers_per_client=5))
    emulator.state.pause_scheduling()
    async with gateway(capped, credentials) as gw:
        job = await submit(gw.stub)
        first, second = watch(gw.stub, job.job_id), watch(gw.stub, job.job_id)
        await next_detail(first)
        await next_detail(second)
        with pytest.raises(grpc.aio.AioRpcError) as total:
            await watch(gw.stub, job.job_id).read()
        error = rich_error(total.value)
        assert error.code is grpc.StatusCode.RESOURCE_EXHAUSTED
        assert error.error_info is not None and error.error_info.metadata["limit"] == "2"


@asynccontextmanager
async def gateway_channel(address: str) -> AsyncIterator[Stub]:
    """A second channel: its own connection (its own source port, the same address)."""
    async with grpc.aio.insecure_channel(
        address, options=[("grpc.use_local_subchannel_pool", 1)]
    ) as channel:
        yield service_pb2_grpc.MediaJobServiceStub(channel)


async def test_a_paused_queue_shows_as_pause_and_back(
    fast: Settings, credentials: Credentials, emulator: RunningEmulator
) -> None:
    state = emulator.state
    queue = state.default_queue[BUCKET]
    async with gateway(fast, credentials) as gw:
        state.pause_scheduling()
        job = await submit(gw.stub)
        call = watch(gw.stub, job.job_id)
        assert (await next_detail(call)).state == M.JOB_STATE_SUBMITTED
        state.set_queue_state(queue, QueueState.PAUSED)
        assert (await next_detail(call)).state == M.JOB_STATE_PAUSE
        state.set_queue_state(queue, QueueState.ACTIVE)
        assert (await next_detail(call)).state == M.JOB_STATE_SUBMITTED
        state.resume_scheduling()
        last = await next_detail(call)
        if last.state == M.JOB_STATE_RUNNING:  # seen only if a poll falls inside the run
            last = await next_detail(call)
        assert last.state == M.JOB_STATE_SUCCESS
        await assert_ended(call)


async def test_shutdown_ends_watches_at_once_with_unavailable(
    fast: Settings, credentials: Credentials, emulator: RunningEmulator
) -> None:
    emulator.state.pause_scheduling()
    running = await start_gateway(fast, StaticCredentialsProvider(credentials))
    try:
        async with grpc.aio.insecure_channel(running.address) as channel:
            stub: Stub = service_pb2_grpc.MediaJobServiceStub(channel)
            job = await submit(stub)
            call = watch(stub, job.job_id)
            await next_detail(call)
            # A long grace: only the watches ending by themselves lets stop() return soon.
            async with asyncio.timeout(10):
                await running.stop(grace_s=60)
            error = rich_error(await call_error(call))
            assert error.code is grpc.StatusCode.UNAVAILABLE
            assert "shutting down" in error.message
    finally:
        await running.stop(grace_s=0)


async def call_error(call: Call) -> grpc.aio.AioRpcError:
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await call.read()
    return caught.value


async def test_in_shared_mode_a_client_is_its_authenticated_name_not_its_connection(
    settings: Settings, credentials: Credentials, emulator: RunningEmulator, tmp_path: Path
) -> None:
    alpha, beta = "tok-" + secrets.token_urlsafe(24), "tok-" + secrets.token_urlsafe(24)
    access = token_access_file(tmp_path / "access.toml", ("alpha", alpha), ("beta", beta))
    one_each = replace(settings, tracking=replace(FAST, max_watchers_per_client=1))
    emulator.state.pause_scheduling()
    running = await start_gateway(
        one_each, StaticCredentialsProvider(credentials), access=ClientAccess.from_file(access)
    )
    try:
        async with (
            gateway_channel(running.address) as first,
            gateway_channel(running.address) as second,
        ):
            job = (
                await first.SubmitMediaJob(
                    S.SubmitMediaJobRequest(request=M.Request(input=M.Input(object=SAMPLE_KEY))),
                    metadata=bearer(alpha),
                    timeout=10,
                )
            ).jobs_detail
            request = S.WatchMediaJobRequest(job_id=job.job_id)
            watching = first.WatchMediaJob(request, metadata=bearer(alpha), timeout=30)
            await next_detail(watching)
            # Another connection, the same client: over its cap of one.
            again = second.WatchMediaJob(request, metadata=bearer(alpha), timeout=30)
            error = rich_error(await call_error(again))
            assert error.code is grpc.StatusCode.RESOURCE_EXHAUSTED
            # The same connection, another client: its own cap.
            other = first.WatchMediaJob(request, metadata=bearer(beta), timeout=30)
            assert (await next_detail(other)).state == M.JOB_STATE_SUBMITTED
    finally:
        await running.stop(grace_s=0)


async def test_waits_hold_no_admission_place_so_submits_still_go_through(
    fast: Settings, credentials: Credentials, emulator: RunningEmulator
) -> None:
    """WaitMediaJob holds its call until the job ends: with every admission place taken by
    waits, submits and cancels (what the bound is there to let through) were refused
    RESOURCE_EXHAUSTED. The watcher caps bound the waits, as they bound the streams."""
    bounded = replace(fast, retry=replace(fast.retry, max_in_flight_rpcs=2))
    emulator.state.pause_scheduling()
    async with gateway(bounded, credentials) as gw:
        job = await submit(gw.stub)
        waits = [
            gw.stub.WaitMediaJob(S.WaitMediaJobRequest(job_id=job.job_id), timeout=30)
            for _ in range(2)
        ]
        await gw.tracker.wait_for(lambda stats: stats.watchers == 2)
        another = await submit(gw.stub)  # was RESOURCE_EXHAUSTED: both places held by waits
        assert another.job_id
        emulator.state.resume_scheduling()
        for call in waits:
            assert (await call).jobs_detail.state == M.JOB_STATE_SUCCESS
