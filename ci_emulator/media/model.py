"""What a validated media job asks for: plain, frozen, picklable values.

Submit-time validation (`media.validate`) turns a `<Request>` into a `MediaRequest`; the runner
resolves its object keys to files and hands a `MediaTask` to a worker process, which may see
nothing but these values (no lxml element, no emulator state crosses the process boundary).
Every size is in pixels, every time in seconds, every bit rate in kbps, as on CI's wire.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from fractions import Fraction
from typing import Literal, TypeAlias


@dataclass(frozen=True)
class ObjectRef:
    """An object in one of the emulator's buckets (an input, a fragment, a watermark image)."""

    bucket: str
    region: str
    key: str


@dataclass(frozen=True)
class TimeSpan:
    """`TimeInterval{Start, Duration}`: the part of the input used; None = to the end."""

    start: float = 0.0
    duration: float | None = None


@dataclass(frozen=True)
class VideoSpec:
    """Transcode `Video` (appendix A.3), defaults applied where CI documents one."""

    codec: str = "H.264"
    width: int | None = None
    height: int | None = None
    long_short_mode: bool = False
    """`LongShortMode`: Width is the long side and Height the short side, whatever the
    orientation of the input."""
    fps: Fraction | None = None
    bitrate_kbps: int | None = None
    crf: int | None = None
    gop: int | None = None
    preset: str | None = None
    profile: str | None = None
    pix_fmt: str | None = None


@dataclass(frozen=True)
class AudioSpec:
    """Transcode `Audio` (appendix A.3)."""

    codec: str = "aac"
    sample_rate: int | None = None
    bitrate_kbps: int | None = None
    channels: int | None = None


@dataclass(frozen=True)
class ColourTags:
    """Colour description written into the output (SDRtoHDR's approximation)."""

    primaries: str
    transfer: str
    space: str
    pix_fmt: str | None = None


@dataclass(frozen=True)
class EncodeSpec:
    """Everything the shared decode -> filter -> encode pipeline needs for one output."""

    format: str
    """CI's Container.Format (`mp4`, `hls`, `flv`, `mkv`, `webm`, `mp3`, `m4a`, ...)."""
    video: VideoSpec | None
    """None: the output has no video (Video absent, or `Remove` true)."""
    audio: AudioSpec | None
    span: TimeSpan = TimeSpan()
    hls_time_s: float | None = None
    """Segment length for hls (`Container.ClipConfig.Duration` or `Video.HlsTsTime`)."""


# ---- overlays (Watermark) -------------------------------------------------------------------


@dataclass(frozen=True)
class ImageMark:
    source: ObjectRef
    mode: str = "Proportion"
    """`Original` (image size), `Proportion` (Width/Height are % of the video), `Fixed` (px)."""
    width: float | None = None
    height: float | None = None


@dataclass(frozen=True)
class TextMark:
    text: str
    font_size: int = 16
    font_color: str = "0xFFFFFF"


@dataclass(frozen=True)
class WatermarkSpec:
    kind: Literal["Image", "Text"]
    pos: str
    loc_mode: str
    dx: float
    dy: float
    start: float | None = None
    end: float | None = None
    opacity: float = 1.0
    """`Transparency` as 0..1 (CI: 1..100, 100 = opaque)."""
    image: ImageMark | None = None
    text: TextMark | None = None


# ---- per-kind parameters ---------------------------------------------------------------------


@dataclass(frozen=True)
class TranscodeParams:
    encode: EncodeSpec
    watermarks: tuple[WatermarkSpec, ...] = ()


@dataclass(frozen=True)
class SpriteSpec:
    cell_width: int | None
    cell_height: int | None
    columns: int
    lines: int
    margin: int
    padding: int
    color: str
    scale_method: str


@dataclass(frozen=True)
class SnapshotParams:
    mode: str
    start: float
    interval: float | None
    count: int | None
    width: int | None
    height: int | None
    snapshots: bool
    """Write single pictures (`SnapshotOutMode` OnlySnapshot or SnapshotAndSprite)."""
    sprite: SpriteSpec | None
    check_count: bool = False
    check_black: bool = False
    black_level: int = 100
    pixel_black_threshold: int = 0


@dataclass(frozen=True)
class AnimationParams:
    format: str
    width: int | None
    height: int | None
    fps: Fraction | None
    keyframes_only: bool
    interval_of_frame: float | None
    frames_per_second: float | None
    quality: int | None
    span: TimeSpan


@dataclass(frozen=True)
class ConcatParams:
    """Fragments in play order (Mode Start, the input, Mode End), re-encoded as `encode`."""

    fragments: tuple[tuple[ObjectRef, TimeSpan], ...]
    encode: EncodeSpec
    fade_s: float | None = None


@dataclass(frozen=True)
class SegmentParams:
    format: str
    duration: float | None
    span: TimeSpan


@dataclass(frozen=True)
class StreamExtractParams:
    streams: tuple[tuple[int, str], ...]
    """(stream Index, output object key) pairs."""


@dataclass(frozen=True)
class SmartCoverParams:
    format: str
    width: int | None
    height: int | None
    count: int
    delete_duplicates: bool


@dataclass(frozen=True)
class VoiceSeparateParams:
    mode: str
    audio: AudioSpec


@dataclass(frozen=True)
class EnhanceParams:
    """SDRtoHDR, SuperResolution, VideoProcess and VideoEnhance: filters over a transcode."""

    encode: EncodeSpec
    hdr_mode: str | None = None
    super_resolution: str | None = None
    scale_up: bool = True
    contrast: int | None = None
    saturation: int | None = None
    correction: int | None = None
    sharpen: int | None = None
    frame_doubling: bool = False
    watermarks: tuple[WatermarkSpec, ...] = ()


@dataclass(frozen=True)
class MontageParams:
    encode: EncodeSpec
    duration: float


@dataclass(frozen=True)
class DigitalWatermarkParams:
    message: str
    encode: EncodeSpec


@dataclass(frozen=True)
class ExtractDigitalWatermarkParams:
    type: str = "Text"
    version: str = "V1"


Params: TypeAlias = (
    TranscodeParams
    | SnapshotParams
    | AnimationParams
    | ConcatParams
    | SegmentParams
    | StreamExtractParams
    | SmartCoverParams
    | VoiceSeparateParams
    | EnhanceParams
    | MontageParams
    | DigitalWatermarkParams
    | ExtractDigitalWatermarkParams
)


@dataclass(frozen=True)
class OutputSpec:
    """`Operation.Output`: where files go; keys are templates with CI's placeholders."""

    bucket: str
    region: str
    object: str | None
    sprite_object: str | None = None
    au_object: str | None = None
    bass_object: str | None = None
    drum_object: str | None = None


@dataclass(frozen=True)
class MediaRequest:
    """A validated media job: its kind, its parameters and its output."""

    tag: str
    params: Params
    output: OutputSpec | None
    """None only for kinds that write no file (ExtractDigitalWatermark)."""
    extra_inputs: tuple[ObjectRef, ...] = field(default=())
    """Objects besides Input.Object the job reads (fragments, watermark images): resolved to
    files when the job starts, and a missing one fails the job like a missing input."""
