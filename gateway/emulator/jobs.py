"""One media job: its lifecycle, and its `JobsDetail` in CI's two observed node orders.

States move `Submitted -> Running -> Success | Failed`, or `Submitted -> Cancel`; while its queue
is paused a waiting job is `Pause` (`Submitted <-> Pause`, and `Pause -> Cancel`, since a paused
job has not started either). The transition methods refuse anything else, so a scheduler bug
shows up as an exception, not as a job that finished twice.

Node order (documented choice): the submit answer follows the CreateMediaJobs sample (notes
§2.3: Code, Message, JobId, State, CreationTime, StartTime, EndTime, QueueId, Tag, Input,
Operation), with `Input` carrying only `Object`; describe and list follow the DescribeMediaJob /
callback samples (§3.3), which are alphabetical, with `Input` carrying BucketId, Object, Region.
Two orders on purpose: clients must parse order-insensitively, and this makes them.
`Message` is `Success` until the job ends, then empty (`<Message/>`) on success as in §3.3, or
the failure message; `Code` is `Success` unless the job failed.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field

from gateway.emulator.config import MediaInfo
from gateway.emulator.timefmt import format_ci_time
from gateway.emulator.xmlbuild import Fields, media_info_fields


class JobState(enum.StrEnum):
    SUBMITTED = "Submitted"
    RUNNING = "Running"
    SUCCESS = "Success"
    FAILED = "Failed"
    PAUSE = "Pause"
    CANCEL = "Cancel"


ALL_STATES = frozenset(JobState)
FINISHED_STATES = frozenset({JobState.SUCCESS, JobState.FAILED, JobState.CANCEL})


class TransitionError(RuntimeError):
    """A lifecycle step from a state that does not allow it (an emulator bug, never a client's)."""


@dataclass(frozen=True)
class JobSpec:
    """What a client asked for: the validated content of a submit `<Request>`."""

    tag: str
    object_key: str
    queue_id: str
    user_data: str | None = None
    job_level: int = 0
    callback: str | None = None
    callback_format: str | None = None
    callback_type: str | None = None
    callback_mq: tuple[tuple[str, str], ...] = ()
    """`CallBackMqConfig` children (MqRegion, MqMode, MqName) when CallBackType is TDMQ."""


@dataclass(eq=False)
class Job:
    job_id: str
    seq: int
    """Creation order within the emulator: the list API's sort key and paging cursor."""
    bucket: str
    region: str
    spec: JobSpec
    created_at: float
    state: JobState = JobState.SUBMITTED
    started_at: float | None = None
    ended_at: float | None = None
    code: str = "Success"
    message: str = "Success"
    media_info: MediaInfo | None = field(default=None, repr=False)

    def start(self, now: float) -> None:
        self._require(JobState.SUBMITTED)
        self.state, self.started_at = JobState.RUNNING, now

    def succeed(self, now: float, media_info: MediaInfo) -> None:
        self._require(JobState.RUNNING)
        self.state, self.ended_at, self.media_info = JobState.SUCCESS, now, media_info
        self.code, self.message = "Success", ""

    def fail(self, now: float, code: str, message: str) -> None:
        self._require(JobState.RUNNING)
        self.state, self.ended_at, self.code, self.message = JobState.FAILED, now, code, message

    def cancel(self, now: float) -> None:
        if self.state is not JobState.PAUSE:
            self._require(JobState.SUBMITTED)
        self.state, self.ended_at = JobState.CANCEL, now

    def pause(self) -> None:
        self._require(JobState.SUBMITTED)
        self.state = JobState.PAUSE

    def unpause(self) -> None:
        self._require(JobState.PAUSE)
        self.state = JobState.SUBMITTED

    @property
    def cancellable(self) -> bool:
        """Not started yet: CI cancels only jobs that are not executing."""
        return self.state in (JobState.SUBMITTED, JobState.PAUSE)

    def _require(self, state: JobState) -> None:
        if self.state is not state:
            raise TransitionError(f"job {self.job_id} is {self.state}, not {state}")


def _time(value: float | None) -> str:
    return format_ci_time(value) if value is not None else ""


def _operation(job: Job, *, alphabetical: bool) -> Fields:
    user_data: Fields = [] if job.spec.user_data is None else [("UserData", job.spec.user_data)]
    level: Fields = [("JobLevel", str(job.spec.job_level))]
    if not alphabetical:
        return user_data + level
    media: Fields = (
        [] if job.media_info is None else [("MediaInfo", media_info_fields(job.media_info))]
    )
    return level + media + user_data


def submit_detail(job: Job) -> Fields:
    """`JobsDetail` children as CreateMediaJobs answers them (§2.3 order)."""
    return [
        ("Code", job.code),
        ("Message", job.message),
        ("JobId", job.job_id),
        ("State", str(job.state)),
        ("CreationTime", _time(job.created_at)),
        ("StartTime", _time(job.started_at)),
        ("EndTime", _time(job.ended_at)),
        ("QueueId", job.spec.queue_id),
        ("Tag", job.spec.tag),
        ("Input", [("Object", job.spec.object_key)]),
        ("Operation", _operation(job, alphabetical=False)),
    ]


def full_detail(job: Job) -> Fields:
    """`JobsDetail` children as DescribeMediaJob(s) answer them (§3.3, alphabetical)."""
    return [
        ("Code", job.code),
        ("CreationTime", _time(job.created_at)),
        ("EndTime", _time(job.ended_at)),
        (
            "Input",
            [("BucketId", job.bucket), ("Object", job.spec.object_key), ("Region", job.region)],
        ),
        ("JobId", job.job_id),
        ("Message", job.message or None),
        ("Operation", _operation(job, alphabetical=True)),
        ("QueueId", job.spec.queue_id),
        ("StartTime", _time(job.started_at)),
        ("State", str(job.state)),
        ("Tag", job.spec.tag),
    ]
