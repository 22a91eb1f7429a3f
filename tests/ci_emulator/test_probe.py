"""Tests for `ci_emulator.probe` against files made by `ci_emulator.samples`.

The oracle is what the generator wrote (codec, size, frame count, duration, rotation,
subtitles), never the probe's own earlier output; the formatting oracle is CI's documented
sample (API notes §3.3): its key lists are copied below verbatim, in the sample's order.
"""

from __future__ import annotations

import asyncio
import random
import re
from pathlib import Path
from typing import Any

import av
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from ci_emulator import probe as probe_module
from ci_emulator.probe import ProbeError, ProbeErrorCode, probe, probe_async
from ci_emulator.samples import (
    DEFAULT_CUES,
    DEMO_OBJECT_KEY,
    ensure_demo_bucket,
    make_audio_only_m4a,
    make_h264_aac_mp4,
    make_mp4_with_subtitles,
    make_rotated_mp4,
)

# Verbatim from the §3.3 callback sample, in its order.
SAMPLE_FORMAT_KEYS = [
    "Bitrate",
    "Duration",
    "FormatLongName",
    "FormatName",
    "NumProgram",
    "NumStream",
    "Size",
    "StartTime",
]
SAMPLE_AUDIO_KEYS = [
    "Bitrate",
    "Channel",
    "ChannelLayout",
    "CodecLongName",
    "CodecName",
    "CodecTag",
    "CodecTagString",
    "CodecTimeBase",
    "Duration",
    "Index",
    "Language",
    "SampleFmt",
    "SampleRate",
    "StartTime",
    "Timebase",
]
SAMPLE_VIDEO_KEYS = [
    "AvgFps",
    "Bitrate",
    "CodecLongName",
    "CodecName",
    "CodecTag",
    "CodecTagString",
    "CodecTimeBase",
    "ColorPrimaries",
    "ColorRange",
    "ColorTransfer",
    "Duration",
    "Fps",
    "HasBFrame",
    "Height",
    "Index",
    "Language",
    "Level",
    "NumFrames",
    "PixFormat",
    "Profile",
    "RefFrames",
    "Rotation",
    "StartTime",
    "Timebase",
    "Width",
]
# The §3.2 Video fields the sample's file did not have (ffprobe leaves them out when unknown).
ASPECT_AND_FIELD_KEYS = ["Dar", "FieldOrder", "Sar"]

SIX_DECIMALS = re.compile(r"^-?\d+\.\d{6}$")
FLOAT_FIELDS = {"Bitrate", "Duration", "StartTime", "Fps", "AvgFps", "Rotation"}

SECONDS = 2.0
WIDTH, HEIGHT, FPS, SAMPLE_RATE = 320, 240, 25, 44100


# --- generated media, once per module ------------------------------------------------------------


@pytest.fixture(scope="module")
def media_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("probe-media")


@pytest.fixture(scope="module")
def mp4(media_dir: Path) -> Path:
    return make_h264_aac_mp4(
        media_dir / "av.mp4",
        seconds=SECONDS,
        width=WIDTH,
        height=HEIGHT,
        fps=FPS,
        sample_rate=SAMPLE_RATE,
    )


@pytest.fixture(scope="module")
def mp4_info(mp4: Path) -> dict[str, Any]:
    return probe(mp4)


@pytest.fixture(scope="module")
def m4a_info(media_dir: Path) -> dict[str, Any]:
    return probe(make_audio_only_m4a(media_dir / "audio.m4a", seconds=1.5))


@pytest.fixture(scope="module")
def subtitled_info(media_dir: Path) -> dict[str, Any]:
    return probe(make_mp4_with_subtitles(media_dir / "subs.mp4", language="eng"))


def _remux(source: Path, target: Path, container_format: str) -> Path:
    """Copy packets into another container, to reach the probe's non-MP4 paths."""
    with av.open(str(source)) as src, av.open(str(target), "w", format=container_format) as dst:
        streams = {s.index: dst.add_stream_from_template(s) for s in src.streams}
        for packet in src.demux():
            if packet.dts is None:  # PyAV's end-of-stream marker
                continue
            packet.stream = streams[packet.stream.index]
            dst.mux(packet)
    return target


@pytest.fixture(scope="module")
def mkv(mp4: Path, media_dir: Path) -> Path:
    return _remux(mp4, media_dir / "av.mkv", "matroska")


def _only(items: list[dict[str, str]]) -> dict[str, str]:
    assert len(items) == 1, items
    return items[0]


def _close_to(text: str, expected: float, tolerance: float = 0.01) -> bool:
    return abs(float(text) - expected) <= expected * tolerance


# --- what the file is ----------------------------------------------------------------------------


def test_h264_aac_mp4_reports_what_was_written(mp4: Path, mp4_info: dict[str, Any]) -> None:
    fmt = mp4_info["Format"]
    assert fmt["FormatName"] == "mov,mp4,m4a,3gp,3g2,mj2"
    assert fmt["FormatLongName"] == "QuickTime / MOV"
    assert fmt["NumStream"] == "2"
    assert fmt["NumProgram"] == "0"
    assert fmt["Size"] == str(mp4.stat().st_size)
    assert fmt["StartTime"] == "0.000000"
    assert _close_to(fmt["Duration"], SECONDS)
    # Bitrate is kbps: size * 8 / duration / 1000.
    assert _close_to(fmt["Bitrate"], mp4.stat().st_size * 8 / float(fmt["Duration"]) / 1000)

    video = _only(mp4_info["Stream"]["Video"])
    assert video["CodecName"] == "h264"
    assert video["CodecLongName"] == "H.264 / AVC / MPEG-4 AVC / MPEG-4 part 10"
    assert (video["Width"], video["Height"]) == (str(WIDTH), str(HEIGHT))
    assert video["NumFrames"] == str(round(SECONDS * FPS))
    assert _close_to(video["Duration"], SECONDS)
    assert video["Fps"] == video["AvgFps"] == "25.000000"
    assert video["Index"] == "0"
    assert video["PixFormat"] == "yuv420p"
    assert video["Profile"] == "High"
    assert video["Level"] == "13"  # x264 picks level 1.3 for 320x240@25; CI prints the raw idc
    assert int(video["HasBFrame"]) >= 1  # "veryfast" uses B-frames: ffmpeg-style count, not 0/1
    assert video["RefFrames"] == "1"
    assert (video["Sar"], video["Dar"]) == ("1:1", "4:3")
    assert video["FieldOrder"] == "progressive"
    assert (video["ColorPrimaries"], video["ColorTransfer"], video["ColorRange"]) == (
        "bt709",
        "bt709",
        "tv",
    )
    assert video["Timebase"] == video["CodecTimeBase"]
    assert re.fullmatch(r"1/\d+", video["Timebase"])
    assert video["Language"] == "und"
    assert video["Rotation"] == "0.000000"
    assert float(video["Bitrate"]) > 0

    audio = _only(mp4_info["Stream"]["Audio"])
    assert audio["CodecName"] == "aac"
    assert audio["CodecLongName"] == "AAC (Advanced Audio Coding)"
    assert audio["SampleRate"] == str(SAMPLE_RATE)
    assert (audio["Channel"], audio["ChannelLayout"]) == ("2", "stereo")
    assert audio["SampleFmt"] == "fltp"
    assert audio["Timebase"] == audio["CodecTimeBase"] == f"1/{SAMPLE_RATE}"
    assert audio["Index"] == "1"
    assert _close_to(audio["Duration"], SECONDS)
    assert "Profile" not in audio  # CI's Audio node has none

    assert mp4_info["Stream"]["Subtitle"] == []


def test_audio_only_m4a_has_no_video(m4a_info: dict[str, Any]) -> None:
    assert m4a_info["Stream"]["Video"] == []
    assert m4a_info["Stream"]["Subtitle"] == []
    assert m4a_info["Format"]["NumStream"] == "1"
    audio = _only(m4a_info["Stream"]["Audio"])
    assert (audio["CodecName"], audio["Index"]) == ("aac", "0")
    assert _close_to(m4a_info["Format"]["Duration"], 1.5)
    assert _close_to(audio["Duration"], 1.5)


@pytest.mark.parametrize("degrees", [90, 180, 270])
def test_rotation_is_clockwise_degrees_from_the_display_matrix(
    media_dir: Path, degrees: int
) -> None:
    info = probe(make_rotated_mp4(media_dir / f"rot{degrees}.mp4", degrees))
    video = _only(info["Stream"]["Video"])
    assert video["Rotation"] == f"{degrees}.000000"
    # The stored picture is not turned: width and height are the coded ones.
    assert (video["Width"], video["Height"]) == ("320", "240")
    assert video["NumFrames"] == "25"
    # Colour left unspecified by this generator: CI's documented spelling of that.
    assert video["ColorPrimaries"] == video["ColorRange"] == video["ColorTransfer"] == "unknown"


def test_subtitle_stream_is_listed_with_its_language(subtitled_info: dict[str, Any]) -> None:
    assert subtitled_info["Format"]["NumStream"] == "3"
    assert subtitled_info["Stream"]["Subtitle"] == [{"Index": "2", "Language": "eng"}]
    assert len(subtitled_info["Stream"]["Video"]) == len(subtitled_info["Stream"]["Audio"]) == 1
    assert len(DEFAULT_CUES) >= 2


def test_matroska_frame_count_is_counted_and_unknowns_are_left_out(mkv: Path) -> None:
    info = probe(mkv)
    assert info["Format"]["FormatName"] == "matroska,webm"
    video = _only(info["Stream"]["Video"])
    # Matroska stores no frame count; the bounded scan counts the packets.
    assert video["NumFrames"] == str(round(SECONDS * FPS))
    # Matroska has neither a FourCC nor per-stream durations: ffprobe prints 0x0000 / [0][0][0][0]
    # and leaves the duration out.
    assert (video["CodecTag"], video["CodecTagString"]) == ("0x0000", "[0][0][0][0]")
    assert "Duration" not in video
    assert (video["Sar"], video["Rotation"]) == ("1:1", "0.000000")


def test_a_cut_short_frame_count_is_left_out_not_reported(
    mkv: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(probe_module, "MAX_SCAN_PACKETS", 5)
    video = _only(probe(mkv)["Stream"]["Video"])
    assert "NumFrames" not in video
    assert video["CodecName"] == "h264"


def test_mpegts_reports_one_program(mp4: Path, media_dir: Path) -> None:
    info = probe(_remux(mp4, media_dir / "av.ts", "mpegts"))
    assert (info["Format"]["FormatName"], info["Format"]["NumProgram"]) == ("mpegts", "1")
    assert _only(info["Stream"]["Video"])["NumFrames"] == str(round(SECONDS * FPS))


async def test_probe_async_gives_the_same_answer(mp4: Path, mp4_info: dict[str, Any]) -> None:
    assert await probe_async(mp4) == mp4_info


# --- how it is written ---------------------------------------------------------------------------


def test_the_documented_sample_orders_keys_alphabetically() -> None:
    # The premise of the key-order tests below: CI's own sample is sorted in every node.
    for keys in (SAMPLE_FORMAT_KEYS, SAMPLE_AUDIO_KEYS, SAMPLE_VIDEO_KEYS):
        assert keys == sorted(keys)


def test_key_order_per_node_follows_the_sample(mp4_info: dict[str, Any]) -> None:
    assert list(mp4_info) == ["Format", "Stream"]
    assert list(mp4_info["Format"]) == SAMPLE_FORMAT_KEYS
    assert list(mp4_info["Stream"]) == ["Audio", "Subtitle", "Video"]
    assert list(_only(mp4_info["Stream"]["Audio"])) == SAMPLE_AUDIO_KEYS
    video_keys = list(_only(mp4_info["Stream"]["Video"]))
    assert video_keys == sorted(SAMPLE_VIDEO_KEYS + ASPECT_AND_FIELD_KEYS)


def test_every_value_is_text_and_floats_have_six_decimals(
    mp4_info: dict[str, Any], m4a_info: dict[str, Any], subtitled_info: dict[str, Any]
) -> None:
    for info in (mp4_info, m4a_info, subtitled_info):
        nodes = [info["Format"]] + [node for kind in info["Stream"].values() for node in kind]
        for node in nodes:
            for key, value in node.items():
                assert isinstance(value, str), (key, value)
                if key in FLOAT_FIELDS:
                    assert SIX_DECIMALS.match(value), (key, value)


def test_codec_tags_are_hex_of_the_fourcc(mp4_info: dict[str, Any]) -> None:
    streams = mp4_info["Stream"]["Video"] + mp4_info["Stream"]["Audio"]
    assert {s["CodecTagString"] for s in streams} == {"avc1", "mp4a"}
    for stream in streams:
        tag = stream["CodecTag"]
        assert re.fullmatch(r"0x[0-9a-f]{8}", tag), tag
        assert int(tag, 16).to_bytes(4, "little") == stream["CodecTagString"].encode("ascii")
    assert _only(mp4_info["Stream"]["Video"])["CodecTag"] == "0x31637661"  # as in the sample


# --- failures ------------------------------------------------------------------------------------


def test_error_codes_are_spelled_like_ci_codes() -> None:
    # Plain strings on the wire (StrEnum), in CI's PascalCase; see ProbeErrorCode for sources.
    assert {str(code) for code in ProbeErrorCode} == {
        "ResourceNotFound",
        "ResourceAccessDenied",
        "ResourceDownloadFailed",
        "InvalidMedia",
    }


def test_missing_file_is_resource_not_found(tmp_path: Path) -> None:
    with pytest.raises(ProbeError) as caught:
        probe(tmp_path / "nope.mp4")
    assert caught.value.code == ProbeErrorCode.RESOURCE_NOT_FOUND
    assert str(tmp_path) not in caught.value.message  # the local path stays private


def test_a_file_name_is_never_read_as_a_url(
    mp4: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Handed the bare relative name, FFmpeg would run its concat protocol on "a.mp4|b.mp4".
    tricky = tmp_path / "concat:a.mp4|b.mp4"
    tricky.write_bytes(mp4.read_bytes())
    monkeypatch.chdir(tmp_path)
    info = probe(Path(tricky.name))
    assert info["Format"]["NumStream"] == "2"
    assert info["Format"]["Size"] == str(mp4.stat().st_size)


def test_a_directory_is_not_an_object(tmp_path: Path) -> None:
    with pytest.raises(ProbeError) as caught:
        probe(tmp_path)
    assert caught.value.code == ProbeErrorCode.RESOURCE_NOT_FOUND


@pytest.mark.parametrize(
    ("name", "content"),
    [
        ("empty.mp4", b""),
        ("notes.txt", b"hello world\nthis is not a video\n"),
        ("fake.mp4", b"just text with a video extension\n" * 20),
        ("random.bin", random.Random(20240630).randbytes(64 * 1024)),
    ],
)
def test_non_media_is_invalid_media(tmp_path: Path, name: str, content: bytes) -> None:
    path = tmp_path / name
    path.write_bytes(content)
    with pytest.raises(ProbeError) as caught:
        probe(path)
    assert caught.value.code == ProbeErrorCode.INVALID_MEDIA
    assert caught.value.message
    assert str(caught.value).startswith("InvalidMedia: ")


def test_truncated_mp4_is_invalid_media(mp4: Path, tmp_path: Path) -> None:
    # PyAV writes the index (moov) last, so the first half of the file has no index at all.
    path = tmp_path / "half.mp4"
    path.write_bytes(mp4.read_bytes()[: mp4.stat().st_size // 2])
    with pytest.raises(ProbeError) as caught:
        probe(path)
    assert caught.value.code == ProbeErrorCode.INVALID_MEDIA


async def test_probe_async_raises_the_same_error(tmp_path: Path) -> None:
    with pytest.raises(ProbeError):
        await asyncio.wait_for(probe_async(tmp_path / "nope.mp4"), timeout=5)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    data=st.one_of(
        st.binary(min_size=1, max_size=2048),
        # A plausible MP4 start followed by garbage reaches FFmpeg's mov parser, not just probing.
        st.binary(max_size=2048).map(lambda tail: b"\x00\x00\x00\x18ftypisom" + tail),
    )
)
def test_only_probe_error_ever_escapes(
    data: bytes, tmp_path_factory: pytest.TempPathFactory
) -> None:
    path = tmp_path_factory.getbasetemp() / "fuzz.mp4"
    path.write_bytes(data)
    try:
        info = probe(path)
    except ProbeError as error:
        assert error.code in set(ProbeErrorCode)
    else:
        assert set(info) == {"Format", "Stream"}


@settings(max_examples=25, deadline=None)
@given(fraction=st.floats(min_value=0.0, max_value=1.0))
@example(fraction=0.9693818314885201)  # cut inside the moov box: opens, but with no stream
def test_any_truncation_of_real_media_is_handled(
    fraction: float, mp4: Path, tmp_path_factory: pytest.TempPathFactory
) -> None:
    whole = mp4.read_bytes()
    path = tmp_path_factory.getbasetemp() / "cut.mp4"
    path.write_bytes(whole[: int(len(whole) * fraction)])
    try:
        info = probe(path)
    except ProbeError as error:
        assert error.code == ProbeErrorCode.INVALID_MEDIA
    else:
        # FFmpeg may read a damaged index partially (e.g. only the first track): that is its
        # answer, and ffprobe's too. The probe must still return well-formed text.
        assert int(info["Format"]["NumStream"]) in {1, 2}  # never 0: that is INVALID_MEDIA
        assert all(isinstance(v, str) for v in info["Format"].values())


# --- the generators themselves -------------------------------------------------------------------


def test_generation_is_deterministic(mp4: Path, tmp_path: Path) -> None:
    again = make_h264_aac_mp4(
        tmp_path / "again.mp4",
        seconds=SECONDS,
        width=WIDTH,
        height=HEIGHT,
        fps=FPS,
        sample_rate=SAMPLE_RATE,
    )
    assert again.read_bytes() == mp4.read_bytes()


@pytest.mark.parametrize("seconds", [0.0, -1.0, float("nan")])
def test_a_sample_must_last_some_time(tmp_path: Path, seconds: float) -> None:
    with pytest.raises(ValueError, match="positive number of seconds"):
        make_audio_only_m4a(tmp_path / "a.m4a", seconds)


def test_ensure_demo_bucket_writes_once(tmp_path: Path) -> None:
    bucket = tmp_path / "demo-bucket"
    assert ensure_demo_bucket(bucket) == bucket
    demo = bucket / DEMO_OBJECT_KEY
    first = demo.stat()
    assert ensure_demo_bucket(bucket) == bucket
    assert demo.stat().st_mtime_ns == first.st_mtime_ns  # not rewritten
    assert sorted(p.name for p in demo.parent.iterdir()) == ["demo.mp4"]  # no partial left
    info = probe(demo)
    video = _only(info["Stream"]["Video"])
    assert (video["Width"], video["Height"], video["CodecName"]) == ("640", "360", "h264")
    assert _only(info["Stream"]["Audio"])["CodecName"] == "aac"
    assert 2.0 <= float(info["Format"]["Duration"]) <= 3.0 * 1.01
