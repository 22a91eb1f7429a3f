"""Fan-out of verified job and workflow-run changes to every replica.

A callback from CI lands on whichever replica the load balancer picks, but the client watching
that job (or workflow run) may be connected to another one. The receivers therefore never hand a
change to their own follower directly: they publish it here, and every replica gets it. Two
kinds of update travel, on one channel:

- `JobUpdate` (a verified TaskFinish, `gateway.jobs.callbacks`) -> `JobTracker.apply`;
- `ExecutionUpdate` (a verified WorkflowFinish, `gateway.resources.executions`) ->
  `ExecutionFollower.apply`.

The runtime (`gateway.jobs.runtime`) routes each kind to its follower.

- `LocalFanOut` (default): this process only; right for a single replica.
- `RedisFanOut`: Redis pub/sub on one channel, so a callback on replica B wakes watchers on A.
  The publishing replica delivers to itself at once (no round trip, and it keeps working while
  Redis is down); the others receive it through Redis and skip their own echoes by origin id.

Pub/sub is fire-and-forget: a replica that is disconnected at the moment misses the message.
That is acceptable because polling stays the safety net: a lost update costs latency only.
Only verified updates travel here (CI's own describe answer, never a callback's body), and
Redis is the deployment's own trusted infrastructure.

A message is JSON: `v` (1), `kind` (`job` or `execution`), `origin`, `bucket`, `region`, and the
record (`job` or `execution`, base64 protobuf). A message without `kind` is a job's: replicas
from before workflow runs travelled here write no kind, and still read job messages, which keep
their shape; an execution message lacks the `job` they require, so they drop it as foreign. A
rolling upgrade therefore keeps working, older replicas learning of runs' ends by polling only;
the channel keeps its old name for the same reason. Whatever this version cannot read (an
unknown kind from a newer replica, anything malformed) is logged and dropped, and neither it
nor a follower that fails on an update stops the listener.

A subscription only ever reads, so a connection that dies silently (a NAT or conntrack entry
dropped, a failover behind a virtual IP: no FIN, no RST) would leave it waiting for good, the
replica deaf to the others until it restarts. The listener therefore reads with a time-out: a
channel quiet for half of `liveness_timeout_s` gets a PING on the subscription, and a
connection that has answered nothing, not even that, by `liveness_timeout_s` after it last said
anything is given up and subscribed again. redis-py's own `health_check_interval` does not do
this for an idle subscription: it sends its PING only when a read begins, and swallows the PONG
without ever checking that one came. A publish waits no longer than that for its answer.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import logging
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, ClassVar, Protocol

import redis.asyncio as aioredis
from google.protobuf.message import DecodeError, Message
from redis.exceptions import RedisError

from gateway._proto import media_pb2, workflows_pb2
from gateway.model import Target

log = logging.getLogger(__name__)

DEFAULT_CHANNEL = "ci-gateway:job-updates"
SUBSCRIBE_TIMEOUT_S = 5.0
# A subscription silent for this long (not even answering a PING) is given up and resubscribed.
LIVENESS_TIMEOUT_S = 30.0
_PING = "ci-gateway-fanout"  # the PONG's payload; not redis-py's own health-check message
RECONNECT_INITIAL_S = 0.5
RECONNECT_MAX_S = 10.0
_FORMAT = 1


@dataclass(frozen=True)
class JobUpdate:
    """CI's describe answer for one job, and where the job lives."""

    kind: ClassVar[str] = "job"
    target: Target
    detail: media_pb2.JobsDetail

    def encode(self, origin: str) -> bytes:
        return _encode(self.kind, origin, self.target, self.detail)


@dataclass(frozen=True)
class ExecutionUpdate:
    """CI's describe answer for one workflow run, and where the run lives."""

    kind: ClassVar[str] = "execution"
    target: Target
    execution: workflows_pb2.WorkflowExecution

    def encode(self, origin: str) -> bytes:
        return _encode(self.kind, origin, self.target, self.execution)


Update = JobUpdate | ExecutionUpdate


def _encode(kind: str, origin: str, target: Target, record: Message) -> bytes:
    return json.dumps(
        {
            "v": _FORMAT,
            "kind": kind,
            "origin": origin,
            "bucket": target.bucket,
            "region": target.region,
            kind: base64.b64encode(record.SerializeToString()).decode(),
        }
    ).encode()


def decode(data: bytes | str) -> tuple[str, Update]:
    """(origin, update); `ValueError` for anything this version did not write."""
    try:
        document = json.loads(data)
        if not isinstance(document, dict) or document.get("v") != _FORMAT:
            raise ValueError("not an update of this format")
        kind = document.get("kind", JobUpdate.kind)  # none: written before kinds existed
        if kind not in (JobUpdate.kind, ExecutionUpdate.kind):
            raise ValueError(f"unknown kind {str(kind)[:40]!r}")
        record = base64.b64decode(document[kind])  # the record's field is named as its kind
        target = Target(str(document["bucket"]), str(document["region"]))
        update: Update
        if kind == JobUpdate.kind:
            update = JobUpdate(target, media_pb2.JobsDetail.FromString(record))
        else:
            update = ExecutionUpdate(target, workflows_pb2.WorkflowExecution.FromString(record))
        return str(document["origin"]), update
    # RecursionError: what json raises for absurdly deep nesting.
    except (KeyError, TypeError, ValueError, RecursionError, DecodeError) as exc:
        raise ValueError(f"bad update: {exc}") from exc


Deliver = Callable[[Update], None]


class FanOut(Protocol):
    async def start(self, deliver: Deliver) -> None:
        """Begin delivering every update (this replica's and, if shared, the others')."""

    async def publish(self, update: Update) -> None:
        """Deliver here and to every other replica; never raises for a delivery failure."""

    async def close(self) -> None: ...


class LocalFanOut:
    """One process: publishing is delivering."""

    def __init__(self) -> None:
        self._deliver: Deliver | None = None

    async def start(self, deliver: Deliver) -> None:
        self._deliver = deliver

    async def publish(self, update: Update) -> None:
        if self._deliver is not None:
            self._deliver(update)

    async def close(self) -> None:
        self._deliver = None


class RedisFanOut:
    """Redis pub/sub between replicas; see the module docstring."""

    def __init__(
        self,
        client: aioredis.Redis,
        *,
        channel: str = DEFAULT_CHANNEL,
        origin: str | None = None,
        liveness_timeout_s: float = LIVENESS_TIMEOUT_S,
    ) -> None:
        self._redis = client
        self._liveness_timeout_s = liveness_timeout_s
        self._channel = channel
        self.origin = origin or uuid.uuid4().hex
        self._deliver: Deliver | None = None
        self._pubsub: Any = None  # redis' PubSub: untyped enough that Any is honest
        self._task: asyncio.Task[None] | None = None

    async def start(self, deliver: Deliver) -> None:
        """Returns once subscribed: an update published after this is received."""
        self._deliver = deliver
        await self._subscribe()
        self._task = asyncio.create_task(self._listen(), name="fanout-redis")

    async def publish(self, update: Update) -> None:
        if self._deliver is not None:
            self._deliver(update)
        try:
            # Bounded: a connection gone silent would otherwise hold the caller (a CI callback's
            # answer) until the kernel gives up on it, minutes later.
            async with asyncio.timeout(self._liveness_timeout_s):
                await self._redis.publish(self._channel, update.encode(self.origin))
        except (RedisError, OSError, TimeoutError) as exc:
            log.warning(
                "could not publish a %s update to Redis (others will poll): %s", update.kind, exc
            )

    async def close(self) -> None:
        self._deliver = None
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        await self._close_pubsub()

    async def _subscribe(self) -> None:
        # Connecting is bounded too: a Redis address that swallows packets must not hold the
        # listener for the kernel's connect time-out.
        async with asyncio.timeout(SUBSCRIBE_TIMEOUT_S):
            pubsub = self._redis.pubsub()
            self._pubsub = pubsub
            await pubsub.subscribe(self._channel)
            while True:  # bounded by the timeout: the confirmation is the first reply
                message = await pubsub.get_message(timeout=SUBSCRIBE_TIMEOUT_S)
                if message is not None and message.get("type") == "subscribe":
                    return

    async def _close_pubsub(self) -> None:
        if self._pubsub is not None:
            with contextlib.suppress(RedisError, OSError):
                await self._pubsub.aclose()
            self._pubsub = None

    async def _listen(self) -> None:
        delay = RECONNECT_INITIAL_S
        while True:  # runs until close() cancels it; each failure backs off, then resubscribes
            try:
                if self._pubsub is None:
                    await self._subscribe()
                    delay = RECONNECT_INITIAL_S
                    log.info("Redis fan-out resubscribed to %s", self._channel)
                await self._read_while_alive(self._pubsub)
            except (RedisError, OSError, TimeoutError) as exc:
                # The exception's text names host and port at most, never the URL's password.
                log.warning("Redis fan-out lost (%s); resubscribing in %.1f s", exc, delay)
            await self._close_pubsub()
            await asyncio.sleep(delay)
            delay = min(delay * 2, RECONNECT_MAX_S)

    async def _read_while_alive(self, pubsub: Any) -> None:
        """Receive until the connection fails, or says nothing for `liveness_timeout_s`
        (`TimeoutError`). A busy channel is never pinged; a quiet one is, half-way."""
        quiet_s = self._liveness_timeout_s / 2
        pinged = False
        while True:
            # None: nothing within quiet_s (get_message's own time-out leaves the connection
            # usable, unlike cancelling the read).
            message = await pubsub.get_message(timeout=quiet_s)
            if message is not None:
                pinged = False  # anything at all, a PONG included, shows the connection lives
                if message.get("type") == "message":
                    self._receive(message["data"])
            elif pinged:
                raise TimeoutError(
                    f"no answer from Redis in {self._liveness_timeout_s:g} s, not even to a PING"
                )
            else:
                async with asyncio.timeout(quiet_s):  # a write into a stalled socket, bounded
                    await pubsub.ping(_PING)
                pinged = True

    def _receive(self, data: bytes | str) -> None:
        try:
            origin, update = decode(data)
        except ValueError as exc:
            log.warning("ignoring a message on %s: %s", self._channel, exc)
            return
        if origin == self.origin or self._deliver is None:
            return
        try:
            self._deliver(update)
        except Exception:  # one bad update must not end this replica's listening for good
            log.exception("a %s update from another replica could not be applied", update.kind)
