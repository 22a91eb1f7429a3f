"""The official Python SDK submits Transcode, Snapshot and Animation jobs, unchanged, and reads
their results: `ci_create_media_jobs` with the bodies its own demo (demo/ci_media.py) sends."""

from __future__ import annotations

from typing import Any

from ci_emulator.server import RunningEmulator
from tests.ci_emulator.conftest import BUCKET, DONE, REGION, VIDEO_KEY
from tests.ci_emulator.media_support import JOB_TIMEOUT_S, probe_file
from tests.ci_emulator.test_official_sdk import (
    clean_proxy_environment,  # noqa: F401 - an autouse fixture, used by being imported
    run,
    sdk_client,
)

OUTPUT = {"Region": REGION, "Bucket": BUCKET}


async def _create_and_wait(emu: RunningEmulator, jobs: dict[str, Any]) -> dict[str, Any]:
    client = sdk_client(emu)
    created = await run(client.ci_create_media_jobs, Bucket=BUCKET, Jobs=jobs, Lst={})
    detail = created["JobsDetail"][0]
    assert detail["State"] == "Submitted" and detail["Tag"] == jobs["Tag"]
    await emu.state.wait_for_job_state(detail["JobId"], DONE, timeout=JOB_TIMEOUT_S)
    described = await run(client.ci_get_media_jobs, Bucket=BUCKET, JobIDs=detail["JobId"])
    job: dict[str, Any] = described["JobsDetail"][0]
    assert job["State"] == "Success", job
    return job


async def test_sdk_transcode(emu: RunningEmulator) -> None:
    job = await _create_and_wait(
        emu,
        {
            "Tag": "Transcode",
            "Input": {"Object": VIDEO_KEY},
            "Operation": {
                "Transcode": {
                    "Container": {"Format": "mp4"},
                    "Video": {"Codec": "H.264", "Width": "160", "Fps": "10"},
                    "Audio": {"Codec": "aac", "Samplerate": "44100", "Channels": "2"},
                },
                "Output": {**OUTPUT, "Object": "sdk/out.mp4"},
                "UserData": "sdk transcode",
            },
        },
    )
    result = job["Operation"]["MediaResult"]["OutputFile"]
    assert (result["ObjectPrefix"], result["ObjectName"]) == ("sdk/", "out.mp4")
    assert job["Operation"]["MediaInfo"]["Stream"]["Video"]["Width"] == "160"
    assert job["Operation"]["UserData"] == "sdk transcode"
    probed = probe_file(emu.state.config.buckets[0].root / "sdk/out.mp4")
    assert (probed.width, probed.height, probed.frames) == (160, 120, 10)


async def test_sdk_snapshot(emu: RunningEmulator) -> None:
    job = await _create_and_wait(
        emu,
        {
            "Tag": "Snapshot",
            "Input": {"Object": VIDEO_KEY},
            "Operation": {
                "Snapshot": {"Mode": "Interval", "Start": "0", "TimeInterval": "0.5", "Count": "2"},
                "Output": {**OUTPUT, "Object": "sdk/snap-${Number}.jpg"},
            },
        },
    )
    assert job["Operation"]["MediaResult"]["OutputFile"]["ObjectName"] == [
        "snap-0.jpg",
        "snap-1.jpg",
    ]


async def test_sdk_animation(emu: RunningEmulator) -> None:
    await _create_and_wait(
        emu,
        {
            "Tag": "Animation",
            "Input": {"Object": VIDEO_KEY},
            "Operation": {
                "Animation": {
                    "Container": {"Format": "gif"},
                    "Video": {"Codec": "gif", "Width": "128", "AnimateFramesPerSecond": "4"},
                    "TimeInterval": {"Start": "0", "Duration": "1"},
                },
                "Output": {**OUTPUT, "Object": "sdk/anim.gif"},
            },
        },
    )
    assert probe_file(emu.state.config.buckets[0].root / "sdk/anim.gif").frames == 4
