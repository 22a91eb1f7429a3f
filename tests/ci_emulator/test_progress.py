"""`<Progress>` in JobsDetail: absent before a job starts, 0 when it starts, moved by the test
control while Running, 100 on Success, kept on Failed; and the control's refusals."""

from __future__ import annotations

from collections.abc import AsyncIterator

import aiohttp
import pytest

from ci_emulator.jobs import TransitionError
from ci_emulator.queues import QueueState
from ci_emulator.server import RunningEmulator
from tests.ci_emulator.conftest import BUCKET, DONE, TEXT_KEY, SignedClient
from tests.ci_emulator.test_jobs import DETAIL_ORDER


async def described(client: SignedClient, job_id: str) -> tuple[list[str], str | None]:
    """The describe answer's node names and its Progress text (None: no Progress node)."""
    detail = (await client.describe(job_id)).ok().xml().find("JobsDetail")
    assert detail is not None
    return [str(child.tag) for child in detail], detail.findtext("Progress")


@pytest.fixture
async def admin(emu: RunningEmulator) -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession(base_url=emu.url) as session:
        yield session


async def post_progress(
    admin: aiohttp.ClientSession, job_id: str, body: object
) -> tuple[int, dict[str, object]]:
    async with admin.post(f"/_emulator/jobs/{job_id}/progress", json=body) as answer:
        return answer.status, await answer.json()


async def test_progress_through_a_successful_job(
    client: SignedClient, emu: RunningEmulator, admin: aiohttp.ClientSession
) -> None:
    state = emu.state
    state.pause_scheduling()
    job_id = await client.submit_ok()
    submitted = (await client.submit()).ok().xml().find("JobsDetail")
    assert submitted is not None and submitted.find("Progress") is None
    tags, progress = await described(client, job_id)
    assert progress is None and "Progress" not in tags
    listed = (await client.list_jobs()).ok().xml()
    assert listed.find("JobsDetail/Progress") is None

    state.hold_running()
    state.resume_scheduling()
    await state.wait_for_job_state(job_id, {"Running"})
    tags, progress = await described(client, job_id)
    assert progress == "0"
    assert tags == DETAIL_ORDER  # Progress between Operation and QueueId, as when finished

    state.set_progress(job_id, 50)
    assert (await described(client, job_id))[1] == "50"
    assert await post_progress(admin, job_id, {"progress": 75}) == (
        200,
        {"job_id": job_id, "progress": 75},
    )
    assert (await described(client, job_id))[1] == "75"

    state.release_running()
    await state.wait_for_job_state(job_id, {"Success"})
    assert await described(client, job_id) == (DETAIL_ORDER, "100")


async def test_a_failed_job_keeps_the_progress_it_reached(
    client: SignedClient, emu: RunningEmulator
) -> None:
    state = emu.state
    state.hold_running()
    job_id = await client.submit_ok(TEXT_KEY)
    await state.wait_for_job_state(job_id, {"Running"})
    state.set_progress(job_id, 30)
    state.release_running()
    job = await state.wait_for_job_state(job_id, DONE)
    assert job.state == "Failed"
    assert (await described(client, job_id))[1] == "30"


async def test_jobs_that_never_ran_have_no_progress(
    client: SignedClient, emu: RunningEmulator
) -> None:
    state = emu.state
    state.pause_scheduling()
    cancelled, paused = await client.submit_ok(), await client.submit_ok()
    (await client.cancel(cancelled)).ok()
    state.set_queue_state(state.default_queue[BUCKET], QueueState.PAUSED)
    assert state.jobs[paused].state == "Pause"
    for job_id in (cancelled, paused):
        assert (await described(client, job_id))[1] is None


async def test_the_progress_control_refuses_what_ci_could_not_report(
    client: SignedClient, emu: RunningEmulator, admin: aiohttp.ClientSession
) -> None:
    state = emu.state
    state.pause_scheduling()
    waiting = await client.submit_ok()
    with pytest.raises(KeyError):
        state.set_progress("j" + "0" * 32, 10)
    with pytest.raises(TransitionError):
        state.set_progress(waiting, 10)
    assert (await post_progress(admin, "j" + "0" * 32, {"progress": 10}))[0] == 404
    assert (await post_progress(admin, waiting, {"progress": 10}))[0] == 409

    state.hold_running()
    state.resume_scheduling()
    await state.wait_for_job_state(waiting, {"Running"})
    state.set_progress(waiting, 40)
    for bad in (101, -1, 39):  # beyond 100, negative, backwards
        with pytest.raises(ValueError):
            state.set_progress(waiting, bad)
    for body in ({"progress": 101}, {"progress": "50"}, {"progress": True}, {}, [50], 50):
        assert (await post_progress(admin, waiting, body))[0] == 400, body
    async with admin.post(f"/_emulator/jobs/{waiting}/progress", data=b"{not json") as answer:
        assert answer.status == 400
    assert (await described(client, waiting))[1] == "40"  # nothing refused changed it
    state.release_running()
    await state.wait_for_job_state(waiting, DONE)
