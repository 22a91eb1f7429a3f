"""Fan-out of verified job changes to every replica's tracker.

A callback from CI lands on whichever replica the load balancer picks, but the client watching
that job may be connected to another one. The callback receiver therefore never hands a change
to its own tracker directly: it publishes a `JobUpdate` here, and every replica's tracker gets
it (`JobTracker.apply`).

- `LocalFanOut` (default): this process only; right for a single replica.
- `RedisFanOut`: Redis pub/sub on one channel, so a callback on replica B wakes watchers on A.
  The publishing replica delivers to itself at once (no round trip, and it keeps working while
  Redis is down); the others receive it through Redis and skip their own echoes by origin id.

Pub/sub is fire-and-forget: a replica that is disconnected at the moment misses the message.
That is acceptable because polling stays the safety net: a lost update costs latency only.
Only verified updates travel here (CI's own describe answer, never a callback's body), and
Redis is the deployment's own trusted infrastructure.
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
from typing import Any, Protocol

import redis.asyncio as aioredis
from google.protobuf.message import DecodeError
from redis.exceptions import RedisError

from gateway._proto import media_pb2
from gateway.model import Target

log = logging.getLogger(__name__)

DEFAULT_CHANNEL = "ci-gateway:job-updates"
SUBSCRIBE_TIMEOUT_S = 5.0
RECONNECT_INITIAL_S = 0.5
RECONNECT_MAX_S = 10.0
_FORMAT = 1


@dataclass(frozen=True)
class JobUpdate:
    """CI's describe answer for one job, and where the job lives."""

    target: Target
    detail: media_pb2.JobsDetail

    def encode(self, origin: str) -> bytes:
        return json.dumps(
            {
                "v": _FORMAT,
                "origin": origin,
                "bucket": self.target.bucket,
                "region": self.target.region,
                "job": base64.b64encode(self.detail.SerializeToString()).decode(),
            }
        ).encode()

    @staticmethod
    def decode(data: bytes) -> tuple[str, JobUpdate]:
        """(origin, update); `ValueError` for anything this version did not write."""
        try:
            document = json.loads(data)
            if not isinstance(document, dict) or document.get("v") != _FORMAT:
                raise ValueError("not a job update of this format")
            detail = media_pb2.JobsDetail.FromString(base64.b64decode(document["job"]))
            target = Target(str(document["bucket"]), str(document["region"]))
            return str(document["origin"]), JobUpdate(target, detail)
        except (KeyError, TypeError, ValueError, DecodeError) as exc:
            raise ValueError(f"bad job update: {exc}") from exc


Deliver = Callable[[JobUpdate], None]


class FanOut(Protocol):
    async def start(self, deliver: Deliver) -> None:
        """Begin delivering every update (this replica's and, if shared, the others')."""

    async def publish(self, update: JobUpdate) -> None:
        """Deliver here and to every other replica; never raises for a delivery failure."""

    async def close(self) -> None: ...


class LocalFanOut:
    """One process: publishing is delivering."""

    def __init__(self) -> None:
        self._deliver: Deliver | None = None

    async def start(self, deliver: Deliver) -> None:
        self._deliver = deliver

    async def publish(self, update: JobUpdate) -> None:
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
    ) -> None:
        self._redis = client
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

    async def publish(self, update: JobUpdate) -> None:
        if self._deliver is not None:
            self._deliver(update)
        try:
            await self._redis.publish(self._channel, update.encode(self.origin))
        except (RedisError, OSError) as exc:
            log.warning("could not publish a job update to Redis (others will poll): %s", exc)

    async def close(self) -> None:
        self._deliver = None
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        await self._close_pubsub()

    async def _subscribe(self) -> None:
        pubsub = self._redis.pubsub()
        self._pubsub = pubsub
        await pubsub.subscribe(self._channel)
        async with asyncio.timeout(SUBSCRIBE_TIMEOUT_S):
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
                async for message in self._pubsub.listen():
                    if message.get("type") == "message":
                        self._receive(message["data"])
            except (RedisError, OSError, TimeoutError) as exc:
                log.warning("Redis fan-out lost (%s); resubscribing in %.1f s", exc, delay)
            await self._close_pubsub()
            await asyncio.sleep(delay)
            delay = min(delay * 2, RECONNECT_MAX_S)

    def _receive(self, data: bytes) -> None:
        try:
            origin, update = JobUpdate.decode(data)
        except ValueError as exc:
            log.warning("ignoring a message on %s: %s", self._channel, exc)
            return
        if origin != self.origin and self._deliver is not None:
            self._deliver(update)
