"""The job tracker: one upstream tracker per CI job, however many clients watch it.

::

    WatchMediaJob / WaitMediaJob
        -> JobTracker.watch(target, job_id, client)   caps -> Overloaded (RESOURCE_EXHAUSTED)
        <- Subscription: the job's recent changes, in order, each once; ends after a final state
    TargetPoller, one per bucket + region, alive only while it has jobs to poll
        -> CiClient.describe_jobs(target, <= MAX_DESCRIBE_JOB_IDS ids)   one GET for many jobs
    JobTracker.apply(target, detail)   a verified change from a callback (gateway.jobs.callbacks)

Polling is a retry, as in api-core's `operation_async`: "not done yet" is the retryable outcome,
and the wait before the next look grows from `PollSchedule.initial_s` to `max_s`. Unlike a retry
loop per job, though, the schedule is kept per job while the *requests* are shared: each time
the poller wakes it describes every job that is due in one comma-joined GET per
`MAX_DESCRIBE_JOB_IDS`, and fills the last request's free slots with the jobs due soonest. A new
job waits `linger_s` (20 ms) before its first look so that a burst of new watchers (clients
reconnecting after a restart) costs a few batched requests, not one per job.

A job whose reads keep failing retryably (CI answering 5xx or 429, out of reach, timing out)
is not polled for ever: after `tracking.unreachable_s` of failed reads its watchers end
UNAVAILABLE with CI's last error and the job is forgotten (`gateway.jobs.unreadable` says how the
clock runs). A terminal refusal ends them at once.

Callbacks only make the tracker learn sooner: a callback's content is never trusted; the
receiver re-reads the job with describe and hands that answer to `apply`. Polling stays the
safety net, so a lost callback costs latency, never correctness.

Time is injected (`Timer`): production uses the event loop's clock, tests advance a manual one
and can assert exactly how many describe requests a round of polling sent.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import logging
from collections import Counter, deque
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass
from typing import Protocol

from gateway._proto import media_pb2, service_pb2
from gateway.config.settings import Tracking
from gateway.errors import (
    GatewayError,
    JobNotFound,
    Overloaded,
    RetryClass,
    TrackerClosed,
    TrackerFailed,
    UpstreamError,
)
from gateway.jobs.describe import batches
from gateway.jobs.outputs import fill_outputs
from gateway.jobs.submit import strip_markers
from gateway.jobs.unreadable import ReadFailures
from gateway.model import MAX_DESCRIBE_JOB_IDS, Target
from gateway.upstream.client import Reply
from gateway.upstream.retry import Deadline

log = logging.getLogger(__name__)

FINAL_STATES = frozenset(
    {media_pb2.JOB_STATE_SUCCESS, media_pb2.JOB_STATE_FAILED, media_pb2.JOB_STATE_CANCEL}
)
# How far a job has come: a change that would move it back (a late, delayed callback after a
# newer poll) is ignored. Submitted and Pause are one step: a paused queue moves jobs both ways.
_PROGRESS = {
    media_pb2.JOB_STATE_SUBMITTED: 0,
    media_pb2.JOB_STATE_PAUSE: 0,
    media_pb2.JOB_STATE_RUNNING: 1,
    media_pb2.JOB_STATE_SUCCESS: 2,
    media_pb2.JOB_STATE_FAILED: 2,
    media_pb2.JOB_STATE_CANCEL: 2,
}
# Changes kept per job for watchers that are still writing an older one; a job has few states,
# so a watcher that keeps up never misses one, and a stuck one costs no more than this.
HISTORY = 8
DEFAULT_DESCRIBE_TIMEOUT_S = 30.0


def is_final(detail: media_pb2.JobsDetail) -> bool:
    return detail.state in FINAL_STATES


class JobDescriber(Protocol):
    """What the tracker needs of `CiClient`: one batched describe."""

    async def describe_jobs(
        self, target: Target, job_ids: Sequence[str], deadline: Deadline
    ) -> Reply[service_pb2.DescribeMediaJobsResponse]: ...


class Timer(Protocol):
    """The poller's clock: `now()` and a sleep that an event cuts short."""

    def now(self) -> float: ...

    async def sleep_until(self, when: float, wake: asyncio.Event) -> None:
        """Return at `when` or as soon as `wake` is set, whichever comes first."""


class LoopTimer:
    """The event loop's monotonic clock."""

    def now(self) -> float:
        return asyncio.get_running_loop().time()

    async def sleep_until(self, when: float, wake: asyncio.Event) -> None:
        delay = when - self.now()
        if delay <= 0 or wake.is_set():
            return
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(delay):
                await wake.wait()


@dataclass(frozen=True)
class PollSchedule:
    """When to look at a job again: `initial_s` after a change, growing by `multiplier` per look
    that saw none, up to `max_s`; a new job is first looked at after `linger_s`. The defaults
    of the first two are the `[tracking]` settings'."""

    initial_s: float = Tracking.poll_initial_s
    max_s: float = Tracking.poll_max_s
    multiplier: float = 2.0
    linger_s: float = 0.02

    def after(self, interval: float, *, changed: bool) -> float:
        return self.initial_s if changed else min(self.max_s, interval * self.multiplier)


@dataclass(frozen=True)
class WatchLimits:
    max_watchers: int = Tracking.max_watchers
    max_per_client: int = Tracking.max_watchers_per_client


class WatcherPlaces:
    """The watchers a follower (of jobs, of workflow runs) holds, in all and per client, held
    to its `WatchLimits`: one client (its authenticated name, else its peer) cannot take every
    place and leave the others none."""

    def __init__(self, limits: WatchLimits, what: str) -> None:
        self.limits = limits
        self._what = what
        self._by_client: Counter[str] = Counter()
        self.total = 0

    def take(self, client: str) -> None:
        """One place for `client`, or `Overloaded` (RESOURCE_EXHAUSTED)."""
        if self.total >= self.limits.max_watchers:
            raise Overloaded(self._what, self.limits.max_watchers)
        if self._by_client[client] >= self.limits.max_per_client:
            raise Overloaded(f"{self._what} of this client", self.limits.max_per_client)
        self.total += 1
        self._by_client[client] += 1

    def give_back(self, client: str) -> None:
        self.total -= 1
        self._by_client[client] -= 1
        if self._by_client[client] <= 0:
            del self._by_client[client]


@dataclass(frozen=True)
class TrackerStats:
    jobs: int
    watchers: int
    pollers: int


class TrackedJob:
    """One job's latest JobsDetail, its recent changes and its poll schedule."""

    def __init__(
        self,
        target: Target,
        job_id: str,
        *,
        due: float,
        interval: float,
        unreachable_s: float = Tracking.unreachable_s,
    ) -> None:
        self.target = target
        self.job_id = job_id
        self.detail: media_pb2.JobsDetail | None = None
        self.version = 0
        self.history: deque[tuple[int, media_pb2.JobsDetail]] = deque(maxlen=HISTORY)
        self.error: GatewayError | None = None
        self.watchers = 0
        self.next_due = due
        self.interval = interval
        self.reads = ReadFailures(unreachable_s)
        self._changed = asyncio.Event()

    @property
    def final(self) -> bool:
        return self.detail is not None and is_final(self.detail)

    def offer(self, detail: media_pb2.JobsDetail) -> bool:
        """Take CI's latest answer; True when watchers have something new (state or progress)."""
        current = self.detail
        if current is not None:
            same = (current.state, current.state_text, current.progress)
            if same == (detail.state, detail.state_text, detail.progress):
                return False
            if self.final or _PROGRESS.get(detail.state, 0) < _PROGRESS.get(current.state, 0):
                return False
        self.detail = detail
        self.version += 1
        self.history.append((self.version, detail))
        self._notify()
        return True

    def fail(self, error: GatewayError) -> None:
        self.error = error
        self._notify()

    async def changed(self) -> None:
        await self._changed.wait()

    def _notify(self) -> None:
        # Swapped, not cleared: every waiter of the old event wakes, and none misses a change
        # that happens between its check and its wait.
        changed, self._changed = self._changed, asyncio.Event()
        changed.set()


class Subscription:
    """One watcher's view of a tracked job."""

    def __init__(self, job: TrackedJob) -> None:
        self._job = job
        # A watcher joining late starts at the job's current state, not at its history.
        self._seen = max(job.version - 1, 0)

    async def updates(self) -> AsyncIterator[media_pb2.JobsDetail]:
        """Each change not yet seen, oldest first; ends after a final state. The first is the
        job's current state (once CI has answered for it)."""
        job = self._job
        while True:  # each pass either yields, ends, raises, or waits for the next change
            if job.error is not None:
                raise job.error
            pending = [(v, d) for v, d in job.history if v > self._seen]
            if not pending:
                await job.changed()
                continue
            for version, detail in pending:
                self._seen = version
                yield detail
                if is_final(detail):
                    return


class TargetPoller:
    """Polls every tracked job of one bucket + region, batched; ends when it has none left."""

    def __init__(self, tracker: JobTracker, target: Target) -> None:
        self._tracker = tracker
        self.target = target
        self._jobs: dict[str, TrackedJob] = {}
        self._wake = asyncio.Event()
        # A context of its own, not a copy of the one that starts it: the first watcher's RPC
        # (its `RpcScope`, its trace span) would otherwise count every later poll among that
        # RPC's CI attempts and show it as that RPC's child, long after the RPC ended.
        self._task = asyncio.create_task(
            self._run(), name=f"poll-{target.bucket}", context=contextvars.Context()
        )
        self._task.add_done_callback(self._finished)

    def __len__(self) -> int:
        return len(self._jobs)

    def add(self, job: TrackedJob) -> None:
        self._jobs[job.job_id] = job
        self._wake.set()

    def remove(self, job: TrackedJob) -> None:
        if self._jobs.get(job.job_id) is job:
            del self._jobs[job.job_id]
            self._wake.set()

    def reschedule(self, job: TrackedJob, *, changed: bool) -> None:
        job.interval = self._tracker.schedule.after(job.interval, changed=changed)
        # Never past the bound of a job whose reads fail: its last look is made at the bound.
        job.next_due = job.reads.cap(self._tracker.timer.now() + job.interval)
        self._wake.set()

    async def close(self) -> None:
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task

    async def _run(self) -> None:
        timer = self._tracker.timer
        while self._jobs:  # ends once the last job is removed (it leaves no task behind)
            await timer.sleep_until(min(job.next_due for job in self._jobs.values()), self._wake)
            self._wake.clear()
            batch = self._due(timer.now())
            if batch:
                await asyncio.gather(*(self._describe(run) for run in batches(batch)))
        # Nothing to await between the check above and this: no job can slip in unpolled.
        self._tracker._poller_idle(self)

    def _due(self, now: float) -> list[TrackedJob]:
        """The jobs due now, plus the soonest-due others while the last request has room."""
        ordered = sorted(self._jobs.values(), key=lambda job: job.next_due)
        due = [job for job in ordered if job.next_due <= now]
        if not due:
            return []
        room = -len(due) % MAX_DESCRIBE_JOB_IDS
        return ordered[: len(due) + room]

    async def _describe(self, jobs: Sequence[TrackedJob]) -> None:
        tracker = self._tracker
        sent_at = tracker.timer.now()
        try:
            reply = await tracker.client.describe_jobs(
                self.target, [job.job_id for job in jobs], Deadline(tracker.describe_timeout_s)
            )
        except GatewayError as error:
            if isinstance(error, UpstreamError) and error.retry is RetryClass.TERMINAL:
                # CI refused (no such bucket, the gateway's keys): watchers learn why at once.
                log.warning("describe for tracking failed: %s", error)
                for job in jobs:
                    tracker._drop(job, error)
            else:
                self._read_failed(jobs, sent_at, error)
            return
        answer = reply.message
        strip_markers(list(answer.jobs_detail))
        fill_outputs(answer.jobs_detail)
        found = {detail.job_id: detail for detail in answer.jobs_detail}
        missing = set(answer.non_exist_job_ids)
        for job in jobs:
            if self._jobs.get(job.job_id) is not job:
                continue  # its last watcher left while the request was out
            detail = found.get(job.job_id)
            if detail is not None:
                tracker._offer(job, detail)
            elif job.job_id in missing:
                tracker._drop(job, JobNotFound(job.job_id))
            else:
                self.reschedule(job, changed=False)  # neither found nor denied: look again

    def _read_failed(self, jobs: Sequence[TrackedJob], sent_at: float, error: GatewayError) -> None:
        """A retryable failure of one describe: a failed read of every job it asked for. Those
        unread for `unreachable_s` now are dropped (their watchers learn why); the rest are
        looked at again, no later than their bound."""
        tracker = self._tracker
        now = tracker.timer.now()
        expired: list[TrackedJob] = []
        for job in jobs:
            if self._jobs.get(job.job_id) is not job:
                continue  # its last watcher left while the request was out
            job.reads.failed(sent_at, error)
            if job.reads.expired(now):
                expired.append(job)
            else:
                self.reschedule(job, changed=False)
        if expired:
            log.warning(
                "job(s) %s unread for tracking.unreachable_s (%g s): their watches end: %s",
                ",".join(job.job_id for job in expired),
                tracker.unreachable_s,
                error,
            )
        for job in expired:
            tracker._drop(job, job.reads.error(f"job {job.job_id}", now))

    def _finished(self, task: asyncio.Task[None]) -> None:
        if task.cancelled() or task.exception() is None:
            return
        log.error("job poller for %s crashed", self.target, exc_info=task.exception())
        for job in list(self._jobs.values()):
            self._tracker._drop(job, TrackerFailed())
        self._tracker._poller_idle(self)


class JobTracker:
    """Shared tracking for every watcher of this gateway; see the module docstring."""

    def __init__(
        self,
        client: JobDescriber,
        *,
        schedule: PollSchedule | None = None,
        limits: WatchLimits | None = None,
        timer: Timer | None = None,
        describe_timeout_s: float = DEFAULT_DESCRIBE_TIMEOUT_S,
        unreachable_s: float = Tracking.unreachable_s,
    ) -> None:
        self.client = client
        self.schedule = schedule or PollSchedule()
        self.limits = limits or WatchLimits()
        self.timer: Timer = timer or LoopTimer()
        self.describe_timeout_s = describe_timeout_s
        self.unreachable_s = unreachable_s
        self._jobs: dict[tuple[Target, str], TrackedJob] = {}
        self._pollers: dict[Target, TargetPoller] = {}
        self._places = WatcherPlaces(self.limits, "job watchers")
        self._closed = False
        self._stats_changed = asyncio.Event()

    # ---- watchers ------------------------------------------------------------------------

    @contextlib.asynccontextmanager
    async def watch(self, target: Target, job_id: str, client: str) -> AsyncIterator[Subscription]:
        """Join (or start) the tracking of one job for as long as the block runs."""
        if self._closed:
            raise TrackerClosed()
        self._places.take(client)
        job = self._jobs.get((target, job_id)) or self._track(target, job_id)
        job.watchers += 1
        self._stats_changed_now()
        try:
            yield Subscription(job)
        finally:
            self._leave(job, client)

    def _track(self, target: Target, job_id: str) -> TrackedJob:
        schedule = self.schedule
        job = TrackedJob(
            target,
            job_id,
            due=self.timer.now() + schedule.linger_s,
            interval=schedule.initial_s / schedule.multiplier,  # the first look sets initial_s
            unreachable_s=self.unreachable_s,
        )
        self._jobs[(target, job_id)] = job
        self._poller_for(target).add(job)
        return job

    def _leave(self, job: TrackedJob, client: str) -> None:
        job.watchers -= 1
        self._places.give_back(client)
        if job.watchers <= 0:
            self._untrack(job)
        self._stats_changed_now()

    def _poller_for(self, target: Target) -> TargetPoller:
        poller = self._pollers.get(target)
        if poller is None:
            poller = self._pollers[target] = TargetPoller(self, target)
        return poller

    def _poller_idle(self, poller: TargetPoller) -> None:
        if self._pollers.get(poller.target) is poller:
            del self._pollers[poller.target]
            self._stats_changed_now()

    # ---- what CI said --------------------------------------------------------------------

    def apply(self, target: Target, detail: media_pb2.JobsDetail) -> bool:
        """A JobsDetail that came from CI's describe (a verified callback, maybe relayed by
        another replica); True when a tracked job changed."""
        job = self._jobs.get((target, detail.job_id))
        if job is None or job.error is not None:
            return False
        copy = media_pb2.JobsDetail()
        copy.CopyFrom(detail)
        strip_markers([copy])
        fill_outputs([copy])
        return self._offer(job, copy)

    def _offer(self, job: TrackedJob, detail: media_pb2.JobsDetail) -> bool:
        job.reads.succeeded(self.timer.now())  # CI's answer, from a poll or behind a callback
        changed = job.offer(detail)
        poller = self._pollers.get(job.target)
        if job.final:
            if poller is not None:
                poller.remove(job)
        elif poller is not None:
            poller.reschedule(job, changed=changed)
        return changed

    def _drop(self, job: TrackedJob, error: GatewayError) -> None:
        """Stop tracking a job that cannot be tracked; its watchers get `error`. A later watcher
        starts afresh (the error may not last)."""
        self._untrack(job)
        job.fail(error)
        self._stats_changed_now()

    def _untrack(self, job: TrackedJob) -> None:
        """Forget the job and stop polling it (a newer tracker for the same id stays)."""
        key = (job.target, job.job_id)
        if self._jobs.get(key) is job:
            del self._jobs[key]
        poller = self._pollers.get(job.target)
        if poller is not None:
            poller.remove(job)

    # ---- lifecycle and introspection -----------------------------------------------------

    def latest(self, target: Target, job_id: str) -> media_pb2.JobsDetail | None:
        """The tracked job's latest JobsDetail (None when untracked or not read yet)."""
        job = self._jobs.get((target, job_id))
        return job.detail if job is not None else None

    def stats(self) -> TrackerStats:
        return TrackerStats(len(self._jobs), self._places.total, len(self._pollers))

    async def wait_for(
        self,
        predicate: Callable[[TrackerStats], bool],
        *,
        timeout: float = 10.0,  # noqa: ASYNC109 - a bounded wait is the point of this helper
    ) -> TrackerStats:
        """Wait until `predicate(stats())` holds (what tests await instead of sleeping)."""
        async with asyncio.timeout(timeout):
            while not predicate(stats := self.stats()):  # each pass waits for the next change
                await self._stats_changed.wait()
        return stats

    def _stats_changed_now(self) -> None:
        changed, self._stats_changed = self._stats_changed, asyncio.Event()
        changed.set()

    async def close(self) -> None:
        """End every watch with UNAVAILABLE (clients re-watch elsewhere) and stop polling."""
        self._closed = True
        for job in list(self._jobs.values()):
            self._drop(job, TrackerClosed())
        pollers = list(self._pollers.values())
        self._pollers.clear()
        for poller in pollers:
            await poller.close()
        self._stats_changed_now()
