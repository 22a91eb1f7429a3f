"""What counts as a change for watchers (`TrackedJob.offer`), without a server."""

from __future__ import annotations

from gateway._proto import media_pb2
from gateway.jobs.tracking import TrackedJob
from gateway.model import Target

M = media_pb2


def detail(state: int, progress: str = "") -> M.JobsDetail:
    text = M.JobState.Name(state).removeprefix("JOB_STATE_").title()
    return M.JobsDetail(job_id="j1", state=state, state_text=text, progress=progress)  # type: ignore[arg-type]


def tracked() -> TrackedJob:
    return TrackedJob(Target("b-1250000000", "ap-guangzhou"), "j1", due=0.0, interval=0.5)


def test_state_and_progress_changes_are_changes_and_repeats_are_not() -> None:
    job = tracked()
    assert job.offer(detail(M.JOB_STATE_RUNNING, "10"))
    assert not job.offer(detail(M.JOB_STATE_RUNNING, "10"))
    assert job.offer(detail(M.JOB_STATE_RUNNING, "55"))
    assert job.offer(detail(M.JOB_STATE_SUCCESS, "100"))
    assert [v for v, _ in job.history] == [1, 2, 3]
    assert job.final


def test_a_late_older_state_never_moves_a_job_back() -> None:
    job = tracked()
    assert job.offer(detail(M.JOB_STATE_RUNNING))
    assert not job.offer(detail(M.JOB_STATE_SUBMITTED))  # a delayed relay of an old answer
    assert job.offer(detail(M.JOB_STATE_FAILED))
    assert not job.offer(detail(M.JOB_STATE_RUNNING))
    assert not job.offer(detail(M.JOB_STATE_SUCCESS))  # final is final
    assert job.detail is not None and job.detail.state == M.JOB_STATE_FAILED


def test_pause_and_submitted_move_both_ways() -> None:
    job = tracked()
    assert job.offer(detail(M.JOB_STATE_SUBMITTED))
    assert job.offer(detail(M.JOB_STATE_PAUSE))
    assert job.offer(detail(M.JOB_STATE_SUBMITTED))
    assert job.version == 3
