"""Parsing CI's callback bodies: the JSON quirks of notes §7, and what is refused."""

from __future__ import annotations

import json

import pytest

from gateway._proto import media_pb2
from gateway.jobs.callbacks import CallbackRejected, check_callback, parse_callback
from gateway.model import Target

M = media_pb2
TARGET = Target("test-123456789", "ap-chongqing")
# Notes §7's JSON sample (trimmed): every value a string, JobsDetail an object, one stream of
# each kind as an object, Message and Subtitle absent.
SAMPLE = {
    "EventName": "TaskFinish",
    "JobsDetail": {
        "Code": "Success",
        "CreationTime": "2022-06-30T18:45:14+0800",
        "EndTime": "2022-06-30T18:45:15+0800",
        "Input": {
            "BucketId": "test-123456789",
            "Object": "input/demo.mp4",
            "Region": "ap-chongqing",
        },
        "JobId": "jb976c9e0f86111ec9452c1c27f56a659",
        "Operation": {
            "MediaInfo": {
                "Format": {"Bitrate": "834.736000", "NumStream": "2", "Size": "1424687"},
                "Stream": {
                    "Audio": {"Channel": "2", "CodecName": "aac", "Index": "1"},
                    "Video": {"AvgFps": "25.000000", "CodecName": "h264", "Width": "544"},
                },
            },
            "UserData": "This is my MediaInfo job.",
        },
        "QueueId": "p2242ab62c7c94486915508540933a2c6",
        "State": "Success",
        "Tag": "MediaInfo",
    },
}


def parsed(document: object) -> M.JobCallback:
    return parse_callback(json.dumps(document).encode())


def test_the_documented_json_sample() -> None:
    callback = parsed(SAMPLE)
    check_callback(callback, TARGET)
    (job,) = callback.jobs_detail
    assert callback.event_name == "TaskFinish"
    assert (job.job_id, job.state, job.state_text) == (
        "jb976c9e0f86111ec9452c1c27f56a659",
        M.JOB_STATE_SUCCESS,
        "Success",
    )
    info = job.operation.media_info
    assert info.format.bitrate == "834.736000"
    assert [v.width for v in info.stream.video] == ["544"]
    assert [a.codec_name for a in info.stream.audio] == ["aac"]
    assert job.operation.user_data == "This is my MediaInfo job."


def test_jobs_detail_as_an_array_and_streams_as_arrays() -> None:
    detail = json.loads(json.dumps(SAMPLE["JobsDetail"]))
    detail["Operation"]["MediaInfo"]["Stream"]["Audio"] = [
        {"Index": "1", "CodecName": "aac"},
        {"Index": "2", "CodecName": "opus"},
    ]
    second = dict(detail, JobId="j" + "1" * 32)
    callback = parsed({"EventName": "TaskFinish", "JobsDetail": [detail, second]})
    check_callback(callback, TARGET)
    assert [job.job_id for job in callback.jobs_detail] == [detail["JobId"], second["JobId"]]
    audio = callback.jobs_detail[0].operation.media_info.stream.audio
    assert [a.codec_name for a in audio] == ["aac", "opus"]


def test_a_bare_number_is_read_as_its_text_and_null_as_absent() -> None:
    detail = json.loads(json.dumps(SAMPLE["JobsDetail"]))
    detail["Operation"]["MediaInfo"]["Format"]["NumStream"] = 2
    detail["Message"] = None
    (job,) = parsed({"EventName": "TaskFinish", "JobsDetail": detail}).jobs_detail
    assert job.operation.media_info.format.num_stream == "2"
    assert job.message == ""


def test_xml_and_json_forms_agree() -> None:
    from gateway.upstream import xml_codec

    from_json = parsed(SAMPLE)
    xml = xml_codec.encode(from_json, root="Response")
    assert parse_callback(xml) == from_json


@pytest.mark.parametrize("encoding", ["utf-8-sig", "utf-16-le", "utf-16-be"])
def test_a_byte_order_mark_before_xml_or_json(encoding: str) -> None:
    """A BOM (UTF-8's, or UTF-16's) before the document is no reason to refuse it: the parsers
    read both forms with one, so the sniff looks past it too."""
    from gateway.upstream import xml_codec

    expected = parsed(SAMPLE)
    bom = {"utf-16-le": "\ufeff", "utf-16-be": "\ufeff"}.get(encoding, "")
    xml = xml_codec.encode(expected, root="Response").decode()
    if bom:
        xml = xml.replace('encoding="utf-8"', 'encoding="utf-16"')
    assert parse_callback((bom + xml).encode(encoding)) == expected
    assert parse_callback((bom + json.dumps(SAMPLE)).encode(encoding)) == expected


@pytest.mark.parametrize(
    "body",
    [
        b"",
        b"TaskFinish",
        b"[{}]",
        b'{"EventName": true}',
        b'{"EventName": "TaskFinish", "JobsDetail": {"Bad Key": "x"}}',
        b'{"EventName": "TaskFinish", "JobsDetail": {"JobId": "\\u0000"}}',
        b'{"a": ' * 100 + b'"x"' + b"}" * 100,
        b"[" * 100_000 + b"]" * 100_000,
        b"<Request><EventName>TaskFinish</EventName></Request>",
    ],
    ids=["empty", "text", "array", "bool", "key", "control", "deep", "very-deep", "wrong-root"],
)
def test_refused_bodies(body: bytes) -> None:
    with pytest.raises(CallbackRejected) as caught:
        parse_callback(body)
    assert caught.value.status == 400


@pytest.mark.parametrize(
    "change",
    [
        {"EventName": "WorkflowFinish"},
        {"JobsDetail": [dict(SAMPLE["JobsDetail"], JobId=f"j{i:032d}") for i in range(11)]},  # type: ignore[arg-type]
        {"JobsDetail": dict(SAMPLE["JobsDetail"], JobId="j1,j2")},  # type: ignore[arg-type]
        {"JobsDetail": dict(SAMPLE["JobsDetail"], State="")},  # type: ignore[arg-type]
        {"JobsDetail": dict(SAMPLE["JobsDetail"], Input={"Region": "ap-beijing"})},  # type: ignore[arg-type]
    ],
    ids=["event", "too-many", "job-id", "no-state", "other-region"],
)
def test_callbacks_that_are_not_for_this_url(change: dict[str, object]) -> None:
    with pytest.raises(CallbackRejected):
        check_callback(parsed(dict(SAMPLE, **change)), TARGET)
