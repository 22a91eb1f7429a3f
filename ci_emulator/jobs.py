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

`Progress` (notes §3.1: a Go SDK field, seen as `<Progress>100</Progress>` in a callback sample,
absent from the MediaInfo docs). UNCONFIRMED beyond that sample; the emulator's reading, chosen
to be deterministic for tests:

* absent while the job has not started (Submitted, Pause, and a Cancel before it ran): nothing
  has progressed, and a client must cope with the node missing anyway (the MediaInfo docs never
  show it);
* `0` from the moment it starts Running. A MediaInfo job is one probe, so nothing moves it on
  by itself: a job held in Running (`EmulatorState.hold_running`) stays at `0` until a test
  moves it with `EmulatorState.set_progress` (0-100, never backwards, Running only);
* `100` on Success, as in the sample;
* on Failed, the value it had reached (the job stopped there).

It is an integer in text, as in the sample. Node order: in the describe/callback layout it
sits where the alphabetical order puts it (after `Operation`, before `QueueId`); in the submit
layout, also just before `QueueId` (a submit answers a Submitted job, so it never shows there).

`Workflow` (notes §3.1: "only for workflow-triggered jobs: RunId, WorkflowId, WorkflowName,
Name"; the Go SDK types it as a list) is one node for a job a workflow run started
(`JobSpec.workflow`), its children alphabetical like the rest, `Name` the run's node (the
element name in the topology); absent for every other job. Describe, list and the job's
callback render it (they share `full_detail`); the submit layout never does, since only
`POST /jobs` answers in it and a run's jobs are not submitted by a client.

Every state change goes through `_become`, which tells the job's `on_state_change` observer
(the emulator's per-bucket listing index, see `job_index`), so an index cannot miss a change
whichever code path makes it.
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from ci_emulator.media.model import MediaRequest
from ci_emulator.probe_types import MediaInfo
from ci_emulator.timefmt import format_ci_time
from ci_emulator.xmlbuild import Fields, XmlValue, media_info_fields

Field = tuple[str, XmlValue]


class JobState(enum.StrEnum):
    SUBMITTED = "Submitted"
    RUNNING = "Running"
    SUCCESS = "Success"
    FAILED = "Failed"
    PAUSE = "Pause"
    CANCEL = "Cancel"


ALL_STATES = frozenset(JobState)


class TransitionError(RuntimeError):
    """A lifecycle step from a state that does not allow it (an emulator bug, never a client's)."""


@dataclass(frozen=True)
class WorkflowOrigin:
    """The workflow run that started a job: what its `JobsDetail.Workflow` says, fixed when
    the job is created (a later rename of the workflow does not rewrite its jobs)."""

    run_id: str
    workflow_id: str
    workflow_name: str
    name: str
    """The node's element name in the run's topology (e.g. `Transcode_1581665960537`)."""

    def fields(self) -> Fields:
        return [
            ("Name", self.name),
            ("RunId", self.run_id),
            ("WorkflowId", self.workflow_id),
            ("WorkflowName", self.workflow_name),
        ]


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
    """The message queue's address when CallBackType is TDMQ (`CallBackMqConfig`: MqRegion,
    MqMode, MqName) or Kafka (`CallBackKafkaConfig`: Region, InstanceId, Topic)."""
    media: MediaRequest | None = None
    """The validated parameters of a media kind (every tag but MediaInfo): run in a worker."""
    operation_echo: Fields = field(default_factory=list, compare=False)
    """The request's Operation children (less UserData and JobLevel), echoed back as CI does."""
    workflow: WorkflowOrigin | None = None
    """Set on the jobs a workflow run submits (never by a client's submit)."""

    @property
    def runs_in_worker(self) -> bool:
        return self.media is not None

    @property
    def template_name(self) -> str:
        """The `TemplateName` its echo shows (the template its `TemplateId` was resolved to);
        empty when it named none."""
        names = (v for n, v in self.operation_echo if n == "TemplateName" and isinstance(v, str))
        return next(names, "")


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
    progress: int | None = None
    """Percent done, reported as `<Progress>`; None (no node) until the job starts."""
    progress_reports: list[int] = field(default_factory=list, repr=False)
    """Every value a media worker reported, in order: proof of progress for tests."""
    results: Fields = field(default_factory=list, repr=False)
    """Result nodes of a finished media job (MediaResult, DigitalWatermark, ...)."""
    on_state_change: Callable[[Job, JobState], None] | None = field(default=None, repr=False)
    """Called after every state change with the job and its previous state."""

    def start(self, now: float) -> None:
        self._require(JobState.SUBMITTED)
        self.started_at, self.progress = now, 0
        self._become(JobState.RUNNING)

    def set_progress(self, percent: int) -> None:
        """Move a Running job's progress on (a test control: see the module docstring)."""
        self._require(JobState.RUNNING)
        current = self.progress or 0
        if not current <= percent <= 100:
            raise ValueError(f"progress must be {current}..100 for job {self.job_id}: {percent}")
        self.progress = percent

    def report_progress(self, percent: int) -> None:
        """A media worker's report: kept forwards only and below 100 (100 means done)."""
        self._require(JobState.RUNNING)
        self.progress_reports.append(percent)
        self.progress = max(self.progress or 0, min(percent, 99))

    def succeed(
        self, now: float, media_info: MediaInfo | None, results: Sequence[Field] = ()
    ) -> None:
        self._require(JobState.RUNNING)
        self.ended_at, self.media_info, self.progress = now, media_info, 100
        self.results = list(results)
        self.code, self.message = "Success", ""
        self._become(JobState.SUCCESS)

    def fail(self, now: float, code: str, message: str) -> None:
        self._require(JobState.RUNNING)
        self.ended_at, self.code, self.message = now, code, message
        self._become(JobState.FAILED)

    def cancel(self, now: float) -> None:
        if not self.cancellable:
            self._require(JobState.SUBMITTED)
        self.ended_at = now
        self._become(JobState.CANCEL)

    def pause(self) -> None:
        self._require(JobState.SUBMITTED)
        self._become(JobState.PAUSE)

    def unpause(self) -> None:
        self._require(JobState.PAUSE)
        self._become(JobState.SUBMITTED)

    def _become(self, state: JobState) -> None:
        previous, self.state = self.state, state
        if self.on_state_change is not None:
            self.on_state_change(self, previous)

    @property
    def cancellable(self) -> bool:
        """Not started yet (CI: only jobs not executing can be cancelled), or a media job
        Running in a worker: issue 14 asks that cancel stop a running transcode, and killing
        its worker does that (UNCONFIRMED what CI answers; MediaInfo jobs keep CI's rule)."""
        if self.state is JobState.RUNNING:
            return self.spec.runs_in_worker
        return self.state in (JobState.SUBMITTED, JobState.PAUSE)

    def _require(self, state: JobState) -> None:
        if self.state is not state:
            raise TransitionError(f"job {self.job_id} is {self.state}, not {state}")


def _time(value: float | None) -> str:
    return format_ci_time(value) if value is not None else ""


def _operation(job: Job, *, alphabetical: bool) -> Fields:
    user_data: Fields = [] if job.spec.user_data is None else [("UserData", job.spec.user_data)]
    level: Fields = [("JobLevel", str(job.spec.job_level))]
    echo = job.spec.operation_echo
    if not alphabetical:
        return echo + user_data + level
    media: Fields = (
        [] if job.media_info is None else [("MediaInfo", media_info_fields(job.media_info))]
    )
    if not echo and not job.results:
        return level + media + user_data
    # Echo and results merged in name order (stable: repeated nodes keep their order); a
    # result node replaces an echoed one of the same name (DigitalWatermark gains State).
    replaced = {name for name, _ in job.results}
    merged = [*(item for item in echo if item[0] not in replaced), *job.results]
    merged += level + media + user_data
    return sorted(merged, key=lambda item: item[0])


def _progress(job: Job) -> Fields:
    return [] if job.progress is None else [("Progress", str(job.progress))]


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
        *_progress(job),
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
        *_progress(job),
        ("QueueId", job.spec.queue_id),
        ("StartTime", _time(job.started_at)),
        ("State", str(job.state)),
        ("Tag", job.spec.tag),
        *([] if job.spec.workflow is None else [("Workflow", job.spec.workflow.fields())]),
    ]
