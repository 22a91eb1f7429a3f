"""End to end over real sockets: grpc.aio client -> gateway -> signed HTTP -> emulator."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

import grpc
import pytest
from aiohttp import web

from ci_emulator.hosts import Target
from ci_emulator.server import RunningEmulator
from gateway._proto import media_pb2, service_pb2, service_pb2_grpc
from tests.conftest import BUCKET, REGION, SAMPLE_HEIGHT, SAMPLE_KEY, SAMPLE_SECONDS, SAMPLE_WIDTH
from tests.integration.helpers import rich_error

M, S = media_pb2, service_pb2
if TYPE_CHECKING:
    from gateway._proto.service_pb2_grpc import MediaJobServiceAsyncStub as Stub
DONE = {"Success", "Failed"}


async def submit(stub: Stub, key: str = SAMPLE_KEY, **operation: object) -> M.JobsDetail:
    answer = await stub.SubmitMediaJob(
        S.SubmitMediaJobRequest(
            request=M.Request(input=M.Input(object=key), operation=M.Operation(**operation))  # type: ignore[arg-type]
        ),
        timeout=10,
    )
    return answer.jobs_detail


async def describe(stub: Stub, *job_ids: str) -> S.DescribeMediaJobsResponse:
    return await stub.DescribeMediaJobs(S.DescribeMediaJobsRequest(job_ids=job_ids), timeout=10)


def assert_matches_sample(info: M.MediaInfo) -> None:
    """The MediaInfo describes the generated file as it really is."""
    assert len(info.stream.video) == 1 and len(info.stream.audio) == 1
    video, audio = info.stream.video[0], info.stream.audio[0]
    assert video.codec_name == "h264"
    assert (int(video.width), int(video.height)) == (SAMPLE_WIDTH, SAMPLE_HEIGHT)
    assert audio.codec_name == "aac"
    assert float(info.format.duration) == pytest.approx(SAMPLE_SECONDS, rel=0.01)
    assert info.format.num_stream == "2"


async def test_submit_then_job_runs_to_success_with_real_media_info(
    stub: Stub, emulator: RunningEmulator
) -> None:
    submitted = await submit(stub, user_data="hello from a test", job_level=2)
    assert submitted.job_id.startswith("j")
    assert submitted.state == M.JOB_STATE_SUBMITTED
    assert submitted.state_text == "Submitted"
    assert submitted.tag == "MediaInfo"
    assert submitted.input.object == SAMPLE_KEY
    assert submitted.operation.user_data == "hello from a test"
    assert submitted.operation.job_level == 2
    assert submitted.creation_time.endswith("+0800")

    await emulator.state.wait_for_job_state(submitted.job_id, DONE, timeout=20)
    answer = await describe(stub, submitted.job_id)
    (job,) = answer.jobs_detail
    assert job.state == M.JOB_STATE_SUCCESS, (job.code, job.message)
    assert job.code == "Success"
    assert job.start_time and job.end_time
    assert job.input.bucket_id == BUCKET and job.input.region == REGION
    assert job.operation.user_data == "hello from a test"
    assert_matches_sample(job.operation.media_info)
    assert not answer.non_exist_job_ids


async def test_non_media_object_ends_failed_with_ci_code(
    stub: Stub, emulator: RunningEmulator
) -> None:
    submitted = await submit(stub, key="input/notes.txt")
    await emulator.state.wait_for_job_state(submitted.job_id, DONE, timeout=20)
    (job,) = (await describe(stub, submitted.job_id)).jobs_detail
    assert job.state == M.JOB_STATE_FAILED
    assert job.code and job.code != "Success"
    assert job.message
    assert not job.operation.HasField("media_info")


async def test_describe_several_and_unknown_ids(stub: Stub) -> None:
    first, second = await submit(stub), await submit(stub)
    unknown = "j" + "0" * 32
    answer = await describe(stub, second.job_id, unknown, first.job_id)
    assert [job.job_id for job in answer.jobs_detail] == [second.job_id, first.job_id]
    assert list(answer.non_exist_job_ids) == [unknown]


async def test_describe_only_unknown_id(stub: Stub) -> None:
    unknown = "j" + "f" * 32
    answer = await describe(stub, unknown)
    assert not answer.jobs_detail
    assert list(answer.non_exist_job_ids) == [unknown]


async def test_ci_request_id_is_returned_in_trailing_metadata(stub: Stub) -> None:
    call = stub.DescribeMediaJobs(S.DescribeMediaJobsRequest(job_ids=["j" + "1" * 32]))
    await call
    trailing = dict(await call.trailing_metadata())
    assert trailing.get("x-ci-request-id")


async def test_list_pages_through_every_job(stub: Stub, emulator: RunningEmulator) -> None:
    emulator.state.pause_scheduling()
    ids = {(await submit(stub)).job_id for _ in range(7)}
    seen: list[str] = []
    token = ""
    pages = 0
    for _ in range(10):  # bounded: 7 jobs at 3 a page is 3 pages
        page = await stub.ListMediaJobs(
            S.ListMediaJobsRequest(size=3, next_token=token), timeout=10
        )
        pages += 1
        assert len(page.jobs_detail) <= 3
        seen.extend(job.job_id for job in page.jobs_detail)
        token = page.next_token
        if not token:
            break
    assert pages == 3
    assert len(seen) == len(set(seen)) == 7
    assert set(seen) == ids


async def test_list_filters(stub: Stub, emulator: RunningEmulator) -> None:
    done = await submit(stub)
    await emulator.state.wait_for_job_state(done.job_id, DONE, timeout=20)
    emulator.state.pause_scheduling()
    waiting = await submit(stub, key="input/notes.txt")

    async def listed(**filters: object) -> list[str]:
        page = await stub.ListMediaJobs(S.ListMediaJobsRequest(**filters), timeout=10)  # type: ignore[arg-type]
        return [job.job_id for job in page.jobs_detail]

    assert await listed(states=[M.JOB_STATE_SUBMITTED]) == [waiting.job_id]
    assert await listed(states=[M.JOB_STATE_SUCCESS]) == [done.job_id]
    assert set(await listed(states=[M.JOB_STATE_SUCCESS, M.JOB_STATE_SUBMITTED])) == {
        done.job_id,
        waiting.job_id,
    }
    assert await listed(input_object="input/notes.txt") == [waiting.job_id]
    assert await listed(input_object="input/none.mp4") == []
    assert await listed(order_by_time=S.ORDER_BY_TIME_ASC) == [done.job_id, waiting.job_id]
    assert await listed(order_by_time=S.ORDER_BY_TIME_DESC) == [waiting.job_id, done.job_id]
    assert await listed(queue_id=done.queue_id, size=1) in ([waiting.job_id], [done.job_id])
    assert await listed(start_creation_time="2100-01-01T00:00:00+0800") == []
    assert set(await listed(end_creation_time="2100-01-01T00:00:00+0800")) == {
        done.job_id,
        waiting.job_id,
    }
    assert set(await listed(start_creation_time="2000-01-01T00:00:00+0800")) == {
        done.job_id,
        waiting.job_id,
    }
    assert await listed(end_creation_time="2000-01-01T00:00:00+0800") == []
    assert await listed(workflow_id="w0000") == []


async def test_list_sends_creation_times_in_cis_form_whatever_iso_form_they_came_in(
    stub: Stub, emulator: RunningEmulator
) -> None:
    """CI's time parameters are `2001-01-01T00:00:00+0800` (notes §5.2, an offset without a
    colon). ISO forms the gateway accepts (`Z`, `+08:00`, unpadded fields) reach CI in that
    form, never as given."""
    sent: list[tuple[str, str]] = []

    async def record(request: web.Request, target: Target) -> web.StreamResponse | None:
        if request.method == "GET" and request.path == "/jobs":
            sent.append((request.query["startCreationTime"], request.query["endCreationTime"]))
        return None

    emulator.state.request_hooks.append(record)
    job = await submit(stub)
    page = await stub.ListMediaJobs(
        S.ListMediaJobsRequest(
            start_creation_time="2000-1-1T0:0:0Z", end_creation_time="2100-01-01T08:00:00+08:00"
        ),
        timeout=10,
    )
    assert [listed.job_id for listed in page.jobs_detail] == [job.job_id]
    assert sent == [("2000-01-01T00:00:00+0000", "2100-01-01T08:00:00+0800")]


async def test_list_unknown_queue_is_invalid_argument_from_ci(stub: Stub) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await stub.ListMediaJobs(S.ListMediaJobsRequest(queue_id="pdoesnotexist"), timeout=10)
    error = rich_error(caught.value)
    assert error.code is grpc.StatusCode.INVALID_ARGUMENT
    assert error.error_info is not None
    assert error.error_info.metadata["ci_code"] == "InvalidArgument"
    assert error.request_info is not None and error.request_info.request_id


async def test_cancel_submitted_job(stub: Stub, emulator: RunningEmulator) -> None:
    emulator.state.pause_scheduling()
    job = await submit(stub)
    await stub.CancelMediaJob(S.CancelMediaJobRequest(job_id=job.job_id), timeout=10)
    (after,) = (await describe(stub, job.job_id)).jobs_detail
    assert after.state == M.JOB_STATE_CANCEL
    emulator.state.resume_scheduling()


async def test_cancel_running_job_is_refused(stub: Stub, emulator: RunningEmulator) -> None:
    emulator.state.hold_running()
    job = await submit(stub)
    await emulator.state.wait_for_job_state(job.job_id, {"Running"}, timeout=20)
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await stub.CancelMediaJob(S.CancelMediaJobRequest(job_id=job.job_id), timeout=10)
    error = rich_error(caught.value)
    assert error.code in (grpc.StatusCode.INVALID_ARGUMENT, grpc.StatusCode.FAILED_PRECONDITION)
    assert error.error_info is not None and error.error_info.metadata["ci_code"]
    emulator.state.release_running()
    await emulator.state.wait_for_job_state(job.job_id, DONE, timeout=20)
    (after,) = (await describe(stub, job.job_id)).jobs_detail
    assert after.state == M.JOB_STATE_SUCCESS


async def test_generate_media_info(stub: Stub) -> None:
    answer = await stub.GenerateMediaInfo(
        S.GenerateMediaInfoRequest(input=M.Input(object=SAMPLE_KEY)), timeout=20
    )
    assert_matches_sample(answer.media_info)


async def test_get_media_info_via_cos_host(stub: Stub) -> None:
    answer = await stub.GetMediaInfo(S.GetMediaInfoRequest(object=SAMPLE_KEY), timeout=20)
    assert_matches_sample(answer.media_info)


async def test_get_media_info_missing_object_is_not_found(stub: Stub) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await stub.GetMediaInfo(S.GetMediaInfoRequest(object="input/missing.mp4"), timeout=20)
    error = rich_error(caught.value)
    assert error.code is grpc.StatusCode.NOT_FOUND
    assert error.error_info is not None and error.error_info.metadata["ci_code"] == "NoSuchKey"


async def test_unknown_bucket_is_a_mapped_ci_error(stub: Stub) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await stub.DescribeMediaJobs(
            S.DescribeMediaJobsRequest(bucket="other-1250000000", job_ids=["j1"]), timeout=10
        )
    error = rich_error(caught.value)
    assert error.error_info is not None and error.error_info.metadata["ci_code"]
    assert error.code is not grpc.StatusCode.UNKNOWN


async def test_wrong_secret_key_is_internal_never_permission_denied(
    emulator: RunningEmulator, credentials: object
) -> None:
    from gateway.api.server import start_gateway
    from gateway.config.settings import Settings
    from gateway.credentials import Credentials, StaticCredentialsProvider

    assert isinstance(credentials, Credentials)
    wrong = Credentials(credentials.secret_id, "wrong-secret-key-value-xyz")
    gateway = await start_gateway(
        Settings(listen="127.0.0.1:0", default_bucket=BUCKET, default_region=REGION,
                 endpoint_url=emulator.url),
        StaticCredentialsProvider(wrong),
    )  # fmt: skip
    try:
        async with grpc.aio.insecure_channel(gateway.address) as channel:
            with pytest.raises(grpc.aio.AioRpcError) as caught:
                await service_pb2_grpc.MediaJobServiceStub(channel).DescribeMediaJobs(
                    S.DescribeMediaJobsRequest(job_ids=["j1"]), timeout=10
                )
    finally:
        await gateway.stop(0)
    error = rich_error(caught.value)
    assert error.code is grpc.StatusCode.INTERNAL
    assert error.error_info is not None
    assert error.error_info.reason == "UPSTREAM_AUTH_FAILED"
    assert error.error_info.metadata["ci_code"] == "SignatureDoesNotMatch"
    for text in (error.message, str(error.error_info)):
        assert wrong.secret_key not in text
        assert credentials.secret_key not in text


async def test_concurrent_submits_all_land(stub: Stub, emulator: RunningEmulator) -> None:
    emulator.state.pause_scheduling()
    jobs = await asyncio.gather(*(submit(stub) for _ in range(20)))
    ids = {job.job_id for job in jobs}
    assert len(ids) == 20
    answer = await describe(stub, *sorted(ids)[:10])
    assert len(answer.jobs_detail) == 10


async def test_a_kafka_callback_reaches_ci_with_its_topic(
    stub: Stub, emulator: RunningEmulator
) -> None:
    """CallBackType Kafka is in the Go and Java SDKs, not on CI's pages: the gateway lets it
    through (the tolerant reading) with its CallBackKafkaConfig, rather than refuse a
    callback CI's own SDKs offer."""
    kafka = M.CallBackKafkaConfig(region="ap-guangzhou", instance_id="ckafka-1", topic="jobs")
    answer = await stub.SubmitMediaJob(
        S.SubmitMediaJobRequest(
            request=M.Request(
                input=M.Input(object=SAMPLE_KEY),
                call_back_type="Kafka",
                call_back_kafka_config=kafka,
            )
        ),
        timeout=10,
    )
    spec = emulator.state.jobs[answer.jobs_detail.job_id].spec
    assert (spec.callback_type, spec.callback_mq) == (
        "Kafka",
        (("Region", "ap-guangzhou"), ("InstanceId", "ckafka-1"), ("Topic", "jobs")),
    )
