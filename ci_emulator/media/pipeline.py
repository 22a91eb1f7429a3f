"""The one decode -> filter -> encode loop every re-encoding kind runs (in a worker process).

    clips (file, TimeSpan)* --demux/decode--> video: FFmpeg filter graph (fps, scale, kind
    filters, overlays, format) --> encoder;  audio: resampler --> encoder --> muxer

Transcode uses it with one clip, Concat with several (frames renumbered so the clips follow
each other), Watermark and the enhancement kinds add filters or overlays. It runs FFmpeg's
own decoders (frame threads), scaler and encoders (x264 with its default threading), so the
work done is the work `ffmpeg -i in -vf scale=... -c:v libx264 ... out` does; Python touches
each frame once, to hand it on (`bench/transcode.py` measures the difference).

Output timing: video always passes an `fps` filter, so frames leave the graph at a constant
rate and are numbered 0, 1, 2, ... in `1/fps` (continuous across Concat clips); audio is
numbered by samples. A clip's `TimeSpan` is applied by seeking to its start and dropping what
lies outside it.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Any, Final

import av
import av.filter

from ci_emulator.media import codecs
from ci_emulator.media.errors import INVALID_MEDIA, MediaFailure, invalid
from ci_emulator.media.model import AudioSpec, ColourTags, EncodeSpec, TimeSpan, VideoSpec
from ci_emulator.media.progress import Progress
from ci_emulator.media.sources import duration_s, open_input

DEFAULT_FPS: Final = Fraction(25)
DEFAULT_AUDIO_KBPS: Final = 128
DEFAULT_CRF: Final = 23
"""x264's and FFmpeg's default, so "no Crf, no Bitrate" encodes as `ffmpeg -c:v libx264`."""
QUEUE_FRAMES: Final = 16
"""Decoded frames waiting for the encoder: enough to keep both busy, little memory."""
MAX_FRAMES: Final = 2_000_000
"""A bound on frames written per output (over 22 hours at 25 fps): no loop runs for ever."""

_OPUS_RATES: Final = (8000, 12000, 16000, 24000, 48000)
_MP3_MAX_RATE: Final = 48000
_COLOUR_CODES: Final[dict[str, int]] = {
    "bt709": 1,
    "bt2020": 9,
    "bt2020nc": 9,
    "smpte2084": 16,
    "arib-std-b67": 18,
}


@dataclass(frozen=True)
class Clip:
    path: str
    span: TimeSpan = field(default_factory=TimeSpan)


@dataclass(frozen=True)
class Overlay:
    """A picture laid over the video: an RGBA frame, where, and when (seconds)."""

    frame: Any
    x: int
    y: int
    start: float | None = None
    end: float | None = None


@dataclass
class VideoFilters:
    """What a kind adds to the video graph, between the scaler and the output format."""

    steps: list[tuple[str, str]] = field(default_factory=list)
    """FFmpeg filters (name, args) after `scale`."""
    overlays: Callable[[int, int], list[Overlay]] | None = None
    """Built once the output size is known: (width, height) -> overlays."""
    size: Callable[[int, int], tuple[int, int]] | None = None
    """Overrides the output size: (source width, source height) -> (width, height)."""
    fps_factor: int = 1
    """Frame doubling (VideoEnhance.FrameEnhance): output rate = source rate x factor."""
    scale_flags: str = "bicubic"
    """swscale algorithm (SuperResolution's approximation uses lanczos)."""
    fade_s: float | None = None
    """Fade each clip in and out over this long (Concat's SceneChangeInfo)."""


@dataclass(frozen=True)
class _Source:
    width: int
    height: int
    fps: Fraction
    has_video: bool
    has_audio: bool
    sample_rate: int
    channels: int
    duration_s: float


def target_size(width: int, height: int, video: VideoSpec) -> tuple[int, int]:
    """Output size: both sides given, one side (the other keeps the aspect ratio, rounded to
    even), or neither (the input's, made even); `LongShortMode` reads Width as the long side."""
    want_w, want_h = video.width, video.height
    if video.long_short_mode and height > width:
        want_w, want_h = want_h, want_w
    if want_w and want_h:
        return want_w, want_h
    if want_w:
        return want_w, _even(height * want_w / width)
    if want_h:
        return _even(width * want_h / height), want_h
    return _even(width), _even(height)


def _even(value: float) -> int:
    return max(2, round(value / 2) * 2)


def encode(
    clips: Sequence[Clip],
    out_path: Path,
    spec: EncodeSpec,
    progress: Progress,
    *,
    filters: VideoFilters | None = None,
    colour: ColourTags | None = None,
    metadata: dict[str, str] | None = None,
    segment_pattern: str | None = None,
) -> None:
    """Write `clips`, one after another, to `out_path` as `spec` says.

    `segment_pattern` is the segment file pattern for hls (`<stem>-%d.ts` in the staging
    folder). Raises MediaFailure for what the job must fail with.
    """
    filters = filters or VideoFilters()
    container = codecs.CONTAINERS[spec.format]
    error = codecs.combination_error(
        spec.format,
        spec.video.codec if spec.video else None,
        spec.audio.codec if spec.audio else None,
    )
    if error:
        raise invalid(error)
    sources = [_inspect(clip) for clip in clips]
    first_video = next((s for s in sources if s.has_video), None)
    write_video = spec.video is not None and first_video is not None
    write_audio = spec.audio is not None and any(s.has_audio for s in sources)
    if not write_video and not write_audio:
        raise invalid("the input has none of the streams the output should hold")
    total = sum(
        _clip_seconds(clip.span, source) for clip, source in zip(clips, sources, strict=True)
    )
    options = _muxer_options(spec, segment_pattern, metadata)
    with av.open(str(out_path), "w", format=container.muxer, container_options=options) as out:
        if metadata:
            out.metadata.update(metadata)
        video_out = audio_out = None
        size = (0, 0)
        fps = DEFAULT_FPS
        if write_video and spec.video is not None and first_video is not None:
            size = (
                filters.size(first_video.width, first_video.height)
                if filters.size
                else target_size(first_video.width, first_video.height, spec.video)
            )
            fps = (spec.video.fps or first_video.fps) * filters.fps_factor
            video_out = _video_stream(out, spec.video, size, fps, colour)
            if spec.format == "hls" and spec.video.gop is None:
                # A segment starts at a key frame: one every segment length, as CI's are.
                video_out.codec_context.gop_size = max(1, round(fps * (spec.hls_time_s or 10)))
        if write_audio and spec.audio is not None:
            reference = next(s for s in sources if s.has_audio)
            audio_out = _audio_stream(out, spec.audio, reference)
        writer = _Writer(out, video_out, audio_out, fps, progress, total)
        overlays = filters.overlays(*size) if (filters.overlays and video_out) else []
        for clip, source in zip(clips, sources, strict=True):
            writer.clip(clip, source, size, filters, overlays)
        writer.flush()


def _inspect(clip: Clip) -> _Source:
    with open_input(clip.path) as container:
        video = next(iter(container.streams.video), None)
        audio = next(iter(container.streams.audio), None)
        fps = DEFAULT_FPS
        width = height = 0
        if video is not None:
            rate = video.average_rate or video.base_rate
            fps = Fraction(rate) if rate else DEFAULT_FPS
            width, height = int(video.codec_context.width), int(video.codec_context.height)
        rate = int(audio.codec_context.sample_rate) if audio is not None else 0
        channels = int(audio.codec_context.channels) if audio is not None else 0
        return _Source(
            width, height, fps, video is not None and width > 0, audio is not None, rate,
            channels, duration_s(container),
        )  # fmt: skip


def _clip_seconds(span: TimeSpan, source: _Source) -> float:
    available = max(0.0, source.duration_s - span.start)
    return min(available, span.duration) if span.duration is not None else available


def _muxer_options(
    spec: EncodeSpec, segment_pattern: str | None, metadata: dict[str, str] | None
) -> dict[str, str]:
    options: dict[str, str] = {}
    if spec.format == "hls":
        options.update(
            {
                "hls_time": f"{spec.hls_time_s or 10:g}",
                "hls_playlist_type": "vod",
                "hls_list_size": "0",
            }
        )
        if segment_pattern:
            options["hls_segment_filename"] = segment_pattern
    if metadata and spec.format in ("mp4", "mov", "m4a"):
        options["movflags"] = "use_metadata_tags"  # keep keys MP4 has no atom for
    return options


def _video_stream(
    out: Any, video: VideoSpec, size: tuple[int, int], fps: Fraction, colour: ColourTags | None
) -> Any:
    encoder = codecs.VIDEO_ENCODERS[video.codec]
    options: dict[str, str] = {}
    if video.bitrate_kbps is None:
        options["crf"] = str(video.crf if video.crf is not None else DEFAULT_CRF)
        if encoder.startswith("libvpx"):
            options["b"] = "0"  # constant quality for VP8/VP9 needs b=0 beside crf
    if video.preset and encoder in ("libx264", "libx265"):
        options["preset"] = video.preset
    if video.profile and encoder == "libx264":
        options["profile"] = video.profile
    if encoder == "libx265":
        options["x265-params"] = "log-level=error"
    stream = out.add_stream(encoder, rate=fps, options=options)
    stream.width, stream.height = size
    pix_fmt = (colour.pix_fmt if colour and colour.pix_fmt else None) or video.pix_fmt or "yuv420p"
    supported = {f.name for f in (stream.codec_context.codec.video_formats or ())}
    stream.pix_fmt = pix_fmt if not supported or pix_fmt in supported else "yuv420p"
    ctx = stream.codec_context
    if video.bitrate_kbps is not None:
        ctx.bit_rate = video.bitrate_kbps * 1000
    if video.gop is not None:
        ctx.gop_size = video.gop
    ctx.time_base = Fraction(1, 1) / fps
    if colour is not None:
        ctx.color_primaries = _COLOUR_CODES[colour.primaries]
        ctx.color_trc = _COLOUR_CODES[colour.transfer]
        ctx.colorspace = _COLOUR_CODES[colour.space]
        ctx.color_range = 1
    return stream


def _audio_stream(out: Any, audio: AudioSpec, source: _Source) -> Any:
    encoder = codecs.AUDIO_ENCODERS[audio.codec]
    rate = audio.sample_rate or source.sample_rate or 44100
    if encoder == "libopus" and rate not in _OPUS_RATES:
        rate = 48000  # Opus codes only these rates; FFmpeg's CLI resamples the same way
    if encoder == "libmp3lame":
        rate = min(rate, _MP3_MAX_RATE)
    stream = out.add_stream(encoder, rate=rate)
    channels = audio.channels or min(source.channels, 2) or 2
    stream.codec_context.layout = {1: "mono", 2: "stereo"}.get(channels, f"{channels}c")
    if encoder not in ("flac", "pcm_s16le"):
        stream.codec_context.bit_rate = (audio.bitrate_kbps or DEFAULT_AUDIO_KBPS) * 1000
    return stream


class _Writer:
    """Numbers frames across clips, feeds the encoders, reports progress."""

    def __init__(
        self, out: Any, video: Any, audio: Any, fps: Fraction, progress: Progress, total_s: float
    ) -> None:
        self.out, self.video, self.audio, self.fps = out, video, audio, fps
        self.progress = progress
        self.total_s = max(total_s, 1e-6)
        self.frames = 0
        self.samples = 0
        self.done_s = 0.0
        self.resampler: Any = self._resampler() if audio is not None else None

    def clip(
        self,
        clip: Clip,
        source: _Source,
        size: tuple[int, int],
        filters: VideoFilters,
        overlays: list[Overlay],
    ) -> None:
        seconds = _clip_seconds(clip.span, source)
        frames_before, samples_before = self.frames, self.samples
        if self.audio is not None:  # each clip's decoder may differ in format, rate, layout
            self.resampler = self._resampler()
        with open_input(clip.path) as container:
            vs = next(iter(container.streams.video), None) if self.video is not None else None
            as_ = next(iter(container.streams.audio), None) if self.audio is not None else None
            graph = None
            if vs is not None:
                vs.thread_type = "AUTO"
                graph = _Graph(vs, size, self.fps, self.video.pix_fmt, filters, overlays, seconds)
            if clip.span.start > 0:
                container.seek(int(clip.span.start * 1_000_000), backward=True)
            decoded = _Decoded(container, vs, as_, graph, clip.span.start, seconds)
            for kind, frame, relative in decoded.frames():
                if kind == "video":
                    self._video(frame)
                else:
                    self._audio(frame)
                if relative is not None:
                    self.progress.fraction((self.done_s + min(relative, seconds)) / self.total_s)
        if self.audio is not None:
            video_s = float((self.frames - frames_before) / self.fps)
            self._pad_audio(samples_before, video_s, seconds)
        self.done_s += seconds

    def _video(self, frame: Any) -> None:
        if self.frames >= MAX_FRAMES:
            raise invalid(f"the output would exceed {MAX_FRAMES} frames")
        frame.pts = self.frames
        frame.time_base = 1 / self.fps
        self.frames += 1
        self.out.mux(self.video.encode(frame))

    def _audio(self, frame: Any) -> None:
        frame.pts = None
        for out_frame in self.resampler.resample(frame):
            self._audio_out(out_frame)

    def _audio_out(self, frame: Any) -> None:
        rate = self.audio.codec_context.sample_rate
        frame.pts = self.samples
        frame.time_base = Fraction(1, rate)
        self.samples += frame.samples
        self.out.mux(self.audio.encode(frame))

    def _resampler(self) -> Any:
        ctx = self.audio.codec_context
        return av.AudioResampler(
            format=ctx.format.name, layout=ctx.layout.name, rate=ctx.sample_rate
        )

    def _pad_audio(self, samples_before: int, video_s: float, clip_s: float) -> None:
        """A clip without sound (or shorter sound) gets silence, so later clips stay in sync."""
        for out_frame in self.resampler.resample(None):
            self._audio_out(out_frame)
        ctx = self.audio.codec_context
        self.resampler = self._resampler()
        wanted = int(max(float(video_s), clip_s if self.video is None else 0.0) * ctx.sample_rate)
        missing = samples_before + wanted - self.samples
        chunk = 1024
        # Bounded: `missing` shrinks by `chunk` each pass.
        while missing > 0:
            silence = av.AudioFrame(
                format="s16", layout=ctx.layout.name, samples=min(chunk, missing)
            )
            silence.sample_rate = ctx.sample_rate
            for plane in silence.planes:
                plane.update(bytes(plane.buffer_size))
            for out_frame in self.resampler.resample(silence):
                self._audio_out(out_frame)
            missing -= chunk
        for out_frame in self.resampler.resample(None):
            self._audio_out(out_frame)

    def flush(self) -> None:
        if self.video is not None:
            self.out.mux(self.video.encode(None))
        if self.audio is not None:
            self.out.mux(self.audio.encode(None))


class _Decoded:
    """Demux, decode and filter on a thread of its own, handing frames over a bounded queue.

    FFmpeg's decoders, filters and encoders release the GIL while they work, so decoding and
    scaling the next frames overlaps with x264 encoding the last ones (the `ffmpeg` command
    line of FFmpeg 5 runs them one after another in one thread). The queue holds at most
    `QUEUE_FRAMES` frames; an error on either side stops the other (the producer's error is
    raised in the consumer).
    """

    def __init__(
        self, container: Any, video: Any, audio: Any, graph: _Graph | None, start: float,
        seconds: float,
    ) -> None:  # fmt: skip
        self._container, self._video, self._audio, self._graph = container, video, audio, graph
        self._start, self._end = start, start + seconds
        self._queue: queue.Queue[tuple[str, Any, float | None] | None] = queue.Queue(QUEUE_FRAMES)
        self._stop = threading.Event()
        self._error: BaseException | None = None

    def frames(self) -> Iterator[tuple[str, Any, float | None]]:
        """("video" | "audio", frame, seconds into the clip) in decoding order."""
        worker = threading.Thread(target=self._produce, name="media-decode", daemon=True)
        worker.start()
        try:
            # Bounded: the producer always ends with None (in its finally), and it reads a
            # finite file.
            while (item := self._queue.get()) is not None:
                yield item
        finally:
            self._stop.set()
            worker.join()
        if self._error is not None:
            raise self._error

    def _produce(self) -> None:
        try:
            streams = [s for s in (self._video, self._audio) if s is not None]
            for frame in _frames(self._container, streams, self._end):
                time = frame.time
                if time is None or time < self._start - 1e-6:
                    continue
                relative = time - self._start
                if isinstance(frame, av.VideoFrame):
                    assert self._graph is not None
                    frame.pts = round(relative / float(self._video.time_base))
                    for out in self._graph.feed(frame):
                        self._put(("video", out, relative))
                else:
                    self._put(("audio", frame, relative))
                if self._stop.is_set():
                    return
            if self._graph is not None:
                for out in self._graph.feed(None):
                    self._put(("video", out, None))
        except BaseException as exc:  # handed to the consumer, which raises it
            self._error = exc
        finally:
            self._put(None, final=True)

    def _put(self, item: tuple[str, Any, float | None] | None, *, final: bool = False) -> None:
        # Bounded by the consumer: it either takes items or sets `_stop` (then only the final
        # None still needs room, and the consumer has stopped reading: drop the rest).
        while not self._stop.is_set() or final:
            try:
                self._queue.put(item, timeout=0.1)
                return
            except queue.Full:
                if self._stop.is_set():
                    return


def _frames(container: Any, streams: list[Any], end: float) -> Iterator[Any]:
    """Decoded frames of `streams` in file order, until every stream is past `end`."""
    finished: set[int] = set()
    try:
        for packet in container.demux(*streams):
            if packet.stream.index in finished:
                continue
            for frame in packet.decode():
                if frame.time is not None and frame.time >= end - 1e-6:
                    finished.add(packet.stream.index)
                    break
                yield frame
            if len(finished) == len(streams):
                return
    except av.error.FFmpegError as exc:
        raise MediaFailure(INVALID_MEDIA, f"the input could not be decoded: {exc}") from exc


class _Graph:
    """The video filter graph of one clip: (scale,) fps, the kind's filters, overlays, format."""

    def __init__(
        self,
        stream: Any,
        size: tuple[int, int],
        fps: Fraction,
        pix_fmt: str,
        filters: VideoFilters,
        overlays: list[Overlay],
        seconds: float,
    ) -> None:
        graph = av.filter.Graph()
        self._graph = graph  # the contexts below die with it: keep it alive
        # Frames are scaled (and converted to the output's pixel format) before the graph,
        # by swscale's frame API, as the `ffmpeg` command line's scale filter does: FFmpeg 8's
        # scale *filter* gave other pixels for the same flags (a mean luma difference of 16 on
        # the benchmark clip) that cost x264 a third more time to encode.
        self._size, self._pix_fmt = size, pix_fmt
        self._interpolation = filters.scale_flags.upper()
        self._source = graph.add_buffer(
            width=size[0], height=size[1], format=av.VideoFormat(pix_fmt),
            time_base=stream.time_base,
        )  # fmt: skip
        chain = [
            ("fps", f"{fps.numerator}/{fps.denominator}"),
            ("setsar", "1"),
            *filters.steps,
        ]
        if filters.fade_s:
            fade = min(filters.fade_s, seconds / 2)
            chain += [
                ("fade", f"t=in:st=0:d={fade:g}"),
                ("fade", f"t=out:st={seconds - fade:g}:d={fade:g}"),
            ]
        last = self._source
        for name, args in chain:
            node = graph.add(name, args)
            last.link_to(node)
            last = node
        self._images: list[tuple[Any, Any]] = []
        for overlay in overlays:
            image = graph.add_buffer(
                width=overlay.frame.width,
                height=overlay.frame.height,
                format=av.VideoFormat("rgba"),
                time_base=Fraction(1, 1000),
            )
            enable = ""
            if overlay.start is not None or overlay.end is not None:
                lo = overlay.start or 0.0
                hi = overlay.end if overlay.end is not None else 1e9
                enable = f":enable='between(t,{lo:g},{hi:g})'"
            mix = graph.add("overlay", f"x={overlay.x}:y={overlay.y}:eof_action=repeat{enable}")
            last.link_to(mix, 0, 0)
            image.link_to(mix, 0, 1)
            self._images.append((image, overlay.frame))
            last = mix
        out_format = graph.add("format", pix_fmt)
        last.link_to(out_format)
        self._sink = graph.add("buffersink")
        out_format.link_to(self._sink)
        graph.configure()
        for image, frame in self._images:
            frame.pts = 0
            frame.time_base = Fraction(1, 1000)
            image.push(frame)
            image.push(None)

    def feed(self, frame: Any) -> Iterator[Any]:
        """Push one frame (None: the end) and yield what the graph lets out."""
        if frame is not None:
            pts, time_base = frame.pts, frame.time_base
            frame = frame.reformat(
                self._size[0], self._size[1], self._pix_fmt, interpolation=self._interpolation
            )
            frame.pts, frame.time_base = pts, time_base
        self._source.push(frame)
        # Bounded: each pull consumes a frame the graph holds; it ends with EAGAIN or EOF.
        while True:
            try:
                yield self._sink.pull()
            except (av.BlockingIOError, av.EOFError):
                return
