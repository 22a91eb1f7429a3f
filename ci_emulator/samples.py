"""Small, real media files made on demand, so the repository holds no binary fixtures.

Tests, benchmarks and the demo need objects that FFmpeg really parses (the emulator's MediaInfo
comes from :mod:`ci_emulator.probe`, not from a table), and each needs a known truth to
compare the probe against: codec, size, frame count, duration, rotation, subtitles. Generating
them with PyAV gives both, in well under a second per file, and keeps them identical from run to
run (x264 on one thread and without assembly, synthetic pictures and tones, no wall-clock
timestamps in the container).

Every writer names its muxer explicitly, so the output format does not depend on the file name
(:func:`ensure_demo_bucket` writes through a temporary name).
"""

from __future__ import annotations

import array
import math
import os
import secrets
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any, Final

import av
from av.subtitles.subtitle import SubtitleSet

__all__ = [
    "DEFAULT_CUES",
    "DEMO_OBJECT_KEY",
    "Cue",
    "ensure_demo_bucket",
    "make_audio_only_m4a",
    "make_h264_aac_mp4",
    "make_mp4_with_subtitles",
    "make_rotated_mp4",
]

DEMO_OBJECT_KEY: Final = "input/demo.mp4"
"""The object key of the demo video: the key every CI documentation sample submits."""

_DEMO_WIDTH: Final = 640
_DEMO_HEIGHT: Final = 360
_DEMO_SECONDS: Final = 3.0

_X264_OPTIONS: Final[dict[str, str]] = {
    # "superfast" keeps CABAC and B-frames (High profile, has_b_frames 2), like the phone and
    # camera files CI usually sees, and encodes a 2 s 320x240 clip in about 0.2 s even in C.
    "preset": "superfast",
    # No assembly: with x264's SIMD kernels (AVX-512 ones, on the machine this was written on)
    # the output changed from run to run within one process (some kernel reads memory that
    # was never written), which "deterministic" rules out. Plain C gave identical bytes in
    # every one of hundreds of runs, at about twice the encoding time.
    "x264-params": "asm=0",
}
_BT709: Final = 1  # AVCOL_PRI_BT709 == AVCOL_TRC_BT709 == AVCOL_SPC_BT709
_TV_RANGE: Final = 1  # AVCOL_RANGE_MPEG
_AAC_FRAME: Final = 1024  # samples per AAC-LC frame; the encoder accepts no other size but the last
_TONE_HZ: Final = (440, 660)  # whole hertz (see _tones); left != right, so a swap shows
_RAMP: Final = bytes(range(256)) * 64  # source of every picture row (see _picture)

# FFmpeg's mov_text encoder refuses to open without an ASS header; this is the smallest valid one.
_ASS_HEADER: Final = (
    b"[Script Info]\nScriptType: v4.00+\nPlayResX: 384\nPlayResY: 288\n\n"
    b"[V4+ Styles]\nFormat: Name, Fontname, Fontsize, PrimaryColour, SecondaryColour, "
    b"OutlineColour, BackColour, Bold, Italic, Underline, StrikeOut, ScaleX, ScaleY, Spacing, "
    b"Angle, BorderStyle, Outline, Shadow, Alignment, MarginL, MarginR, MarginV, Encoding\n"
    b"Style: Default,Arial,16,&Hffffff,&Hffffff,&H0,&H0,0,0,0,0,100,100,0,0,1,1,0,2,10,10,10,0\n\n"
    b"[Events]\nFormat: Layer, Start, End, Style, Name, MarginL, MarginR, MarginV, Effect, Text\n"
)
_SUBTITLE_TIME_BASE: Final = Fraction(1, 1000)


@dataclass(frozen=True)
class Cue:
    """One subtitle: shown from ``start`` to ``end`` seconds."""

    start: float
    end: float
    text: str


DEFAULT_CUES: Final[tuple[Cue, ...]] = (
    Cue(0.0, 0.8, "Hello from the CI emulator"),
    Cue(1.0, 1.8, "Second cue"),
)


def make_h264_aac_mp4(
    path: Path,
    *,
    seconds: float = 2.0,
    width: int = 320,
    height: int = 240,
    fps: int = 25,
    sample_rate: int = 44100,
    gop: int | None = None,
    audio: bool = True,
) -> Path:
    """Write an MP4 with H.264 (yuv420p, BT.709, tv range, square pixels) and stereo AAC.

    The video has exactly ``round(seconds * fps)`` frames; the audio ``seconds`` of tones
    (none with ``audio=False``). ``gop`` puts a key frame every ``gop`` frames (and only
    there), for tests that cut at key frames; by default x264 places them.
    """
    with av.open(str(path), mode="w", format="mp4") as container:
        video = _add_video(container, width, height, fps)
        if gop is not None:
            video.codec_context.gop_size = gop
            video.codec_context.options = {
                **dict(_X264_OPTIONS),
                "x264-params": f"{_X264_OPTIONS['x264-params']}:keyint={gop}:min-keyint={gop}:"
                "scenecut=0",
            }
        if not audio:
            _write(container, seconds, video=(video, fps))
            return path
        audio_stream = _add_audio(container, sample_rate)
        _write(container, seconds, video=(video, fps), audio=(audio_stream, sample_rate))
    return path


def make_audio_only_m4a(path: Path, seconds: float = 2.0, *, sample_rate: int = 44100) -> Path:
    """Write an M4A (the ``ipod`` muxer) holding one stereo AAC stream and nothing else."""
    with av.open(str(path), mode="w", format="ipod") as container:
        audio = _add_audio(container, sample_rate)
        _write(container, seconds, audio=(audio, sample_rate))
    return path


def make_rotated_mp4(
    path: Path,
    degrees: int = 90,
    *,
    seconds: float = 1.0,
    width: int = 320,
    height: int = 240,
    fps: int = 25,
) -> Path:
    """Write an H.264 MP4 whose display matrix says "turn ``degrees`` clockwise to show".

    That is what phones write for portrait video (the legacy ``rotate`` tag value), and what
    the probe reports as ``Rotation``. Colour metadata is left unspecified on purpose, so the
    probe's ``unknown`` path has a real file too.
    """
    with av.open(str(path), mode="w", format="mp4") as container:
        video = _add_video(container, width, height, fps, tagged_colour=False)
        # PyAV takes counter-clockwise degrees (FFmpeg's read-back convention).
        video.set_display_rotation(-degrees)
        _write(container, seconds, video=(video, fps))
    return path


def make_mp4_with_subtitles(
    path: Path,
    *,
    seconds: float = 2.0,
    cues: Sequence[Cue] = DEFAULT_CUES,
    language: str = "eng",
    width: int = 320,
    height: int = 240,
    fps: int = 25,
    sample_rate: int = 44100,
) -> Path:
    """Write an MP4 with H.264, AAC and a ``mov_text`` subtitle stream tagged ``language``."""
    with av.open(str(path), mode="w", format="mp4") as container:
        video = _add_video(container, width, height, fps)
        audio = _add_audio(container, sample_rate)
        subtitle = container.add_stream("mov_text")
        subtitle.codec_context.subtitle_header = _ASS_HEADER
        subtitle.time_base = _SUBTITLE_TIME_BASE
        subtitle.metadata["language"] = language
        _write(
            container,
            seconds,
            video=(video, fps),
            audio=(audio, sample_rate),
            subtitle=(subtitle, cues),
        )
    return path


def ensure_demo_bucket(folder: Path) -> Path:
    """Make ``folder`` a demo bucket holding :data:`DEMO_OBJECT_KEY`, and return ``folder``.

    The video (640x360 H.264/AAC, 3 s) is written only when missing, through a temporary file
    and a rename, so concurrent callers (a demo and a test run) never see half a file.
    """
    target = folder / DEMO_OBJECT_KEY
    if target.is_file() and target.stat().st_size > 0:
        return folder
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_name(f".{target.name}.{secrets.token_hex(4)}.partial")
    try:
        make_h264_aac_mp4(partial, seconds=_DEMO_SECONDS, width=_DEMO_WIDTH, height=_DEMO_HEIGHT)
        os.replace(partial, target)
    finally:
        partial.unlink(missing_ok=True)
    return folder


def _add_video(
    container: Any, width: int, height: int, fps: int, *, tagged_colour: bool = True
) -> Any:
    stream = container.add_stream("libx264", rate=fps, options=dict(_X264_OPTIONS))
    stream.width = width
    stream.height = height
    stream.pix_fmt = "yuv420p"
    ctx = stream.codec_context
    ctx.thread_count = 1  # x264's output depends on its thread count: fix it, not the CPU's
    ctx.sample_aspect_ratio = Fraction(1, 1)
    if tagged_colour:
        ctx.color_primaries = _BT709
        ctx.color_trc = _BT709
        ctx.colorspace = _BT709
        ctx.color_range = _TV_RANGE
    return stream


def _add_audio(container: Any, sample_rate: int) -> Any:
    stream = container.add_stream("aac", rate=sample_rate)
    stream.codec_context.layout = "stereo"
    return stream


def _write(
    container: Any,
    seconds: float,
    *,
    video: tuple[Any, int] | None = None,
    audio: tuple[Any, int] | None = None,
    subtitle: tuple[Any, Sequence[Cue]] | None = None,
) -> None:
    """Encode and mux all streams in presentation order, as a real recorder interleaves them."""
    if not seconds > 0:
        raise ValueError(f"a sample must last a positive number of seconds, not {seconds!r}")
    pictures = _pictures(video[0], round(seconds * video[1]), video[1]) if video else iter(())
    tones = _tones(audio[0], round(seconds * audio[1]), audio[1]) if audio else iter(())
    cues = sorted(subtitle[1], key=lambda cue: cue.start) if subtitle else []
    video_rate = Fraction(video[1]) if video else None
    audio_rate = Fraction(audio[1]) if audio else None
    next_picture = next(pictures, None)
    next_tone = next(tones, None)
    while next_picture is not None or next_tone is not None or cues:
        times = []
        if next_picture is not None and video_rate is not None:
            times.append((next_picture.pts / video_rate, 0))
        if next_tone is not None and audio_rate is not None:
            times.append((next_tone.pts / audio_rate, 1))
        if cues:
            times.append((Fraction(cues[0].start), 2))
        _, kind = min(times)
        if kind == 0 and video:
            container.mux(video[0].encode(next_picture))
            next_picture = next(pictures, None)
        elif kind == 1 and audio:
            container.mux(audio[0].encode(next_tone))
            next_tone = next(tones, None)
        elif subtitle:
            container.mux(_subtitle_packet(subtitle[0], cues.pop(0)))
    for encoder in (video, audio):
        if encoder is not None:
            container.mux(encoder[0].encode(None))  # drain the encoder's delay


def _pictures(stream: Any, count: int, fps: int) -> Iterator[Any]:
    """A diagonal gradient that moves every frame, so the encoder makes real P/B frames."""
    width, height = int(stream.width), int(stream.height)
    time_base = Fraction(1, fps)
    for index in range(count):
        frame = av.VideoFrame(width, height, "yuv420p")
        for plane_index, plane in enumerate(frame.planes):
            # Luma drifts down-right, chroma the other way, at different speeds per plane.
            shift = (3 * index) if plane_index == 0 else (255 * index * plane_index) % 256
            plane.update(_picture(int(plane.line_size), int(plane.height), shift))
        frame.pts = index
        frame.time_base = time_base
        yield frame


def _picture(line_size: int, rows: int, shift: int) -> bytes:
    """``rows`` rows of ``line_size`` bytes where byte (x, y) is (x + y + shift) mod 256.

    Each row is a slice of one precomputed ramp, so a frame costs ``rows`` slices, not
    ``rows * line_size`` Python operations (numpy is not a dependency).
    """
    ramp = _RAMP
    needed = line_size + rows + (shift % 256)
    if needed > len(ramp):
        ramp = bytes(range(256)) * (needed // 256 + 1)
    start = shift % 256
    return b"".join(ramp[start + row : start + row + line_size] for row in range(rows))


def _tones(stream: Any, samples: int, sample_rate: int) -> Iterator[Any]:
    """Stereo sine tones as planar float frames of the AAC frame size.

    The tones are whole hertz, so one second holds whole cycles and repeats seamlessly: only one
    second is computed, whatever the length.
    """
    period = min(samples, sample_rate)
    channels = []
    for hz in _TONE_HZ:
        second = array.array(
            "f", (0.25 * math.sin(2.0 * math.pi * hz * n / sample_rate) for n in range(period))
        )
        channels.append((second * (samples // period + 1))[:samples])
    time_base = Fraction(1, sample_rate)
    for start in range(0, samples, _AAC_FRAME):
        count = min(_AAC_FRAME, samples - start)
        frame = av.AudioFrame(format="fltp", layout="stereo", samples=count)
        for plane, channel in zip(frame.planes, channels, strict=True):
            plane.update(channel[start : start + count].tobytes())
        frame.sample_rate = sample_rate
        frame.pts = start
        frame.time_base = time_base
        yield frame


def _subtitle_packet(stream: Any, cue: Cue) -> Any:
    time_base = stream.time_base or _SUBTITLE_TIME_BASE
    start = round(Fraction(cue.start) / time_base)
    duration = round(Fraction(cue.end - cue.start) / time_base)
    # ASS dialogue fields: ReadOrder, Layer, Style, Name, MarginL, MarginR, MarginV, Effect, Text
    dialogue = f"0,0,Default,,0,0,0,,{cue.text}".encode()
    subtitle_set = SubtitleSet.create(dialogue, 0, duration, pts=start)
    packet = stream.codec_context.encode_subtitle(subtitle_set)
    packet.stream = stream
    packet.time_base = time_base
    return packet
