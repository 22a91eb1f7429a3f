"""Job tracking assembled from settings: tracker, fan-out, callback receiver, submit store.

`start_tracking` builds, in dependency order, what `[tracking]`, `[callbacks]` and `[shared]`
ask for, and `TrackingRuntime` owns it until the gateway stops:

    Redis client (only when a `[shared]` backend is `redis`)
    -> fan-out (`local` | `redis`) -> JobTracker.apply (a JobUpdate)
                                   -> the run follower's apply (an ExecutionUpdate), if any
    -> submit store (`memory` | `redis`)
    -> callback receiver on `callbacks.listen` (optional), publishing through the fan-out

The run follower (`gateway.resources.executions.ExecutionFollower`, passed as `runs`) is told to
publish through the fan-out before the receiver starts, so no WorkflowFinish it verifies stays
on the replica that received it.

Stopping is two steps around the gRPC server's own drain: `drain()` first (every watch ends
with UNAVAILABLE so its client re-watches on another replica at once instead of holding the
drain for the whole grace period; then no more callbacks), then `close()` after the server
stopped (the submit store and Redis stay usable by submits that are finishing).

The CallBack URL must be identical on every replica and across restarts, because the
exactly-once submit fingerprints the request including it: replicas that share Redis must
therefore share `callbacks.token` too, and the gateway refuses to start otherwise.

`callbacks.token` and `shared.redis_url` may come from files (`*_file`, e.g. a mounted Secret).
`load_settings` has normally read them already; settings built in code are resolved here, once,
before anything starts. Neither value is logged, nor shown in a repr.
"""

from __future__ import annotations

import contextlib
import logging
import secrets
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Protocol

import redis.asyncio as aioredis
from redis.exceptions import RedisError

from gateway._proto import workflows_pb2
from gateway.config.load import resolve_secret_files
from gateway.config.settings import Settings
from gateway.jobs.callbacks import CallbackReceiver, OtherEvent, callback_url
from gateway.jobs.exactly_once import InMemorySubmitStore, SubmitStore
from gateway.jobs.fanout import (
    ExecutionUpdate,
    FanOut,
    JobUpdate,
    LocalFanOut,
    RedisFanOut,
    Update,
)
from gateway.jobs.redis_store import RedisSubmitStore
from gateway.jobs.tracking import JobDescriber, JobTracker, PollSchedule, Timer, WatchLimits
from gateway.model import Target

log = logging.getLogger(__name__)

AUTO_PUBLIC_URL = "auto"


# Bound on each submit-store command and connection attempt towards Redis.
STORE_TIMEOUT_S = 2.0


class RunFollower(Protocol):
    """What the runtime needs of `gateway.resources.executions.ExecutionFollower`."""

    def apply(self, target: Target, execution: workflows_pb2.WorkflowExecution) -> bool: ...

    def share_through(self, publish: Callable[[ExecutionUpdate], Awaitable[None]]) -> None: ...


@dataclass
class TrackingRuntime:
    tracker: JobTracker
    submit_store: SubmitStore
    fanout: FanOut
    receiver: CallbackReceiver | None
    # Base URL handed to CI in CallBack; empty = the gateway sets no CallBack.
    public_url: str
    token: str = field(repr=False)  # the secret in the CallBack URL
    # The Redis clients this runtime opened (fan-out, submit store), closed with it.
    redis: tuple[aioredis.Redis, ...]
    # More followers to end at drain, as the tracker's watches end (workflow runs' watches).
    also_drain: list[Callable[[], Awaitable[None]]] = field(default_factory=list)

    def callback_url(self, target: Target) -> str | None:
        return callback_url(self.public_url, self.token, target) if self.public_url else None

    async def drain(self) -> None:
        # Watches end first: stopping the receiver waits for the callbacks it is checking with
        # CI (each up to its verify time-out, then its publish), which must not hold them. A
        # callback that completes after this finds nothing left to wake, harmlessly.
        await self.tracker.close()
        for close in self.also_drain:
            await close()
        if self.receiver is not None:
            await self.receiver.close()

    async def close(self) -> None:
        await self.drain()
        await self.fanout.close()
        for client in self.redis:
            with contextlib.suppress(RedisError, OSError):
                await client.aclose()


def _check(settings: Settings) -> None:
    """Cross-setting rules, checked once all sources are merged (a `*_file` counts as its
    value, whether or not it has been read yet)."""
    callbacks, shared = settings.callbacks, settings.shared
    uses_redis = "redis" in (shared.fanout, shared.submit_store)
    if uses_redis and not (shared.redis_url or shared.redis_url_file):
        raise ValueError(
            "shared.redis_url (or shared.redis_url_file) is required when a [shared] backend "
            "is `redis`"
        )
    if callbacks.public_url and not callbacks.listen:
        raise ValueError("callbacks.public_url needs callbacks.listen (the receiver)")
    if callbacks.public_url and uses_redis and not (callbacks.token or callbacks.token_file):
        raise ValueError(
            "callbacks.token (or callbacks.token_file) must be set when replicas share Redis: "
            "every replica must hand CI the same CallBack URL, or a submit retried on another "
            "replica would not match"
        )


async def start_tracking(
    settings: Settings,
    client: JobDescriber,
    *,
    timer: Timer | None = None,
    other_events: dict[str, OtherEvent] | None = None,
    runs: RunFollower | None = None,
) -> TrackingRuntime:
    """`other_events`: the receiver's handlers of callbacks that are not a job's (a workflow
    run's `WorkflowFinish`), by `EventName`. `runs`: who follows workflow runs; it publishes
    the runs it verified through the fan-out and gets every replica's (without one, runs'
    updates from other replicas are dropped)."""
    _check(settings)
    settings = resolve_secret_files(settings)  # no-op when load_settings read them already
    tracking, callbacks, shared = settings.tracking, settings.callbacks, settings.shared
    clients: list[aioredis.Redis] = []
    tracker = JobTracker(
        client,
        schedule=PollSchedule(initial_s=tracking.poll_initial_s, max_s=tracking.poll_max_s),
        limits=WatchLimits(tracking.max_watchers, tracking.max_watchers_per_client),
        timer=timer,
        describe_timeout_s=settings.timeouts.rpc_deadline_s,
        unreachable_s=tracking.unreachable_s,
    )
    fanout: FanOut = LocalFanOut()
    if shared.fanout == "redis":
        # No read time-out on its client: the subscription waits for messages by design, and
        # finds a silently dead connection by PINGs of its own (`RedisFanOut`).
        clients.append(aioredis.Redis.from_url(shared.redis_url))
        fanout = RedisFanOut(clients[-1])
    store: SubmitStore = InMemorySubmitStore(max_bytes=int(shared.submit_store_max_mb * 2**20))
    if shared.submit_store == "redis":
        # A Redis that stops answering (rather than refusing connections) must fail a submit
        # with SUBMIT_STORE_UNAVAILABLE in bounded time, not hold it to its deadline.
        clients.append(
            aioredis.Redis.from_url(
                shared.redis_url,
                socket_timeout=STORE_TIMEOUT_S,
                socket_connect_timeout=STORE_TIMEOUT_S,
            )
        )
        store = RedisSubmitStore(clients[-1])
    runtime = TrackingRuntime(
        tracker,
        store,
        fanout,
        None,
        "",
        callbacks.token or secrets.token_urlsafe(32),
        tuple(clients),
    )

    def deliver(update: Update) -> None:
        if isinstance(update, JobUpdate):
            tracker.apply(update.target, update.detail)
        elif runs is not None:
            runs.apply(update.target, update.execution)

    try:
        if runs is not None:
            runs.share_through(fanout.publish)
        await fanout.start(deliver)
        if callbacks.listen:
            runtime.receiver = CallbackReceiver(
                token=runtime.token, client=client, fanout=fanout, other_events=other_events
            )
            bound = await runtime.receiver.start(callbacks.listen)
            public = callbacks.public_url
            runtime.public_url = bound if public == AUTO_PUBLIC_URL else public
    except BaseException:
        await runtime.close()
        raise
    log.info(
        "job tracking: fan-out %s, submit store %s, callbacks %s",
        shared.fanout,
        shared.submit_store,
        "set on submits" if runtime.public_url else "not set on submits",
    )
    return runtime
