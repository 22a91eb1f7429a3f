"""`gateway.jobs.fanout` on its own: local delivery, unsubscribing, and Redis pub/sub between
replicas on the real redis-server of `redis_url` (each test on a channel of its own).

Updates are awaited through an `asyncio.Queue` each replica delivers into, never slept on.
Where a test must show that something did *not* arrive (a replica's own echo, a message after
close), it relies on Redis delivering one channel's messages to a subscriber in publish order:
once a later message has arrived, the earlier one has been handled too.
"""

from __future__ import annotations

import asyncio
import base64
import json
import logging
import secrets
from collections.abc import AsyncIterator
from urllib.parse import urlsplit

import pytest
import redis.asyncio as aioredis

from gateway._proto import media_pb2
from gateway.jobs.fanout import JobUpdate, LocalFanOut, RedisFanOut
from gateway.model import Target

M = media_pb2
TARGET = Target("examplebucket-1250000000", "ap-guangzhou")
WAIT_S = 5.0


def update(job_id: str, state: M.JobState = M.JOB_STATE_SUCCESS) -> JobUpdate:
    return JobUpdate(TARGET, M.JobsDetail(job_id=job_id, state=state, tag="MediaInfo"))


class Inbox:
    """What one replica's tracker was handed, in order, awaitable."""

    def __init__(self) -> None:
        self.updates: list[JobUpdate] = []
        self._queue: asyncio.Queue[JobUpdate] = asyncio.Queue()

    def deliver(self, update: JobUpdate) -> None:
        self.updates.append(update)
        self._queue.put_nowait(update)

    async def next(self) -> JobUpdate:
        return await asyncio.wait_for(self._queue.get(), WAIT_S)

    def job_ids(self) -> list[str]:
        return [u.detail.job_id for u in self.updates]


# ---- the message format ------------------------------------------------------------------------


def test_an_update_round_trips_with_its_origin() -> None:
    sent = update("j1", M.JOB_STATE_FAILED)
    origin, received = JobUpdate.decode(sent.encode("replica-a"))
    assert origin == "replica-a"
    assert received == sent


@pytest.mark.parametrize(
    "data",
    [
        b"not json",
        b"[1, 2]",
        json.dumps({"v": 2, "origin": "a", "bucket": "b", "region": "r", "job": ""}).encode(),
        json.dumps({"v": 1, "origin": "a", "bucket": "b", "region": "r"}).encode(),
        json.dumps(
            {"v": 1, "origin": "a", "bucket": "b", "region": "r", "job": "!!not base64!!"}
        ).encode(),
        json.dumps(
            {
                "v": 1,
                "origin": "a",
                "bucket": "b",
                "region": "r",
                "job": base64.b64encode(b"\xff\xff\xff").decode(),  # not a JobsDetail
            }
        ).encode(),
    ],
    ids=["not-json", "not-an-object", "other-version", "no-job", "bad-base64", "bad-protobuf"],
)
def test_anything_this_version_did_not_write_is_a_value_error(data: bytes) -> None:
    with pytest.raises(ValueError, match="bad job update"):
        JobUpdate.decode(data)


# ---- one process ------------------------------------------------------------------------------


async def test_local_fanout_delivers_at_once_and_stops_after_close() -> None:
    fanout, inbox = LocalFanOut(), Inbox()
    await fanout.publish(update("before-start"))  # nobody to deliver to yet: dropped, no error
    await fanout.start(inbox.deliver)
    await fanout.publish(update("j1"))
    assert inbox.job_ids() == ["j1"]  # delivered before publish returned
    await fanout.close()
    await fanout.publish(update("after-close"))
    assert inbox.job_ids() == ["j1"]


# ---- replicas through Redis -------------------------------------------------------------------


class Replicas:
    """Start `RedisFanOut`s, each with its own Redis connection (as another process would have),
    on one channel of this test's own."""

    def __init__(self, redis_url: str) -> None:
        self.redis_url = redis_url
        self.channel = "test-fanout:" + secrets.token_hex(6)
        self._started: list[tuple[RedisFanOut, aioredis.Redis]] = []

    async def start(self, url: str | None = None) -> tuple[RedisFanOut, Inbox]:
        client = aioredis.Redis.from_url(url or self.redis_url)
        fanout, inbox = RedisFanOut(client, channel=self.channel), Inbox()
        self._started.append((fanout, client))
        await fanout.start(inbox.deliver)  # returns once subscribed
        return fanout, inbox

    async def close(self) -> None:
        for fanout, client in self._started:
            await fanout.close()
            await client.aclose()


@pytest.fixture
async def replicas(redis_url: str, redis_client: aioredis.Redis) -> AsyncIterator[Replicas]:
    started = Replicas(redis_url)
    try:
        yield started
    finally:
        await started.close()


async def test_an_update_reaches_every_replica_once(
    replicas: Replicas, redis_client: aioredis.Redis
) -> None:
    (a, on_a), (b, on_b), (c, on_c) = [await replicas.start() for _ in range(3)]
    assert len({a.origin, b.origin, c.origin}) == 3

    await a.publish(update("from-a"))
    assert on_a.job_ids() == ["from-a"]  # the publisher delivers to itself at once
    await b.publish(update("from-b"))
    await c.publish(update("from-c"))
    # A last message from outside: once a replica has it, every earlier one on the channel,
    # its own echo included, has been handled.
    await redis_client.publish(replicas.channel, update("last").encode("elsewhere"))
    for inbox in (on_a, on_b, on_c):
        while (await inbox.next()).detail.job_id != "last":  # bounded: 4 deliveries each
            pass
    # Every update exactly once; the ones that came through Redis in publish order (its own
    # was delivered when published, wherever the others had got to by then).
    published = ["from-a", "from-b", "from-c", "last"]
    for own, inbox in (("from-a", on_a), ("from-b", on_b), ("from-c", on_c)):
        assert sorted(inbox.job_ids()) == sorted(published)
        assert [i for i in inbox.job_ids() if i != own] == [i for i in published if i != own]
    assert update("from-a") in on_c.updates  # the whole detail travels, not only the id


async def test_a_closed_replica_receives_nothing_more(replicas: Replicas) -> None:
    (a, _), (b, on_b), (_, on_c) = [await replicas.start() for _ in range(3)]
    await a.publish(update("j1"))
    assert (await on_b.next()).detail.job_id == "j1"
    await b.close()
    await a.publish(update("j2"))
    assert [(await on_c.next()).detail.job_id for _ in range(2)] == ["j1", "j2"]
    await b.publish(update("j3"))  # a closed fan-out delivers nowhere, not even to itself
    assert on_b.job_ids() == ["j1"]


async def test_foreign_messages_on_the_channel_are_ignored(
    replicas: Replicas, redis_client: aioredis.Redis, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="gateway.jobs.fanout")
    _, inbox = await replicas.start()
    channel = replicas.channel
    await redis_client.publish(channel, b"hello")
    await redis_client.publish(channel, json.dumps({"v": 99}).encode())
    await redis_client.publish(channel, update("real").encode("elsewhere"))
    assert (await inbox.next()).detail.job_id == "real"
    assert inbox.job_ids() == ["real"]
    ignored = [r for r in caplog.records if "ignoring a message" in r.getMessage()]
    assert len(ignored) == 2


async def test_a_refused_publish_still_delivers_here_and_does_not_raise(
    replicas: Replicas,
    redis_url: str,
    redis_client: aioredis.Redis,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Redis refusing the publish (here an ACL without PUBLISH) costs the other replicas only
    latency: they fall back to polling. This replica's watchers still get the update."""
    user, password = "fanout-" + secrets.token_hex(4), "pw-" + secrets.token_hex(12)
    await redis_client.acl_setuser(
        user,
        enabled=True,
        passwords=[f"+{password}"],
        categories=["+@all"],
        commands=["-publish"],
        keys=["*"],
        channels=["*"],
    )
    try:
        parts = urlsplit(redis_url)
        url = f"redis://{user}:{password}@{parts.hostname}:{parts.port}{parts.path}"
        muted, on_muted = await replicas.start(url)
        _, on_other = await replicas.start()
        caplog.set_level(logging.WARNING, logger="gateway.jobs.fanout")
        await muted.publish(update("kept-local"))
        assert on_muted.job_ids() == ["kept-local"]
        assert "could not publish a job update" in caplog.text
        # Nothing reached the other replica: a later update from a permitted publisher is the
        # first thing it receives.
        await redis_client.publish(replicas.channel, update("later").encode("elsewhere"))
        assert (await on_other.next()).detail.job_id == "later"
        assert on_other.job_ids() == ["later"]
    finally:
        await redis_client.acl_deluser(user)
