"""Test helpers for job tracking: a manual clock, gateways, stubs, callback bodies."""

from __future__ import annotations

import asyncio
import json
import secrets
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import grpc
import redis.asyncio as aioredis
from lxml import etree

from gateway._proto import media_pb2, service_pb2, service_pb2_grpc
from gateway.api.server import RunningGateway, start_gateway
from gateway.config.settings import Settings
from gateway.credentials import Credentials, StaticCredentialsProvider
from gateway.jobs.tracking import JobTracker
from gateway.upstream import xml_codec
from tests.conftest import SAMPLE_KEY

if TYPE_CHECKING:
    from gateway._proto.service_pb2_grpc import MediaJobServiceAsyncStub as Stub

M, S = media_pb2, service_pb2
Call = grpc.aio.UnaryStreamCall[S.WatchMediaJobRequest, S.WatchMediaJobResponse]
EOF = grpc.aio.EOF  # type: ignore[attr-defined]  # missing from grpc-stubs
TOKEN = "t0k3n-" + "x" * 40


class ManualTimer:
    """A `gateway.jobs.tracking.Timer` whose time moves only when the test says `advance`.

    `next_wake` is what a test awaits instead of sleeping: the time a poller sleeps for, once it
    has finished its round and scheduled the next."""

    def __init__(self) -> None:
        self._now = 1000.0
        self._sleepers: list[tuple[float, asyncio.Future[None]]] = []
        self._slept = asyncio.Event()

    def now(self) -> float:
        return self._now

    async def sleep_until(self, when: float, wake: asyncio.Event) -> None:
        if when <= self._now or wake.is_set():
            return
        alarm: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        entry = (when, alarm)
        self._sleepers.append(entry)
        slept, self._slept = self._slept, asyncio.Event()
        slept.set()
        woken = asyncio.ensure_future(wake.wait())
        waiters: set[asyncio.Future[Any]] = {alarm, woken}
        try:
            await asyncio.wait(waiters, return_when=asyncio.FIRST_COMPLETED)
        finally:
            woken.cancel()
            if entry in self._sleepers:
                self._sleepers.remove(entry)

    def advance(self, seconds: float) -> None:
        self.advance_to(self._now + seconds)

    def advance_to(self, when: float) -> None:
        """Move to exactly `when` (never back), waking every sleeper due by then."""
        self._now = max(self._now, when)
        for due, alarm in list(self._sleepers):
            if due <= self._now and not alarm.done():
                alarm.set_result(None)

    async def next_wake(self, timeout: float = 20.0) -> float:
        """The soonest time someone sleeps until that is still ahead, once someone does."""
        async with asyncio.timeout(timeout):
            while not (ahead := [due for due, alarm in self._sleepers if not alarm.done()]):
                await self._slept.wait()  # each pass waits for the next sleeper
        return min(ahead)


@dataclass
class Gateway:
    running: RunningGateway
    stub: Stub

    @property
    def tracker(self) -> JobTracker:
        assert self.running.tracking is not None
        return self.running.tracking.tracker

    @property
    def callback_base(self) -> str:
        assert self.running.tracking is not None and self.running.tracking.receiver is not None
        return self.running.tracking.receiver.base_url


@asynccontextmanager
async def gateway(settings: Settings, credentials: Credentials) -> AsyncIterator[Gateway]:
    running = await start_gateway(settings, StaticCredentialsProvider(credentials))
    try:
        async with grpc.aio.insecure_channel(running.address) as channel:
            yield Gateway(running, service_pb2_grpc.MediaJobServiceStub(channel))
    finally:
        await running.stop(grace_s=0)


async def submit(
    stub: Stub, key: str = SAMPLE_KEY, *, request_id: str = "", **request: object
) -> M.JobsDetail:
    body = M.Request(input=M.Input(object=key), **request)  # type: ignore[arg-type]
    answer = await stub.SubmitMediaJob(
        S.SubmitMediaJobRequest(request=body, request_id=request_id), timeout=10
    )
    return answer.jobs_detail


def watch(stub: Stub, job_id: str, timeout: float = 30.0) -> Call:
    return stub.WatchMediaJob(S.WatchMediaJobRequest(job_id=job_id), timeout=timeout)


async def next_detail(call: Call, timeout: float = 20.0) -> M.JobsDetail:
    async with asyncio.timeout(timeout):
        message = await call.read()
    assert message is not EOF, "the stream ended"
    assert isinstance(message, S.WatchMediaJobResponse)
    return message.jobs_detail


async def assert_ended(call: Call, timeout: float = 10.0) -> None:
    async with asyncio.timeout(timeout):
        assert await call.read() is EOF
        assert await call.code() is grpc.StatusCode.OK


def xml_callback(detail: M.JobsDetail) -> bytes:
    """What CI POSTs in XML: `<Response><EventName>TaskFinish</EventName><JobsDetail>...`."""
    return xml_codec.encode(
        M.JobCallback(event_name="TaskFinish", jobs_detail=[detail]), root="Response"
    )


def json_callback(detail: M.JobsDetail, *, as_array: bool = False) -> bytes:
    """What CI POSTs in JSON: the XML twin with every value a string and a single node as an
    object (repeated nodes as arrays); `JobsDetail` optionally as a one-element array."""
    root = xml_codec.parse_document(xml_callback(detail))
    document = _to_json(root)
    assert isinstance(document, dict)
    if as_array:
        document["JobsDetail"] = [document["JobsDetail"]]
    return json.dumps(document).encode()


def _to_json(element: etree._Element) -> object:
    if len(element) == 0:
        return element.text or ""
    grouped: dict[str, list[object]] = {}
    for child in element:
        grouped.setdefault(str(child.tag), []).append(_to_json(child))
    return {tag: items[0] if len(items) == 1 else items for tag, items in grouped.items()}


@dataclass(frozen=True)
class RedisUser:
    name: str
    password: str

    def url(self, host: str, port: int | None, path: str = "/0") -> str:
        return f"redis://{self.name}:{self.password}@{host}:{port}{path}"


@asynccontextmanager
async def redis_acl_user(
    redis_client: aioredis.Redis, *, denied: tuple[str, ...] = ()
) -> AsyncIterator[RedisUser]:
    """A fresh Redis ACL user with a password, allowed every command but `denied`; deleted
    after. The default user stays open, so only a connection with these credentials is it."""
    user = RedisUser("gw-" + secrets.token_hex(4), "pw-" + secrets.token_hex(16))
    await redis_client.acl_setuser(
        user.name,
        enabled=True,
        passwords=[f"+{user.password}"],
        categories=["+@all"],
        commands=[f"-{command}" for command in denied],
        keys=["*"],
        channels=["*"],
    )
    try:
        yield user
    finally:
        await redis_client.acl_deluser(user.name)
