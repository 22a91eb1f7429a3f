"""Transcode jobs run for real in worker processes: outputs probed independently, MediaResult,
Progress, failures like CI's, cancel of a running job, MaxConcurrent, callbacks, listing and
faults. The input is the session's 1 s 320x240 H.264/AAC clip (25 frames)."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import av
import pytest
from aiohttp import web
from lxml import etree

from ci_emulator.faults import FaultSpec
from ci_emulator.server import RunningEmulator
from tests.ci_emulator.conftest import BUCKET, DONE, MISSING_KEY, TEXT_KEY, SignedClient
from tests.ci_emulator.media_support import (
    JOB_TIMEOUT_S,
    leftovers,
    md5_of,
    md5s,
    media_body,
    output_keys,
    output_xml,
    probe_file,
    refusal,
    run_job,
    submit,
    succeeded,
)
from tests.fixtures.servers import serve_app


def transcode(
    container: str, video: str = "", audio: str = "", extra: str = "", key: str = "out/v.mp4"
) -> str:
    return (
        f"<Transcode><Container><Format>{container}</Format></Container>{video}{audio}{extra}"
        f"</Transcode>{output_xml(key)}"
    )


H264 = "<Video><Codec>H.264</Codec><Width>160</Width></Video>"
VP9 = "<Video><Codec>VP9</Codec></Video>"


def video(inner: str) -> str:
    return f"<Video>{inner}</Video>"


AAC = "<Audio><Codec>aac</Codec></Audio>"


async def test_mp4_with_one_side_given_keeps_the_aspect_ratio(
    client: SignedClient, emu: RunningEmulator
) -> None:
    detail = succeeded(
        await run_job(client, emu, media_body("Transcode", transcode("mp4", H264, AAC)))
    )
    assert output_keys(detail) == ["out/v.mp4"]
    path = emu.state.config.buckets[0].root / "out/v.mp4"
    probed = probe_file(path)
    assert (probed.video_codec, probed.width, probed.height) == ("h264", 160, 120)
    assert probed.frames == 25 and abs(probed.duration - 1.0) < 0.1
    assert probed.audio_codec == "aac"
    assert md5s(detail) == {"out/v.mp4": md5_of(path)}
    media = detail.find("Operation/MediaInfo/Stream/Video")
    assert media is not None and (media.findtext("Width"), media.findtext("Height")) == (
        "160",
        "120",
    )
    assert detail.findtext("Progress") == "100"
    # The request is echoed, results sit beside it, alphabetically as in describe answers.
    operation = [str(node.tag) for node in detail.find("Operation")]  # type: ignore[union-attr]
    assert operation == ["JobLevel", "MediaInfo", "MediaResult", "Output", "Transcode"]
    job = next(iter(emu.state.jobs.values()))
    reports = job.progress_reports
    assert reports and reports == sorted(reports) and all(0 <= p <= 99 for p in reports)
    assert leftovers(emu.state.config.buckets[0].root) == []


@pytest.mark.parametrize(
    ("container", "video", "audio", "key", "expect"),
    [
        ("webm", "<Video><Codec>VP9</Codec><Width>160</Width><Fps>10</Fps></Video>",
         "<Audio><Codec>opus</Codec></Audio>", "out/v.webm", ("vp9", 10, "opus")),
        ("flv", H264, "<Audio><Codec>mp3</Codec></Audio>", "out/v.flv", ("h264", 25, "mp3")),
        ("mkv", "<Video><Codec>H.265</Codec><Width>160</Width><Crf>30</Crf></Video>",
         "<Audio><Codec>flac</Codec></Audio>", "out/v.mkv", ("hevc", 25, "flac")),
        ("m4a", "", "<Audio><Codec>aac</Codec><Samplerate>22050</Samplerate><Channels>1</Channels>"
         "</Audio>", "out/a.m4a", (None, 0, "aac")),
        ("mp3", "", "<Audio><Codec>mp3</Codec><Bitrate>64</Bitrate></Audio>", "out/a.mp3",
         (None, 0, "mp3")),
    ],
    ids=["webm-vp9-opus", "flv", "mkv-h265-flac", "m4a-audio-only", "mp3-audio-only"],
)  # fmt: skip
async def test_containers_and_codecs(
    client: SignedClient,
    emu: RunningEmulator,
    container: str,
    video: str,
    audio: str,
    key: str,
    expect: tuple[str | None, int, str],
) -> None:
    succeeded(
        await run_job(
            client, emu, media_body("Transcode", transcode(container, video, audio, key=key))
        )
    )
    probed = probe_file(emu.state.config.buckets[0].root / key)
    assert (probed.video_codec, probed.frames, probed.audio_codec) == expect
    if container == "m4a":
        assert (probed.sample_rate, probed.channels) == (22050, 1)


async def test_hls_writes_a_playlist_and_its_segments(
    client: SignedClient, emu: RunningEmulator
) -> None:
    operation = transcode(
        "hls",
        "<Video><Codec>H.264</Codec><Height>144</Height></Video>",
        AAC,
        key="hls/${InputName}.m3u8",
    ).replace("</Format>", "</Format><ClipConfig><Duration>0.4</Duration></ClipConfig>")
    detail = succeeded(await run_job(client, emu, media_body("Transcode", operation)))
    keys = output_keys(detail)
    assert keys[0] == "hls/a.m3u8" and len(keys) >= 2
    assert all(key.startswith("hls/a-") and key.endswith(".ts") for key in keys[1:])
    root = emu.state.config.buckets[0].root
    playlist = (root / "hls/a.m3u8").read_text()
    assert "#EXT-X-ENDLIST" in playlist
    assert [line for line in playlist.splitlines() if line.endswith(".ts")] == [
        key.rsplit("/", 1)[1] for key in keys[1:]
    ]
    segments = [probe_file(root / key) for key in keys[1:]]
    assert sum(segment.frames for segment in segments) == 25
    assert {(s.video_codec, s.height) for s in segments} == {("h264", 144)}


async def test_long_short_mode_time_interval_fps_and_removed_audio(
    client: SignedClient, emu: RunningEmulator
) -> None:
    video = (
        "<Video><Codec>H.264</Codec><Width>192</Width><Height>128</Height>"
        "<LongShortMode>true</LongShortMode><Fps>10</Fps><Bitrate>200</Bitrate></Video>"
    )
    extra = "<TimeInterval><Start>0.2</Start><Duration>0.5</Duration></TimeInterval>"
    operation = transcode("mp4", video, "<Audio><Remove>true</Remove></Audio>", extra)
    succeeded(await run_job(client, emu, media_body("Transcode", operation)))
    probed = probe_file(emu.state.config.buckets[0].root / "out/v.mp4")
    assert (probed.width, probed.height, probed.audio_codec) == (192, 128, None)
    assert probed.frames == 5  # 0.5 s at 10 fps


async def test_removing_the_video_leaves_audio_only(
    client: SignedClient, emu: RunningEmulator
) -> None:
    operation = transcode("mp4", "", AAC)  # no Video node: the video stream is removed
    succeeded(await run_job(client, emu, media_body("Transcode", operation)))
    probed = probe_file(emu.state.config.buckets[0].root / "out/v.mp4")
    assert (probed.video_codec, probed.audio_codec) == (None, "aac")


@pytest.mark.parametrize(
    ("key", "operation", "code"),
    [
        (MISSING_KEY, transcode("mp4", H264, AAC), "ResourceNotFound"),
        (TEXT_KEY, transcode("mp4", H264, AAC), "InvalidMedia"),
        ("input/a.mp4", transcode("flv", VP9, AAC), "InvalidArgument"),
        ("input/a.mp4", transcode("webm", VP9, AAC), "InvalidArgument"),
    ],
    ids=["missing-object", "not-media", "vp9-in-flv", "aac-in-webm"],
)  # fmt: skip
async def test_jobs_fail_like_ci_and_leave_nothing_behind(
    client: SignedClient, emu: RunningEmulator, key: str, operation: str, code: str
) -> None:
    detail = await run_job(client, emu, media_body("Transcode", operation, key=key))
    assert (detail.findtext("State"), detail.findtext("Code")) == ("Failed", code)
    assert detail.findtext("Message")
    assert detail.find("Operation/MediaResult") is None
    root = emu.state.config.buckets[0].root
    assert not (root / "out").exists()
    assert leftovers(root) == []


REFUSALS = [
    ("no Operation", b"<Request><Tag>Transcode</Tag><Input><Object>input/a.mp4</Object></Input>"
     b"</Request>", 400, "InvalidArgument"),
    ("no Transcode", media_body("Transcode", output_xml("o.mp4")), 400, "InvalidArgument"),
    ("no Container", media_body("Transcode", f"<Transcode>{H264}</Transcode>{output_xml('o.mp4')}"),
     400, "InvalidArgument"),
    ("unknown format", media_body("Transcode", transcode("avi3", H264)), 400, "InvalidArgument"),
    ("unknown codec", media_body("Transcode", transcode("mp4", video("<Codec>H.266</Codec>"))),
     400, "InvalidArgument"),
    ("odd width", media_body("Transcode", transcode("mp4", video("<Width>161</Width>"))),
     400, "InvalidArgument"),
    ("width too small", media_body("Transcode", transcode("mp4", video("<Width>64</Width>"))),
     400, "InvalidArgument"),
    ("width with two minus signs", media_body("Transcode", transcode("mp4", video(
        "<Width>--200</Width>"))), 400, "InvalidArgument"),
    ("fps too high", media_body("Transcode", transcode("mp4", video("<Fps>120</Fps>"))),
     400, "InvalidArgument"),
    ("crf out of range", media_body("Transcode", transcode("mp4", video("<Crf>60</Crf>"))),
     400, "InvalidArgument"),
    ("bad sample rate", media_body("Transcode", transcode("mp4", H264,
     "<Audio><Samplerate>12345</Samplerate></Audio>")), 400, "InvalidArgument"),
    ("both streams removed", media_body("Transcode", transcode("mp4")), 400, "InvalidArgument"),
    ("no Output", media_body("Transcode", "<Transcode><Container><Format>mp4</Format></Container>"
     f"{H264}</Transcode>"), 400, "InvalidArgument"),
    ("no Output.Object", media_body("Transcode", transcode("mp4", H264).replace(
        "<Object>out/v.mp4</Object>", "")), 400, "InvalidArgument"),
    ("output bucket not bound", media_body("Transcode", transcode("mp4", H264).replace(
        BUCKET, "nobucket-1250000000")), 400, "InvalidArgument"),
    ("output region wrong", media_body("Transcode", transcode("mp4", H264).replace(
        "ap-guangzhou", "ap-beijing")), 400, "InvalidArgument"),
    ("${Number} in a one-file key", media_body("Transcode", transcode("mp4", H264,
     key="o-${Number}.mp4")), 400, "InvalidArgument"),
    ("key escapes", media_body("Transcode", transcode("mp4", H264, key="../o.mp4")), 400,
     "InvalidArgument"),
    ("four watermarks", media_body("Transcode", transcode("mp4", H264).replace(
        "<Output>", "<Watermark/>" * 4 + "<Output>")), 400, "InvalidArgument"),
    ("unknown TemplateId", media_body("Transcode", "<TemplateId>t0123</TemplateId>"
     + output_xml("o.mp4")), 400, "InvalidArgument"),
    ("an unemulated tag", media_body("VideoTag", "<VideoTag/>"), 501, "NotImplemented"),
]  # fmt: skip


@pytest.mark.parametrize(("case", "body", "status", "code"), REFUSALS, ids=[r[0] for r in REFUSALS])
async def test_submit_refusals(
    client: SignedClient, emu: RunningEmulator, case: str, body: bytes, status: int, code: str
) -> None:
    assert await refusal(client, body) == (status, code)
    assert emu.state.jobs_created == 0


async def test_cancel_stops_a_running_worker(client: SignedClient, emu: RunningEmulator) -> None:
    state = emu.state
    state.hold_workers()
    job_id = await submit(client, media_body("Transcode", transcode("mp4", H264, AAC)))
    job = state.jobs[job_id]
    await state.wait_until(lambda: bool(job.progress_reports), timeout=JOB_TIMEOUT_S)
    described = (await client.describe(job_id)).ok().xml()
    assert described.findtext("JobsDetail/State") == "Running"
    assert described.findtext("JobsDetail/Progress") == str(job.progress_reports[0])
    pid = state.workers[job_id].pid
    assert pid is not None and _alive(pid)

    (await client.cancel(job_id)).ok()
    await state.wait_until(lambda: job_id not in state.workers, timeout=JOB_TIMEOUT_S)
    assert job.state == "Cancel" and not _alive(pid)
    root = state.config.buckets[0].root
    assert not (root / "out").exists() and leftovers(root) == []
    state.release_workers()


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A killed child not yet reaped is a zombie: dead for our purpose.
    with open(f"/proc/{pid}/stat") as stat:
        return stat.read().rsplit(")", 1)[1].split()[0] != "Z"


async def test_workers_are_bounded_by_max_concurrent(
    client: SignedClient, emu: RunningEmulator
) -> None:
    state = emu.state
    queue = state.add_queue(BUCKET, "one-at-a-time", max_concurrent=1)
    state.hold_workers()
    body = media_body("Transcode", transcode("mp4", H264), QueueId=queue.queue_id)
    first, second = await submit(client, body), await submit(client, body)
    await state.wait_until(lambda: bool(state.jobs[first].progress_reports), timeout=JOB_TIMEOUT_S)
    assert state.jobs[second].state == "Submitted" and len(state.workers) == 1
    state.release_workers()
    for job_id in (first, second):
        assert (
            await state.wait_for_job_state(job_id, DONE, timeout=JOB_TIMEOUT_S)
        ).state == "Success"
    assert queue.peak_running == 1


@pytest.fixture
async def callback_sink() -> AsyncIterator[tuple[str, list[bytes]]]:
    received: list[bytes] = []

    async def handle(request: web.Request) -> web.Response:
        received.append(await request.read())
        return web.Response()

    app = web.Application()
    app.router.add_post("/cb", handle)
    async with serve_app(app) as url:
        yield f"{url}/cb", received


async def test_callback_listing_and_a_lost_submit_answer(
    client: SignedClient, emu: RunningEmulator, callback_sink: tuple[str, list[bytes]]
) -> None:
    url, received = callback_sink
    body = media_body("Transcode", transcode("mp4", H264, AAC), CallBack=url)
    emu.state.faults.set("CreateMediaJobs", FaultSpec(commit_then_drop=1.0))
    with pytest.raises(aiohttp.ServerDisconnectedError):
        await client.send("POST", "/jobs", body=body)
    emu.state.faults.clear()
    (job_id,) = emu.state.jobs
    await emu.state.wait_for_job_state(job_id, DONE, timeout=JOB_TIMEOUT_S)
    await emu.state.wait_for_callbacks(1, timeout=JOB_TIMEOUT_S)
    callback = etree.fromstring(received[0])
    assert callback.findtext("JobsDetail/Tag") == "Transcode"
    assert callback.findtext("JobsDetail/Operation/MediaResult/OutputFile/ObjectName") == "v.mp4"
    listed = (await client.list_jobs({"tag": "Transcode"})).ok().xml()
    assert [node.text for node in listed.findall("JobsDetail/JobId")] == [job_id]
    assert (await client.list_jobs({"tag": "MediaInfo"})).ok().xml().find("JobsDetail") is None


def _first_luma(path: Path, size: tuple[int, int] | None = None) -> bytes:
    with av.open(str(path)) as container:
        frame = next(container.decode(video=0))
    if size is not None:
        frame = frame.reformat(size[0], size[1], "yuv420p", interpolation="BICUBIC")
    plane = frame.planes[0]
    data = bytes(plane)
    stride = int(plane.line_size)
    return b"".join(data[row * stride : row * stride + frame.width] for row in range(frame.height))


async def test_scaled_pictures_match_ffmpeg_s_scaler(
    client: SignedClient, emu: RunningEmulator
) -> None:
    """The picture is the input's, scaled as `ffmpeg -vf scale` scales it (not shifted or
    re-ranged: FFmpeg 8's scale filter gave a mean luma difference of 16 here)."""
    succeeded(await run_job(client, emu, media_body("Transcode", transcode("mp4", H264))))
    root = emu.state.config.buckets[0].root
    output = _first_luma(root / "out/v.mp4")
    expected = _first_luma(root / "input/a.mp4", (160, 120))
    difference = sum(abs(a - b) for a, b in zip(output, expected, strict=True)) / len(output)
    assert difference < 4, difference  # what x264 at crf 23 leaves
