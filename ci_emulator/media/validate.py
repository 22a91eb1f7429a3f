"""Submit-time validation of every typed media kind of the job catalogue, the way CI refuses.

`parse_media(tag, operation, ...)` turns a `<Request>`'s `Operation` into a `MediaRequest` or
raises `CiError`: InvalidArgument 400 for a missing required node, a value outside its
enumeration or range, a key that cannot name an object, an output bucket that is not bound to
CI, or a `${Number}` rule broken; NotImplemented 501 for what the emulator cannot honour
(templates, HLS encryption). Required nodes follow the catalogue (appendix A; ★ in §1.3).
Choices where the catalogue is silent or UNCONFIRMED are marked at the parser that makes them.

Nodes the catalogue lists but the emulator does not act on (TransConfig, AudioMix, Subtitles,
SlideConfig, CIParam, ...) are accepted and echoed, as CI's XML binding accepts them; the
README's emulator section lists what each kind approximates.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Final

from lxml import etree

from ci_emulator.errors import CiError, invalid_argument
from ci_emulator.media import codecs, placeholders
from ci_emulator.media.fields import (
    MAX_SECONDS,
    BucketLookup,
    Node,
    cos_url,
    key_template,
    no_templates,
    output_bucket,
    time_span,
)
from ci_emulator.media.model import (
    AnimationParams,
    AudioSpec,
    ConcatParams,
    DigitalWatermarkParams,
    EncodeSpec,
    EnhanceParams,
    ExtractDigitalWatermarkParams,
    ImageMark,
    MediaRequest,
    MontageParams,
    ObjectRef,
    OutputSpec,
    Params,
    SegmentParams,
    SmartCoverParams,
    SnapshotParams,
    SpriteSpec,
    StreamExtractParams,
    TextMark,
    TimeSpan,
    TranscodeParams,
    VideoSpec,
    VoiceSeparateParams,
    WatermarkSpec,
)

SIDE_MIN, SIDE_MAX = 128, 4096
"""Output width/height range CI documents for Transcode (and uses for pictures); even only."""
MAX_WATERMARKS: Final = 3
WATERMARK_POSITIONS: Final = frozenset(
    {"TopLeft", "Top", "TopRight", "Left", "Center", "Right", "BottomLeft", "Bottom",
     "BottomRight"}
)  # fmt: skip
X264_PRESETS: Final = frozenset(
    {"ultrafast", "superfast", "veryfast", "faster", "fast", "medium", "slow", "slower",
     "veryslow"}
)  # fmt: skip
PROFILES: Final = frozenset({"baseline", "main", "high"})
PIX_FMTS: Final = frozenset({"yuv420p", "yuv422p", "yuv444p", "yuvj420p", "yuvj422p", "yuvj444p"})
SMART_COVER_COUNT: Final = 3
"""Covers a SmartCover job writes without `Count`: "默认值 3", range [1, 10], in CI's SmartCover
job doc (CreateMediaJobs, Operation.SmartCover.Count) and its CreateWorkflow node."""
VOICE_MODES: Final = ("IsAudio", "IsBackground", "AudioAndBackground")
_MESSAGE: Final = re.compile(r"^[A-Za-z0-9_*-]{1,64}$")
_COLOR: Final = re.compile(r"^(?:(?:#|0x)?[0-9A-Fa-f]{6}|[A-Za-z]{3,20})$")
_FONT_COLOR: Final = re.compile(r"^(?:#|0x)[0-9A-Fa-f]{6}$")

Parser = Callable[[Node, "Context"], MediaRequest]


class Context:
    """What a per-kind parser may consult besides the Operation: the input key and buckets."""

    def __init__(self, tag: str, input_ref: ObjectRef | None, buckets: BucketLookup) -> None:
        self.tag = tag
        self.input_ref = input_ref
        self.buckets = buckets
        self.extra_inputs: list[ObjectRef] = []


def parse_media(
    tag: str,
    operation: etree._Element | None,
    *,
    input_ref: ObjectRef | None,
    buckets: BucketLookup,
) -> MediaRequest:
    """Validate `Operation` for `tag` (one of `PARSERS`); CiError as CI would answer."""
    if operation is None:
        raise invalid_argument("Operation is required")
    return PARSERS[tag](Node(operation, "Operation"), Context(tag, input_ref, buckets))


# ---- shared leaves ---------------------------------------------------------------------------


def _output(
    operation: Node, context: Context, *, number: bool | None = False, object_required: bool = True
) -> OutputSpec:
    node = operation.require("Output")
    bucket, region = output_bucket(node, context.buckets)
    key = key_template(node, "Object", number=number)
    if key is None and object_required:
        raise invalid_argument("Operation.Output.Object is required")
    return OutputSpec(
        bucket,
        region,
        key,
        sprite_object=key_template(node, "SpriteObject", number=True),
        au_object=key_template(node, "AuObject", number=False),
        bass_object=key_template(node, "BassObject", number=False),
        drum_object=key_template(node, "DrumObject", number=False),
    )


def _format_from_key(key: str | None, *, default: str, allowed: frozenset[str]) -> str:
    """The container an output key's extension names (`.mkv` -> mkv), else `default`."""
    ext = placeholders.extension(key or "")
    aliases = {"m3u8": "hls", "mka": "mkv", "m4v": "mp4"}
    name = aliases.get(ext or "", ext or "")
    return name if name in allowed else default


def _side(node: Node, name: str) -> int | None:
    return node.integer(name, SIDE_MIN, SIDE_MAX, even=True)


def _video(node: Node | None, format_name: str) -> VideoSpec | None:
    """`Video`; None when absent or `Remove` is true (catalogue A.4: absent = removed)."""
    if node is None or node.flag("Remove"):
        return None
    default_codec = codecs.DEFAULT_VIDEO_CODEC.get(format_name, "H.264")
    return VideoSpec(
        codec=node.enum("Codec", codecs.VIDEO_CODECS, default_codec) or default_codec,
        width=_side(node, "Width"),
        height=_side(node, "Height"),
        long_short_mode=node.flag("LongShortMode"),
        fps=node.rate("Fps", 60),
        bitrate_kbps=node.integer("Bitrate", 10, 50000),
        crf=node.integer("Crf", 0, 51),
        gop=node.integer("Gop", 1, 100000),
        preset=node.enum("Preset", X264_PRESETS),
        profile=node.enum("Profile", PROFILES),
        pix_fmt=node.enum("Pixfmt", PIX_FMTS),
    )


def _audio(node: Node | None, format_name: str) -> AudioSpec | None:
    if node is None or node.flag("Remove"):
        return None
    return _audio_config(node, format_name)


def _audio_config(node: Node | None, format_name: str) -> AudioSpec:
    default_codec = codecs.DEFAULT_AUDIO_CODEC.get(format_name, "aac")
    if node is None:
        return AudioSpec(codec=default_codec)
    rate = node.integer("Samplerate", 8000, 96000)
    if rate is not None and rate not in codecs.SAMPLE_RATES:
        raise invalid_argument(f"{node.path}.Samplerate {rate} is not a supported sample rate")
    return AudioSpec(
        codec=node.enum("Codec", codecs.AUDIO_CODECS, default_codec) or default_codec,
        sample_rate=rate,
        bitrate_kbps=node.integer("Bitrate", 8, 1000),
        channels=node.integer("Channels", 1, 8),
    )


def _container_format(node: Node, *, required: bool = True) -> str | None:
    container = node.require("Container") if required else node.child("Container")
    if container is None:
        return None
    return container.required_enum("Format", codecs.CONTAINERS)


def _encode(transcode: Node) -> EncodeSpec:
    """A `Transcode` node (Container required; Video/Audio absent = stream removed)."""
    format_name = _container_format(transcode) or "mp4"
    video_node = transcode.child("Video")
    video = _video(video_node, format_name)
    audio = _audio(transcode.child("Audio"), format_name)
    if video is None and audio is None:
        raise invalid_argument(f"{transcode.path} removes both the video and the audio stream")
    clip = transcode.child("Container")
    hls_time = None
    if clip is not None and (config := clip.child("ClipConfig")) is not None:
        hls_time = config.number("Duration", 0, 3600, open_low=True)
    if video_node is not None and hls_time is None:
        hls_time = video_node.number("HlsTsTime", 0, 3600, open_low=True)
    return EncodeSpec(
        format=format_name,
        video=video,
        audio=audio,
        span=time_span(transcode.child("TimeInterval")),
        hls_time_s=hls_time,
    )


def _default_encode(output: OutputSpec) -> EncodeSpec:
    """The encoding of a kind that has no Transcode node: the output key's container with its
    default codecs, video size and rate kept (what the approximated kinds write)."""
    allowed = frozenset(k for k, c in codecs.CONTAINERS.items() if c.video)
    format_name = _format_from_key(output.object, default="mp4", allowed=allowed)
    return EncodeSpec(
        format=format_name,
        video=VideoSpec(codec=codecs.DEFAULT_VIDEO_CODEC.get(format_name, "H.264")),
        audio=AudioSpec(codec=codecs.DEFAULT_AUDIO_CODEC.get(format_name, "aac")),
    )


def _watermarks(operation: Node, context: Context) -> tuple[WatermarkSpec, ...]:
    nodes = operation.children("Watermark")
    if len(nodes) > MAX_WATERMARKS:
        raise invalid_argument(f"at most {MAX_WATERMARKS} Operation.Watermark nodes are allowed")
    return tuple(_watermark(node, context) for node in nodes)


def _watermark(node: Node, context: Context) -> WatermarkSpec:
    kind = node.required_enum("Type", ("Text", "Image"))
    pos = node.required_enum("Pos", WATERMARK_POSITIONS)
    loc_mode = node.required_enum("LocMode", ("Relativity", "Absolute"))
    high = 100.0 if loc_mode == "Relativity" else 4096.0
    dx = node.number("Dx", 0, high)
    if dx is None:
        raise invalid_argument(f"{node.path}.Dx is required")
    # Dy: the docs' table is cut off before it (UNCONFIRMED required); tolerant: default 0.
    dy = node.number("Dy", 0, high) or 0.0
    start = node.number("StartTime", 0, MAX_SECONDS)
    end = node.number("EndTime", 0, MAX_SECONDS)
    if start is not None and end is not None and end <= start:
        raise invalid_argument(f"{node.path}.EndTime must be after StartTime")
    image = text = None
    opacity = 1.0
    if kind == "Image":
        image_node = node.require("Image")
        mode = image_node.enum("Mode", ("Original", "Proportion", "Fixed"), "Proportion")
        limit = 100.0 if mode == "Proportion" else 4096.0
        image = ImageMark(
            source=cos_url(image_node, "Url", context.buckets),
            mode=mode or "Proportion",
            width=image_node.number("Width", 0, limit, open_low=True),
            height=image_node.number("Height", 0, limit, open_low=True),
        )
        context.extra_inputs.append(image.source)
        opacity = (image_node.integer("Transparency", 1, 100) or 100) / 100
    else:
        text_node = node.require("Text")
        content = text_node.required_text("Text", strip=False)
        if len(content) > 256:
            raise invalid_argument(f"{text_node.path}.Text is longer than 256 characters")
        color = text_node.text("FontColor") or "0xFFFFFF"
        if not _FONT_COLOR.match(color):
            raise invalid_argument(f"{text_node.path}.FontColor must look like 0xRRGGBB")
        text = TextMark(content, text_node.integer("FontSize", 5, 100) or 16, color)
        opacity = (text_node.integer("Transparency", 1, 100) or 100) / 100
    return WatermarkSpec(
        "Image" if kind == "Image" else "Text", pos, loc_mode, dx, dy, start, end, opacity,
        image, text,
    )  # fmt: skip


def _request(context: Context, params: Params, output: OutputSpec | None) -> MediaRequest:
    return MediaRequest(context.tag, params, output, extra_inputs=tuple(context.extra_inputs))


# ---- per kind --------------------------------------------------------------------------------


def _transcode(operation: Node, context: Context) -> MediaRequest:
    no_templates(operation, "WatermarkTemplateId")
    encode = _encode(operation.require("Transcode"))
    if (remove := operation.child("RemoveWatermark")) is not None:
        for name in ("Dx", "Dy", "Width", "Height"):
            if remove.integer(name, 1, 4096) is None:
                raise invalid_argument(f"{remove.path}.{name} is required")
    marks = _watermarks(operation, context)
    output = _output(operation, context)
    return _request(context, TranscodeParams(encode, marks), output)


def _snapshot(operation: Node, context: Context) -> MediaRequest:
    no_templates(operation)
    node = operation.require("Snapshot")
    # Mode: required in two doc variants, optional with default Interval in three
    # (catalogue §1.4 item 2): tolerant reading, default Interval.
    mode = node.enum("Mode", ("Interval", "Average", "KeyFrame"), "Interval") or "Interval"
    out_mode = node.enum(
        "SnapshotOutMode", ("OnlySnapshot", "OnlySprite", "SnapshotAndSprite"), "OnlySnapshot"
    )
    count = node.integer("Count", 1, 10000)
    if mode == "Average" and count is None:
        raise invalid_argument("Operation.Snapshot.Count is required when Mode is Average")
    sprite = None
    if out_mode != "OnlySnapshot":
        config = node.require("SpriteSnapshotConfig")
        columns = config.integer("Columns", 1, 10000)
        lines = config.integer("Lines", 1, 10000)
        if columns is None or lines is None:
            raise invalid_argument(f"{config.path} needs Columns and Lines")
        color = config.text("Color") or "White"
        if not _COLOR.match(color):
            raise invalid_argument(f"{config.path}.Color must be a colour name or RRGGBB")
        sprite = SpriteSpec(
            cell_width=config.integer("CellWidth", 8, 4096, even=True),
            cell_height=config.integer("CellHeight", 8, 4096, even=True),
            columns=columns,
            lines=lines,
            margin=config.integer("Margin", 0, 1024) or 0,
            padding=config.integer("Padding", 0, 1024) or 0,
            color=color,
            scale_method=config.enum(
                "ScaleMethod", ("DirectScale", "MaxWHScaleAndPad", "MaxWHScale"), "DirectScale"
            )
            or "DirectScale",
        )
    snapshots = out_mode != "OnlySprite"
    output = _output(operation, context, number=True, object_required=snapshots)
    if sprite is not None and output.sprite_object is None:
        raise invalid_argument("Operation.Output.SpriteObject is required for sprites")
    params = SnapshotParams(
        mode=mode,
        start=node.number("Start", 0, MAX_SECONDS) or 0.0,
        interval=node.number("TimeInterval", 0, 3600, open_low=True),
        count=count,
        width=_side(node, "Width"),
        height=_side(node, "Height"),
        snapshots=snapshots,
        sprite=sprite,
        check_count=node.flag("IsCheckCount"),
        check_black=node.flag("IsCheckBlack"),
        # Defaults UNCONFIRMED: skip a frame only when all of it is at most TV-range black.
        black_level=node.integer("BlackLevel", 0, 100) or 100,
        pixel_black_threshold=node.integer("PixelBlackThreshold", 0, 255) or 16,
    )
    return _request(context, params, output)


def _animation(operation: Node, context: Context) -> MediaRequest:
    no_templates(operation)
    node = operation.require("Animation")
    video = node.require("Video")
    codec = video.required_enum("Codec", ("gif", "webp"))
    container = node.child("Container")
    format_name = (container.enum("Format", ("gif", "webp")) if container else None) or codec
    if format_name != codec:
        raise invalid_argument("Operation.Animation.Container.Format must match Video.Codec")
    params = AnimationParams(
        format=codec,
        width=_side(video, "Width"),
        height=_side(video, "Height"),
        fps=video.rate("Fps", 60),
        keyframes_only=video.flag("AnimateOnlyKeepKeyFrame"),
        interval_of_frame=video.number("AnimateTimeIntervalOfFrame", 0, 3600, open_low=True),
        frames_per_second=video.number("AnimateFramesPerSecond", 0, 60, open_low=True),
        quality=video.integer("Quality", 1, 100),
        span=time_span(node.child("TimeInterval")),
    )
    return _request(context, params, _output(operation, context))


def _concat(operation: Node, context: Context) -> MediaRequest:
    no_templates(operation)
    node = operation.require("ConcatTemplate")
    before: list[tuple[ObjectRef, TimeSpan]] = []
    after: list[tuple[ObjectRef, TimeSpan]] = []
    for fragment in node.children("ConcatFragment"):
        ref = cos_url(fragment, "Url", context.buckets)
        mode = fragment.enum("Mode", ("Start", "End"), "Start")
        start = fragment.number("StartTime", 0, MAX_SECONDS) or 0.0
        end = fragment.number("EndTime", 0, MAX_SECONDS)
        if end is not None and end <= start:
            raise invalid_argument(f"{fragment.path}.EndTime must be after StartTime")
        span = TimeSpan(start, None if end is None else end - start)
        (before if mode == "Start" else after).append((ref, span))
        context.extra_inputs.append(ref)
    # The job's own input plays between the Start and the End fragments.
    main = [(context.input_ref, TimeSpan())] if context.input_ref is not None else []
    fragments = (*before, *main, *after)
    if len(fragments) < 2:
        raise invalid_argument("Concat needs at least two clips (ConcatFragment and Input)")
    format_name = _container_format(node) or "mp4"
    # Absent Video/Audio keep the stream with default codecs (a splice keeps both streams;
    # the Transcode rule "absent = removed" is for Transcode). Remove still removes.
    video_node, audio_node = node.child("Video"), node.child("Audio")
    video = VideoSpec() if video_node is None else _video(video_node, format_name)
    audio = (
        _audio_config(None, format_name) if audio_node is None else _audio(audio_node, format_name)
    )
    fade = None
    if (scene := node.child("SceneChangeInfo")) is not None:
        mode = scene.enum("Mode", ("Default", "FADE", "GRADIENT"), "Default")
        time = scene.number("Time", 0, 5, open_low=True) or 3.0
        fade = None if mode == "Default" else time
    node.flag("DirectConcat")
    encode = EncodeSpec(format=format_name, video=video, audio=audio)
    return _request(context, ConcatParams(fragments, encode, fade), _output(operation, context))


def _segment(operation: Node, context: Context) -> MediaRequest:
    no_templates(operation)
    node = operation.require("Segment")
    format_name = node.required_enum("Format", codecs.CONTAINERS)
    duration = node.number("Duration", 0, MAX_SECONDS, open_low=True)
    if (encrypt := node.child("HlsEncrypt")) is not None and encrypt.flag("IsHlsEncrypt"):
        raise CiError("NotImplemented", "the CI emulator does not encrypt HLS segments")
    start = node.number("StartTime", 0, MAX_SECONDS) or 0.0
    end = node.number("EndTime", 0, MAX_SECONDS)
    if end is not None and end <= start:
        raise invalid_argument("Operation.Segment.EndTime must be after StartTime")
    # Several files from one key need ${Number}; hls names its segments after the playlist.
    many = duration is not None and format_name != "hls"
    output = _output(operation, context, number=many)
    span = TimeSpan(start, None if end is None else end - start)
    return _request(context, SegmentParams(format_name, duration, span), output)


def _stream_extract(operation: Node, context: Context) -> MediaRequest:
    node = operation.require("Output")
    bucket, region = output_bucket(node, context.buckets)
    pairs: list[tuple[int, str]] = []
    for extract in node.children("StreamExtract"):
        index = extract.integer("Index", 0, 1000)
        key = key_template(extract, "Object", number=False)
        if index is None or key is None:
            raise invalid_argument(f"{extract.path} needs Index and Object")
        pairs.append((index, key))
    if not pairs:
        raise invalid_argument("Operation.Output.StreamExtract is required")
    output = OutputSpec(bucket, region, None)
    return _request(context, StreamExtractParams(tuple(pairs)), output)


def _watermark_job(operation: Node, context: Context) -> MediaRequest:
    no_templates(operation, "WatermarkTemplateId")
    marks = _watermarks(operation, context)
    if not marks:
        raise invalid_argument("Operation.Watermark is required")
    output = _output(operation, context)
    return _request(context, TranscodeParams(_default_encode(output), marks), output)


def _smart_cover(operation: Node, context: Context) -> MediaRequest:
    no_templates(operation)
    node = operation.child("SmartCover")
    output = _output(operation, context, number=True)
    if node is None:
        return _request(
            context, SmartCoverParams("jpg", None, None, SMART_COVER_COUNT, False), output
        )
    params = SmartCoverParams(
        format=node.enum("Format", ("jpg", "png", "webp"), "jpg") or "jpg",
        width=_side(node, "Width"),
        height=_side(node, "Height"),
        count=node.integer("Count", 1, 10) or SMART_COVER_COUNT,
        delete_duplicates=node.flag("DeleteDuplicates"),
    )
    return _request(context, params, output)


def _voice_separate(operation: Node, context: Context) -> MediaRequest:
    no_templates(operation)
    node = operation.require("VoiceSeparate")
    # AudioMode is "否" (optional) in CI's VoiceSeparate job doc, "是" only in its template doc
    # (templates.KINDS requires it there), and no doc states a job's default (UNCONFIRMED).
    # Tolerant reading: without it the job writes each track its Output names, as
    # AudioAndBackground does (Object the voice, AuObject the background), and needs one of
    # them, as the job doc's Output says (Object and AuObject may not both be empty).
    mode = node.enum("AudioMode", VOICE_MODES)
    output = _output(operation, context, object_required=False)
    if mode is None:
        mode = _voice_mode_of(output)
    if mode != "IsBackground" and output.object is None:
        raise invalid_argument("Operation.Output.Object (the voice track) is required")
    if mode == "AudioAndBackground" and output.au_object is None:
        raise invalid_argument("Operation.Output.AuObject (the background track) is required")
    if mode == "IsBackground" and output.object is None and output.au_object is None:
        raise invalid_argument("Operation.Output.AuObject (the background track) is required")
    format_name = _format_from_key(
        output.object or output.au_object, default="mp3", allowed=codecs.AUDIO_ONLY_FORMATS
    )
    audio = _audio_config(node.child("AudioConfig"), format_name)
    return _request(context, VoiceSeparateParams(mode, audio), output)


def _voice_mode_of(output: OutputSpec) -> str:
    """The AudioMode that writes exactly the voice and background tracks `output` names."""
    if output.object is None and output.au_object is None:
        raise invalid_argument(
            "Operation.Output.Object (the voice track) or AuObject (the background track) is "
            "required"
        )
    if output.object is None:
        return "IsBackground"
    return "IsAudio" if output.au_object is None else "AudioAndBackground"


def _inline_transcode(operation: Node, *, required: bool, output: OutputSpec) -> EncodeSpec:
    """The transcode parameters of an enhancement: inline `Transcode` (TranscodeTemplateId is
    NotImplemented: no templates); required for SuperResolution and SDRtoHDR."""
    node = operation.child("Transcode")
    if node is None:
        if required:
            raise invalid_argument("Operation.Transcode (or TranscodeTemplateId) is required")
        return _default_encode(output)
    encode = _encode(node)
    if encode.video is None:
        raise invalid_argument(f"{node.path}.Video must not be removed by a video enhancement")
    return encode


def _sdr_to_hdr(operation: Node, context: Context) -> MediaRequest:
    no_templates(operation, "TranscodeTemplateId")
    mode = operation.require("SDRtoHDR").required_enum("HdrMode", ("HLG", "HDR10"))
    output = _output(operation, context)
    encode = _inline_transcode(operation, required=True, output=output)
    return _request(context, EnhanceParams(encode, hdr_mode=mode), output)


def _super_resolution(operation: Node, context: Context) -> MediaRequest:
    no_templates(operation, "TranscodeTemplateId", "WatermarkTemplateId")
    node = operation.require("SuperResolution")
    resolution = node.required_enum("Resolution", ("sdtohd", "hdto4k"))
    output = _output(operation, context)
    encode = _inline_transcode(operation, required=True, output=output)
    params = EnhanceParams(
        encode,
        super_resolution=resolution,
        scale_up=node.flag("EnableScaleUp", default=True),
        watermarks=_watermarks(operation, context),
    )
    return _request(context, params, output)


def _colour_and_sharpen(parent: Node) -> dict[str, int | None]:
    values: dict[str, int | None] = {}
    if (colour := parent.child("ColorEnhance")) is not None and colour.flag("Enable", True):
        values["contrast"] = colour.integer("Contrast", 0, 100) or 0
        values["correction"] = colour.integer("Correction", 0, 100) or 0
        values["saturation"] = colour.integer("Saturation", 0, 100) or 0
    if (sharpen := parent.child("MsSharpen")) is not None and sharpen.flag("Enable", True):
        values["sharpen"] = sharpen.integer("SharpenLevel", 0, 10) or 5
    return values


def _video_process(operation: Node, context: Context) -> MediaRequest:
    no_templates(operation, "TranscodeTemplateId")
    node = operation.require("VideoProcess")
    values = _colour_and_sharpen(node)
    if not values:
        raise invalid_argument("Operation.VideoProcess enables neither ColorEnhance nor MsSharpen")
    output = _output(operation, context)
    encode = _inline_transcode(operation, required=False, output=output)
    return _request(context, EnhanceParams(encode, **values), output)  # type: ignore[arg-type]


def _video_enhance(operation: Node, context: Context) -> MediaRequest:
    no_templates(operation)
    node = operation.require("VideoEnhance")
    output = _output(operation, context)
    encode = _inline_transcode(node, required=False, output=output)
    values = _colour_and_sharpen(node)
    resolution = hdr = None
    if (sr := node.child("SuperResolution")) is not None:
        resolution = sr.required_enum("Resolution", ("sdtohd", "hdto4k"))
    if (sdr := node.child("SDRtoHDR")) is not None:
        hdr = sdr.required_enum("HdrMode", ("HLG", "HDR10"))
    doubling = (frame := node.child("FrameEnhance")) is not None and frame.flag("FrameDoubling")
    if not (values or resolution or hdr or doubling or node.child("Transcode") is not None):
        raise invalid_argument("Operation.VideoEnhance enables no enhancement")
    params = EnhanceParams(
        encode,
        hdr_mode=hdr,
        super_resolution=resolution,
        frame_doubling=doubling,
        **values,  # type: ignore[arg-type]
    )
    return _request(context, params, output)


def _video_montage(operation: Node, context: Context) -> MediaRequest:
    no_templates(operation)
    node = operation.require("VideoMontage")
    format_name = _container_format(node, required=False) or "mp4"
    video_node, audio_node = node.child("Video"), node.child("Audio")
    video = VideoSpec() if video_node is None else _video(video_node, format_name)
    audio = (
        _audio_config(None, format_name) if audio_node is None else _audio(audio_node, format_name)
    )
    if video is None:
        raise invalid_argument("Operation.VideoMontage.Video must not be removed")
    # Duration: the reel's length; the default (30 s) is UNCONFIRMED. Scene is free text.
    duration = node.number("Duration", 0, MAX_SECONDS, open_low=True) or 30.0
    node.text("Scene")
    encode = EncodeSpec(format=format_name, video=video, audio=audio)
    return _request(context, MontageParams(encode, duration), _output(operation, context))


def _digital_watermark_node(operation: Node) -> str:
    node = operation.require("DigitalWatermark")
    message = node.required_text("Message")
    if not _MESSAGE.match(message):
        raise invalid_argument(
            "Operation.DigitalWatermark.Message must be 1-64 of A-Z a-z 0-9 _ * -"
        )
    node.required_enum("Type", ("Text",))
    node.required_enum("Version", ("V1",))
    node.flag("IgnoreError")
    return message


def _digital_watermark(operation: Node, context: Context) -> MediaRequest:
    no_templates(operation)
    message = _digital_watermark_node(operation)
    output = _output(operation, context)
    params = DigitalWatermarkParams(message, _default_encode(output))
    return _request(context, params, output)


def _extract_digital_watermark(operation: Node, context: Context) -> MediaRequest:
    no_templates(operation)
    node = operation.require("ExtractDigitalWatermark")
    params = ExtractDigitalWatermarkParams(
        type=node.enum("Type", ("Text",), "Text") or "Text",
        version=node.enum("Version", ("V1",), "V1") or "V1",
    )
    output = None
    if operation.child("Output") is not None:  # no file is written; accepted if sent
        output = _output(operation, context, object_required=False)
    return _request(context, params, output)


PARSERS: Final[dict[str, Parser]] = {
    "Transcode": _transcode,
    "Snapshot": _snapshot,
    "Animation": _animation,
    "Concat": _concat,
    "Segment": _segment,
    "StreamExtract": _stream_extract,
    "Watermark": _watermark_job,
    "SmartCover": _smart_cover,
    "VoiceSeparate": _voice_separate,
    "SDRtoHDR": _sdr_to_hdr,
    "SuperResolution": _super_resolution,
    "VideoProcess": _video_process,
    "VideoEnhance": _video_enhance,
    "VideoMontage": _video_montage,
    "DigitalWatermark": _digital_watermark,
    "ExtractDigitalWatermark": _extract_digital_watermark,
}

MEDIA_TAGS: Final = frozenset(PARSERS)
INPUT_OPTIONAL_TAGS: Final = frozenset({"Concat"})
"""Kinds whose `Input` may be absent (the Go SDK's Concat example sends none)."""
