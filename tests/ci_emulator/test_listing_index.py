"""The listing indexes: `GET /jobs` answers exactly what a full scan answers, and a listing by
input object, queue, workflow or state looks at those jobs only, however many others the bucket
holds."""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path

import aiohttp
from hypothesis import given, settings
from hypothesis import strategies as st

from ci_emulator.config import BucketConfig, EmulatorConfig
from ci_emulator.jobs import ALL_STATES, Job, JobSpec, JobState, WorkflowOrigin
from ci_emulator.listing import ListQuery, scan_page
from ci_emulator.queues import QueueState
from ci_emulator.server import RunningEmulator
from ci_emulator.state import EmulatorState
from tests.ci_emulator.conftest import BUCKET, VIDEO_KEY, SignedClient
from tests.ci_emulator.test_listing import job_ids

BUCKETS = ("alpha-1250000000", "beta-1250000000")
OBJECTS = ("in/a.mp4", "in/b.mp4", "in/c.mp4")
TAGS = ("MediaInfo", "Snapshot")  # the index must not assume every job is MediaInfo
BASE = 1_700_000_000
MOMENTS = (BASE + 0.0, BASE + 0.4, BASE + 1.0, BASE + 5.0)  # ties within one second too
BOUNDS = (None, BASE, BASE + 1, BASE + 2, BASE + 5)
FATES = ("Submitted", "Running", "Success", "Failed", "Cancel")
WORKFLOWS = ("wone", "wtwo")


@dataclass
class Clock:
    now: float = MOMENTS[0]

    def __call__(self) -> float:
        return self.now


@dataclass(frozen=True)
class Planned:
    bucket: int
    tag: str
    key: str
    second_queue: bool
    moment: float
    fate: str
    workflow: str | None
    """The workflow whose run started the job; None for a client's submit."""


PLANNED = st.builds(
    Planned,
    bucket=st.integers(0, 1),
    tag=st.sampled_from(TAGS),
    key=st.sampled_from(OBJECTS),
    second_queue=st.booleans(),
    moment=st.sampled_from(MOMENTS),
    fate=st.sampled_from(FATES),
    workflow=st.sampled_from((None, None, *WORKFLOWS)),
)


def build(plan: list[Planned], clock: Clock) -> tuple[EmulatorState, list[Job], list[str]]:
    config = EmulatorConfig(
        buckets=tuple(BucketConfig(name, "ap-guangzhou", Path("/nonexistent")) for name in BUCKETS),
        credentials={},
        clock=clock,
    )
    state = EmulatorState(config)
    queues = []
    for name in BUCKETS:
        queues += [state.default_queue[name], state.add_queue(name, "second").queue_id]
    jobs: list[Job] = []
    for item in plan:
        clock.now = item.moment
        bucket = config.buckets[item.bucket]
        queue_id = queues[item.bucket * 2 + item.second_queue]
        origin = (
            None
            if item.workflow is None
            else WorkflowOrigin(f"i{len(jobs)}", item.workflow, "name", "Node_1")
        )
        spec = JobSpec(item.tag, item.key, queue_id, workflow=origin)
        jobs.append(state.submit(bucket, spec))
    return state, jobs, queues


def apply_fates(state: EmulatorState, plan: list[Planned], jobs: list[Job], clock: Clock) -> None:
    """Move each job to its planned state the ways the emulator does (directly on the job,
    as the scheduler does, or through the state, as cancel does)."""
    for item, job in zip(plan, jobs, strict=True):
        if item.fate == "Cancel":
            state.cancel(job)
        elif item.fate != "Submitted":
            job.start(clock())
            if item.fate == "Success":
                job.succeed(clock(), {})
            elif item.fate == "Failed":
                job.fail(clock(), "InvalidMedia", "not media")


def queries(queue_ids: list[str], n_jobs: int) -> st.SearchStrategy[ListQuery]:
    states = st.frozensets(st.sampled_from(list(JobState))).map(lambda s: s or ALL_STATES)
    return st.builds(
        ListQuery,
        tag=st.sampled_from(TAGS),
        queue_id=st.none() | st.sampled_from(queue_ids),
        states=states,
        ascending=st.booleans(),
        size=st.integers(1, 6),
        after_seq=st.none() | st.integers(0, n_jobs + 2),
        start_time=st.sampled_from(BOUNDS),
        end_time=st.sampled_from(BOUNDS),
        input_object=st.none() | st.sampled_from((*OBJECTS, "in/none.mp4")),
        workflow_id=st.none() | st.sampled_from((*WORKFLOWS, "wnone")),
        batch_only=st.sampled_from((False, False, False, True)),
    )


def assert_same_as_scan(state: EmulatorState, query: ListQuery) -> None:
    """Every page, followed by its tokens to the end, equals the full scan's."""
    for bucket in BUCKETS:
        everything = [job for job in state.jobs.values() if job.bucket == bucket]
        current = query
        for _ in range(len(everything) + 2):  # bounded: each page holds at least one job
            found = state.list_jobs(bucket, current)
            expected, token = scan_page(everything, current)
            assert [j.job_id for j in found.jobs] == [j.job_id for j in expected], current
            assert found.next_token == token, current
            if not token:
                break
            current = replace(current, after_seq=found.jobs[-1].seq)
        else:
            raise AssertionError("paging did not end")


@settings(max_examples=150, deadline=None)
@given(plan=st.lists(PLANNED, max_size=30), pause_second=st.booleans(), data=st.data())
def test_the_indexed_listing_answers_what_a_full_scan_answers(
    plan: list[Planned], pause_second: bool, data: st.DataObject
) -> None:
    clock = Clock()
    state, jobs, queue_ids = build(plan, clock)
    asked = data.draw(st.lists(queries(queue_ids, len(jobs)), min_size=1, max_size=6))
    for query in asked:  # all Submitted
        assert_same_as_scan(state, query)
    apply_fates(state, plan, jobs, clock)
    if pause_second:  # its waiting jobs move to Pause
        state.set_queue_state(queue_ids[1], QueueState.PAUSED)
    for query in asked:  # the state index followed every change
        assert_same_as_scan(state, query)


# ---- over HTTP: what a listing touches ------------------------------------------------------


async def test_a_listing_by_input_object_touches_only_that_objects_jobs(
    client: SignedClient, emu: RunningEmulator
) -> None:
    state = emu.state
    state.pause_scheduling()
    mine = [await client.submit_ok(VIDEO_KEY) for _ in range(3)]
    others = [await client.submit_ok(f"input/other-{i % 5}.mp4") for i in range(40)]
    second = state.add_queue(BUCKET, "second").queue_id
    queued = [await client.submit_ok(f"input/q-{i}.mp4", QueueId=second) for i in range(2)]

    async def examined(params: dict[str, str], expected: list[str]) -> int:
        before = state.list_jobs_examined
        assert job_ids(await client.list_jobs(params)) == expected, params
        return state.list_jobs_examined - before

    # The gateway's reconcile listing: one object, newest first, a full page.
    assert await examined({"inputObject": VIDEO_KEY, "size": "100"}, mine[::-1]) == 3
    assert await examined({"inputObject": VIDEO_KEY, "size": "1"}, mine[-1:]) == 2
    assert await examined({"inputObject": "input/none.mp4"}, []) == 0
    assert await examined({"queueId": second}, queued[::-1]) == 2
    assert await examined({"states": "Running"}, []) == 0
    # Without a narrowing filter the walk still stops one job beyond the page.
    assert await examined({"size": "5"}, (mine + others + queued)[::-1][:5]) == 6
    async with aiohttp.ClientSession() as admin:
        async with admin.get(f"{emu.url}/_emulator/counters") as answer:
            counters = await answer.json()
    assert counters["list_jobs_examined"] == state.list_jobs_examined == 3 + 2 + 2 + 6
