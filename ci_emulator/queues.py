"""A media-processing queue (pipeline): its state, its bounds, and its waiting jobs in CI's order.

The fields mirror CI's `QueueList` entry (notes §8.1), so the queue API only renders them.
Waiting jobs are ordered by JobLevel (2 before 1 before 0), then by submission; `MaxConcurrent`
bounds how many run at once and `MaxSize` how many may wait.

Pausing (notes §8.1: "no new jobs scheduled; queued jobs stay paused/submitted; running jobs
continue"): the jobs waiting in a queue when it is paused show State `Pause` until it is active
again, then `Submitted` and run as before. UNCONFIRMED which of the two states CI shows; `Pause`
is chosen because it is a documented job state that nothing else could produce, and a client
that handles it handles the other reading too (both are "not started, not finished"). Running
jobs are not touched.
"""

from __future__ import annotations

import enum
import heapq
from collections.abc import Iterator
from dataclasses import dataclass, field

from ci_emulator.jobs import Job, JobState


class QueueState(enum.StrEnum):
    ACTIVE = "Active"
    PAUSED = "Paused"


@dataclass(frozen=True)
class NotifyConfig:
    """A queue's callback settings (`NotifyConfig`, notes §8.1). The default is switched off."""

    url: str = ""
    state: str = "Off"
    """`On` | `Off`: whether jobs without a CallBack of their own call `url` when they end."""
    type: str = "Url"
    """`Url` (HTTP POST) | `TDMQ` | `Kafka` (message queues the emulator cannot reach)."""
    event: str = "TaskFinish"
    """Comma list of `TaskFinish`, `WorkflowFinish` (and the legacy `TransCodingFinish`)."""
    result_format: str = "XML"
    """`XML` | `JSON`: the callback body when the job does not choose one."""
    mq_mode: str = ""
    mq_name: str = ""
    mq_region: str = ""
    kafka: tuple[tuple[str, str], ...] = ()
    """`KafkaConfig` children (Region, InstanceId, Topic) when Type is Kafka (catalogue §2.4)."""

    @property
    def notifies_job_end(self) -> bool:
        """On, and subscribed to job completion (TransCodingFinish: its older name)."""
        return self.notifies("TaskFinish", "TransCodingFinish")

    def notifies(self, *events: str) -> bool:
        """On, and subscribed to one of `events` (a job's TaskFinish, a run's WorkflowFinish)."""
        subscribed = {name.strip() for name in self.event.split(",")}
        return self.state == "On" and not subscribed.isdisjoint(events)


@dataclass(eq=False)
class MediaQueue:
    queue_id: str
    name: str
    bucket: str
    created_at: float
    max_concurrent: int
    max_size: int
    state: QueueState = QueueState.ACTIVE
    category: str = "Transcoding"
    notify: NotifyConfig = field(default_factory=NotifyConfig)
    updated_at: float | None = None
    """Last UpdateMediaQueue; `UpdateTime` shows `created_at` until the first one."""
    running: set[str] = field(default_factory=set)
    peak_running: int = 0
    """Most jobs this queue ever ran at once: what a MaxConcurrent test asserts on."""
    _waiting: list[tuple[int, int, Job]] = field(default_factory=list, repr=False)
    _waiting_count: int = field(default=0, repr=False)
    """Kept as jobs come and go: MaxSize is checked on every submit, and counting the heap
    there made submits O(queue length) (the emulator benchmark's first profile)."""

    @property
    def waiting_count(self) -> int:
        return self._waiting_count

    def waiting_jobs(self) -> Iterator[Job]:
        """Jobs not yet started and not cancelled (Submitted, or Pause while paused)."""
        return (job for _, _, job in self._waiting if job.state in _WAITING_STATES)

    def is_full(self) -> bool:
        return self.waiting_count >= self.max_size

    def enqueue(self, job: Job) -> None:
        heapq.heappush(self._waiting, (-job.spec.job_level, job.seq, job))
        self._waiting_count += 1

    def withdraw(self, job: Job) -> None:
        """A waiting job was cancelled; its heap entry is dropped lazily by take_startable."""
        self._waiting_count -= 1

    def take_startable(self) -> list[Job]:
        """Pop the jobs that may start now, highest level first, within MaxConcurrent.

        Cancelled jobs are dropped lazily here rather than searched for on cancel.
        """
        if self.state is not QueueState.ACTIVE:
            return []
        ready: list[Job] = []
        while self._waiting and len(self.running) + len(ready) < self.max_concurrent:
            _, _, job = heapq.heappop(self._waiting)
            if job.state is JobState.SUBMITTED:
                ready.append(job)
                self._waiting_count -= 1
        return ready

    def started(self, job: Job) -> None:
        self.running.add(job.job_id)
        self.peak_running = max(self.peak_running, len(self.running))


_WAITING_STATES = frozenset({JobState.SUBMITTED, JobState.PAUSE})
