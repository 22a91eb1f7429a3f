"""WaitMediaJob (AIP-151's WaitOperation): returns at completion, or before the deadline with
the latest state."""

from __future__ import annotations

import time
from dataclasses import replace

import grpc
import pytest
from google.protobuf import duration_pb2

from ci_emulator.server import RunningEmulator
from gateway._proto import media_pb2, service_pb2
from gateway.config.settings import Settings, Tracking
from gateway.credentials import Credentials
from tests.integration.helpers import rich_error
from tests.integration.test_jobs import assert_matches_sample
from tests.jobs.helpers import gateway, submit

M, S = media_pb2, service_pb2
FAST = Tracking(poll_initial_s=0.05, poll_max_s=0.2)


@pytest.fixture
def fast(settings: Settings) -> Settings:
    return replace(settings, tracking=FAST)


async def test_returns_when_the_job_is_done(
    fast: Settings, credentials: Credentials, emulator: RunningEmulator
) -> None:
    async with gateway(fast, credentials) as gw:
        job = await submit(gw.stub, operation=M.Operation(user_data="w"))
        answer = await gw.stub.WaitMediaJob(S.WaitMediaJobRequest(job_id=job.job_id), timeout=30)
        assert answer.jobs_detail.state == M.JOB_STATE_SUCCESS
        assert answer.jobs_detail.operation.user_data == "w"
        assert_matches_sample(answer.jobs_detail.operation.media_info)
        await gw.tracker.wait_for(lambda stats: stats.jobs == 0 and stats.pollers == 0)


async def test_returns_the_latest_state_when_its_timeout_ends_first(
    fast: Settings, credentials: Credentials, emulator: RunningEmulator
) -> None:
    emulator.state.pause_scheduling()
    async with gateway(fast, credentials) as gw:
        job = await submit(gw.stub)
        started = time.monotonic()
        answer = await gw.stub.WaitMediaJob(
            S.WaitMediaJobRequest(
                job_id=job.job_id, timeout=duration_pb2.Duration(nanos=300_000_000)
            ),
            timeout=30,
        )
        assert time.monotonic() - started < 10
        assert (answer.jobs_detail.job_id, answer.jobs_detail.state) == (
            job.job_id,
            M.JOB_STATE_SUBMITTED,
        )


async def test_answers_before_the_callers_deadline_instead_of_failing(
    fast: Settings, credentials: Credentials, emulator: RunningEmulator
) -> None:
    emulator.state.hold_running()
    async with gateway(fast, credentials) as gw:
        job = await submit(gw.stub)
        await emulator.state.wait_for_job_state(job.job_id, {"Running"})
        answer = await gw.stub.WaitMediaJob(S.WaitMediaJobRequest(job_id=job.job_id), timeout=1.0)
        assert answer.jobs_detail.state == M.JOB_STATE_RUNNING
        emulator.state.release_running()
        answer = await gw.stub.WaitMediaJob(S.WaitMediaJobRequest(job_id=job.job_id), timeout=30)
        assert answer.jobs_detail.state == M.JOB_STATE_SUCCESS


@pytest.mark.parametrize(
    ("seconds", "nanos"),
    [
        (-1, 0),
        # Each was INTERNAL: beyond a Duration's range, ToTimedelta raised OverflowError.
        (2**63 - 1, 0),
        (-(2**63), 0),
        # A Duration of 1 s and -1 ns is no duration at all; it was read as 0.999999999 s.
        (1, -1),
    ],
)
async def test_a_timeout_that_is_no_wait_is_invalid(
    fast: Settings, credentials: Credentials, emulator: RunningEmulator, seconds: int, nanos: int
) -> None:
    timeout = duration_pb2.Duration(seconds=seconds, nanos=nanos)
    async with gateway(fast, credentials) as gw:
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await gw.stub.WaitMediaJob(
                S.WaitMediaJobRequest(job_id="j1", timeout=timeout), timeout=10
            )
    error = rich_error(caught.value)
    assert error.code is grpc.StatusCode.INVALID_ARGUMENT
    assert list(error.violations) == ["timeout"]
    assert sum(emulator.state.operations.values()) == 0
