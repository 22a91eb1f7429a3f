"""The official Python SDK (cos-python-sdk-v5), pointed at the emulator by configuration only.

`CosConfig(Scheme="http", Proxies={"http": emulator.url})` makes `requests` send every call to
the emulator as an HTTP proxy, in absolute form (`POST http://<bucket>.ci.<region>.myqcloud.com/
jobs`) with the real Host header, which the SDK also signs. The SDK code is untouched, so this
proves the emulator accepts what a real client sends (its Content-Type-less XML bodies, its
`?cancel` signed as nothing, its `%2C`-joined ids) and that the SDK parses what the emulator
answers. The SDK is synchronous, so each call runs in a worker thread while the emulator serves
in the test's loop.

SDK 1.9.44 has no wrapper for `POST /mediainfo` (GenerateMediaInfo); `get_media_info` is the
COS-host videoinfo call.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from qcloud_cos import CosConfig, CosS3Client, CosServiceError

from ci_emulator.server import RunningEmulator
from tests.ci_emulator.conftest import (
    BUCKET,
    DONE,
    MISSING_KEY,
    REGION,
    SECRET_ID,
    SECRET_KEY,
    TEMP_SECRET_ID,
    TEMP_SECRET_KEY,
    TOKEN,
    VIDEO_HEIGHT,
    VIDEO_KEY,
    VIDEO_WIDTH,
)

PROXY_VARIABLES = ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "NO_PROXY")


@pytest.fixture(autouse=True)
def clean_proxy_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    # requests merges proxy variables from the environment; a NO_PROXY covering the CI domain
    # would send the SDK to the real internet instead of the emulator.
    for name in PROXY_VARIABLES:
        monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv(name.lower(), raising=False)


def sdk_client(emu: RunningEmulator, *, temporary: bool = False) -> CosS3Client:
    config = CosConfig(
        Region=REGION,
        SecretId=TEMP_SECRET_ID if temporary else SECRET_ID,
        SecretKey=TEMP_SECRET_KEY if temporary else SECRET_KEY,
        Token=TOKEN if temporary else None,
        Scheme="http",
        Proxies={"http": emu.url},
    )
    # retry=0: a failure must surface at once, not after the SDK's sleep(1), sleep(2), ...
    return CosS3Client(config, retry=0)


async def run(function: Any, /, **kwargs: Any) -> Any:
    return await asyncio.to_thread(function, **kwargs)


MEDIA_INFO_JOB = {"Tag": "MediaInfo", "Input": {"Object": VIDEO_KEY}}


async def test_sdk_submits_describes_and_lists_a_media_info_job(emu: RunningEmulator) -> None:
    client = sdk_client(emu)
    created = await run(client.ci_create_media_jobs, Bucket=BUCKET, Jobs=MEDIA_INFO_JOB)
    detail = created["JobsDetail"][0]
    assert detail["State"] == "Submitted"
    assert detail["Tag"] == "MediaInfo"
    job_id = detail["JobId"]

    await emu.state.wait_for_job_state(job_id, DONE, timeout=10)
    described = await run(client.ci_get_media_jobs, Bucket=BUCKET, JobIDs=job_id)
    job = described["JobsDetail"][0]
    assert job["State"] == "Success"
    video = job["Operation"]["MediaInfo"]["Stream"]["Video"]
    assert (video["CodecName"], video["Width"], video["Height"]) == (
        "h264",
        str(VIDEO_WIDTH),
        str(VIDEO_HEIGHT),
    )

    listed = await run(client.ci_list_media_jobs, Bucket=BUCKET, Tag="MediaInfo", Size=10)
    assert [entry["JobId"] for entry in listed["JobsDetail"]] == [job_id]
    assert listed["NextToken"] is None  # xml_to_dict's spelling of <NextToken></NextToken>


async def test_sdk_describes_several_ids_joined_by_commas(emu: RunningEmulator) -> None:
    client = sdk_client(emu)
    emu.state.pause_scheduling()
    first, second = [
        (await run(client.ci_create_media_jobs, Bucket=BUCKET, Jobs=MEDIA_INFO_JOB))["JobsDetail"][
            0
        ]["JobId"]
        for _ in range(2)
    ]
    described = await run(
        client.ci_get_media_jobs, Bucket=BUCKET, JobIDs=f"{second},{first},jnotthere"
    )
    assert [job["JobId"] for job in described["JobsDetail"]] == [second, first]
    assert described["NonExistJobIds"] == "jnotthere"


async def test_sdk_pages_a_list(emu: RunningEmulator) -> None:
    client = sdk_client(emu)
    emu.state.pause_scheduling()
    for _ in range(3):
        await run(client.ci_create_media_jobs, Bucket=BUCKET, Jobs=MEDIA_INFO_JOB)
    first = await run(client.ci_list_media_jobs, Bucket=BUCKET, Tag="MediaInfo", Size=2)
    assert len(first["JobsDetail"]) == 2 and first["NextToken"]
    second = await run(
        client.ci_list_media_jobs,
        Bucket=BUCKET,
        Tag="MediaInfo",
        Size=2,
        NextToken=first["NextToken"],
        States="Submitted",
    )
    assert len(second["JobsDetail"]) == 1 and second["NextToken"] is None


async def test_sdk_cancels_a_submitted_job(emu: RunningEmulator) -> None:
    client = sdk_client(emu)
    emu.state.pause_scheduling()
    created = await run(client.ci_create_media_jobs, Bucket=BUCKET, Jobs=MEDIA_INFO_JOB)
    job_id = created["JobsDetail"][0]["JobId"]
    assert await run(client.ci_cancel_jobs, Bucket=BUCKET, JobID=job_id) == ""
    assert emu.state.jobs[job_id].state == "Cancel"


async def test_sdk_gets_video_info_from_the_cos_host(emu: RunningEmulator) -> None:
    client = sdk_client(emu)
    info = await run(client.get_media_info, Bucket=BUCKET, Key=VIDEO_KEY)
    video = info["MediaInfo"][0]["Stream"]["Video"]
    assert video["CodecName"] == "h264"
    assert video["Width"] == str(VIDEO_WIDTH)


async def test_sdk_gets_video_info_for_a_key_needing_encoding(emu: RunningEmulator) -> None:
    client = sdk_client(emu)
    info = await run(client.get_media_info, Bucket=BUCKET, Key="input/视频 a+b.mp4")
    assert info["MediaInfo"][0]["Format"]["NumStream"] == "2"


async def test_sdk_sees_ci_error_codes(emu: RunningEmulator) -> None:
    client = sdk_client(emu)
    with pytest.raises(CosServiceError) as missing:
        await run(client.get_media_info, Bucket=BUCKET, Key=MISSING_KEY)
    assert missing.value.get_status_code() == 404
    assert missing.value.get_error_code() == "NoSuchKey"

    bad_job = {"Tag": "MediaInfo", "Input": {"Object": VIDEO_KEY}, "QueueId": "pnotaqueue"}
    with pytest.raises(CosServiceError) as invalid:
        await run(client.ci_create_media_jobs, Bucket=BUCKET, Jobs=bad_job)
    assert invalid.value.get_status_code() == 400
    # The SDK digests an error only when the body also has <Resource>, which CI's job API
    # (and so the emulator's CI host) leaves out: the code reads "Unknown", the raw body is CI's.
    assert invalid.value.get_error_code() == "Unknown"
    assert "<Code>InvalidArgument</Code>" in invalid.value.get_origin_msg()


async def test_sdk_with_temporary_credentials_sends_and_signs_the_token(
    emu: RunningEmulator,
) -> None:
    client = sdk_client(emu, temporary=True)
    created = await run(client.ci_create_media_jobs, Bucket=BUCKET, Jobs=MEDIA_INFO_JOB)
    assert created["JobsDetail"][0]["State"] == "Submitted"


async def test_sdk_with_a_wrong_secret_key_is_refused(emu: RunningEmulator) -> None:
    config = CosConfig(
        Region=REGION,
        SecretId=SECRET_ID,
        SecretKey="not-the-key",
        Scheme="http",
        Proxies={"http": emu.url},
    )
    with pytest.raises(CosServiceError) as refused:
        await run(CosS3Client(config, retry=0).ci_list_media_jobs, Bucket=BUCKET, Tag="MediaInfo")
    assert refused.value.get_status_code() == 403


async def test_sdk_describes_media_queues(emu: RunningEmulator) -> None:
    client = sdk_client(emu)
    extra = emu.state.add_queue(BUCKET, "extra")
    listed = await run(client.ci_get_media_queue, Bucket=BUCKET)
    default_id = emu.state.default_queue[BUCKET]
    assert [queue["QueueId"] for queue in listed["QueueList"]] == [default_id, extra.queue_id]
    assert listed["TotalCount"] == "2"
    assert listed["QueueList"][0]["NotifyConfig"]["State"] == "Off"

    by_id = await run(
        client.ci_get_media_queue, Bucket=BUCKET, QueueIds=f"{extra.queue_id},pnothere"
    )
    assert [queue["QueueId"] for queue in by_id["QueueList"]] == [extra.queue_id]
    assert by_id["NonExistPIDs"] == {"QueueID": "pnothere"}

    paged = await run(client.ci_get_media_queue, Bucket=BUCKET, PageNumber="2", PageSize="1")
    assert [queue["QueueId"] for queue in paged["QueueList"]] == [extra.queue_id]


async def test_sdk_updates_a_media_queue(emu: RunningEmulator) -> None:
    client = sdk_client(emu)
    queue_id = emu.state.default_queue[BUCKET]
    request = {
        "Name": "sdk-queue",
        "QueueID": queue_id,
        "State": "Paused",
        "NotifyConfig": {
            "Url": "http://127.0.0.1:9/cb",
            "Type": "Url",
            "Event": "TaskFinish",
            "State": "On",
            "ResultFormat": "JSON",
        },
    }
    updated = await run(
        client.ci_update_media_queue, Bucket=BUCKET, QueueId=queue_id, Request=request
    )
    queue = updated["Queue"][0]
    assert (queue["QueueId"], queue["Name"], queue["State"]) == (queue_id, "sdk-queue", "Paused")
    assert queue["NotifyConfig"]["ResultFormat"] == "JSON"
    assert updated["RequestId"]
    assert emu.state.queues[queue_id].state == "Paused"
    paused = await run(client.ci_get_media_queue, Bucket=BUCKET, State="Paused")
    assert [entry["QueueId"] for entry in paused["QueueList"]] == [queue_id]
