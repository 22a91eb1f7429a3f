"""CI's codec and container names, the FFmpeg encoders and muxers behind them, and which
combinations a container can hold.

Every encoder named here is in PyAV's bundled FFmpeg (checked with `av.codecs_available` on
PyAV 18.1: libx264, libx265, libvpx, libvpx-vp9, libsvtav1, aac, libmp3lame, flac, libopus,
pcm_s16le, gif, libwebp_anim, mjpeg, png, libwebp). CI also documents Vorbis and amr audio:
FFmpeg's native Vorbis encoder is experimental and there is no amr encoder, so those names pass
validation and the job then fails at run time, as a combination FFmpeg cannot write does.

`CONTAINERS` is the codec/container matrix: a Transcode asking for a codec its container
cannot hold passes validation (CI checks names at submit) and then ends `Failed` with
InvalidArgument, as issue 14 asks ("unsupported codec/container combination").
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

VIDEO_ENCODERS: Final[dict[str, str]] = {
    "H.264": "libx264",
    "H.265": "libx265",
    "VP8": "libvpx",
    "VP9": "libvpx-vp9",
    "AV1": "libsvtav1",
}
"""CI `Video.Codec` -> FFmpeg encoder."""

AUDIO_ENCODERS: Final[dict[str, str]] = {
    "aac": "aac",
    "mp3": "libmp3lame",
    "flac": "flac",
    "opus": "libopus",
    "pcm_s16le": "pcm_s16le",
}
"""CI `Audio.Codec` -> FFmpeg encoder."""

VIDEO_CODECS: Final = frozenset(VIDEO_ENCODERS)
AUDIO_CODECS: Final = frozenset({*AUDIO_ENCODERS, "Vorbis", "amr"})
"""Names validation accepts: CI documents Vorbis and amr too; the emulator has no encoder for
them, so such a job fails at run time (NotImplemented would wrongly blame the request)."""


@dataclass(frozen=True)
class Container:
    muxer: str
    """FFmpeg muxer name."""
    ext: str
    """What `${ext}` becomes."""
    video: frozenset[str]
    """CI video codecs it can hold (empty: audio only)."""
    audio: frozenset[str]


_MP4_AUDIO: Final = frozenset({"aac", "mp3", "flac", "opus"})

CONTAINERS: Final[dict[str, Container]] = {
    "mp4": Container("mp4", "mp4", frozenset({"H.264", "H.265", "AV1", "VP9"}), _MP4_AUDIO),
    "mov": Container("mov", "mov", frozenset({"H.264", "H.265"}), frozenset({"aac", "pcm_s16le"})),
    "flv": Container("flv", "flv", frozenset({"H.264"}), frozenset({"aac", "mp3"})),
    "mkv": Container("matroska", "mkv", VIDEO_CODECS, frozenset(AUDIO_ENCODERS)),
    "webm": Container("webm", "webm", frozenset({"VP8", "VP9", "AV1"}), frozenset({"opus"})),
    "ts": Container("mpegts", "ts", frozenset({"H.264", "H.265"}), frozenset({"aac", "mp3"})),
    "hls": Container("hls", "m3u8", frozenset({"H.264", "H.265"}), frozenset({"aac", "mp3"})),
    "mp3": Container("mp3", "mp3", frozenset(), frozenset({"mp3"})),
    "m4a": Container("ipod", "m4a", frozenset(), frozenset({"aac"})),
    "aac": Container("adts", "aac", frozenset(), frozenset({"aac"})),
    "flac": Container("flac", "flac", frozenset(), frozenset({"flac"})),
    "wav": Container("wav", "wav", frozenset(), frozenset({"pcm_s16le"})),
    "ogg": Container("ogg", "ogg", frozenset(), frozenset({"opus"})),
}
"""CI `Container.Format` -> muxer and what it holds."""

AUDIO_ONLY_FORMATS: Final = frozenset(k for k, c in CONTAINERS.items() if not c.video)

SAMPLE_RATES: Final = frozenset(
    {8000, 11025, 12000, 16000, 22050, 24000, 32000, 44100, 48000, 88200, 96000}
)

DEFAULT_AUDIO_CODEC: Final[dict[str, str]] = {
    "mp3": "mp3",
    "flac": "flac",
    "wav": "pcm_s16le",
    "ogg": "opus",
    "webm": "opus",
}
"""An output format's audio codec when `Audio.Codec` is absent (else aac)."""

DEFAULT_VIDEO_CODEC: Final[dict[str, str]] = {"webm": "VP9"}
"""An output format's video codec when `Video.Codec` is absent (else H.264)."""


def combination_error(format_name: str, video: str | None, audio: str | None) -> str | None:
    """Why `format_name` cannot hold these codecs, or None when it can."""
    container = CONTAINERS[format_name]
    if video is not None and video not in container.video:
        if not container.video:
            return f"the {format_name} container holds no video; remove the video stream"
        return f"the {format_name} container cannot hold {video} video"
    if audio is not None and audio not in container.audio:
        return f"the {format_name} container cannot hold {audio} audio"
    if audio is not None and audio not in AUDIO_ENCODERS:
        return f"the CI emulator has no {audio} encoder"
    return None
