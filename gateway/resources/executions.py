"""Following workflow runs for `WatchWorkflowExecution`: once per run, however many watch it.

::

    WatchWorkflowExecution -> ExecutionFollower.watch(target, run_id, client)   caps -> Overloaded
        <- each change of the run (its state, or any task's), ends after a final state
    _Run: one task per watched run, polling GET /workflowexecution/<RunId> on PollSchedule
    ExecutionFollower.on_callback(body, target)   CI's WorkflowFinish POST, checked, published
        -> fan-out -> ExecutionFollower.apply(target, run)   on every replica

As with jobs (`gateway.jobs.tracking`), a callback only makes the follower learn sooner: its
body is never believed. The receiver of job callbacks hands WorkflowFinish bodies here; the run
is read back from CI, and the callback is accepted only when CI reports the state it claims.
CI's answer (never the body) is then published as an `ExecutionUpdate` through the replicas'
fan-out (`gateway.jobs.fanout`, wired by `gateway.jobs.runtime` with `share_through`), so a
WorkflowFinish received by replica B wakes the watchers of that run on replica A at once, and
every follower takes it in `apply`. Polling stays the safety net. Runs are few and long next
to jobs, so each watched run has its own poll (no batching: CI's run describe takes one id).

Reads that keep failing retryably end the run's watchers as they end a job's: UNAVAILABLE
(UPSTREAM_UNREACHABLE, CI's last error in the details) after `tracking.unreachable_s`, on the
same clock (`gateway.jobs.unreadable`). A run whose poll ended on an error is forgotten at once,
as a dropped job is, so a watcher that comes after starts afresh rather than joining the end.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import logging
import re
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Protocol

from gateway._proto import media_pb2, workflows_pb2
from gateway.config.settings import Tracking
from gateway.errors import (
    GatewayError,
    ResourceNotFound,
    RetryClass,
    TrackerClosed,
    TrackerFailed,
    UpstreamError,
)
from gateway.jobs.callbacks import json_to_element
from gateway.jobs.fanout import ExecutionUpdate
from gateway.jobs.tracking import LoopTimer, PollSchedule, Timer, WatcherPlaces, WatchLimits
from gateway.jobs.unreadable import ReadFailures
from gateway.model import Target
from gateway.upstream import xml_codec
from gateway.upstream.client import Reply
from gateway.upstream.retry import Deadline

log = logging.getLogger(__name__)

EVENT_NAME = "WorkflowFinish"
FINAL_STATES = frozenset(
    {media_pb2.JOB_STATE_SUCCESS, media_pb2.JOB_STATE_FAILED, media_pb2.JOB_STATE_CANCEL}
)
MAX_CALLBACK_BYTES = 1024 * 1024
DEFAULT_DESCRIBE_TIMEOUT_S = 30.0
_RUN_ID = re.compile(r"^[A-Za-z0-9_-]{1,64}$")


# Hands a verified run to every replica's follower (this one's included).
Publish = Callable[[ExecutionUpdate], Awaitable[None]]


def is_final(execution: workflows_pb2.WorkflowExecution) -> bool:
    return execution.state in FINAL_STATES


class ExecutionDescriber(Protocol):
    """What the follower needs of `ResourceCalls`."""

    async def describe_execution(
        self, target: Target, run_id: str, deadline: Deadline
    ) -> Reply[workflows_pb2.DescribeWorkflowExecutionResponse]: ...


def the_run(
    answer: workflows_pb2.DescribeWorkflowExecutionResponse, run_id: str
) -> workflows_pb2.WorkflowExecution:
    """The run CI's describe answered for, or `ResourceNotFound` when it answered with none."""
    for execution in answer.workflow_execution:
        if execution.run_id == run_id:
            return execution
    raise ResourceNotFound("workflow run", run_id)


class _Run:
    """One followed run: its latest answer, the watchers' wake-up, and its poll task."""

    def __init__(self, follower: ExecutionFollower, target: Target, run_id: str) -> None:
        self.target = target
        self.run_id = run_id
        self.latest: workflows_pb2.WorkflowExecution | None = None
        self.version = 0
        self.error: GatewayError | None = None
        self.watchers = 0
        self.reads = ReadFailures(follower.unreachable_s)
        self._follower = follower
        self._changed = asyncio.Event()
        self._wake = asyncio.Event()
        # A context of its own, as the job poller's (`gateway.jobs.tracking.TargetPoller`): a
        # copy of the first watcher's would count every poll among that RPC's CI attempts and
        # show it as that RPC's child, for as long as anyone watches the run.
        self._task = asyncio.create_task(
            self._poll(), name=f"run-{run_id}", context=contextvars.Context()
        )
        self._task.add_done_callback(self._finished)

    def offer(self, execution: workflows_pb2.WorkflowExecution) -> bool:
        """Take CI's latest answer; True when it differs from the last one (a final run's
        answer is kept: nothing later can undo an end)."""
        self.reads.succeeded(self._follower.timer.now())  # CI's answer: the state is known
        if self.latest is not None and (is_final(self.latest) or self.latest == execution):
            return False
        self.latest = execution
        self.version += 1
        self._notify()
        if is_final(execution):
            self._wake.set()  # the poll loop sees the end and stops
        return True

    def fail(self, error: GatewayError) -> None:
        self.error = error
        self._notify()

    def wake(self) -> None:
        self._wake.set()

    async def updates(self) -> AsyncIterator[workflows_pb2.WorkflowExecution]:
        """The run now (once CI answered), then each change; ends after a final state."""
        seen = 0
        while True:  # each pass yields, ends, raises, or waits for the next change
            if self.latest is not None and self.version > seen:
                seen = self.version
                yield self.latest
                if is_final(self.latest):
                    return
                continue
            if self.error is not None:
                raise self.error
            changed = self._changed
            await changed.wait()

    async def stop(self) -> None:
        self._task.cancel()
        # Waited for, not awaited: a task that crashed (already logged, see `_finished`) would
        # raise its exception again here, in whichever watch happened to leave last.
        await asyncio.wait([self._task])

    def _finished(self, task: asyncio.Task[None]) -> None:
        """A poll that stopped on a bug of ours tells the run's watchers, as the job poller
        does, instead of leaving them waiting for their deadlines."""
        if task.cancelled() or task.exception() is None:
            return
        log.error("poller of workflow run %s crashed", self.run_id, exc_info=task.exception())
        self._follower._forget(self)
        self.fail(TrackerFailed())

    def _notify(self) -> None:
        # Swapped, not cleared: no waiter misses a change between its check and its wait.
        changed, self._changed = self._changed, asyncio.Event()
        changed.set()

    async def _poll(self) -> None:
        follower = self._follower
        schedule, timer = follower.schedule, follower.timer
        interval = schedule.initial_s / schedule.multiplier
        due = timer.now() + schedule.linger_s
        # Ends at a final state or an error; each pass is one describe and one bounded wait.
        while self.latest is None or not is_final(self.latest):
            await timer.sleep_until(due, self._wake)
            self._wake.clear()
            if self.latest is not None and is_final(self.latest):
                return  # a callback brought the end while this slept: nothing left to ask CI
            changed = False
            sent_at = timer.now()
            try:
                reply = await follower.client.describe_execution(
                    self.target, self.run_id, Deadline(follower.describe_timeout_s)
                )
                changed = self.offer(the_run(reply.message, self.run_id))
            except ResourceNotFound as error:
                self._end(error)
                return
            except GatewayError as error:
                if isinstance(error, UpstreamError) and error.retry is RetryClass.TERMINAL:
                    log.warning("describe of workflow run %s failed: %s", self.run_id, error)
                    self._end(error)
                    return
                self.reads.failed(sent_at, error)
                if self.reads.expired(now := timer.now()):
                    log.warning(
                        "workflow run %s unread for tracking.unreachable_s (%g s): its watches "
                        "end: %s",
                        self.run_id,
                        self.reads.bound_s,
                        error,
                    )
                    self._end(self.reads.error(f"workflow run {self.run_id}", now))
                    return
            interval = schedule.after(interval, changed=changed)
            # Never past the bound while reads fail: the last look is made at the bound.
            due = self.reads.cap(timer.now() + interval)

    def _end(self, error: GatewayError) -> None:
        """The poll stops on `error`: the watchers get it, and a later watcher starts afresh
        (the error may not last) instead of joining this end."""
        self._follower._forget(self)
        self.fail(error)


class ExecutionFollower:
    """Every `WatchWorkflowExecution` of this gateway; see the module docstring."""

    def __init__(
        self,
        client: ExecutionDescriber,
        *,
        schedule: PollSchedule | None = None,
        limits: WatchLimits | None = None,
        timer: Timer | None = None,
        describe_timeout_s: float = DEFAULT_DESCRIBE_TIMEOUT_S,
        unreachable_s: float = Tracking.unreachable_s,
    ) -> None:
        self.client = client
        self.schedule = schedule or PollSchedule()
        self._places = WatcherPlaces(limits or WatchLimits(), "workflow run watchers")
        self.timer: Timer = timer or LoopTimer()
        self.describe_timeout_s = describe_timeout_s
        self.unreachable_s = unreachable_s
        self._runs: dict[tuple[Target, str], _Run] = {}
        self._closed = False
        self._publish: Publish = self._apply_here

    def share_through(self, publish: Publish) -> None:
        """Publish the runs callbacks verified through the replicas' fan-out rather than apply
        them here only; the fan-out delivers them back to `apply`, here as everywhere."""
        self._publish = publish

    async def _apply_here(self, update: ExecutionUpdate) -> None:
        self.apply(update.target, update.execution)

    @property
    def watchers(self) -> int:
        return self._places.total

    @contextlib.asynccontextmanager
    async def watch(
        self, target: Target, run_id: str, client: str
    ) -> AsyncIterator[AsyncIterator[workflows_pb2.WorkflowExecution]]:
        """Follow one run for `client` for as long as the block runs; yields its updates."""
        if self._closed:
            raise TrackerClosed()
        self._places.take(client)
        run = self._runs.get((target, run_id))
        if run is None:
            run = self._runs[(target, run_id)] = _Run(self, target, run_id)
        run.watchers += 1
        try:
            yield run.updates()
        finally:
            run.watchers -= 1
            self._places.give_back(client)
            if run.watchers <= 0:
                self._forget(run)
                await run.stop()

    def _forget(self, run: _Run) -> None:
        """Follow this run no more (a newer follower of the same id stays)."""
        key = (run.target, run.run_id)
        if self._runs.get(key) is run:
            del self._runs[key]

    def apply(self, target: Target, execution: workflows_pb2.WorkflowExecution) -> bool:
        """A run as CI's describe reports it (a verified callback, maybe relayed by another
        replica); True when a followed run changed."""
        run = self._runs.get((target, execution.run_id))
        if run is None:
            return False
        changed = run.offer(execution)
        if not changed:
            run.wake()  # the callback may know more than this answer: look again soon
        return changed

    async def on_callback(self, body: bytes, target: Target) -> int:
        """CI's WorkflowFinish POST (handed on by the job callback receiver): the HTTP status
        to answer. 200 once CI confirmed the run's state (and it is published), 4xx for a
        body that is no such callback or that CI contradicts, 503 when CI could not be asked."""
        try:
            claimed = parse_workflow_callback(body)
            if claimed.bucket_id and claimed.bucket_id != target.bucket:
                raise ValueError("WorkflowExecution.BucketId is not this URL's bucket")
        except ValueError as exc:
            log.warning("workflow callback rejected: %s", exc)
            return 400
        try:
            reply = await self.client.describe_execution(
                target, claimed.run_id, Deadline(self.describe_timeout_s)
            )
            record = the_run(reply.message, claimed.run_id)
        except ResourceNotFound:
            log.warning("workflow callback rejected: CI has no run %s", claimed.run_id)
            return 422
        except GatewayError as error:
            log.warning("workflow callback not verified, CI could not be asked: %s", error)
            return 503
        if record.state_text != claimed.state_text:
            log.warning(
                "workflow callback rejected: CI reports run %s as %s, not %s",
                claimed.run_id,
                record.state_text,
                claimed.state_text,
            )
            return 422
        await self._publish(ExecutionUpdate(target, record))
        log.info("workflow callback for run %s accepted", claimed.run_id)
        return 200

    async def close(self) -> None:
        """End every watch with UNAVAILABLE (clients watch again elsewhere)."""
        self._closed = True
        runs = list(self._runs.values())
        self._runs.clear()
        for run in runs:
            run.fail(TrackerClosed())
            await run.stop()


def parse_workflow_callback(body: bytes) -> workflows_pb2.WorkflowExecution:
    """The run a WorkflowFinish body claims (XML or JSON, sniffed); `ValueError` otherwise."""
    head = body.lstrip()[:1]
    try:
        if head == b"<":
            callback = xml_codec.decode(
                body, workflows_pb2.WorkflowCallback, max_bytes=MAX_CALLBACK_BYTES
            )
        elif head in (b"{", b"["):
            element = json_to_element(body)
            callback = xml_codec.decode(element, workflows_pb2.WorkflowCallback, root=None)
        else:
            raise ValueError("the body is neither XML nor JSON")
    except xml_codec.XmlCodecError as exc:
        raise ValueError(f"not a CI workflow callback: {exc}") from exc
    if callback.event_name != EVENT_NAME:
        raise ValueError(f"EventName must be {EVENT_NAME}")
    execution = callback.workflow_execution
    if not _RUN_ID.fullmatch(execution.run_id):
        raise ValueError("WorkflowExecution.RunId is missing or malformed")
    if not execution.state_text:
        raise ValueError("WorkflowExecution.State is missing")
    return execution
