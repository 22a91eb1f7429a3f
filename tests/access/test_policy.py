"""Per-client policy: each rule (operation, bucket, tag, rate) refuses on its own, names itself
in ErrorInfo, and reveals neither other clients nor other buckets. A job in a bucket the client
may not use is simply not found for it."""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator
from pathlib import Path

import grpc
import pytest

from ci_emulator.server import RunningEmulator
from gateway._proto import media_pb2, service_pb2, service_pb2_grpc
from gateway.access.interceptor import ClientAccess
from tests.access.helpers import FakeClock, RecordingCredentials, sha256_hex
from tests.conftest import BUCKET, SAMPLE_KEY
from tests.fixtures.accounts import OTHER_BUCKET, Serve
from tests.integration.helpers import RichError, rich_error

M, S = media_pb2, service_pb2
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
    assert len(seen.seen) == 2


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
