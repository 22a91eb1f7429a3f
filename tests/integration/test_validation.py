"""Every validation rule: INVALID_ARGUMENT, the field named in BadRequest, and CI never called."""

from __future__ import annotations

from typing import Any

import grpc
import pytest
from google.protobuf import json_format

from ci_emulator.server import RunningEmulator
from gateway._proto import media_pb2, service_pb2, service_pb2_grpc
from tests.integration.helpers import rich_error

M = media_pb2
S = service_pb2


def _submit(**request: Any) -> S.SubmitMediaJobRequest:
    body = M.Request(input=M.Input(object="input/sample.mp4"))
    for name, value in request.items():
        if isinstance(value, dict):
            json_format.ParseDict(value, getattr(body, name))
        else:
            setattr(body, name, value)
    return S.SubmitMediaJobRequest(request=body)


# Out-of-range enum numbers, as a client with a newer or broken proto could send them.
_untyped_list: Any = S.ListMediaJobsRequest

CASES: list[tuple[str, str, Any, str]] = [
    # (case id, rpc, request, field named)
    ("empty object", "SubmitMediaJob", _submit(input={"object": ""}), "request.input.object"),
    (
        "object with leading slash",
        "SubmitMediaJob",
        S.SubmitMediaJobRequest(request=M.Request(input=M.Input(object="/a.mp4"))),
        "request.input.object",
    ),
    (
        "object too long",
        "SubmitMediaJob",
        S.SubmitMediaJobRequest(request=M.Request(input=M.Input(object="a" * 851))),
        "request.input.object",
    ),
    (
        "user data not ascii",
        "SubmitMediaJob",
        _submit(operation={"user_data": "héllo"}),
        "request.operation.user_data",
    ),
    (
        "user data control char",
        "SubmitMediaJob",
        _submit(operation={"user_data": "a\nb"}),
        "request.operation.user_data",
    ),
    (
        "user data too long",
        "SubmitMediaJob",
        _submit(operation={"user_data": "x" * 1025}),
        "request.operation.user_data",
    ),
    (
        "job level 3",
        "SubmitMediaJob",
        _submit(operation={"job_level": 3}),
        "request.operation.job_level",
    ),
    (
        "job level negative",
        "SubmitMediaJob",
        _submit(operation={"job_level": -1}),
        "request.operation.job_level",
    ),
    ("unknown tag", "SubmitMediaJob", _submit(tag="Transcoding"), "request.tag"),
    ("tag spelled in another case", "SubmitMediaJob", _submit(tag="SdrToHdr"), "request.tag"),
    (
        "media result is output only",
        "SubmitMediaJob",
        _submit(tag="Transcode", operation={"media_result": {"output_file": {"bucket": "b"}}}),
        "request.operation.media_result",
    ),
    (
        "template name is output only",
        "SubmitMediaJob",
        _submit(tag="Transcode", operation={"template_name": "t"}),
        "request.operation.template_name",
    ),
    (
        "digital watermark state is output only",
        "SubmitMediaJob",
        _submit(tag="DigitalWatermark", operation={"digital_watermark": {"state": "Success"}}),
        "request.operation.digital_watermark.state",
    ),
    (
        "operation tag in a single-operation submit",
        "SubmitMediaJob",
        _submit(tag="Transcode", operation={"tag": "Snapshot"}),
        "request.operation.tag",
    ),
    (
        "control character in a typed parameter",
        "SubmitMediaJob",
        _submit(tag="Transcode", operation={"transcode": {"container": {"format": "mp\x014"}}}),
        "request.operation.transcode.container.format",
    ),
    (
        "unknown node that is no XML name",
        "SubmitMediaJob",
        _submit(tag="VideoTag", operation={"extra_nodes": [{"name": "Video Tag"}]}),
        "request.operation.extra_nodes[0].name",
    ),
    (
        "unknown node child with control characters",
        "SubmitMediaJob",
        _submit(
            tag="VideoTag",
            operation={
                "extra_nodes": [
                    {"name": "VideoTag", "children": [{"name": "Scenario", "text": "\x07"}]}
                ]
            },
        ),
        "request.operation.extra_nodes[0].children[0].text",
    ),
    (
        "unknown node spelled like a typed field",
        "SubmitMediaJob",
        _submit(tag="Transcode", operation={"extra_nodes": [{"name": "TRANSCODE"}]}),
        "request.operation.extra_nodes[0].name",
    ),
    (
        "bad callback format",
        "SubmitMediaJob",
        _submit(call_back_format="YAML"),
        "request.call_back_format",
    ),
    (
        "callback format case",
        "SubmitMediaJob",
        _submit(call_back_format="json"),
        "request.call_back_format",
    ),
    (
        "bad callback type",
        "SubmitMediaJob",
        _submit(call_back_type="RabbitMQ"),
        "request.call_back_type",
    ),
    ("bad callback url", "SubmitMediaJob", _submit(call_back="ftp://x"), "request.call_back"),
    (
        "tdmq without mq config",
        "SubmitMediaJob",
        _submit(call_back_type="TDMQ"),
        "request.call_back_mq_config",
    ),
    (
        "tdmq bad region",
        "SubmitMediaJob",
        _submit(
            call_back_type="TDMQ",
            call_back_mq_config={"mq_region": "xx", "mq_mode": "Queue", "mq_name": "t"},
        ),
        "request.call_back_mq_config.mq_region",
    ),
    (
        "tdmq bad mode",
        "SubmitMediaJob",
        _submit(
            call_back_type="TDMQ",
            call_back_mq_config={"mq_region": "gz", "mq_mode": "Fanout", "mq_name": "t"},
        ),
        "request.call_back_mq_config.mq_mode",
    ),
    (
        "media info is output only",
        "SubmitMediaJob",
        _submit(operation={"media_info": {"format": {"size": "1"}}}),
        "request.operation.media_info",
    ),
    ("bad queue id", "SubmitMediaJob", _submit(queue_id="p1,p2"), "request.queue_id"),
    (
        "malformed bucket",
        "SubmitMediaJob",
        S.SubmitMediaJobRequest(
            bucket="Example_Bucket", request=M.Request(input=M.Input(object="a"))
        ),
        "bucket",
    ),
    (
        "bucket without appid",
        "SubmitMediaJob",
        S.SubmitMediaJobRequest(
            bucket="examplebucket", request=M.Request(input=M.Input(object="a"))
        ),
        "bucket",
    ),
    (
        "malformed region",
        "SubmitMediaJob",
        S.SubmitMediaJobRequest(region="Guangzhou!", request=M.Request(input=M.Input(object="a"))),
        "region",
    ),
    ("no job ids", "DescribeMediaJobs", S.DescribeMediaJobsRequest(), "job_ids"),
    (
        "too many job ids",
        "DescribeMediaJobs",
        S.DescribeMediaJobsRequest(job_ids=[f"j{i:032x}" for i in range(101)]),
        "job_ids",
    ),
    (
        "job id with comma",
        "DescribeMediaJobs",
        S.DescribeMediaJobsRequest(job_ids=["ja,jb"]),
        "job_ids[0]",
    ),
    (
        "empty job id",
        "DescribeMediaJobs",
        S.DescribeMediaJobsRequest(job_ids=["ja", ""]),
        "job_ids[1]",
    ),
    ("list size 101", "ListMediaJobs", S.ListMediaJobsRequest(size=101), "size"),
    ("list size negative", "ListMediaJobs", S.ListMediaJobsRequest(size=-1), "size"),
    ("list unknown state", "ListMediaJobs", _untyped_list(states=[42]), "states[0]"),
    ("list unspecified state", "ListMediaJobs", _untyped_list(states=[0]), "states[0]"),
    ("list bad order", "ListMediaJobs", _untyped_list(order_by_time=9), "order_by_time"),
    (
        "list bad start time",
        "ListMediaJobs",
        S.ListMediaJobsRequest(start_creation_time="yesterday"),
        "start_creation_time",
    ),
    (
        "list bad end time",
        "ListMediaJobs",
        S.ListMediaJobsRequest(end_creation_time="2024-01-01 00:00:00"),
        "end_creation_time",
    ),
    ("list unknown tag", "ListMediaJobs", S.ListMediaJobsRequest(tag="transcode"), "tag"),
    ("cancel without id", "CancelMediaJob", S.CancelMediaJobRequest(), "job_id"),
    ("cancel bad id", "CancelMediaJob", S.CancelMediaJobRequest(job_id="../x"), "job_id"),
    ("generate without object", "GenerateMediaInfo", S.GenerateMediaInfoRequest(), "input.object"),
    ("videoinfo without object", "GetMediaInfo", S.GetMediaInfoRequest(), "object"),
    # A path-normalising hop would turn `a/../b` into `b`: refused, never sent (issue 11 item 10).
    (
        "videoinfo dot-dot key",
        "GetMediaInfo",
        S.GetMediaInfoRequest(object="in/../x.mp4"),
        "object",
    ),
    ("videoinfo dot key", "GetMediaInfo", S.GetMediaInfoRequest(object="./x.mp4"), "object"),
    (
        "submit dot-dot key",
        "SubmitMediaJob",
        _submit(input={"object": ".."}),
        "request.input.object",
    ),
]


@pytest.mark.parametrize(
    ("rpc", "request_message", "field"), [c[1:] for c in CASES], ids=[c[0] for c in CASES]
)
async def test_invalid_field_is_named_and_ci_is_not_called(
    stub: service_pb2_grpc.MediaJobServiceAsyncStub,
    emulator: RunningEmulator,
    rpc: str,
    request_message: Any,
    field: str,
) -> None:
    seen_before = emulator.state.requests_seen
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await getattr(stub, rpc)(request_message, timeout=5)
    error = rich_error(caught.value)
    assert error.code is grpc.StatusCode.INVALID_ARGUMENT
    assert field in error.violations, error.violations
    assert field in error.message
    assert error.error_info is not None and error.error_info.reason == "INVALID_REQUEST"
    assert emulator.state.requests_seen == seen_before


async def test_all_violations_reported_at_once(
    stub: service_pb2_grpc.MediaJobServiceAsyncStub,
) -> None:
    request = S.SubmitMediaJobRequest(
        bucket="BAD",
        request=M.Request(operation=M.Operation(job_level=7, user_data="\x00")),
    )
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await stub.SubmitMediaJob(request, timeout=5)
    violations = rich_error(caught.value).violations
    assert {
        "bucket",
        "request.input.object",
        "request.operation.job_level",
        "request.operation.user_data",
    } <= set(violations)


async def test_no_default_target_is_a_named_error(
    emulator: RunningEmulator, credentials: Any
) -> None:
    from gateway.api.server import start_gateway
    from gateway.config.settings import Settings
    from gateway.credentials import StaticCredentialsProvider

    gateway = await start_gateway(
        Settings(listen="127.0.0.1:0", endpoint_url=emulator.url),
        StaticCredentialsProvider(credentials),
    )
    try:
        async with grpc.aio.insecure_channel(gateway.address) as channel:
            stub = service_pb2_grpc.MediaJobServiceStub(channel)
            with pytest.raises(grpc.aio.AioRpcError) as caught:
                await stub.CancelMediaJob(S.CancelMediaJobRequest(job_id="jabc"), timeout=5)
    finally:
        await gateway.stop(0)
    error = rich_error(caught.value)
    assert error.code is grpc.StatusCode.INVALID_ARGUMENT
    assert set(error.violations) == {"bucket", "region"}
    assert "no default" in error.violations["bucket"]
