"""A media-processing queue (pipeline): its state, its bounds, and its waiting jobs in CI's order.

The fields mirror CI's `QueueList` entry (notes §8.1) so the queue API, when it is emulated, only
renders them. Waiting jobs are ordered by JobLevel (2 before 1 before 0), then by submission;
`MaxConcurrent` bounds how many run at once and `MaxSize` how many may wait. A `Paused` queue
keeps its jobs in Submitted and starts none; running jobs continue (CI's documented meaning).
"""

from __future__ import annotations

import enum
import heapq
from dataclasses import dataclass, field

from gateway.emulator.jobs import Job, JobState


class QueueState(enum.StrEnum):
    ACTIVE = "Active"
    PAUSED = "Paused"


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
    running: set[str] = field(default_factory=set)
    _waiting: list[tuple[int, int, Job]] = field(default_factory=list, repr=False)

    @property
    def waiting_count(self) -> int:
        return sum(1 for _, _, job in self._waiting if job.state is JobState.SUBMITTED)

    def is_full(self) -> bool:
        return self.waiting_count >= self.max_size

    def enqueue(self, job: Job) -> None:
        heapq.heappush(self._waiting, (-job.spec.job_level, job.seq, job))

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
        return ready
