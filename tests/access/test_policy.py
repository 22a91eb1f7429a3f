"""Per-client policy: each rule (operation, bucket, tag, rate) refuses on its own, names itself
in ErrorInfo, and reveals neither other clients nor other buckets. A job in a bucket the client
may not use is simply not found for it."""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator
from pathlib import Path

import grpc
import pytest
from aiohttp import web

from ci_emulator.hosts import Target
from ci_emulator.server import RunningEmulator
from gateway._proto import media_pb2, service_pb2, service_pb2_grpc
from gateway.access.interceptor import ClientAccess
from gateway.access.policy import (
    API_SERVICE,
    METHOD_OPERATIONS,
    ClientPolicy,
    Operation,
    RateLimit,
    RequestScope,
    TokenBucket,
    operation_of,
    request_scope,
)
from gateway.errors import AccessDenied, Reason
from tests.access.helpers import FakeClock, RecordingCredentials, sha256_hex
from tests.conftest import BUCKET, SAMPLE_KEY
from tests.fixtures.accounts import OTHER_BUCKET, Serve
from tests.integration.helpers import RichError, rich_error

M, S = media_pb2, service_pb2
SERVICE = service_pb2.DESCRIPTOR.services_by_name["MediaJobService"]
TOKENS = {name: f"tok-{name}-" + secrets.token_urlsafe(16) for name in ("up", "ops", "admin")}
SECRET_CLIENT = "payroll-video-team"  # another client: never named to anyone else


def policy_file(path: Path) -> Path:
    path.write_text(
        f"""
mode = "shared"

[[clients]]
name = "uploader"
token_sha256 = ["{sha256_hex(TOKENS["up"])}"]
buckets = ["{BUCKET}"]
operations = ["submit", "describe", "list"]
tags = ["MediaInfo"]
rate_per_s = 2
burst = 3

[[clients]]
name = "operator"
token_sha256 = ["{sha256_hex(TOKENS["ops"])}"]
buckets = ["{BUCKET}"]
operations = ["describe", "list", "cancel", "media_info"]

[[clients]]
name = "{SECRET_CLIENT}"
token_sha256 = ["{sha256_hex(TOKENS["admin"])}"]
buckets = ["*"]
operations = ["*"]
"""
    )
    return path


class Caller:
    """One client's view of the gateway: its token on every call."""

    def __init__(self, stub: service_pb2_grpc.MediaJobServiceAsyncStub, token: str) -> None:
        self.stub = stub
        self.metadata = (("authorization", f"Bearer {token}"),)

    async def submit(self, bucket: str = "", tag: str = "") -> M.JobsDetail:
        answer = await self.stub.SubmitMediaJob(
            S.SubmitMediaJobRequest(
                bucket=bucket, request=M.Request(tag=tag, input=M.Input(object=SAMPLE_KEY))
            ),
            metadata=self.metadata,
            timeout=10,
        )
        return answer.jobs_detail

    async def submit_jobs(self, *tags: str) -> list[M.JobsDetail]:
        body = M.MultiOperationRequest(
            input=M.Input(object=SAMPLE_KEY), operation=[M.Operation(tag=tag) for tag in tags]
        )
        answer = await self.stub.SubmitMediaJobs(
            S.SubmitMediaJobsRequest(request=body), metadata=self.metadata, timeout=10
        )
        return list(answer.jobs_detail)

    async def describe(self, job_id: str, bucket: str = "") -> S.DescribeMediaJobsResponse:
        return await self.stub.DescribeMediaJobs(
            S.DescribeMediaJobsRequest(bucket=bucket, job_ids=[job_id]),
            metadata=self.metadata,
            timeout=10,
        )

    async def list(self, bucket: str = "", tag: str = "") -> S.ListMediaJobsResponse:
        return await self.stub.ListMediaJobs(
            S.ListMediaJobsRequest(bucket=bucket, tag=tag, size=100),
            metadata=self.metadata,
            timeout=10,
        )

    async def cancel(self, job_id: str, bucket: str = "") -> S.CancelMediaJobResponse:
        return await self.stub.CancelMediaJob(
            S.CancelMediaJobRequest(bucket=bucket, job_id=job_id),
            metadata=self.metadata,
            timeout=10,
        )


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(0.0)


@pytest.fixture
async def callers(
    tmp_path: Path, serve: Serve, clock: FakeClock
) -> AsyncIterator[dict[str, Caller]]:
    access = ClientAccess.from_file(policy_file(tmp_path / "access.toml"), clock=clock)
    gateway = await serve(access)
    async with grpc.aio.insecure_channel(gateway.address) as channel:
        stub = service_pb2_grpc.MediaJobServiceStub(channel)
        yield {name: Caller(stub, token) for name, token in TOKENS.items()}


async def refused(call: object) -> RichError:
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await call  # type: ignore[misc]
    error = rich_error(caught.value)
    text = f"{error.message} {error.error_info}"
    assert SECRET_CLIENT not in text and "operator" not in text and "uploader" not in text
    return error


async def test_operation_rule(callers: dict[str, Caller], seen: RecordingCredentials) -> None:
    job = await callers["up"].submit()
    error = await refused(callers["up"].cancel(job.job_id))
    assert error.code is grpc.StatusCode.PERMISSION_DENIED
    assert error.error_info is not None
    assert error.error_info.reason == "OPERATION_NOT_ALLOWED"
    assert dict(error.error_info.metadata) == {"operation": "cancel", "attempts": "0"}
    assert error.message == "this client may not call 'cancel'"
    error = await refused(
        callers["up"].stub.GetMediaInfo(
            S.GetMediaInfoRequest(object=SAMPLE_KEY), metadata=callers["up"].metadata
        )
    )
    assert error.error_info is not None and error.error_info.reason == "OPERATION_NOT_ALLOWED"
    assert seen.ids.count(seen.ids[0]) == len(seen.ids) == 1  # only the allowed submit


async def test_bucket_rule_names_only_the_bucket_asked_for(
    callers: dict[str, Caller], seen: RecordingCredentials
) -> None:
    await callers["up"].list()  # the default bucket, which it may use
    await callers["up"].list(bucket=BUCKET)
    error = await refused(callers["up"].submit(bucket=OTHER_BUCKET))
    assert error.code is grpc.StatusCode.PERMISSION_DENIED
    assert error.error_info is not None and error.error_info.reason == "BUCKET_NOT_ALLOWED"
    assert error.error_info.metadata["bucket"] == OTHER_BUCKET
    assert BUCKET not in error.message  # what it *may* use is not disclosed
    error = await refused(callers["up"].list(bucket="unheard-of-1250000009"))
    assert error.error_info is not None and error.error_info.reason == "BUCKET_NOT_ALLOWED"
    # Two listings, and one look-up of the queue both name (`upstream.default_queue`).
    assert len(seen.seen) == 3


async def test_tag_rule_for_submit_and_list(callers: dict[str, Caller]) -> None:
    await callers["up"].submit(tag="MediaInfo")
    error = await refused(callers["up"].submit(tag="Transcode"))
    assert error.code is grpc.StatusCode.PERMISSION_DENIED
    assert error.error_info is not None and error.error_info.reason == "TAG_NOT_ALLOWED"
    assert error.error_info.metadata["tag"] == "Transcode"
    error = await refused(callers["up"].list(tag="Snapshot"))
    assert error.error_info is not None and error.error_info.reason == "TAG_NOT_ALLOWED"
    # A client without a tag rule reaches validation, which refuses a tag CI does not have.
    error = await refused(callers["admin"].submit(tag="Transcoding"))
    assert error.code is grpc.StatusCode.INVALID_ARGUMENT


async def test_a_multi_operation_submit_needs_every_operations_tag_allowed(
    callers: dict[str, Caller], seen: RecordingCredentials, emulator2: RunningEmulator
) -> None:
    # One operation of a kind the client may not use refuses the whole call, before CI.
    for tags in (("MediaInfo", "Transcode"), ("Snapshot",), ("MediaInfo", "")):
        error = await refused(callers["up"].submit_jobs(*tags))
        assert error.code is grpc.StatusCode.PERMISSION_DENIED
        assert error.error_info is not None and error.error_info.reason == "TAG_NOT_ALLOWED"
        assert error.error_info.metadata["tag"] == tags[-1]
        assert error.error_info.metadata["attempts"] == "0"
    assert seen.seen == [] and emulator2.state.requests_seen == 0
    jobs = await callers["up"].submit_jobs("MediaInfo", "MediaInfo")
    assert len({job.job_id for job in jobs}) == 2 == emulator2.state.jobs_created


async def test_rate_rule_is_per_client_and_refills(
    callers: dict[str, Caller], clock: FakeClock
) -> None:
    for _ in range(3):  # the burst
        await callers["up"].list()
    error = await refused(callers["up"].list())
    assert error.code is grpc.StatusCode.RESOURCE_EXHAUSTED
    assert error.error_info is not None and error.error_info.reason == "CLIENT_RATE_LIMITED"
    assert error.retry_info is not None
    assert error.retry_info.retry_delay.ToMilliseconds() == 500  # one token at 2 per second
    await callers["ops"].list()  # another client's budget is its own
    clock.advance(0.5)
    await callers["up"].list()
    await refused(callers["up"].list())


async def test_a_job_in_another_bucket_is_not_found_for_a_client_limited_to_its_bucket(
    callers: dict[str, Caller], emulator2: RunningEmulator
) -> None:
    foreign = await callers["admin"].submit(bucket=OTHER_BUCKET)
    mine = await callers["up"].submit()
    # Control: the job exists, in its own bucket.
    found = await callers["admin"].describe(foreign.job_id, bucket=OTHER_BUCKET)
    assert [job.job_id for job in found.jobs_detail] == [foreign.job_id]

    # Asked in its own bucket, the other bucket's job does not exist...
    answer = await callers["ops"].describe(foreign.job_id)
    assert list(answer.jobs_detail) == [] and list(answer.non_exist_job_ids) == [foreign.job_id]
    listed = await callers["ops"].list()
    assert [job.job_id for job in listed.jobs_detail] == [mine.job_id]
    error = await refused(callers["ops"].cancel(foreign.job_id))
    assert error.error_info is not None
    assert "does not exist" in error.error_info.metadata["ci_message"]
    assert emulator2.state.jobs[foreign.job_id].bucket == OTHER_BUCKET
    # ... and naming that bucket is refused before CI is asked.
    for call in (
        callers["ops"].describe(foreign.job_id, bucket=OTHER_BUCKET),
        callers["ops"].cancel(foreign.job_id, bucket=OTHER_BUCKET),
        callers["ops"].list(bucket=OTHER_BUCKET),
    ):
        error = await refused(call)
        assert error.error_info is not None and error.error_info.reason == "BUCKET_NOT_ALLOWED"


async def test_a_describe_sent_in_batches_is_decided_once_and_every_batch_stays_in_its_bucket(
    callers: dict[str, Caller], emulator2: RunningEmulator
) -> None:
    """More than ten ids go to CI as several requests (`gateway.jobs.describe`): each of them is
    for the bucket the policy allowed, and a bucket it refuses stops the call before any."""
    foreign = await callers["admin"].submit(bucket=OTHER_BUCKET)
    mine = await callers["up"].submit()
    asked = [f"j{index:032x}" for index in range(23)] + [foreign.job_id, mine.job_id]
    buckets: list[str] = []

    async def record(request: web.Request, target: Target) -> None:
        if request.method == "GET" and target.path.startswith("/jobs/"):
            buckets.append(target.bucket)

    emulator2.state.request_hooks.append(record)
    ops = callers["ops"]
    answer = await ops.stub.DescribeMediaJobs(
        S.DescribeMediaJobsRequest(job_ids=asked), metadata=ops.metadata, timeout=10
    )
    assert [job.job_id for job in answer.jobs_detail] == [mine.job_id]
    assert list(answer.non_exist_job_ids) == asked[:-1]  # the foreign job too: not in its bucket
    assert buckets == [BUCKET] * 3
    error = await refused(
        ops.stub.DescribeMediaJobs(
            S.DescribeMediaJobsRequest(bucket=OTHER_BUCKET, job_ids=asked),
            metadata=ops.metadata,
            timeout=10,
        )
    )
    assert error.error_info is not None and error.error_info.reason == "BUCKET_NOT_ALLOWED"
    assert error.error_info.metadata["attempts"] == "0"
    assert buckets == [BUCKET] * 3


# ---- the rules themselves, without a gateway ---------------------------------------------------
# `gateway.access.policy` decides on plain values; these tests call it directly, so each rule's
# edge (defaults, precedence, what a refusal names, the bucket's arithmetic) is pinned exactly.

METHODS = {m.name: f"/{API_SERVICE}/{m.name}" for m in SERVICE.methods}


def test_every_rpc_of_the_service_has_an_operation() -> None:
    """A new RPC left out of METHOD_OPERATIONS would be callable only by `*` clients."""
    jobs = {path for path in METHOD_OPERATIONS if path.startswith(f"/{API_SERVICE}/")}
    assert jobs == set(METHODS.values())  # the resource services: tests/resources/test_access.py
    assert {operation_of(path) for path in METHODS.values()} == {
        "submit",
        "describe",
        "list",
        "cancel",
        "media_info",
    }


@pytest.mark.parametrize(
    ("method", "operation"),
    [
        ("WatchMediaJob", "describe"),  # watching or waiting reads the job, like describing it
        ("WaitMediaJob", "describe"),
        ("GetMediaInfo", "media_info"),
        ("GenerateMediaInfo", "media_info"),
    ],
)
def test_reading_rpcs_share_an_operation(method: str, operation: str) -> None:
    assert operation_of(METHODS[method]) == operation


def test_an_unmapped_method_is_its_own_operation_and_only_star_or_its_name_allow_it() -> None:
    method = f"/{API_SERVICE}/PurgeEverything"
    assert operation_of(method) == "PurgeEverything"
    scope = RequestScope(operation_of(method), BUCKET, None)
    everything_listed = ClientPolicy(
        "a", frozenset({"*"}), frozenset(operation.value for operation in Operation)
    )
    with pytest.raises(AccessDenied) as caught:
        everything_listed.check(scope)
    assert caught.value.reason is Reason.OPERATION_NOT_ALLOWED
    ClientPolicy("b", frozenset({"*"}), frozenset({"PurgeEverything"})).check(scope)
    ClientPolicy("c", frozenset({"*"}), frozenset({"*"})).check(scope)


@pytest.mark.parametrize(
    ("method", "request_", "scope"),
    [
        (
            "SubmitMediaJob",
            S.SubmitMediaJobRequest(request=M.Request(input=M.Input(object="a.mp4"))),
            RequestScope("submit", "default-1250000000", "MediaInfo"),
        ),
        (
            "SubmitMediaJob",
            S.SubmitMediaJobRequest(bucket=OTHER_BUCKET, request=M.Request(tag="Transcode")),
            RequestScope("submit", OTHER_BUCKET, "Transcode"),
        ),
        (
            "SubmitMediaJobs",
            S.SubmitMediaJobsRequest(
                request=M.MultiOperationRequest(
                    operation=[M.Operation(tag="Snapshot"), M.Operation(tag="")]
                )
            ),
            RequestScope("submit", "default-1250000000", None, operation_tags=("Snapshot", "")),
        ),
        (
            "ListMediaJobs",
            S.ListMediaJobsRequest(),
            RequestScope("list", "default-1250000000", "MediaInfo"),
        ),
        (
            "ListMediaJobs",
            S.ListMediaJobsRequest(bucket=OTHER_BUCKET, tag="Snapshot"),
            RequestScope("list", OTHER_BUCKET, "Snapshot"),
        ),
        (
            "DescribeMediaJobs",
            S.DescribeMediaJobsRequest(bucket=OTHER_BUCKET, job_ids=["j1"]),
            RequestScope("describe", OTHER_BUCKET, None),  # a read names no tag
        ),
        (
            "CancelMediaJob",
            S.CancelMediaJobRequest(job_id="j1"),
            RequestScope("cancel", "default-1250000000", None),
        ),
        (
            "GetMediaInfo",
            S.GetMediaInfoRequest(object="a.mp4"),
            RequestScope("media_info", "default-1250000000", None),
        ),
    ],
    ids=lambda value: value if isinstance(value, str) else "",
)
def test_request_scope_applies_the_validation_defaults(
    method: str, request_: object, scope: RequestScope
) -> None:
    assert request_scope(METHODS[method], request_, "default-1250000000") == scope


def test_request_scope_of_a_message_without_a_bucket_is_the_default_bucket() -> None:
    assert request_scope("/other.Service/Ping", object(), BUCKET) == RequestScope(
        "Ping", BUCKET, None
    )


LIMITED = ClientPolicy(
    "limited",
    buckets=frozenset({BUCKET}),
    operations=frozenset({"submit", "list"}),
    tags=frozenset({"MediaInfo"}),
)


@pytest.mark.parametrize(
    ("scope", "reason", "asked"),
    [
        (RequestScope("submit", BUCKET, "MediaInfo"), None, None),
        (RequestScope("list", BUCKET, "MediaInfo"), None, None),
        (
            RequestScope("cancel", BUCKET, None),
            Reason.OPERATION_NOT_ALLOWED,
            {"operation": "cancel"},
        ),
        (
            RequestScope("submit", OTHER_BUCKET, "MediaInfo"),
            Reason.BUCKET_NOT_ALLOWED,
            {"operation": "submit", "bucket": OTHER_BUCKET},
        ),
        (
            RequestScope("submit", "", "MediaInfo"),  # no bucket at all (none by default either)
            Reason.BUCKET_NOT_ALLOWED,
            {"operation": "submit", "bucket": ""},
        ),
        (
            RequestScope("list", BUCKET, "Transcode"),
            Reason.TAG_NOT_ALLOWED,
            {"operation": "list", "tag": "Transcode"},
        ),
        # The operation rule is checked first, then the bucket, then the tag: a refusal names
        # the first rule that fails, and only what was asked.
        (
            RequestScope("cancel", OTHER_BUCKET, "Transcode"),
            Reason.OPERATION_NOT_ALLOWED,
            {"operation": "cancel"},
        ),
        (
            RequestScope("submit", OTHER_BUCKET, "Transcode"),
            Reason.BUCKET_NOT_ALLOWED,
            {"operation": "submit", "bucket": OTHER_BUCKET},
        ),
    ],
)
def test_client_policy_refuses_by_the_first_rule_that_fails(
    scope: RequestScope, reason: Reason | None, asked: dict[str, str] | None
) -> None:
    if reason is None:
        LIMITED.check(scope)
        return
    with pytest.raises(AccessDenied) as caught:
        LIMITED.check(scope)
    assert caught.value.reason is reason
    assert caught.value.status is grpc.StatusCode.PERMISSION_DENIED
    assert caught.value.metadata() == asked
    if scope.bucket != BUCKET:  # a refusal never names a bucket the client may use
        assert BUCKET not in str(caught.value)


def test_star_allows_any_bucket_operation_and_tag() -> None:
    anything = ClientPolicy("any", frozenset({"*"}), frozenset({"*"}))
    for scope in (
        RequestScope("submit", OTHER_BUCKET, "Anything"),
        RequestScope("cancel", "", None),
        RequestScope("Unmapped", BUCKET, None),
    ):
        anything.check(scope)


def test_client_policy_repr_names_the_client_only() -> None:
    digest = sha256_hex("tok-secret")
    policy = ClientPolicy(
        "team", frozenset({BUCKET}), frozenset({"*"}), token_sha256=frozenset({digest})
    )
    assert repr(policy) == "ClientPolicy(name='team')"
    assert digest not in repr(policy) and BUCKET not in repr(policy)


def test_token_bucket_allows_a_burst_then_refills_at_its_rate() -> None:
    clock = FakeClock(100.0)
    bucket = TokenBucket(RateLimit(per_s=2.0, burst=3.0), clock=clock)
    assert [bucket.try_take() for _ in range(3)] == [0.0, 0.0, 0.0]
    assert bucket.try_take() == pytest.approx(0.5)  # one token at 2/s is 0.5 s away
    clock.advance(0.25)
    assert bucket.try_take() == pytest.approx(0.25)  # half a token has come back
    clock.advance(0.25)
    assert bucket.try_take() == 0.0
    assert bucket.try_take() == pytest.approx(0.5)


def test_token_bucket_never_holds_more_than_its_burst() -> None:
    clock = FakeClock(0.0)
    bucket = TokenBucket(RateLimit(per_s=10.0, burst=2.0), clock=clock)
    clock.advance(3600)  # an idle hour earns no more than the burst
    assert [bucket.try_take() for _ in range(2)] == [0.0, 0.0]
    assert bucket.try_take() == pytest.approx(0.1)


def test_token_bucket_ignores_a_clock_that_steps_back() -> None:
    clock = FakeClock(50.0)
    bucket = TokenBucket(RateLimit(per_s=1.0, burst=1.0), clock=clock)
    assert bucket.try_take() == 0.0
    clock.now = 10.0  # backwards: no tokens are created (or taken) by it
    assert bucket.try_take() == pytest.approx(1.0)
    clock.advance(1.0)
    assert bucket.try_take() == 0.0
