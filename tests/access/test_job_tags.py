"""`tags` hold for calls by job id, and an open watch or wait ends when its client's access does.

Three clients share one bucket: `probe` may see only `MediaInfo` jobs, `transcoder` only
`Transcode` jobs, `platform` every job. For a client with a `tags` rule, another tag's job is
answered exactly as a job CI does not have, by describe, watch, wait and cancel (which must
then never reach CI). A reload of the access file ends the open watches and waits of a client
it removes or narrows, at once, with the status a new call would get, and no one else's.
Real gRPC over loopback to an in-process gateway in shared mode, in front of the emulator,
which holds every job `Submitted` (scheduling paused) until a test moves it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
import tomllib
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, replace
from pathlib import Path

import grpc
import pytest
from aiohttp import web

from ci_emulator.hosts import Target
from ci_emulator.server import RunningEmulator
from gateway._proto import job_kinds_pb2, media_pb2, service_pb2, service_pb2_grpc
from gateway.access.config_file import build_access
from gateway.access.identity import presented, resolve
from gateway.access.interceptor import ClientAccess
from gateway.access.open_calls import OpenCall, OpenCalls
from gateway.access.policy import RequestScope
from gateway.api.server import RunningGateway, start_gateway
from gateway.config.settings import Callbacks, Settings, Tracking
from gateway.credentials import Credentials, StaticCredentialsProvider
from gateway.errors import ClientNotAuthenticated
from tests.access.helpers import FakeSleep, log_text, sha256_hex
from tests.conftest import BUCKET, REGION, SAMPLE_KEY
from tests.fixtures.accounts import Serve
from tests.integration.helpers import RichError, rich_error
from tests.integration.hold import HOLD_S

M, S, K = media_pb2, service_pb2, job_kinds_pb2
EOF = grpc.aio.EOF  # type: ignore[attr-defined]  # missing from grpc-stubs
TOKENS = {name: f"tok-{name}-" + secrets.token_urlsafe(16) for name in ("probe", "tc", "all")}
UNKNOWN = "j" + "0" * 32  # a well-formed id CI has no job for


def client_entry(name: str, token: str, *, tags: str = "", operations: str = '"*"') -> str:
    tags_line = f"tags = [{tags}]\n" if tags else ""
    return f"""
[[clients]]
name = "{name}"
token_sha256 = ["{sha256_hex(token)}"]
buckets = ["{BUCKET}"]
operations = [{operations}]
{tags_line}"""


PROBE = client_entry("probe", TOKENS["probe"], tags='"MediaInfo"')
TRANSCODER = client_entry("transcoder", TOKENS["tc"], tags='"Transcode"')
PLATFORM = client_entry("platform", TOKENS["all"])


def write_access(path: Path, *entries: str) -> Path:
    path.write_text('mode = "shared"\nreload_interval_s = 5\n' + "".join(entries))
    return path


class Caller:
    """One client's calls: its token on each."""

    def __init__(self, stub: service_pb2_grpc.MediaJobServiceAsyncStub, token: str) -> None:
        self.stub = stub
        self.metadata = (("authorization", f"Bearer {token}"),)

    async def submit(self, request: M.Request) -> M.JobsDetail:
        answer = await self.stub.SubmitMediaJob(
            S.SubmitMediaJobRequest(request=request), metadata=self.metadata, timeout=10
        )
        return answer.jobs_detail

    async def describe(self, *job_ids: str, raw: bool = False) -> S.DescribeMediaJobsResponse:
        request = S.DescribeMediaJobsRequest(job_ids=job_ids, include_raw_xml=raw)
        return await self.stub.DescribeMediaJobs(request, metadata=self.metadata, timeout=10)

    async def cancel(self, job_id: str) -> S.CancelMediaJobResponse:
        request = S.CancelMediaJobRequest(job_id=job_id)
        return await self.stub.CancelMediaJob(request, metadata=self.metadata, timeout=10)

    def watch(self, job_id: str) -> grpc.aio.UnaryStreamCall:  # type: ignore[type-arg]
        request = S.WatchMediaJobRequest(job_id=job_id)
        return self.stub.WatchMediaJob(request, metadata=self.metadata, timeout=30)

    def wait(self, job_id: str) -> grpc.aio.UnaryUnaryCall:  # type: ignore[type-arg]
        request = S.WaitMediaJobRequest(job_id=job_id)
        return self.stub.WaitMediaJob(request, metadata=self.metadata, timeout=30)


def media_info() -> M.Request:
    return M.Request(tag="MediaInfo", input=M.Input(object=SAMPLE_KEY))


def transcode() -> M.Request:
    return M.Request(
        tag="Transcode",
        input=M.Input(object=SAMPLE_KEY),
        operation=M.Operation(
            transcode=K.Transcode(
                container=K.Container(format="mp4"),
                video=K.TranscodeVideo(codec="H.264"),
                audio=K.TranscodeAudio(codec="aac"),
            ),
            output=K.Output(region=REGION, bucket=BUCKET, object="out/tc.mp4"),
        ),
    )


@dataclass
class Shared:
    gateway: RunningGateway
    access: ClientAccess
    path: Path
    sleep: FakeSleep
    emulator: RunningEmulator
    probe: Caller
    transcoder: Caller
    platform: Caller
    # (method, path) of every request CI was sent, in order.
    sent: list[tuple[str, str]]

    async def reload(self, *entries: str) -> None:
        """Rewrite the access file and let the watcher read it (once it is back asleep, the
        reload, and whatever it ended, has happened)."""
        write_access(self.path, *entries)
        self.sleep.release()
        assert await self.sleep.next_delay() == 5

    def sent_for(self, job_id: str) -> list[str]:
        return [method for method, path in self.sent if job_id in path]


Open = Callable[..., Awaitable[Shared]]


@pytest.fixture
async def open_shared(
    tmp_path: Path,
    serve: Serve,
    emulator2: RunningEmulator,
    settings2: Settings,
    upstream_keys: Credentials,
) -> AsyncIterator[Open]:
    """Start the shared gateway (with `settings`, else the suite's) and its three callers."""
    async with contextlib.AsyncExitStack() as stack:

        async def start(settings: Settings | None = None) -> Shared:
            sent: list[tuple[str, str]] = []

            async def record(request: web.Request, target: Target) -> None:
                sent.append((request.method, target.path))
                return None

            emulator2.state.request_hooks.append(record)
            emulator2.state.pause_scheduling()  # every job stays Submitted until a test says
            path = write_access(tmp_path / "access.toml", PROBE, TRANSCODER, PLATFORM)
            sleep = FakeSleep()
            access = ClientAccess.from_file(path, sleep=sleep)
            if settings is None:
                gateway = await serve(access)
            else:
                keys = StaticCredentialsProvider(upstream_keys)
                gateway = await start_gateway(settings, keys, access=access)
                stack.push_async_callback(gateway.stop, 0)
            assert await sleep.next_delay() == 5  # the access file's watcher is running
            channel = await stack.enter_async_context(grpc.aio.insecure_channel(gateway.address))
            stub = service_pb2_grpc.MediaJobServiceStub(channel)
            probe, transcoder, platform = (Caller(stub, TOKENS[n]) for n in ("probe", "tc", "all"))
            return Shared(
                gateway, access, path, sleep, emulator2, probe, transcoder, platform, sent
            )

        yield start


@pytest.fixture
async def shared(open_shared: Open) -> Shared:
    return await open_shared()


async def failure(call: object) -> RichError:
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await call  # type: ignore[misc]
    return rich_error(caught.value)


def without_ids(error: RichError, *job_ids: str) -> tuple[object, ...]:
    """What a caller reads of a refusal, the job ids it asked about blanked out."""
    assert error.error_info is not None
    message = error.message
    metadata = dict(error.error_info.metadata)
    for job_id in job_ids:
        message = message.replace(job_id, "<id>")
        metadata = {key: value.replace(job_id, "<id>") for key, value in metadata.items()}
    return error.code, message, error.error_info.reason, metadata


async def watch_failure(call: grpc.aio.UnaryStreamCall) -> RichError:  # type: ignore[type-arg]
    async def drain() -> None:
        while await call.read() is not EOF:  # bounded: a watch ends after its job's final state
            pass
        await call  # type: ignore[misc]  # raises the status the stream ended with

    return await failure(drain())


async def next_state(call: grpc.aio.UnaryStreamCall) -> int:  # type: ignore[type-arg]
    """The state in the watch's next message."""
    async with asyncio.timeout(20):
        message = await call.read()
    assert message is not EOF, "the stream ended"
    assert isinstance(message, S.WatchMediaJobResponse)
    return message.jobs_detail.state


async def assert_ends_ok(call: grpc.aio.UnaryStreamCall) -> None:  # type: ignore[type-arg]
    """The watch ends after its job's final state, as usual."""
    async with asyncio.timeout(20):
        assert await next_state(call) == M.JOB_STATE_CANCEL
        assert await call.read() is EOF
    assert await call.code() is grpc.StatusCode.OK


# ---- tags for calls by job id ------------------------------------------------------------------


async def test_describe_shows_another_tags_job_as_one_ci_does_not_have(shared: Shared) -> None:
    mine = await shared.probe.submit(media_info())
    theirs = await shared.transcoder.submit(transcode())

    alone = await shared.probe.describe(theirs.job_id)
    unknown = await shared.probe.describe(UNKNOWN)
    assert list(alone.jobs_detail) == [] and list(alone.non_exist_job_ids) == [theirs.job_id]
    assert list(unknown.non_exist_job_ids) == [UNKNOWN]
    # Several ids: the hidden one joins the unknown ones, in the request's order, raw XML too.
    mixed = await shared.probe.describe(theirs.job_id, mine.job_id, UNKNOWN, raw=True)
    assert [job.job_id for job in mixed.jobs_detail] == [mine.job_id]
    assert list(mixed.non_exist_job_ids) == [theirs.job_id, UNKNOWN]
    assert all(theirs.job_id not in job.raw_xml for job in mixed.jobs_detail)
    assert mixed.SerializeToString().count(theirs.job_id.encode()) == 1  # as a missing id only
    reverse = await shared.probe.describe(UNKNOWN, theirs.job_id)
    assert list(reverse.non_exist_job_ids) == [UNKNOWN, theirs.job_id]

    # The other way round, and a client without a tags rule sees both.
    other = await shared.transcoder.describe(mine.job_id, theirs.job_id)
    assert [job.job_id for job in other.jobs_detail] == [theirs.job_id]
    assert list(other.non_exist_job_ids) == [mine.job_id]
    everything = await shared.platform.describe(mine.job_id, theirs.job_id)
    assert {job.tag for job in everything.jobs_detail} == {"MediaInfo", "Transcode"}
    assert list(everything.non_exist_job_ids) == []


async def test_cancel_of_another_tags_job_is_not_found_and_never_sent(shared: Shared) -> None:
    mine = await shared.probe.submit(media_info())
    theirs = await shared.transcoder.submit(transcode())

    hidden = await failure(shared.probe.cancel(theirs.job_id))
    unknown = await failure(shared.probe.cancel(UNKNOWN))
    assert hidden.code is grpc.StatusCode.NOT_FOUND
    # Word for word the answer for a job CI does not have: nothing tells the job exists.
    assert without_ids(hidden, theirs.job_id) == without_ids(unknown, UNKNOWN)
    assert shared.sent_for(theirs.job_id) == ["GET"]  # the describe, never the cancel
    state = shared.emulator.state.jobs[theirs.job_id].state
    assert state.value == "Submitted"

    # Its own job: described (its tag checked), then cancelled.
    await shared.probe.cancel(mine.job_id)
    assert shared.sent_for(mine.job_id)[-2:] == ["GET", "PUT"]
    assert shared.emulator.state.jobs[mine.job_id].state.value == "Cancel"

    # A client without a tags rule pays nothing: its cancel is the one request CI sees.
    before = len(shared.sent)
    await shared.platform.cancel(theirs.job_id)
    assert shared.sent[before:] == [("PUT", f"/jobs/{theirs.job_id}")]
    assert shared.emulator.state.jobs[theirs.job_id].state.value == "Cancel"


async def test_watch_and_wait_of_another_tags_job_are_not_found(shared: Shared) -> None:
    theirs = await shared.transcoder.submit(transcode())
    # Its owner watches it: the tracker follows the job, one poll for every watcher.
    owner = shared.transcoder.watch(theirs.job_id)
    assert await next_state(owner) == M.JOB_STATE_SUBMITTED

    probe = shared.probe
    watched = (
        await watch_failure(probe.watch(theirs.job_id)),
        await watch_failure(probe.watch(UNKNOWN)),
    )
    waited = (await failure(probe.wait(theirs.job_id)), await failure(probe.wait(UNKNOWN)))
    for hidden, unknown in (watched, waited):
        assert hidden.code is grpc.StatusCode.NOT_FOUND
        # Word for word the answer for a job CI does not have.
        assert without_ids(hidden, theirs.job_id) == without_ids(unknown, UNKNOWN)

    # The owner's watch was not disturbed: it sees the job to its end.
    await shared.platform.cancel(theirs.job_id)
    await assert_ends_ok(owner)
    # And a client allowed the tag (or any) waits for it as before.
    done = await shared.platform.wait(theirs.job_id)
    assert done.jobs_detail.state == M.JOB_STATE_CANCEL
    assert len(shared.access.open_calls) == 0  # every open call left the registry


async def test_a_change_learnt_by_callback_reaches_only_the_watchers_who_may_see_it(
    open_shared: Open, settings2: Settings
) -> None:
    """The tracker's first look at the job is held inside CI, so what the watchers learn comes
    from CI's callback (verified by the receiver, then handed to the tracker): the owner sees
    the job end, the client of another tag is told no such job, as by a poll."""
    receiver = Callbacks(listen="127.0.0.1:0", public_url="auto", token="t0k3n-" + "x" * 40)
    slow_polls = Tracking(poll_initial_s=60.0, poll_max_s=60.0)  # no second look in this test
    shared = await open_shared(replace(settings2, callbacks=receiver, tracking=slow_polls))
    theirs = await shared.transcoder.submit(transcode())
    poll_held, release = asyncio.Event(), asyncio.Event()

    async def hold_the_first_look(request: web.Request, target: Target) -> None:
        if target.path == f"/jobs/{theirs.job_id}" and not poll_held.is_set():
            poll_held.set()
            async with asyncio.timeout(HOLD_S):  # bounded: a failing test still ends
                await release.wait()
        return None

    shared.emulator.state.request_hooks.append(hold_the_first_look)
    owner = shared.transcoder.watch(theirs.job_id)
    stranger = shared.probe.watch(theirs.job_id)
    async with asyncio.timeout(10):
        await poll_held.wait()
        await shared.gateway.tracking.tracker.wait_for(
            lambda stats: stats.watchers == 2 and stats.jobs == 1  # one job, shared
        )
    try:
        shared.emulator.state.resume_scheduling()  # the job runs; CI calls the gateway back
        assert await next_state(owner) == M.JOB_STATE_SUCCESS
        error = await watch_failure(stranger)
        assert error.code is grpc.StatusCode.NOT_FOUND
        assert not release.is_set() and shared.sent_for(theirs.job_id).count("GET") == 2
    finally:
        release.set()
    unknown = await watch_failure(shared.probe.watch(UNKNOWN))
    assert without_ids(error, theirs.job_id) == without_ids(unknown, UNKNOWN)


# ---- open calls at a reload --------------------------------------------------------------------


async def test_a_removed_clients_watches_and_waits_end_at_the_reload(
    shared: Shared, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    mine = await shared.probe.submit(media_info())
    theirs = await shared.transcoder.submit(transcode())
    probe_watch = shared.probe.watch(mine.job_id)
    assert await next_state(probe_watch) == M.JOB_STATE_SUBMITTED
    probe_wait = asyncio.ensure_future(shared.probe.wait(mine.job_id))
    others = [shared.transcoder.watch(theirs.job_id), shared.platform.watch(mine.job_id)]
    for call in others:
        assert await next_state(call) == M.JOB_STATE_SUBMITTED
    async with asyncio.timeout(10):  # the wait is open too (its watcher counted)
        await shared.gateway.tracking.tracker.wait_for(lambda stats: stats.watchers == 4)

    await shared.reload(TRANSCODER, PLATFORM)  # probe removed

    async with asyncio.timeout(10):  # ended at the reload, not when the job ends
        ended = await watch_failure(probe_watch)
        waited = await failure(probe_wait)
    for error in (ended, waited):
        assert error.code is grpc.StatusCode.UNAUTHENTICATED
        assert error.error_info is not None
        assert error.error_info.reason == "CLIENT_NOT_AUTHENTICATED"
    assert shared.emulator.state.jobs[mine.job_id].state.value == "Submitted"
    # Everyone else's streams go on: each sees its job to its end.
    await shared.platform.cancel(theirs.job_id)
    await shared.platform.cancel(mine.job_id)
    for call in others:
        await assert_ends_ok(call)
    assert len(shared.access.open_calls) == 0
    logged = log_text(caplog)
    assert "open calls ended" in logged and '"client":"probe"' in logged
    assert all(token not in logged for token in TOKENS.values())
    assert all(sha256_hex(token) not in logged for token in TOKENS.values())


async def test_narrowed_tags_end_the_watch_of_a_job_now_hidden(shared: Shared) -> None:
    theirs = await shared.transcoder.submit(transcode())
    mine = await shared.probe.submit(media_info())
    watch = shared.transcoder.watch(theirs.job_id)
    assert await next_state(watch) == M.JOB_STATE_SUBMITTED
    wait = asyncio.ensure_future(shared.transcoder.wait(theirs.job_id))
    untouched = shared.probe.watch(mine.job_id)
    assert await next_state(untouched) == M.JOB_STATE_SUBMITTED
    async with asyncio.timeout(10):
        await shared.gateway.tracking.tracker.wait_for(lambda stats: stats.watchers == 3)

    narrowed = client_entry("transcoder", TOKENS["tc"], tags='"MediaInfo"')
    await shared.reload(PROBE, narrowed, PLATFORM)

    async with asyncio.timeout(10):
        ended = await watch_failure(watch)
        waited = await failure(wait)
    unknown = await watch_failure(shared.transcoder.watch(UNKNOWN))
    for error in (ended, waited):  # what a new watch of the job would get now
        assert error.code is grpc.StatusCode.NOT_FOUND
        assert without_ids(error, theirs.job_id) == without_ids(unknown, UNKNOWN)
    await shared.platform.cancel(mine.job_id)
    await assert_ends_ok(untouched)


@pytest.mark.parametrize(
    ("entry", "code", "reason"),
    [
        (
            client_entry("probe", TOKENS["probe"], tags='"MediaInfo"', operations='"submit"'),
            grpc.StatusCode.PERMISSION_DENIED,
            "OPERATION_NOT_ALLOWED",
        ),
        (
            client_entry("probe", "tok-rotated-" + secrets.token_urlsafe(8), tags='"MediaInfo"'),
            grpc.StatusCode.UNAUTHENTICATED,
            "CLIENT_NOT_AUTHENTICATED",
        ),
        (
            PROBE.replace(f'buckets = ["{BUCKET}"]', 'buckets = ["elsewhere-1250000000"]'),
            grpc.StatusCode.PERMISSION_DENIED,
            "BUCKET_NOT_ALLOWED",
        ),
    ],
    ids=["operation-removed", "token-replaced", "bucket-removed"],
)
async def test_a_watch_ends_with_the_status_a_new_call_would_get(
    shared: Shared, entry: str, code: grpc.StatusCode, reason: str
) -> None:
    mine = await shared.probe.submit(media_info())
    watch = shared.probe.watch(mine.job_id)
    assert await next_state(watch) == M.JOB_STATE_SUBMITTED

    await shared.reload(entry, TRANSCODER, PLATFORM)

    async with asyncio.timeout(10):
        ended = await watch_failure(watch)
    fresh = await watch_failure(shared.probe.watch(mine.job_id))
    assert ended.code is code and fresh.code is code
    assert ended.error_info is not None and ended.error_info.reason == reason
    assert fresh.error_info is not None
    assert dict(ended.error_info.metadata) == dict(fresh.error_info.metadata)


async def test_a_reload_that_keeps_the_clients_access_keeps_its_watch(shared: Shared) -> None:
    mine = await shared.probe.submit(media_info())
    watch = shared.probe.watch(mine.job_id)
    assert await next_state(watch) == M.JOB_STATE_SUBMITTED
    wider = client_entry("probe", TOKENS["probe"], tags='"MediaInfo", "Snapshot"')
    await shared.reload(wider, TRANSCODER, PLATFORM)
    await shared.platform.cancel(mine.job_id)
    await assert_ends_ok(watch)


async def test_every_way_an_open_call_ends_takes_it_out_of_the_registry(shared: Shared) -> None:
    """A watch or wait stays registered exactly while it runs: cancelled by its caller (waiting
    in its handler), refused by its own validation, or never admitted, it leaves nothing behind
    for the next reload to look at."""
    mine = await shared.probe.submit(media_info())
    tracker = shared.gateway.tracking.tracker
    for _ in range(3):
        watch = shared.probe.watch(mine.job_id)
        assert await next_state(watch) == M.JOB_STATE_SUBMITTED
        waits = [asyncio.ensure_future(shared.probe.wait(mine.job_id)) for _ in range(2)]
        async with asyncio.timeout(10):
            await tracker.wait_for(lambda stats: stats.watchers == 3)
        assert len(shared.access.open_calls) == 3
        watch.cancel()
        for wait in waits:
            wait.cancel()
        async with asyncio.timeout(10):
            await tracker.wait_for(lambda stats: stats.watchers == 0)
        assert len(shared.access.open_calls) == 0

    invalid = await watch_failure(shared.probe.watch("not/an id"))
    assert invalid.code is grpc.StatusCode.INVALID_ARGUMENT
    stranger = Caller(shared.probe.stub, "tok-nobody")
    refused = await watch_failure(stranger.watch(mine.job_id))
    assert refused.code is grpc.StatusCode.UNAUTHENTICATED
    assert len(shared.access.open_calls) == 0


# ---- the review of open calls, without a gateway -----------------------------------------------


def test_a_token_now_naming_another_client_ends_the_call_and_nothing_leaks() -> None:
    """A call keeps the client it was opened for: when its token has moved to another entry,
    it is no longer that client's call (the next one will be the other client's)."""
    token = TOKENS["probe"]
    before = build_access(tomllib.loads('mode = "shared"\n' + PROBE + PLATFORM))
    after = build_access(
        tomllib.loads('mode = "shared"\n' + PLATFORM + client_entry("someone-else", token))
    )
    credentials = presented([("authorization", f"Bearer {token}")], {})
    assert token not in repr(credentials) and sha256_hex(token) not in repr(credentials)
    scope = RequestScope("describe", BUCKET, None)
    call = OpenCall("/ci.media.v1.MediaJobService/WatchMediaJob", scope, credentials,
                    resolve(before, credentials))  # fmt: skip
    calls = OpenCalls()
    calls.add(call)
    assert calls.review(before) == 0 and call.ending is None
    assert calls.review(after) == 1 and len(calls) == 0
    assert isinstance(call.ending, ClientNotAuthenticated)
    assert "someone-else" not in str(call.ending)
