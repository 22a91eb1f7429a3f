"""MediaInfo *jobs* over the HTTP API report what each generated file really is.

`test_probe` checks the probe as a function; this checks the whole path a client sees: signed
`POST /jobs` -> scheduler -> probe -> `GET /jobs/<id>` XML. The oracle is what the generator was
asked to write (codecs, sizes, rates, rotation, subtitle language) and the file itself (its byte
size, and its packets counted here with PyAV independently of the emulator).
"""

from __future__ import annotations

import asyncio
import shutil
from collections.abc import Callable
from pathlib import Path

import av
import pytest
from lxml import etree

from ci_emulator.config import EmulatorConfig
from ci_emulator.samples import (
    make_audio_only_m4a,
    make_h264_aac_mp4,
    make_mp4_with_subtitles,
    make_rotated_mp4,
)
from ci_emulator.server import RunningEmulator
from tests.ci_emulator.conftest import DONE, SignedClient
from tests.fixtures.servers import StartEmulator

SECONDS, FPS, RATE = 1.0, 25, 48000
FILES: dict[str, Callable[[Path], Path]] = {
    "media/video.mp4": lambda p: make_h264_aac_mp4(
        p, seconds=SECONDS, width=640, height=360, fps=FPS, sample_rate=RATE
    ),
    "media/audio.m4a": lambda p: make_audio_only_m4a(p, SECONDS, sample_rate=RATE),
    "media/subtitled.mp4": lambda p: make_mp4_with_subtitles(
        p, seconds=SECONDS, language="fra", width=320, height=240, fps=FPS
    ),
    "media/rotated.mp4": lambda p: make_rotated_mp4(p, 270, seconds=SECONDS, width=320, height=240),
}


@pytest.fixture(scope="module")
def media_files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("media-jobs")
    made: dict[str, Path] = {}
    for key, make in FILES.items():
        path = root / key
        path.parent.mkdir(parents=True, exist_ok=True)
        made[key] = make(path)
    return made


@pytest.fixture
async def media_emu(
    emulators: StartEmulator, emulator_config: EmulatorConfig, media_files: dict[str, Path]
) -> RunningEmulator:
    root = emulator_config.buckets[0].root
    for key, path in media_files.items():
        (root / key).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(path, root / key)
    return await emulators(emulator_config)


@pytest.fixture
async def reports(media_emu: RunningEmulator, client: SignedClient) -> dict[str, etree._Element]:
    """Each file's MediaInfo, from jobs submitted together and described once they ended."""
    client.base_url = media_emu.url
    ids = {key: await client.submit_ok(key, UserData=key) for key in FILES}
    await asyncio.gather(
        *(media_emu.state.wait_for_job_state(i, DONE, timeout=20) for i in ids.values())
    )
    described = (await client.describe(*ids.values())).ok().xml()
    result: dict[str, etree._Element] = {}
    for detail in described.findall("JobsDetail"):
        assert detail.findtext("State") == "Success", etree.tostring(detail)
        info = detail.find("Operation/MediaInfo")
        assert info is not None
        result[detail.findtext("Operation/UserData") or ""] = info
    assert set(result) == set(FILES)
    return result


def streams(info: etree._Element, kind: str) -> list[etree._Element]:
    """The non-empty `Stream/<kind>` nodes (an absent kind is one empty node, as on CI)."""
    return [node for node in info.findall(f"Stream/{kind}") if len(node)]


def packets(path: Path, kind: str) -> int:
    """Packets of the first `kind` stream, counted by demuxing: an oracle outside the emulator."""
    with av.open(str(path)) as container:
        stream = next(s for s in container.streams if s.type == kind)
        return sum(1 for packet in container.demux(stream) if packet.size)


def close(text: str | None, expected: float, tolerance: float = 0.1) -> bool:
    return text is not None and abs(float(text) - expected) <= tolerance


def test_h264_aac_mp4(reports: dict[str, etree._Element], media_files: dict[str, Path]) -> None:
    info, path = reports["media/video.mp4"], media_files["media/video.mp4"]
    assert info.findtext("Format/NumStream") == "2"
    assert info.findtext("Format/Size") == str(path.stat().st_size)
    assert close(info.findtext("Format/Duration"), SECONDS)
    (video,) = streams(info, "Video")
    (audio,) = streams(info, "Audio")
    assert streams(info, "Subtitle") == []
    assert (video.findtext("CodecName"), video.findtext("CodecTagString")) == ("h264", "avc1")
    assert (video.findtext("Width"), video.findtext("Height")) == ("640", "360")
    assert video.findtext("Dar") == "16:9"
    assert video.findtext("Fps") == "25.000000"
    assert video.findtext("NumFrames") == str(packets(path, "video")) == str(int(SECONDS * FPS))
    assert video.findtext("Rotation") == "0.000000"
    assert (audio.findtext("CodecName"), audio.findtext("SampleRate")) == ("aac", str(RATE))
    assert (audio.findtext("Channel"), audio.findtext("ChannelLayout")) == ("2", "stereo")
    assert (video.findtext("Index"), audio.findtext("Index")) == ("0", "1")


def test_audio_only_m4a(reports: dict[str, etree._Element], media_files: dict[str, Path]) -> None:
    info, path = reports["media/audio.m4a"], media_files["media/audio.m4a"]
    assert info.findtext("Format/NumStream") == "1"
    assert info.findtext("Format/Size") == str(path.stat().st_size)
    assert streams(info, "Video") == [] and streams(info, "Subtitle") == []
    (audio,) = streams(info, "Audio")
    assert (audio.findtext("CodecName"), audio.findtext("Index")) == ("aac", "0")
    assert audio.findtext("SampleRate") == str(RATE)
    assert close(audio.findtext("Duration"), SECONDS)
    assert packets(path, "audio") > 0


def test_subtitle_stream(reports: dict[str, etree._Element]) -> None:
    info = reports["media/subtitled.mp4"]
    assert info.findtext("Format/NumStream") == "3"
    (subtitle,) = streams(info, "Subtitle")
    assert (subtitle.findtext("Index"), subtitle.findtext("Language")) == ("2", "fra")
    assert len(streams(info, "Video")) == len(streams(info, "Audio")) == 1


def test_rotated_video(reports: dict[str, etree._Element], media_files: dict[str, Path]) -> None:
    info = reports["media/rotated.mp4"]
    (video,) = streams(info, "Video")
    assert video.findtext("Rotation") == "270.000000"
    assert (video.findtext("Width"), video.findtext("Height")) == ("320", "240")  # coded size
    assert streams(info, "Audio") == []
    assert video.findtext("NumFrames") == str(packets(media_files["media/rotated.mp4"], "video"))
