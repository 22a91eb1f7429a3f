"""WatchMediaJob delivers a Progress change as a message of its own (emulator -> gateway, polls)."""

from __future__ import annotations

from dataclasses import replace

from ci_emulator.server import RunningEmulator
from gateway._proto import media_pb2
from gateway.config.settings import Settings, Tracking
from gateway.credentials import Credentials
from tests.integration.test_jobs import assert_matches_sample
from tests.jobs.helpers import assert_ended, gateway, next_detail, submit, watch

M = media_pb2
FAST = Tracking(poll_initial_s=0.05, poll_max_s=0.2)


async def test_a_progress_change_reaches_the_watcher_once_in_order_before_success(
    settings: Settings, credentials: Credentials, emulator: RunningEmulator
) -> None:
    state = emulator.state
    async with gateway(replace(settings, tracking=FAST), credentials) as gw:
        state.pause_scheduling()
        job = await submit(gw.stub)
        call = watch(gw.stub, job.job_id)
        seen = [await next_detail(call)]  # Submitted: no Progress yet

        state.hold_running()  # started jobs stay Running at Progress 0
        state.resume_scheduling()
        seen.append(await next_detail(call))
        assert (seen[-1].state, seen[-1].progress) == (M.JOB_STATE_RUNNING, "0")

        # Nothing else can change while running is held: the next message is this change.
        state.set_progress(job.job_id, 50)
        seen.append(await next_detail(call))

        state.release_running()
        seen.append(await next_detail(call))
        await assert_ended(call)

    assert [(d.state, d.progress) for d in seen] == [
        (M.JOB_STATE_SUBMITTED, ""),
        (M.JOB_STATE_RUNNING, "0"),
        (M.JOB_STATE_RUNNING, "50"),
        (M.JOB_STATE_SUCCESS, "100"),
    ]
    assert seen[2].start_time == seen[1].start_time and not seen[2].end_time
    assert_matches_sample(seen[-1].operation.media_info)
