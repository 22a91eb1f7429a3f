"""Media jobs: submit, run, describe and cancel, with the emulator's job controls (no sleeps)."""

from __future__ import annotations

import re
from typing import Any

import pytest

from ci_emulator.queues import QueueState
from ci_emulator.server import RunningEmulator
from tests.ci_emulator.conftest import (
    BUCKET,
    DONE,
    MISSING_KEY,
    OTHER_BUCKET,
    OTHER_REGION,
    REGION,
    TEXT_KEY,
    VIDEO_HEIGHT,
    VIDEO_KEY,
    VIDEO_WIDTH,
    SignedClient,
    pairs,
    submit_body,
)

CI_TIME = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\+0800$")
SUBMIT_ORDER = [
    "Code", "Message", "JobId", "State", "CreationTime", "StartTime", "EndTime", "QueueId", "Tag",
    "Input", "Operation",
]  # fmt: skip
DETAIL_ORDER = [
    "Code", "CreationTime", "EndTime", "Input", "JobId", "Message", "Operation", "Progress",
    "QueueId", "StartTime", "State", "Tag",
]  # fmt: skip
"""A finished job's describe layout; `Progress` is absent until the job starts."""


def default_queue(emu: RunningEmulator) -> str:
    return emu.state.default_queue[BUCKET]


# ---- submit ----------------------------------------------------------------------------------


async def test_submit_answers_like_ci(client: SignedClient, emu: RunningEmulator) -> None:
    emu.state.pause_scheduling()
    reply = (await client.submit(UserData="This is my data.", JobLevel="1")).ok()
    assert reply.headers["Content-Type"] == "application/xml"
    assert reply.headers["Server"] == "tencent-ci"
    assert reply.headers["x-ci-request-id"]
    detail = reply.xml().find("JobsDetail")
    assert detail is not None
    assert [child.tag for child in detail] == SUBMIT_ORDER
    assert re.fullmatch(r"j[0-9a-f]{32}", detail.findtext("JobId") or "")
    assert detail.findtext("State") == "Submitted"
    assert (detail.findtext("Code"), detail.findtext("Message")) == ("Success", "Success")
    assert CI_TIME.match(detail.findtext("CreationTime") or "")
    assert b"<StartTime></StartTime><EndTime></EndTime>" in reply.body
    assert detail.findtext("QueueId") == default_queue(emu)
    assert detail.findtext("Tag") == "MediaInfo"
    assert [tag for tag, _ in pairs(detail, "Input")] == ["Object"]
    assert detail.findtext("Input/Object") == VIDEO_KEY
    assert pairs(detail, "Operation") == [
        ("UserData", "This is my data."),
        ("JobLevel", "1"),
    ]
    assert emu.state.jobs_created == 1


async def test_a_job_runs_to_success_with_real_media_info(
    client: SignedClient, emu: RunningEmulator
) -> None:
    job_id = await client.submit_ok(UserData="mine")
    await emu.state.wait_for_job_state(job_id, DONE, timeout=10)
    reply = (await client.describe(job_id)).ok()
    detail = reply.xml().find("JobsDetail")
    assert detail is not None
    assert [child.tag for child in detail] == DETAIL_ORDER
    assert detail.findtext("State") == "Success"
    assert detail.findtext("Progress") == "100"
    assert detail.findtext("Code") == "Success"
    assert b"<Message/>" in reply.body
    assert CI_TIME.match(detail.findtext("StartTime") or "")
    assert CI_TIME.match(detail.findtext("EndTime") or "")
    assert pairs(detail, "Input") == [
        ("BucketId", BUCKET),
        ("Object", VIDEO_KEY),
        ("Region", REGION),
    ]
    assert [tag for tag, _ in pairs(detail, "Operation")] == ["JobLevel", "MediaInfo", "UserData"]
    video = detail.find("Operation/MediaInfo/Stream/Video")
    assert video is not None
    assert video.findtext("CodecName") == "h264"
    assert (video.findtext("Width"), video.findtext("Height")) == (
        str(VIDEO_WIDTH),
        str(VIDEO_HEIGHT),
    )
    assert detail.findtext("Operation/MediaInfo/Stream/Audio/CodecName") == "aac"
    assert b"<Subtitle/>" in reply.body


@pytest.mark.parametrize(
    ("key", "code"), [(MISSING_KEY, "ResourceNotFound"), (TEXT_KEY, "InvalidMedia")]
)
async def test_a_job_on_a_missing_or_non_media_object_fails_with_a_code(
    client: SignedClient, emu: RunningEmulator, key: str, code: str
) -> None:
    job_id = await client.submit_ok(key)
    job = await emu.state.wait_for_job_state(job_id, DONE, timeout=10)
    assert job.state == "Failed"
    detail = (await client.describe(job_id)).ok().xml().find("JobsDetail")
    assert detail is not None
    assert detail.findtext("State") == "Failed"
    assert detail.findtext("Code") == code
    assert detail.findtext("Message")
    assert detail.find("Operation/MediaInfo") is None


SUBMIT_REFUSALS: list[tuple[str, bytes, int, str]] = [
    ("no Tag", b"<Request><Input><Object>a.mp4</Object></Input></Request>", 400, "InvalidArgument"),
    ("unknown Tag", submit_body().replace(b"MediaInfo", b"Nonsense"), 400, "InvalidArgument"),
    ("Transcode without its Operation", submit_body().replace(b"MediaInfo", b"Transcode"), 400,
     "InvalidArgument"),
    ("a tag the emulator does not run", submit_body().replace(b"MediaInfo", b"Tts"), 501,
     "NotImplemented"),
    ("two Tags", submit_body().replace(b"<Input>", b"<Tag>MediaInfo</Tag><Input>"), 400,
     "InvalidArgument"),
    ("no Input", b"<Request><Tag>MediaInfo</Tag></Request>", 400, "InvalidArgument"),
    ("no Object", b"<Request><Tag>MediaInfo</Tag><Input/></Request>", 400, "InvalidArgument"),
    ("empty Object", submit_body(""), 400, "InvalidArgument"),
    ("Object escapes", submit_body("../outside.mp4"), 400, "InvalidArgument"),
    ("Object absolute", submit_body("/etc/passwd"), 400, "InvalidArgument"),
    ("Object with a dot segment", submit_body("input/./a.mp4"), 400, "InvalidArgument"),
    ("UserData too long", submit_body(UserData="x" * 1025), 400, "InvalidArgument"),
    ("UserData not ASCII", submit_body(UserData="café"), 400, "InvalidArgument"),
    ("UserData control char", submit_body(UserData="a&#9;b"), 400, "InvalidArgument"),
    ("JobLevel 3", submit_body(JobLevel="3"), 400, "InvalidArgument"),
    ("JobLevel word", submit_body(JobLevel="high"), 400, "InvalidArgument"),
    ("CallBackFormat", submit_body(CallBackFormat="YAML"), 400, "InvalidArgument"),
    ("CallBackType unknown", submit_body(CallBackType="RabbitMQ"), 400, "InvalidArgument"),
    ("Kafka without config", submit_body(CallBackType="Kafka"), 400, "InvalidArgument"),
    ("Kafka without a topic", submit_body(
        CallBackType="Kafka",
        CallBackKafkaConfig="<Region>ap-guangzhou</Region><InstanceId>ckafka-1</InstanceId>",
    ), 400, "InvalidArgument"),
    ("TDMQ without config", submit_body(CallBackType="TDMQ"), 400, "InvalidArgument"),
    ("TDMQ bad region", submit_body(
        CallBackType="TDMQ",
        CallBackMqConfig="<MqRegion>xx</MqRegion><MqMode>Queue</MqMode><MqName>t</MqName>",
    ), 400, "InvalidArgument"),
    ("TDMQ bad mode", submit_body(
        CallBackType="TDMQ",
        CallBackMqConfig="<MqRegion>gz</MqRegion><MqMode>Fanout</MqMode><MqName>t</MqName>",
    ), 400, "InvalidArgument"),
    ("TDMQ no name", submit_body(
        CallBackType="TDMQ", CallBackMqConfig="<MqRegion>gz</MqRegion><MqMode>Topic</MqMode>"
    ), 400, "InvalidArgument"),
    ("unknown QueueId", submit_body(QueueId="p" + "0" * 32), 400, "InvalidArgument"),
    ("two Operations", submit_body().replace(
        b"</Request>", b"<Operation/><Operation/></Request>"
    ), 501, "NotImplemented"),
    ("Tag holds elements", submit_body().replace(
        b"<Tag>MediaInfo</Tag>", b"<Tag><X>MediaInfo</X></Tag>"
    ), 400, "InvalidArgument"),
]  # fmt: skip


@pytest.mark.parametrize(
    ("case", "body", "status", "code"), SUBMIT_REFUSALS, ids=[r[0] for r in SUBMIT_REFUSALS]
)
async def test_submit_refusals(
    client: SignedClient, emu: RunningEmulator, case: str, body: bytes, status: int, code: str
) -> None:
    reply = await client.send("POST", "/jobs", body=body)
    assert (reply.status, reply.code) == (status, code), reply.body
    assert reply.xml().findtext("Message")
    assert emu.state.jobs_created == 0
    (await client.submit()).ok()


SUBMIT_ACCEPTED: list[tuple[str, dict[str, str]]] = [
    ("UserData of 1024", {"UserData": "x" * 1024}),
    ("UserData with spaces kept", {"UserData": " padded  text "}),
    ("JobLevel 2", {"JobLevel": "2"}),
    ("empty JobLevel", {"JobLevel": ""}),
    ("callback url", {"CallBack": "http://callback.demo.com", "CallBackFormat": "JSON"}),
    ("no callback", {"CallBack": "no", "CallBackType": "Url"}),
    ("TDMQ", {
        "CallBackType": "TDMQ",
        "CallBackMqConfig": "<MqRegion>gz</MqRegion><MqMode>Topic</MqMode><MqName>t</MqName>",
    }),
    ("TDMQ default mode", {
        "CallBackType": "TDMQ", "CallBackMqConfig": "<MqRegion>hk</MqRegion><MqName>t</MqName>"
    }),
    ("empty QueueId", {"QueueId": ""}),
    ("unknown node ignored", {"SomethingNew": "1"}),
]  # fmt: skip


@pytest.mark.parametrize(("case", "extra"), SUBMIT_ACCEPTED, ids=[r[0] for r in SUBMIT_ACCEPTED])
async def test_submit_accepts(client: SignedClient, case: str, extra: dict[str, str]) -> None:
    reply = (await client.submit(**extra)).ok()
    if "UserData" in extra:
        assert reply.xml().findtext("JobsDetail/Operation/UserData") == extra["UserData"]


async def test_submit_with_the_queue_id_given(client: SignedClient, emu: RunningEmulator) -> None:
    reply = (await client.submit(QueueId=default_queue(emu))).ok()
    assert reply.xml().findtext("JobsDetail/QueueId") == default_queue(emu)


async def test_submit_to_a_paused_queue_is_queue_paused(
    client: SignedClient, emu: RunningEmulator
) -> None:
    emu.state.set_queue_state(default_queue(emu), QueueState.PAUSED)
    reply = await client.submit()
    assert (reply.status, reply.code) == (403, "QueuePaused")
    emu.state.set_queue_state(default_queue(emu), QueueState.ACTIVE)
    (await client.submit()).ok()


async def test_submit_to_a_full_queue_is_queue_saturated(
    client: SignedClient, emu: RunningEmulator
) -> None:
    emu.state.pause_scheduling()
    emu.state.queues[default_queue(emu)].max_size = 2
    await client.submit_ok()
    await client.submit_ok()
    reply = await client.submit()
    assert (reply.status, reply.code) == (403, "QueueSaturated")


# ---- scheduling controls -----------------------------------------------------------------------


async def test_paused_scheduling_keeps_jobs_submitted(
    client: SignedClient, emu: RunningEmulator
) -> None:
    emu.state.pause_scheduling()
    job_id = await client.submit_ok()
    with pytest.raises(TimeoutError):
        await emu.state.wait_for_job_state(job_id, {"Running"}, timeout=0.2)
    assert emu.state.jobs[job_id].state == "Submitted"
    emu.state.resume_scheduling()
    job = await emu.state.wait_for_job_state(job_id, DONE, timeout=10)
    assert job.state == "Success"


async def test_held_jobs_stay_running_until_released(
    client: SignedClient, emu: RunningEmulator
) -> None:
    emu.state.hold_running()
    job_id = await client.submit_ok()
    await emu.state.wait_for_job_state(job_id, {"Running"}, timeout=10)
    detail = (await client.describe(job_id)).ok().xml().find("JobsDetail")
    assert detail is not None
    assert detail.findtext("State") == "Running"
    assert CI_TIME.match(detail.findtext("StartTime") or "")
    assert detail.findtext("EndTime") == ""
    emu.state.release_running()
    assert (await emu.state.wait_for_job_state(job_id, DONE, timeout=10)).state == "Success"


async def test_higher_job_levels_start_first(client: SignedClient, emu: RunningEmulator) -> None:
    emu.state.pause_scheduling()
    emu.state.queues[default_queue(emu)].max_concurrent = 1
    levels = ["0", "1", "2", "0", "2", "1"]
    ids = [await client.submit_ok(JobLevel=level) for level in levels]
    emu.state.resume_scheduling()
    for job_id in ids:
        await emu.state.wait_for_job_state(job_id, DONE, timeout=10)
    ranked = zip([-int(level) for level in levels], range(len(ids)), ids, strict=True)
    expected = [job_id for _, _, job_id in sorted(ranked)]
    assert emu.state.start_order == expected


async def test_a_queue_runs_at_most_max_concurrent_jobs(
    client: SignedClient, emu: RunningEmulator
) -> None:
    emu.state.pause_scheduling()
    emu.state.hold_running()
    emu.state.queues[default_queue(emu)].max_concurrent = 2
    ids = [await client.submit_ok() for _ in range(4)]
    emu.state.resume_scheduling()
    await emu.state.wait_for_job_state(ids[0], {"Running"}, timeout=10)
    await emu.state.wait_for_job_state(ids[1], {"Running"}, timeout=10)
    # Both started in one scheduling pass, which also left the rest waiting.
    assert [emu.state.jobs[i].state for i in ids[2:]] == ["Submitted", "Submitted"]
    emu.state.release_running()
    for job_id in ids:
        await emu.state.wait_for_job_state(job_id, DONE, timeout=10)
    assert emu.state.start_order == ids


async def test_wait_for_an_unknown_job_is_a_key_error(emu: RunningEmulator) -> None:
    with pytest.raises(KeyError):
        await emu.state.wait_for_job_state("jnothere", DONE, timeout=1)


# ---- describe ----------------------------------------------------------------------------------


async def test_describe_several_in_request_order_with_unknown_ids(
    client: SignedClient, emu: RunningEmulator
) -> None:
    emu.state.pause_scheduling()
    first, second = await client.submit_ok(), await client.submit_ok()
    # The wire carries %2C; the signature covers the decoded ",".
    reply = (await client.describe(second, "jmissing1", first, "jmissing2", second)).ok()
    root = reply.xml()
    assert [d.findtext("JobId") for d in root.findall("JobsDetail")] == [second, first]
    assert [e.text for e in root.findall("NonExistJobIds")] == ["jmissing1", "jmissing2"]
    assert [c.tag for c in root] == ["JobsDetail", "JobsDetail", "NonExistJobIds", "NonExistJobIds"]


async def test_describe_only_unknown_ids_is_still_200(client: SignedClient) -> None:
    root = (await client.describe("jnothere")).ok().xml()
    assert pairs(root) == [("NonExistJobIds", "jnothere")]


async def test_describe_more_than_ten_ids_is_invalid(client: SignedClient) -> None:
    reply = await client.describe(*[f"j{i}" for i in range(11)])
    assert (reply.status, reply.code) == (400, "InvalidArgument")
    (await client.describe(*[f"j{i}" for i in range(10)])).ok()


async def test_describe_without_an_id_is_invalid(client: SignedClient) -> None:
    reply = await client.send("GET", "/jobs/")
    assert (reply.status, reply.code) == (400, "InvalidArgument")


async def test_jobs_of_another_bucket_do_not_exist_here(
    client: SignedClient, emu: RunningEmulator
) -> None:
    emu.state.pause_scheduling()
    job_id = await client.submit_ok()
    other = _other_bucket(client)
    root = (await other.describe(job_id)).ok().xml()
    assert root.findtext("NonExistJobIds") == job_id
    reply = await other.cancel(job_id)
    assert (reply.status, reply.code) == (400, "InvalidArgument")
    assert (await other.list_jobs()).ok().xml().findall("JobsDetail") == []


def _other_bucket(client: SignedClient) -> SignedClient:
    from dataclasses import replace

    return replace(client, bucket=OTHER_BUCKET, region=OTHER_REGION)


# ---- cancel ------------------------------------------------------------------------------------


async def test_cancel_a_submitted_job(client: SignedClient, emu: RunningEmulator) -> None:
    emu.state.pause_scheduling()
    job_id = await client.submit_ok()
    reply = (await client.cancel(job_id)).ok()
    assert reply.body == b""
    assert reply.headers["Content-Length"] == "0"
    assert reply.headers["x-ci-request-id"]
    detail = (await client.describe(job_id)).ok().xml().find("JobsDetail")
    assert detail is not None
    assert detail.findtext("State") == "Cancel"
    assert CI_TIME.match(detail.findtext("EndTime") or "")
    assert detail.findtext("StartTime") == ""
    # Cancelling again succeeds (a retried cancel), and the job never starts.
    (await client.cancel(job_id)).ok()
    emu.state.resume_scheduling()
    other = await client.submit_ok()
    await emu.state.wait_for_job_state(other, DONE, timeout=10)
    assert emu.state.jobs[job_id].state == "Cancel"
    assert job_id not in emu.state.start_order


async def test_cancel_signing_cancel_as_a_param_is_accepted(
    client: SignedClient, emu: RunningEmulator
) -> None:
    emu.state.pause_scheduling()
    job_id = await client.submit_ok()
    reply = await client.send(
        "PUT", f"/jobs/{job_id}", params={"cancel": None}, signed_params={"cancel": ""}
    )
    reply.ok()


async def test_cancel_as_the_sdk_signs_it_without_params(
    client: SignedClient, emu: RunningEmulator
) -> None:
    emu.state.pause_scheduling()
    job_id = await client.submit_ok()
    reply = await client.send("PUT", f"/jobs/{job_id}", params={"cancel": None}, signed_params={})
    reply.ok()


async def test_cancel_a_running_job_is_refused(client: SignedClient, emu: RunningEmulator) -> None:
    emu.state.hold_running()
    job_id = await client.submit_ok()
    await emu.state.wait_for_job_state(job_id, {"Running"}, timeout=10)
    reply = await client.cancel(job_id)
    assert (reply.status, reply.code) == (400, "InvalidArgument")
    assert "Running" in (reply.xml().findtext("Message") or "")
    emu.state.release_running()
    job = await emu.state.wait_for_job_state(job_id, DONE, timeout=10)
    assert job.state == "Success"
    reply = await client.cancel(job_id)
    assert (reply.status, reply.code) == (400, "InvalidArgument")


@pytest.mark.parametrize(
    ("path", "params"),
    [
        ("/jobs/jnothere", {"cancel": None}),
        ("/jobs/j1,j2", {"cancel": None}),
        ("/jobs/JOB", {}),
    ],
    ids=["unknown id", "two ids", "no cancel flag"],
)
async def test_cancel_refusals(
    client: SignedClient, emu: RunningEmulator, path: str, params: dict[str, Any]
) -> None:
    emu.state.pause_scheduling()
    job_id = await client.submit_ok()
    reply = await client.send("PUT", path.replace("JOB", job_id), params=params)
    assert (reply.status, reply.code) == (400, "InvalidArgument")
    assert emu.state.jobs[job_id].state == "Submitted"


async def test_a_namespaced_body_with_comments_is_read_like_a_plain_one(
    client: SignedClient, emu: RunningEmulator
) -> None:
    body = (
        b'<Request xmlns="http://example.com/ci"><!-- a client comment -->'
        b"<Tag>MediaInfo</Tag><Input><Object>" + VIDEO_KEY.encode() + b"</Object></Input>"
        b"<Operation><UserData>ns</UserData><JobLevel>2</JobLevel></Operation></Request>"
    )
    reply = (await client.send("POST", "/jobs", body=body)).ok()
    job = emu.state.jobs[reply.xml().findtext("JobsDetail/JobId") or ""]
    assert (job.spec.object_key, job.spec.user_data, job.spec.job_level) == (VIDEO_KEY, "ns", 2)
