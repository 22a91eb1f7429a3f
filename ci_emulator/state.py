"""Everything one emulator remembers, and the controls tests use instead of sleeping.

`EmulatorState` owns the job registry, the queues, the counters, the fault plan
(`state.faults`, see `faults`) and three test controls:

* `pause_scheduling()` / `resume_scheduling()`: while paused no Submitted job starts (a queue in
  `Paused` state holds its own jobs too, showing them as `Pause`, see `queues`);
* `hold_running()` / `release_running()`: a job that starts stays in Running until released
  (at `Progress` 0); `set_progress(job_id, percent)` moves a Running job's `Progress` on;
* `await wait_for_job_state(job_id, {"Success", "Failed"}, timeout=10)`: wakes on every job
  change (an `asyncio.Event` swapped per change, so no change is missed between a check and
  the wait), raises `TimeoutError` when the deadline passes; `wait_for_callbacks(n)` likewise
  waits until n callback deliveries have finished (`callbacks`: `(url, status, attempts)`).

Handlers and the scheduler mutate jobs only through this object, so every change notifies.

Duplicate detection for resilience tests: every created job is counted by its input
(`jobs_by_input[(bucket, object key, user data)]`) and by the SHA-256 of the exact submit body
(`jobs_by_body`), so "a retried submit created exactly one job" is one assertion.

Listing reads per-bucket indexes (`job_index`, kept on submit and on every state change), not
the whole registry; `list_jobs_examined` counts the jobs listings looked at, so a test can show
that a listing by input object touched that object's jobs only.
"""

from __future__ import annotations

import asyncio
import collections
import itertools
from collections.abc import Callable, Iterable
from typing import TypeAlias

from ci_emulator import ids
from ci_emulator.auth import KeyTable
from ci_emulator.callbacks import CallbackDelivery
from ci_emulator.config import BucketConfig, EmulatorConfig
from ci_emulator.errors import CiError
from ci_emulator.faults import FaultPlan
from ci_emulator.hooks import RequestHook
from ci_emulator.job_index import BucketJobs
from ci_emulator.jobs import Job, JobSpec, JobState
from ci_emulator.listing import ListQuery, Page, select
from ci_emulator.media.runner import WorkerHandle
from ci_emulator.queues import MediaQueue, NotifyConfig, QueueState
from ci_emulator.resources import ResourceState

JobEndListener: TypeAlias = Callable[[Job, MediaQueue], None]
"""Called synchronously when a job reaches Success, Failed or Cancel; must not block."""

InputKey: TypeAlias = tuple[str, str, str | None]
"""(bucket, Input.Object, Operation.UserData or None): what a job was created for."""


class EmulatorState:
    def __init__(self, config: EmulatorConfig) -> None:
        self.config = config
        self.jobs: dict[str, Job] = {}
        self._by_bucket: dict[str, BucketJobs] = {b.name: BucketJobs() for b in config.buckets}
        self.list_jobs_examined = 0
        """Jobs looked at by every listing so far (`listing.Page.examined`, summed)."""
        self.queues: dict[str, MediaQueue] = {}
        self.resources = ResourceState((b.name for b in config.buckets), config.clock())
        """Templates, workflows and their runs (`resources`)."""
        self.default_queue: dict[str, str] = {}
        self.request_hooks: list[RequestHook] = []
        self.keys = KeyTable(config)
        """The keys the signature check accepts now: a test issues and disables keys here."""
        # When a list, each request body the CI API reads is appended as (method, path, bytes),
        # for a test asserting what a client sent (a hook cannot read the body: the handler
        # reads it from the stream after). None by default, so a long run keeps no bodies.
        self.bodies: list[tuple[str, str, bytes]] | None = None
        self.faults = FaultPlan(config.fault_seed)
        for operation, spec in config.faults.items():
            self.faults.set(operation, spec)
        self.jobs_by_input: collections.Counter[InputKey] = collections.Counter()
        """Jobs created per (bucket, Input.Object, Operation.UserData)."""
        self.jobs_by_body: collections.Counter[str] = collections.Counter()
        self.job_end_listeners: list[JobEndListener] = []
        self.callbacks_scheduled = 0
        """Deliveries started; `callbacks` holds those finished, so the difference is in flight."""
        self.callbacks: list[CallbackDelivery] = []
        """Finished callback deliveries, `(url, status, attempts)`, in completion order."""
        self.callbacks_undeliverable: collections.Counter[str] = collections.Counter()
        """Callbacks the emulator cannot send, by kind (`TDMQ`)."""
        """Jobs created per SHA-256 (hex) of the submit body: identical submits share a key."""
        self.requests_seen = 0
        self.jobs_created = 0
        self.start_order: list[str] = []
        """Job ids in the order they started: what priority and concurrency tests assert on."""
        self.operations: collections.Counter[str] = collections.Counter()
        self.errors: collections.Counter[str] = collections.Counter()
        self._seq = itertools.count(1)
        self._scheduling = asyncio.Event()
        self._scheduling.set()
        self._running_gate = asyncio.Event()
        self._running_gate.set()
        self._changed = asyncio.Event()
        self._work = asyncio.Event()
        self.workers: dict[str, WorkerHandle] = {}
        """Worker processes of Running media jobs, by job id (`scheduler` keeps it)."""
        self._workers_held = False
        for bucket in config.buckets:
            queue = MediaQueue(
                queue_id=ids.default_queue_id(bucket.name),
                name="default",
                bucket=bucket.name,
                created_at=config.clock(),
                max_concurrent=config.queue_max_concurrent,
                max_size=config.queue_max_size,
            )
            self.queues[queue.queue_id] = queue
            self.default_queue[bucket.name] = queue.queue_id
        for extra in config.queues:
            self.add_queue(
                extra.bucket,
                extra.name,
                max_concurrent=extra.max_concurrent,
                max_size=extra.max_size,
                category=extra.category,
                queue_id=extra.queue_id or ids.named_queue_id(extra.bucket, extra.name),
            )

    # ---- lookups -------------------------------------------------------------------------

    def bucket(self, name: str, region: str) -> BucketConfig:
        bucket = self.config.bucket(name)
        if bucket is None or bucket.region != region:
            raise CiError("NoSuchBucket", "The specified bucket does not exist.")
        return bucket

    def queue_of(self, bucket: str, queue_id: str | None) -> MediaQueue:
        """The queue a job goes to: the given one (it must be this bucket's) or the default."""
        if not queue_id:
            return self.queues[self.default_queue[bucket]]
        queue = self.queues.get(queue_id)
        if queue is None or queue.bucket != bucket:
            raise CiError("InvalidArgument", f"queue {queue_id} does not exist")
        return queue

    def list_jobs(self, bucket: str, query: ListQuery) -> Page:
        """One page of DescribeMediaJobs over the bucket's indexes (see `listing.select`)."""
        found = select(self._by_bucket[bucket], query)
        self.list_jobs_examined += found.examined
        return found

    # ---- job lifecycle -------------------------------------------------------------------

    def submit(self, bucket: BucketConfig, spec: JobSpec, *, body_digest: str = "") -> Job:
        """Create and enqueue a job; `body_digest` (the submit body's SHA-256) feeds
        `jobs_by_body`, and an empty one (a job created in-process) is not counted there."""
        queue = self.queue_of(bucket.name, spec.queue_id)
        if queue.is_full():
            raise CiError("QueueSaturated", f"queue {queue.queue_id} is full")
        job = Job(
            job_id=ids.job_id(),
            seq=next(self._seq),
            bucket=bucket.name,
            region=bucket.region,
            spec=spec,
            created_at=self.config.clock(),
        )
        self.jobs[job.job_id] = job
        self._by_bucket[bucket.name].add(job)
        self.jobs_created += 1
        self.jobs_by_input[(bucket.name, spec.object_key, spec.user_data)] += 1
        if body_digest:
            self.jobs_by_body[body_digest] += 1
        queue.enqueue(job)
        self._notify()
        return job

    def cancel(self, job: Job) -> None:
        """Cancel a waiting job, or stop a Running media job's worker. A running job ends
        (and reports) when its runner has cleaned up, in `finished_running`."""
        queue = self.queues[job.spec.queue_id]
        running = job.state is JobState.RUNNING
        job.cancel(self.config.clock())
        if running:
            worker = self.workers.get(job.job_id)
            if worker is not None:
                worker.kill()
        else:
            queue.withdraw(job)
            self._job_ended(job, queue)
        self._notify()

    def take_startable(self) -> list[tuple[MediaQueue, Job]]:
        """Start (Submitted -> Running) every job that may start now, and return them."""
        if not self._scheduling.is_set():
            return []
        started: list[tuple[MediaQueue, Job]] = []
        for queue in self.queues.values():
            for job in queue.take_startable():
                job.start(self.config.clock())
                queue.started(job)
                self.start_order.append(job.job_id)
                started.append((queue, job))
        if started:
            self._notify()
        return started

    def finished_running(self, queue: MediaQueue, job: Job) -> None:
        queue.running.discard(job.job_id)
        self._job_ended(job, queue)
        self._notify()

    def _job_ended(self, job: Job, queue: MediaQueue) -> None:
        for listener in list(self.job_end_listeners):
            listener(job, queue)

    # ---- callbacks (CallbackRecorder) ------------------------------------------------------

    def record_scheduled(self) -> None:
        self.callbacks_scheduled += 1

    def record_callback(self, delivery: CallbackDelivery) -> None:
        self.callbacks.append(delivery)
        self._signal_waiters()

    def record_undeliverable(self, kind: str) -> None:
        self.callbacks_undeliverable[kind] += 1
        self._signal_waiters()

    async def wait_for_callbacks(
        self,
        count: int,
        *,
        timeout: float = 10.0,  # noqa: ASYNC109 - a bounded wait is the point of this helper
    ) -> list[CallbackDelivery]:
        """Wait until at least `count` deliveries finished; `TimeoutError` after `timeout` s."""
        async with asyncio.timeout(timeout):
            # Bounded by the timeout; each pass waits for the next change.
            while len(self.callbacks) < count:
                await self._changed.wait()
        return list(self.callbacks)

    def _notify(self) -> None:
        self._signal_waiters()
        self._work.set()

    def _signal_waiters(self) -> None:
        """Wake `wait_for_*` without a scheduling pass."""
        changed, self._changed = self._changed, asyncio.Event()
        changed.set()

    # ---- the scheduler's side ------------------------------------------------------------

    async def wait_for_work(self) -> None:
        await self._work.wait()
        self._work.clear()

    async def wait_until_released(self) -> None:
        await self._running_gate.wait()

    # ---- test controls -------------------------------------------------------------------

    @property
    def scheduler_paused(self) -> bool:
        return not self._scheduling.is_set()

    def pause_scheduling(self) -> None:
        self._scheduling.clear()

    def resume_scheduling(self) -> None:
        self._scheduling.set()
        self._notify()

    @property
    def running_held(self) -> bool:
        return not self._running_gate.is_set()

    def hold_running(self) -> None:
        self._running_gate.clear()

    def release_running(self) -> None:
        self._running_gate.set()

    @property
    def workers_held(self) -> bool:
        return self._workers_held

    def hold_workers(self) -> None:
        """Media workers started from now on stop after their first progress report until
        `release_workers`: a test sees a job mid-run (Progress > 0, a live process) without
        racing it."""
        self._workers_held = True

    def release_workers(self) -> None:
        self._workers_held = False
        for worker in list(self.workers.values()):
            worker.go()

    def report_progress(self, job: Job, percent: int) -> None:
        """A media worker's progress report (see `Job.report_progress`)."""
        if job.state is JobState.RUNNING:
            job.report_progress(percent)
            self._signal_waiters()

    def set_progress(self, job_id: str, percent: int) -> None:
        """Move a Running job's `Progress` to `percent` (its current value..100); `KeyError` for
        an unknown job, `TransitionError` if it is not Running, `ValueError` for the value."""
        self.jobs[job_id].set_progress(percent)
        self._signal_waiters()

    def set_queue_state(self, queue_id: str, state: QueueState) -> None:
        """Pause or resume a queue: its waiting jobs show `Pause` while it is paused."""
        queue = self.queues[queue_id]
        if queue.state is not state:
            queue.state = state
            for job in list(queue.waiting_jobs()):
                if state is QueueState.PAUSED and job.state is JobState.SUBMITTED:
                    job.pause()
                elif state is QueueState.ACTIVE and job.state is JobState.PAUSE:
                    job.unpause()
        self._notify()

    def update_queue(
        self, queue: MediaQueue, *, name: str, state: QueueState, notify: NotifyConfig | None
    ) -> None:
        """UpdateMediaQueue: rename, pause/resume, and (when given) replace NotifyConfig."""
        queue.name = name
        if notify is not None:
            queue.notify = notify
        queue.updated_at = self.config.clock()
        self.set_queue_state(queue.queue_id, state)

    def add_queue(
        self,
        bucket: str,
        name: str,
        *,
        max_concurrent: int | None = None,
        max_size: int | None = None,
        category: str = "Transcoding",
        queue_id: str | None = None,
    ) -> MediaQueue:
        """Another media queue for `bucket`. CI creates queues outside this API (console,
        bucket binding); tests and the admin surface need more than the default one."""
        if self.config.bucket(bucket) is None:
            raise KeyError(bucket)
        if queue_id is not None and queue_id in self.queues:
            raise ValueError(f"queue {queue_id} exists already")
        queue = MediaQueue(
            queue_id=queue_id or ids.queue_id(),
            name=name,
            bucket=bucket,
            created_at=self.config.clock(),
            max_concurrent=max_concurrent or self.config.queue_max_concurrent,
            max_size=max_size or self.config.queue_max_size,
            category=category,
        )
        self.queues[queue.queue_id] = queue
        return queue

    def queues_of(self, bucket: str) -> list[MediaQueue]:
        return [queue for queue in self.queues.values() if queue.bucket == bucket]

    async def wait_until(
        self,
        condition: Callable[[], bool],
        *,
        timeout: float = 10.0,  # noqa: ASYNC109 - a bounded wait is the point of this helper
    ) -> None:
        """Wait until `condition()` holds, checked after every change (a job's state or
        progress, a callback); `TimeoutError` after `timeout` seconds."""
        async with asyncio.timeout(timeout):
            # Bounded by the timeout; each pass waits for the next change.
            while not condition():
                await self._changed.wait()

    async def wait_for_job_state(
        self,
        job_id: str,
        states: Iterable[str],
        *,
        timeout: float = 10.0,  # noqa: ASYNC109 - a bounded wait is the point of this helper
    ) -> Job:
        """Wait until the job is in one of `states`; `TimeoutError` after `timeout` seconds."""
        wanted = {JobState(state) for state in states}
        async with asyncio.timeout(timeout):
            # Bounded by the timeout; each pass waits for the next change.
            while True:
                job = self.jobs[job_id]
                if job.state in wanted:
                    return job
                await self._changed.wait()

    def counters(self) -> dict[str, object]:
        """A JSON-ready snapshot for the admin surface and fault tests."""
        states = collections.Counter(str(job.state) for job in self.jobs.values())
        return {
            "requests_seen": self.requests_seen,
            "jobs_created": self.jobs_created,
            "operations": dict(self.operations),
            "errors": dict(self.errors),
            "faults_injected": dict(self.faults.injected),
            "jobs_by_input": [
                {"bucket": bucket, "object": key, "user_data": user_data, "jobs": count}
                for (bucket, key, user_data), count in self.jobs_by_input.items()
            ],
            "jobs_by_body": dict(self.jobs_by_body),
            "duplicate_jobs": sum(count - 1 for count in self.jobs_by_body.values()),
            "callbacks": {
                "scheduled": self.callbacks_scheduled,
                "delivered": sum(1 for c in self.callbacks if _succeeded(c.status)),
                "failed": sum(1 for c in self.callbacks if not _succeeded(c.status)),
                "not_delivered_tdmq": self.callbacks_undeliverable["TDMQ"],
            },
            "jobs_by_state": dict(states),
            "media_jobs_by_state": dict(
                collections.Counter(
                    str(job.state) for job in self.jobs.values() if job.spec.runs_in_worker
                )
            ),
            "scheduler_paused": self.scheduler_paused,
            "running_held": self.running_held,
            "workers_running": len(self.workers),
            "list_jobs_examined": self.list_jobs_examined,
        }


def _succeeded(status: int | None) -> bool:
    return status is not None and 200 <= status < 300
