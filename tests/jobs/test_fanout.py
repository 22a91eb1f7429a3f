"""`gateway.jobs.fanout` on its own: the message format (both kinds), local delivery,
unsubscribing, and Redis pub/sub between replicas on the real redis-server of `redis_url` (each
test on a channel of its own), or on one of the test's own that it restarts, or through a TCP
relay of the test's own that freezes connections silently.

Updates are awaited through an `asyncio.Queue` each replica delivers into, never slept on.
Where a test must show that something did *not* arrive (a replica's own echo, a message after
close), it relies on Redis delivering one channel's messages to a subscriber in publish order:
once a later message has arrived, the earlier one has been handled too.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import logging
import secrets
from collections.abc import AsyncIterator
from dataclasses import dataclass
from urllib.parse import urlsplit

import pytest
import redis.asyncio as aioredis
from google.protobuf.message import DecodeError

from gateway._proto import media_pb2, workflows_pb2
from gateway.jobs.fanout import (
    ExecutionUpdate,
    JobUpdate,
    LocalFanOut,
    RedisFanOut,
    Update,
    decode,
)
from gateway.model import Target
from tests.fixtures.tcp import StreamServer
from tests.jobs.conftest import RedisServer
from tests.jobs.helpers import redis_acl_user

M = media_pb2
W = workflows_pb2
TARGET = Target("examplebucket-1250000000", "ap-guangzhou")
WAIT_S = 5.0


def update(job_id: str, state: M.JobState = M.JOB_STATE_SUCCESS) -> JobUpdate:
    return JobUpdate(TARGET, M.JobsDetail(job_id=job_id, state=state, tag="MediaInfo"))


def run_update(run_id: str, state_text: str = "Success") -> ExecutionUpdate:
    execution = W.WorkflowExecution(
        run_id=run_id, workflow_id="w1", state=M.JOB_STATE_SUCCESS, state_text=state_text
    )
    execution.tasks.add(type="MediaInfo", job_id="j-" + run_id, state=M.JOB_STATE_SUCCESS)
    return ExecutionUpdate(TARGET, execution)


def key(update: Update) -> str:
    """The job's id, or the workflow run's."""
    if isinstance(update, JobUpdate):
        return update.detail.job_id
    return update.execution.run_id


class Inbox:
    """What one replica's followers were handed, in order, awaitable."""

    def __init__(self) -> None:
        self.updates: list[Update] = []
        self._queue: asyncio.Queue[Update] = asyncio.Queue()

    def deliver(self, update: Update) -> None:
        self.updates.append(update)
        self._queue.put_nowait(update)

    async def next(self, timeout: float = WAIT_S) -> Update:
        return await asyncio.wait_for(self._queue.get(), timeout)

    async def next_key(self) -> str:
        return key(await self.next())

    def job_ids(self) -> list[str]:
        return [key(u) for u in self.updates]


# ---- the message format ------------------------------------------------------------------------


@pytest.mark.parametrize(
    "sent", [update("j1", M.JOB_STATE_FAILED), run_update("i1")], ids=["job", "execution"]
)
def test_an_update_round_trips_with_its_origin_and_kind(sent: Update) -> None:
    data = sent.encode("replica-a")
    assert json.loads(data)["kind"] == sent.kind
    origin, received = decode(data)
    assert origin == "replica-a"
    assert received == sent


def test_a_job_message_without_a_kind_is_a_job_update() -> None:
    """What replicas from before workflow runs travelled here write; and what they read: a job
    message keeps every field they require."""
    sent = update("j-old")
    document = json.loads(sent.encode("old-replica"))
    assert {"v", "origin", "bucket", "region", "job"} <= document.keys()
    del document["kind"]
    assert decode(json.dumps(document).encode()) == ("old-replica", sent)


def old_decode(data: bytes) -> tuple[str, JobUpdate]:
    """The previous version's `JobUpdate.decode`, verbatim but for names: what an older replica
    does with what this one writes during a rolling upgrade (its listener logs a `ValueError`
    and goes on)."""
    try:
        document = json.loads(data)
        if not isinstance(document, dict) or document.get("v") != 1:
            raise ValueError("not a job update of this format")
        detail = M.JobsDetail.FromString(base64.b64decode(document["job"]))
        target = Target(str(document["bucket"]), str(document["region"]))
        return str(document["origin"]), JobUpdate(target, detail)
    except (KeyError, TypeError, ValueError, DecodeError) as exc:
        raise ValueError(f"bad job update: {exc}") from exc


def test_an_older_replica_reads_job_messages_and_drops_execution_ones() -> None:
    assert old_decode(update("j1").encode("new")) == ("new", update("j1"))
    with pytest.raises(ValueError, match="bad job update: 'job'"):
        old_decode(run_update("i1").encode("new"))


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
        json.dumps({"v": 1, "kind": "queue", "origin": "a", "bucket": "b", "region": "r"}).encode(),
        json.dumps({"v": 1, "kind": ["job"], "origin": "a", "bucket": "b", "region": "r"}).encode(),
        json.dumps(
            {"v": 1, "kind": "execution", "origin": "a", "bucket": "b", "region": "r", "job": ""}
        ).encode(),
        json.dumps(
            {
                "v": 1,
                "kind": "execution",
                "origin": "a",
                "bucket": "b",
                "region": "r",
                "execution": base64.b64encode(b"\xff\xff\xff").decode(),
            }
        ).encode(),
        b"[" * 100_000,  # json's recursion limit
    ],
    ids=[
        "not-json",
        "not-an-object",
        "other-version",
        "no-job",
        "bad-base64",
        "bad-protobuf",
        "unknown-kind",
        "kind-not-a-string",
        "no-execution",
        "bad-execution-protobuf",
        "too-deep",
    ],
)
def test_anything_this_version_did_not_write_is_a_value_error(data: bytes) -> None:
    with pytest.raises(ValueError, match="bad update"):
        decode(data)


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
        while await inbox.next_key() != "last":  # bounded: 4 deliveries each
            pass
    # Every update exactly once; the ones that came through Redis in publish order (its own
    # was delivered when published, wherever the others had got to by then).
    published = ["from-a", "from-b", "from-c", "last"]
    for own, inbox in (("from-a", on_a), ("from-b", on_b), ("from-c", on_c)):
        assert sorted(inbox.job_ids()) == sorted(published)
        assert [i for i in inbox.job_ids() if i != own] == [i for i in published if i != own]
    assert update("from-a") in on_c.updates  # the whole detail travels, not only the id


async def test_an_execution_update_crosses_replicas_as_a_job_update_does(
    replicas: Replicas,
) -> None:
    (a, on_a), (b, on_b) = [await replicas.start() for _ in range(2)]
    await b.publish(run_update("i1"))
    assert on_b.updates == [run_update("i1")]  # here at once
    await b.publish(update("j-after"))
    assert [await on_a.next() for _ in range(2)] == [run_update("i1"), update("j-after")]
    await a.publish(update("j-last"))
    assert await on_b.next_key() == "i1"  # its own, handed over when published
    assert [await on_b.next_key() for _ in range(2)] == ["j-after", "j-last"]
    assert on_b.job_ids() == ["i1", "j-after", "j-last"]  # no echo of its own


async def test_a_closed_replica_receives_nothing_more(replicas: Replicas) -> None:
    (a, _), (b, on_b), (_, on_c) = [await replicas.start() for _ in range(3)]
    await a.publish(update("j1"))
    assert await on_b.next_key() == "j1"
    await b.close()
    await a.publish(update("j2"))
    assert [await on_c.next_key() for _ in range(2)] == ["j1", "j2"]
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
    newer = {"v": 1, "kind": "queue", "origin": "newer", "bucket": "b", "region": "r"}
    await redis_client.publish(channel, json.dumps(newer).encode())  # a kind from the future
    await redis_client.publish(channel, b"[" * 100_000)
    await redis_client.publish(channel, update("real").encode("elsewhere"))
    await redis_client.publish(channel, run_update("i-real").encode("elsewhere"))
    assert [await inbox.next_key() for _ in range(2)] == ["real", "i-real"]  # still listening
    assert inbox.job_ids() == ["real", "i-real"]
    ignored = [r for r in caplog.records if "ignoring a message" in r.getMessage()]
    assert len(ignored) == 4
    assert "unknown kind 'queue'" in ignored[2].getMessage()


async def test_a_refused_publish_still_delivers_here_and_does_not_raise(
    replicas: Replicas,
    redis_url: str,
    redis_client: aioredis.Redis,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Redis refusing the publish (here an ACL without PUBLISH) costs the other replicas only
    latency: they fall back to polling. This replica's watchers still get the update."""
    parts = urlsplit(redis_url)
    async with redis_acl_user(redis_client, denied=("publish",)) as user:
        muted, on_muted = await replicas.start(
            user.url(str(parts.hostname), parts.port, parts.path)
        )
        _, on_other = await replicas.start()
        caplog.set_level(logging.WARNING, logger="gateway.jobs.fanout")
        await muted.publish(update("kept-local"))
        assert on_muted.job_ids() == ["kept-local"]
        assert "could not publish a job update" in caplog.text
        # Nothing reached the other replica: a later update from a permitted publisher is the
        # first thing it receives.
        await redis_client.publish(replicas.channel, update("later").encode("elsewhere"))
        assert await on_other.next_key() == "later"
        assert on_other.job_ids() == ["later"]


async def test_an_update_its_follower_fails_on_does_not_end_the_listening(
    replicas: Replicas, redis_client: aioredis.Redis, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.ERROR, logger="gateway.jobs.fanout")
    client = aioredis.Redis.from_url(replicas.redis_url)
    fanout, inbox = RedisFanOut(client, channel=replicas.channel), Inbox()

    def deliver(update: Update) -> None:
        if key(update) == "poison":
            raise RuntimeError("the follower broke")
        inbox.deliver(update)

    await fanout.start(deliver)
    try:
        await redis_client.publish(replicas.channel, run_update("poison").encode("elsewhere"))
        await redis_client.publish(replicas.channel, update("next").encode("elsewhere"))
        assert await inbox.next_key() == "next"
        assert "execution update from another replica could not be applied" in caplog.text
    finally:
        await fanout.close()
        await client.aclose()


PROBES = 100
PROBE_WAIT_S = 0.2  # per probe; PROBES of them bound the wait for the resubscription to 20 s


async def first_probe_through(publisher: RedisFanOut, inbox: Inbox) -> None:
    """Publish probes until `inbox` receives one (each awaited for `PROBE_WAIT_S`, at most
    `PROBES`): the subscriber is listening again."""
    for attempt in range(1, PROBES + 1):
        await publisher.publish(run_update(f"probe-{attempt}"))
        try:
            await inbox.next(PROBE_WAIT_S)
        except TimeoutError:
            continue
        return
    raise AssertionError(f"no probe arrived in {PROBES * PROBE_WAIT_S:.0f} s")


async def until(inbox: Inbox, wanted: str) -> None:
    """Take deliveries until `wanted` (bounded: at most every probe and a few more)."""
    for _ in range(PROBES + 10):
        if await inbox.next_key() == wanted:
            return
    raise AssertionError(f"{wanted} did not arrive: {inbox.job_ids()}")


@pytest.mark.parametrize("outage", ["restart", "connections-killed"])
async def test_a_replica_subscribes_again_after_losing_redis_and_receives_again(
    redis_server: RedisServer, outage: str, caplog: pytest.LogCaptureFixture
) -> None:
    """Redis restarting (every connection and the subscription gone, the server back empty) or
    dropping the replicas' connections must not leave a replica deaf for good: it subscribes
    again and updates published after that reach it. What was published while it could not
    listen is lost (polling covers it). Whether redis-py reconnects the subscription itself or
    the fan-out's own loop does, the test only asks for deliveries; it waits for the first by
    sending probes (`first_probe_through`), never by sleeping."""
    caplog.set_level(logging.INFO, logger="gateway.jobs.fanout")
    replicas = Replicas(redis_server.url)
    try:
        (a, on_a), (b, on_b) = [await replicas.start() for _ in range(2)]
        await a.publish(update("before"))
        assert await on_b.next_key() == "before"

        if outage == "restart":
            await asyncio.to_thread(redis_server.stop)
            await a.publish(update("while-down"))  # logged, not raised; delivered here
            assert on_a.job_ids()[-1] == "while-down"
            assert await asyncio.to_thread(redis_server.start)
        else:
            async with aioredis.Redis.from_url(redis_server.url) as admin:
                killed = await admin.client_kill_filter(_type="pubsub")
            assert killed == 2  # both replicas' subscriptions
        await first_probe_through(a, on_b)

        await a.publish(run_update("after"))
        await until(on_b, "after")  # past any late probe
        await b.publish(update("from-b"))
        await until(on_a, "from-b")  # A hears again too
        assert "while-down" not in on_b.job_ids()
    finally:
        await replicas.close()


class FreezableRelay:
    """A loopback TCP relay to Redis of the test's own. `freeze()` stops forwarding on every
    connection it carries at that moment, in both directions, while keeping both of its sockets
    open (no FIN, no RST): what a NAT entry dropped silently, or a failover behind a virtual IP,
    looks like to the client. Connections made after that are relayed normally. `close()` ends
    them all, frozen or not, on both sides (`StreamServer` the clients' side)."""

    def __init__(self, upstream_port: int) -> None:
        self._upstream_port = upstream_port
        self._server = StreamServer(self._relay)
        self._pumps: set[asyncio.Task[None]] = set()  # the live connections' forwarding
        self._upstream: list[asyncio.StreamWriter] = []  # to Redis; frozen ones kept open

    @property
    def connections(self) -> int:
        return self._server.accepted

    async def start(self) -> int:
        """The loopback port it listens on."""
        return await self._server.start()

    def freeze(self) -> None:
        for pump in self._pumps:
            pump.cancel()
        self._pumps.clear()

    async def close(self) -> None:
        self.freeze()
        # Also cancels a relay still connecting upstream, so none adds a connection after this.
        await self._server.close()
        for writer in self._upstream:
            writer.transport.abort()
        for writer in self._upstream:
            with contextlib.suppress(OSError):  # one Redis reset first says so here
                await writer.wait_closed()

    async def _relay(self, client_r: asyncio.StreamReader, client_w: asyncio.StreamWriter) -> None:
        server_r, server_w = await asyncio.open_connection("127.0.0.1", self._upstream_port)
        self._upstream.append(server_w)
        for source, sink in ((client_r, server_w), (server_r, client_w)):
            pump = asyncio.create_task(self._pump(source, sink))
            self._pumps.add(pump)
            pump.add_done_callback(self._pumps.discard)

    @staticmethod
    async def _pump(source: asyncio.StreamReader, sink: asyncio.StreamWriter) -> None:
        while data := await source.read(65536):  # until EOF, or cancelled by freeze()
            sink.write(data)
            await sink.drain()
        sink.write_eof()  # a side that closed is passed on: only freezing is silent


@dataclass
class Relayed:
    """A replica that reaches Redis through a `FreezableRelay`, with a password in its URL (an
    ACL user's, so AUTH travels through the relay), and a replica connected directly."""

    relay: FreezableRelay
    password: str
    fanout: RedisFanOut
    inbox: Inbox
    direct: RedisFanOut
    on_direct: Inbox


@pytest.fixture
async def relayed(redis_url: str, redis_client: aioredis.Redis) -> AsyncIterator[Relayed]:
    relay = FreezableRelay(int(urlsplit(redis_url).port or 0))
    replicas = Replicas(redis_url)
    async with redis_acl_user(redis_client) as user:
        try:
            port = await relay.start()
            client = aioredis.Redis.from_url(user.url("127.0.0.1", port))
            fanout, inbox = (
                RedisFanOut(client, channel=replicas.channel, liveness_timeout_s=1.0),
                Inbox(),
            )
            try:
                await fanout.start(inbox.deliver)
                direct, on_direct = await replicas.start()
                yield Relayed(relay, user.password, fanout, inbox, direct, on_direct)
            finally:
                await fanout.close()
                await client.aclose()
        finally:
            await replicas.close()
            await relay.close()


def assert_no_password_logged(caplog: pytest.LogCaptureFixture, password: str) -> None:
    logged = [r.getMessage() for r in caplog.records] + [caplog.text]
    assert not [line for line in logged if password in line]


async def test_a_replica_whose_connection_goes_silent_subscribes_again_and_logs_no_password(
    relayed: Relayed, caplog: pytest.LogCaptureFixture
) -> None:
    """A subscription whose connection stops answering without being closed (the relay frozen)
    is given up within the fan-out's liveness time-out and subscribed again through a new
    connection; an update published after that, by the replica connected to Redis directly,
    reaches it. The password in its Redis URL appears in no log line of any logger, the
    reconnect's warning included."""
    caplog.set_level(logging.DEBUG)  # every logger, redis-py's own too
    await relayed.direct.publish(update("before"))
    assert await relayed.inbox.next_key() == "before"

    relayed.relay.freeze()
    connections = relayed.relay.connections
    await first_probe_through(relayed.direct, relayed.inbox)  # bounded: PROBES * PROBE_WAIT_S
    assert relayed.relay.connections > connections  # it came back through a new connection
    await relayed.direct.publish(run_update("after"))
    await until(relayed.inbox, "after")

    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert any("Redis fan-out lost (no answer from Redis" in w for w in warnings), warnings
    assert_no_password_logged(caplog, relayed.password)


async def test_a_publish_on_a_connection_gone_silent_gives_up_in_bounded_time(
    relayed: Relayed, caplog: pytest.LogCaptureFixture
) -> None:
    """A publish whose pooled connection stops answering (the relay frozen) is abandoned after
    the liveness time-out, logged, and still delivered here; the next publish takes a new
    connection and reaches the other replica."""
    caplog.set_level(logging.DEBUG)
    await relayed.fanout.publish(update("warm"))  # leaves a relayed connection in its pool
    assert await relayed.on_direct.next_key() == "warm"

    relayed.relay.freeze()
    async with asyncio.timeout(WAIT_S):  # the liveness time-out is 1 s
        await relayed.fanout.publish(update("stuck"))
    assert relayed.inbox.job_ids()[-1] == "stuck"
    assert "could not publish a job update to Redis" in caplog.text
    await first_probe_through(relayed.fanout, relayed.on_direct)
    assert "stuck" not in relayed.on_direct.job_ids()
    assert_no_password_logged(caplog, relayed.password)
