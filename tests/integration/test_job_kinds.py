"""Job kinds end to end: a real gRPC channel, the in-process gateway, and a CI that keeps jobs.

A typed kind (Transcode) and a pass-through kind (VideoTag) are submitted, described, listed,
cancelled and waited for, and come back without losing a node: the typed parameters as sent,
the untyped ones as the same `XmlNode` trees, CI's result nodes (typed or not) in between.

The peer is `echo_ci` (a small stateful CI), not the emulator: the emulator runs the typed
kinds (`test_kinds_emulator.py`) but answers the pass-through ones with NotImplemented, and
the echo lets a test choose CI's result nodes. Everything here is about what the gateway does
with a kind's nodes, which the echo shows faithfully.
"""

from __future__ import annotations

import grpc
import pytest
from google.protobuf import json_format
from lxml import etree

from gateway._proto import media_pb2, outputs_pb2, service_pb2, service_pb2_grpc, xml_pb2
from gateway.config.settings import Callbacks
from gateway.jobs.submit import MARKER_PREFIX
from gateway.kinds import KINDS
from gateway.model import GATEWAY_CALLBACK
from gateway.upstream.xml_codec import parse_document
from tests.conftest import BUCKET, REGION
from tests.integration.echo_ci import echo_ci, echo_gateway
from tests.integration.helpers import rich_error

VIDEO_TAG = xml_pb2.XmlNode(
    name="VideoTag", children=[xml_pb2.XmlNode(name="Scenario", text="Stream")]
)
VIDEO_TAG_RESULT = (
    "<VideoTagResult><StreamResult><SubErrCode/><Data><Tags><Tag>person</Tag>"
    "<Confidence>0.93</Confidence></Tags></Data></StreamResult></VideoTagResult>"
)
TRANSCODE_RESULT = (
    "<MediaResult><OutputFile><Bucket>examplebucket-1250000000</Bucket>"
    "<Region>ap-guangzhou</Region><ObjectPrefix/><ObjectName>output/demo.mp4</ObjectName>"
    "</OutputFile></MediaResult>"
)
FUTURE = "<QualityReport><Score>97</Score></QualityReport>"  # a result node no proto types


def _results() -> dict[str, object]:
    def nodes(*xml: str) -> object:
        return lambda: [etree.fromstring(x) for x in xml]

    return {
        "VideoTag": nodes(VIDEO_TAG_RESULT),
        "Transcode": nodes(TRANSCODE_RESULT, FUTURE, "<TemplateName>t-name</TemplateName>"),
    }


def _transcode_request() -> media_pb2.Request:
    return json_format.ParseDict(
        {
            "tag": "Transcode",
            "input": {"object": "input/demo.mp4"},
            "operation": {
                "user_data": "order-42",
                "transcode": {
                    "container": {"format": "mp4"},
                    "video": {"codec": "H.264", "crf": "0"},
                    "audio": {"codec": "aac", "remove": "false"},
                    "trans_config": {"aigc_metadata": {"produce_id": "p-1"}},
                },
                "watermark": [
                    {
                        "type": "Text",
                        "pos": "TopRight",
                        "loc_mode": "Absolute",
                        "dx": "0",
                        "dy": "0",
                        "text": {"text": "CI"},
                    }
                ],
                "output": {"region": REGION, "bucket": BUCKET, "object": "output/demo.mp4"},
                "sdr_to_hdr": {"hdr_mode": "HLG"},
                "extra_nodes": [{"name": "FutureFlag", "text": "on"}],
            },
        },
        media_pb2.Request(),
    )


async def submit_describe_list(
    stub: service_pb2_grpc.MediaJobServiceAsyncStub,
    request: media_pb2.Request,
    listing: service_pb2.ListMediaJobsRequest,
) -> tuple[
    service_pb2.SubmitMediaJobResponse,
    service_pb2.DescribeMediaJobsResponse,
    service_pb2.ListMediaJobsResponse,
]:
    """`request` submitted, then read back both ways: described by its id (with CI's raw XML)
    and listed by `listing`."""
    submitted = await stub.SubmitMediaJob(
        service_pb2.SubmitMediaJobRequest(request=request), timeout=10
    )
    described = await stub.DescribeMediaJobs(
        service_pb2.DescribeMediaJobsRequest(
            job_ids=[submitted.jobs_detail.job_id], include_raw_xml=True
        ),
        timeout=10,
    )
    listed = await stub.ListMediaJobs(listing, timeout=10)
    return submitted, described, listed


async def test_untyped_kind_comes_back_whole() -> None:
    request = media_pb2.Request(
        tag="VideoTag",
        input=media_pb2.Input(object="input/demo.mp4"),
        operation=media_pb2.Operation(user_data="tag me", extra_nodes=[VIDEO_TAG]),
    )
    async with echo_ci(results=_results()) as fake, echo_gateway(fake) as stub:
        submitted, described, listed = await submit_describe_list(
            stub, request, service_pb2.ListMediaJobsRequest(tag="VideoTag")
        )
    # On the wire: the kind's node exactly as given, after the typed fields.
    (body,) = fake.bodies
    sent_node = parse_document(body).find("Operation/VideoTag")
    assert sent_node is not None
    assert etree.tostring(sent_node) == (b"<VideoTag><Scenario>Stream</Scenario></VideoTag>")
    assert submitted.jobs_detail.operation.extra_nodes == [VIDEO_TAG]
    (job,) = described.jobs_detail
    assert job.state == media_pb2.JOB_STATE_SUCCESS and job.tag == "VideoTag"
    assert job.operation.user_data == "tag me"  # the exactly-once marker is not shown
    kept = list(job.operation.extra_nodes)
    assert kept[0] == VIDEO_TAG
    assert [n.name for n in kept] == ["VideoTag", "VideoTagResult"]
    data = kept[1].children[0].children[1]
    assert data.children[0].children[1] == xml_pb2.XmlNode(name="Confidence", text="0.93")
    assert kept[1].children[0].children[0] == xml_pb2.XmlNode(name="SubErrCode")
    # The raw element, as CI sent it (marker stripped), when asked; never otherwise.
    raw = parse_document(job.raw_xml.encode())
    assert raw.findtext("Operation/VideoTag/Scenario") == "Stream"
    assert raw.findtext("Operation/UserData") == "tag me"
    assert MARKER_PREFIX not in job.raw_xml
    assert [j.job_id for j in listed.jobs_detail] == [submitted.jobs_detail.job_id]
    assert listed.jobs_detail[0].raw_xml == ""
    assert listed.jobs_detail[0].operation.extra_nodes == job.operation.extra_nodes


async def test_typed_kind_comes_back_typed_with_its_results() -> None:
    request = _transcode_request()
    async with echo_ci(results=_results()) as fake, echo_gateway(fake) as stub:
        submitted = await stub.SubmitMediaJob(
            service_pb2.SubmitMediaJobRequest(request=request), timeout=10
        )
        waited = await stub.WaitMediaJob(
            service_pb2.WaitMediaJobRequest(job_id=submitted.jobs_detail.job_id), timeout=10
        )
    sent = parse_document(fake.bodies[0])
    assert sent.findtext("Operation/SDRtoHDR/HdrMode") == "HLG"
    assert sent.findtext("Operation/Transcode/TransConfig/AIGCMetadata/ProduceID") == "p-1"
    assert sent.findtext("Operation/Transcode/Video/Crf") == "0"
    job = waited.jobs_detail
    assert job.state == media_pb2.JOB_STATE_SUCCESS
    assert (job.start_time, job.end_time) == (
        "2023-07-12T10:00:01+0800",
        "2023-07-12T10:00:09+0800",
    )
    # While submitted, `-` times read as empty.
    assert (submitted.jobs_detail.start_time, submitted.jobs_detail.end_time) == ("", "")
    operation = job.operation
    for name in ("transcode", "watermark", "output", "sdr_to_hdr", "user_data"):
        assert getattr(operation, name) == getattr(request.operation, name), name
    assert operation.template_name == "t-name"
    assert list(operation.media_result.output_file.object_name) == ["output/demo.mp4"]
    assert [(n.name, n.text) for n in operation.extra_nodes] == [
        ("FutureFlag", "on"),
        ("QualityReport", ""),
    ]
    assert operation.extra_nodes[1].children[0] == xml_pb2.XmlNode(name="Score", text="97")


async def test_a_finished_job_lists_its_outputs_on_describe_list_watch_and_wait() -> None:
    request = _transcode_request()
    expected = [
        outputs_pb2.OutputObject(
            bucket=BUCKET,
            region=REGION,
            key="output/demo.mp4",
            role=outputs_pb2.OUTPUT_ROLE_MAIN,
        )
    ]
    async with echo_ci(results=_results()) as fake, echo_gateway(fake) as stub:
        submitted = await stub.SubmitMediaJob(
            service_pb2.SubmitMediaJobRequest(request=request), timeout=10
        )
        job_id = submitted.jobs_detail.job_id
        watched = [
            update.jobs_detail
            async for update in stub.WatchMediaJob(
                service_pb2.WatchMediaJobRequest(job_id=job_id), timeout=10
            )
        ]
        waited = await stub.WaitMediaJob(service_pb2.WaitMediaJobRequest(job_id=job_id), timeout=10)
        described = await stub.DescribeMediaJobs(
            service_pb2.DescribeMediaJobsRequest(job_ids=[job_id]), timeout=10
        )
        listed = await stub.ListMediaJobs(
            service_pb2.ListMediaJobsRequest(tag="Transcode"), timeout=10
        )
    assert list(submitted.jobs_detail.outputs) == []  # nothing written yet
    for job in (watched[-1], waited.jobs_detail, *described.jobs_detail, *listed.jobs_detail):
        assert job.state == media_pb2.JOB_STATE_SUCCESS
        assert list(job.outputs) == expected
    # The gateway's own field: CI's XML never carries it.
    assert all(b"Outputs" not in body for body in fake.bodies)


async def test_cancel_a_pass_through_kind() -> None:
    request = media_pb2.Request(
        tag="SpeechRecognition",
        input=media_pb2.Input(object="input/talk.mp3"),
        operation=media_pb2.Operation(
            extra_nodes=[
                xml_pb2.XmlNode(
                    name="SpeechRecognition",
                    children=[xml_pb2.XmlNode(name="EngineModelType", text="16k_zh")],
                )
            ]
        ),
    )
    async with echo_ci() as fake, echo_gateway(fake) as stub:
        submitted = await stub.SubmitMediaJob(
            service_pb2.SubmitMediaJobRequest(request=request), timeout=10
        )
        job_id = submitted.jobs_detail.job_id
        await stub.CancelMediaJob(service_pb2.CancelMediaJobRequest(job_id=job_id), timeout=10)
    assert fake.jobs[job_id].findtext("State") == "Cancel"
    assert fake.calls[-1] == f"PUT /jobs/{job_id}"


@pytest.mark.parametrize("tag", ["VideoTag", "Transcode"])
async def test_lost_answer_is_reconciled_for_any_kind(tag: str) -> None:
    """Exactly once for every kind: CI created the job but its answer was lost (500); the
    gateway finds the job by its UserData marker in a listing of that kind, and sends no
    second submit."""
    if tag == "Transcode":
        request = _transcode_request()
    else:
        request = media_pb2.Request(
            tag=tag,
            input=media_pb2.Input(object="input/demo.mp4"),
            operation=media_pb2.Operation(extra_nodes=[VIDEO_TAG]),
        )
    submit = service_pb2.SubmitMediaJobRequest(request=request, request_id=f"once-{tag}")
    async with echo_ci(lose_answers=1) as fake, echo_gateway(fake) as stub:
        first = await stub.SubmitMediaJob(submit, timeout=10)
        again = await stub.SubmitMediaJob(submit, timeout=10)
    assert len(fake.jobs) == 1 and len(fake.bodies) == 1
    assert first.jobs_detail.job_id == again.jobs_detail.job_id in fake.jobs
    assert first.jobs_detail.tag == tag
    # A caller's request_id the store does not know is first looked for (store-loss recovery),
    # then the lost answer is reconciled once: two listings, one POST.
    assert [c for c in fake.calls if c.startswith("GET")] == ["GET /jobs", "GET /jobs"]


# Enough for every typed kind's rule (a template, transcode parameters, an output with
# `${Number}` and one extracted stream, a digital watermark), plus a node no message types.
EVERY_KIND_OPERATION = {
    "template_id": "t1",
    "transcode_template_id": "t2",
    "watermark_template_id": ["t3"],
    "digital_watermark": {"message": "m-1", "type": "Text", "version": "V1"},
    # The two kinds no template stands in for (kind_rules).
    "segment": {"format": "mp4"},
    "extract_digital_watermark": {"type": "Text", "version": "V1"},
    "output": {
        "region": REGION,
        "bucket": BUCKET,
        "object": "out/${Number}.jpg",
        "stream_extract": [{"index": "0", "object": "out/v.h264"}],
    },
}


async def test_every_catalogue_kind_is_accepted_and_sent_as_given() -> None:
    async with echo_ci() as fake, echo_gateway(fake) as stub:
        for tag in KINDS:
            node = xml_pb2.XmlNode(name=f"{tag}Params", text="x")
            request = media_pb2.Request(
                tag=tag,
                input=media_pb2.Input(object="input/demo.mp4"),
                operation=json_format.ParseDict(EVERY_KIND_OPERATION, media_pb2.Operation()),
            )
            request.operation.extra_nodes.append(node)
            answer = await stub.SubmitMediaJob(
                service_pb2.SubmitMediaJobRequest(request=request), timeout=10
            )
            assert answer.jobs_detail.tag == tag
            assert list(answer.jobs_detail.operation.extra_nodes) == [node]
    assert len(fake.jobs) == len(KINDS) == 37


async def test_a_tag_outside_the_catalogue_never_reaches_ci() -> None:
    request = media_pb2.Request(tag="VideoTagging", input=media_pb2.Input(object="a.mp4"))
    async with echo_ci() as fake, echo_gateway(fake) as stub:
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await stub.SubmitMediaJob(
                service_pb2.SubmitMediaJobRequest(request=request), timeout=10
            )
    assert "request.tag" in rich_error(caught.value).violations
    assert fake.calls == []


async def test_a_ci_echoing_the_gateways_callback_url_never_shows_its_token() -> None:
    """The gateway's receiver URL (`.../ci-callback/<token>/...`) goes to CI in each job's
    `CallBack`; a CI that echoed it in JobsDetail (documented CI does not) must not hand the
    token to callers: typed view, unknown nodes and raw XML all read the stand-in."""
    token = "t" * 40
    callbacks = Callbacks(listen="127.0.0.1:0", public_url="http://gw.example:8080", token=token)
    request = media_pb2.Request(input=media_pb2.Input(object="input/demo.mp4"))
    async with echo_ci(echo_callback=True) as fake, echo_gateway(fake, callbacks) as stub:
        submitted, described, listed = await submit_describe_list(
            stub, request, service_pb2.ListMediaJobsRequest()
        )
    (body,) = fake.bodies
    assert f"/ci-callback/{token}/" in (parse_document(body).findtext("CallBack") or "")
    (job,) = described.jobs_detail
    for answer in (submitted, described, listed):
        assert token not in str(answer)
    for shown in (submitted.jobs_detail, job, listed.jobs_detail[0]):
        assert [(n.name, n.text) for n in shown.extra_nodes] == [("CallBack", GATEWAY_CALLBACK)]
    assert parse_document(job.raw_xml.encode()).findtext("CallBack") == GATEWAY_CALLBACK
