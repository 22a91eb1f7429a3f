"""Helpers for the media-kind tests: request bodies, running a job over signed HTTP, and an
independent probe of what a job wrote (PyAV directly, not the emulator's MediaInfo)."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

import av
from lxml import etree

from ci_emulator.server import RunningEmulator
from tests.ci_emulator.conftest import BUCKET, DONE, REGION, VIDEO_KEY, SignedClient

JOB_TIMEOUT_S = 60.0
"""Generous: the first media job of a session also boots the worker forkserver."""


def output_xml(key: str | None = None, **extra: str) -> str:
    nodes = "".join(f"<{name}>{value}</{name}>" for name, value in extra.items())
    obj = f"<Object>{key}</Object>" if key is not None else ""
    return f"<Output><Region>{REGION}</Region><Bucket>{BUCKET}</Bucket>{obj}{nodes}</Output>"


def media_body(tag: str, operation: str, key: str | None = VIDEO_KEY, **top: str) -> bytes:
    """A submit of `tag` whose Operation holds `operation` (XML text)."""
    input_node = f"<Input><Object>{key}</Object></Input>" if key is not None else ""
    nodes = "".join(f"<{name}>{value}</{name}>" for name, value in top.items())
    return (
        f"<Request><Tag>{tag}</Tag>{input_node}<Operation>{operation}</Operation>{nodes}</Request>"
    ).encode()


async def submit(client: SignedClient, body: bytes) -> str:
    reply = (await client.send("POST", "/jobs", body=body)).ok()
    job_id = reply.xml().findtext("JobsDetail/JobId")
    assert job_id
    return job_id


async def refusal(client: SignedClient, body: bytes) -> tuple[int, str]:
    reply = await client.send("POST", "/jobs", body=body)
    return reply.status, reply.code


async def run_job(client: SignedClient, emu: RunningEmulator, body: bytes) -> etree._Element:
    """Submit, wait until the job ends, and return its described JobsDetail."""
    job_id = await submit(client, body)
    await emu.state.wait_for_job_state(job_id, DONE, timeout=JOB_TIMEOUT_S)
    detail = (await client.describe(job_id)).ok().xml().find("JobsDetail")
    assert detail is not None
    return detail


def succeeded(detail: etree._Element) -> etree._Element:
    assert detail.findtext("State") == "Success", etree.tostring(detail)
    return detail


def output_keys(detail: etree._Element, node: str = "OutputFile") -> list[str]:
    """Every key MediaResult names: ObjectPrefix + ObjectName (the catalogue's rule)."""
    path = "Operation/MediaResult/OutputFile" + ("" if node == "OutputFile" else f"/{node}")
    found = detail.find(path)
    assert found is not None, etree.tostring(detail)
    prefix = found.findtext("ObjectPrefix") or ""
    return [prefix + (name.text or "") for name in found.findall("ObjectName")]


def md5s(detail: etree._Element) -> dict[str, str]:
    found = detail.find("Operation/MediaResult/OutputFile")
    assert found is not None
    prefix = found.findtext("ObjectPrefix") or ""
    return {
        prefix + (info.findtext("ObjectName") or ""): info.findtext("Md5") or ""
        for info in found.findall("Md5Info")
    }


def md5_of(path: Path) -> str:
    return hashlib.md5(path.read_bytes()).hexdigest()  # noqa: S324 - comparing CI's Md5Info


@dataclass(frozen=True)
class Probed:
    format_name: str
    duration: float
    video_codec: str | None
    width: int
    height: int
    frames: int
    audio_codec: str | None
    sample_rate: int
    channels: int
    colour_transfer: int


def probe_file(path: Path) -> Probed:
    """What a file really holds, read with PyAV (frames counted by decoding)."""
    with av.open(str(path)) as container:
        video = next(iter(container.streams.video), None)
        audio = next(iter(container.streams.audio), None)
        frames = sum(1 for _ in container.decode(video=0)) if video is not None else 0
        duration = float(container.duration or 0) / 1_000_000
        return Probed(
            format_name=str(container.format.name),
            duration=duration,
            video_codec=video.codec_context.codec.canonical_name if video is not None else None,
            width=int(video.codec_context.width) if video is not None else 0,
            height=int(video.codec_context.height) if video is not None else 0,
            frames=frames,
            audio_codec=audio.codec_context.codec.canonical_name if audio is not None else None,
            sample_rate=int(audio.codec_context.sample_rate) if audio is not None else 0,
            channels=int(audio.codec_context.channels) if audio is not None else 0,
            colour_transfer=int(video.codec_context.color_trc) if video is not None else 0,
        )


def leftovers(root: Path) -> list[str]:
    """Anything of the emulator's staging area still in a bucket folder (must be nothing)."""
    return [str(path.relative_to(root)) for path in root.rglob(".ci-emulator-staging*")]
