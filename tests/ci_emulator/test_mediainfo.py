"""Synchronous media info: `POST /mediainfo` (CI host) and `?ci-process=videoinfo` (COS host)."""

from __future__ import annotations

from pathlib import Path

import pytest

from ci_emulator.server import RunningEmulator
from tests.ci_emulator.conftest import (
    BUCKET,
    DONE,
    MISSING_KEY,
    REGION,
    TEXT_KEY,
    VIDEO_HEIGHT,
    VIDEO_KEY,
    VIDEO_WIDTH,
    Reply,
    SignedClient,
)


def mediainfo_body(key: str) -> bytes:
    return f"<Request><Input><Object>{key}</Object></Input></Request>".encode()


def assert_sample_media_info(reply: Reply) -> None:
    root = reply.ok().xml()
    assert [child.tag for child in root] == ["MediaInfo"]
    video = root.find("MediaInfo/Stream/Video")
    assert video is not None
    assert video.findtext("CodecName") == "h264"
    assert video.findtext("Width") == str(VIDEO_WIDTH)
    assert video.findtext("Height") == str(VIDEO_HEIGHT)
    assert root.findtext("MediaInfo/Format/NumStream") == "2"
    assert b"<Subtitle/>" in reply.body


async def test_generate_media_info_on_the_ci_host(client: SignedClient) -> None:
    reply = await client.send("POST", "/mediainfo", body=mediainfo_body(VIDEO_KEY))
    assert_sample_media_info(reply)
    assert reply.headers["x-ci-request-id"]


async def test_video_info_on_the_cos_host(client: SignedClient) -> None:
    reply = await client.send(
        "GET", "/" + VIDEO_KEY, service="cos", params={"ci-process": "videoinfo"}
    )
    assert_sample_media_info(reply)
    assert reply.headers["x-cos-request-id"]
    assert "x-ci-request-id" not in reply.headers


async def test_video_info_key_is_percent_decoded_and_signed_decoded(client: SignedClient) -> None:
    # On the wire: /input/%E8%A7%86%E9%A2%91%20a%2Bb.mp4; signed as the UTF-8 characters.
    reply = await client.send(
        "GET", "/input/视频 a+b.mp4", service="cos", params={"ci-process": "videoinfo"}
    )
    assert_sample_media_info(reply)


async def test_video_info_accepts_a_version_id(client: SignedClient) -> None:
    reply = await client.send(
        "GET",
        "/" + VIDEO_KEY,
        service="cos",
        params={"ci-process": "videoinfo", "versionId": "MTg0NDUxNTc1NjIzMTQ1MDAwODg"},
    )
    assert_sample_media_info(reply)


@pytest.mark.parametrize(
    ("key", "status", "code"),
    [
        (MISSING_KEY, 400, "ResourceNotFound"),
        ("input", 400, "ResourceNotFound"),  # a folder is not an object
        ("../outside.mp4", 400, "ResourceNotFound"),
        ("input/../../outside.mp4", 400, "ResourceNotFound"),
        ("/etc/passwd", 400, "ResourceNotFound"),
        (TEXT_KEY, 400, "InvalidArgument"),
    ],
)
async def test_generate_media_info_refusals(
    client: SignedClient, key: str, status: int, code: str
) -> None:
    reply = await client.send("POST", "/mediainfo", body=mediainfo_body(key))
    assert (reply.status, reply.code) == (status, code), reply.body
    assert reply.xml().find("Resource") is None
    (await client.send("POST", "/mediainfo", body=mediainfo_body(VIDEO_KEY))).ok()


@pytest.mark.parametrize(
    ("path", "raw_path", "status", "code"),
    [
        ("/" + MISSING_KEY, None, 404, "NoSuchKey"),
        ("/input", None, 404, "NoSuchKey"),
        ("/input/", None, 404, "NoSuchKey"),
        ("/" + TEXT_KEY, None, 400, "InvalidArgument"),
        ("/../outside.mp4", "/../outside.mp4", 404, "NoSuchKey"),
        ("/input/../../outside.mp4", "/input/%2E%2E/%2e%2e%2Foutside.mp4", 404, "NoSuchKey"),
        ("//etc/passwd", "//etc/passwd", 404, "NoSuchKey"),
        ("/input\\..\\..\\outside.mp4", "/input%5C..%5C..%5Coutside.mp4", 404, "NoSuchKey"),
    ],
)
async def test_video_info_refusals(
    client: SignedClient, path: str, raw_path: str | None, status: int, code: str
) -> None:
    reply = await client.send(
        "GET", path, raw_path=raw_path, service="cos", params={"ci-process": "videoinfo"}
    )
    assert (reply.status, reply.code) == (status, code), reply.body
    resource = reply.xml().findtext("Resource")
    assert resource == f"{BUCKET}.cos.{REGION}.myqcloud.com{path}"
    ok = await client.send(
        "GET", "/" + VIDEO_KEY, service="cos", params={"ci-process": "videoinfo"}
    )
    assert_sample_media_info(ok)


async def test_a_symlink_out_of_the_bucket_is_not_an_object(
    client: SignedClient, emu: RunningEmulator, bucket_root: Path
) -> None:
    (bucket_root / "input" / "link.mp4").symlink_to(bucket_root.parent / "outside.mp4")
    reply = await client.send(
        "GET", "/input/link.mp4", service="cos", params={"ci-process": "videoinfo"}
    )
    assert (reply.status, reply.code) == (404, "NoSuchKey")
    # A key is only a name, so the submit is accepted; the job then finds no object.
    job_id = await client.submit_ok("input/link.mp4")
    job = await emu.state.wait_for_job_state(job_id, DONE, timeout=10)
    assert (job.state, job.code) == ("Failed", "ResourceNotFound")


@pytest.mark.parametrize(
    ("method", "params", "status", "code"),
    [
        ("GET", {"ci-process": "snapshot"}, 501, "NotImplemented"),
        ("GET", {}, 501, "NotImplemented"),
        ("POST", {"ci-process": "videoinfo"}, 405, "MethodNotAllowed"),
        ("DELETE", {}, 405, "MethodNotAllowed"),
    ],
)
async def test_other_cos_requests(
    client: SignedClient, method: str, params: dict[str, str], status: int, code: str
) -> None:
    reply = await client.send(method, "/" + VIDEO_KEY, service="cos", params=params)
    assert (reply.status, reply.code) == (status, code)
