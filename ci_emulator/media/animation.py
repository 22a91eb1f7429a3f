"""Animation: a stretch of video as an animated GIF or WebP.

Which frames (catalogue A.6): `AnimateOnlyKeepKeyFrame` keeps only key frames;
`AnimateTimeIntervalOfFrame` N keeps one frame every N seconds; `AnimateFramesPerSecond` N
keeps N frames per second; otherwise the input's rate, capped at `Fps` when given. The result
plays at `Fps` when given, else at the rate frames were kept (key frames: one a second,
UNCONFIRMED). Size as in Transcode. GIF frames use FFmpeg's 8-bit RGB palette (rgb8); WebP is
libwebp's animated encoder with `Quality` (default 75, libwebp's). `TimeInterval` picks the
stretch. Either loops for ever, as CI's GIFs do.
"""

from __future__ import annotations

from fractions import Fraction
from typing import Any, Final

import av
import av.filter

from ci_emulator.media.errors import invalid
from ci_emulator.media.model import AnimationParams, VideoSpec
from ci_emulator.media.outputs import Outputs
from ci_emulator.media.pipeline import MAX_FRAMES, target_size
from ci_emulator.media.progress import Progress
from ci_emulator.media.sources import duration_s, open_input
from ci_emulator.media.task import MediaTask, WorkerResult

_ENCODERS: Final = {"gif": ("gif", "gif", "rgb8"), "webp": ("libwebp_anim", "webp", "yuva420p")}


def run_animation(task: MediaTask, progress: Progress) -> WorkerResult:
    params = task.request.params
    assert isinstance(params, AnimationParams) and task.input_path is not None
    assert task.request.output is not None
    outputs = Outputs(task)
    key = outputs.key(task.request.output.object, params.format)
    path = outputs.file(key)
    encoder, muxer, pix_fmt = _ENCODERS[params.format]
    with open_input(task.input_path) as container:
        stream = next(iter(container.streams.video), None)
        if stream is None:
            raise invalid("the input has no video stream to animate")
        stream.thread_type = "AUTO"
        source_rate = Fraction(stream.average_rate or 25)
        sample_rate = _sampling_rate(params, source_rate)
        play_rate = params.fps or sample_rate or Fraction(1)
        size = target_size(
            int(stream.codec_context.width),
            int(stream.codec_context.height),
            VideoSpec(width=params.width, height=params.height),
        )
        start = params.span.start
        available = max(0.0, duration_s(container) - start)
        seconds = min(available, params.span.duration or available)
        if params.keyframes_only:
            stream.codec_context.skip_frame = "NONKEY"
        options = {"loop": "0"}
        if params.format == "webp":
            options["quality"] = str(params.quality or 75)
        out: Any
        with av.open(str(path), "w", format=muxer) as out:
            video: Any = out.add_stream(encoder, rate=play_rate, options=options)
            video.width, video.height = size
            video.pix_fmt = pix_fmt
            graph = _graph(stream, size, pix_fmt, sample_rate)
            if start > 0:
                container.seek(int(start * 1_000_000), backward=True)
            count = 0

            def write(frames: Any) -> None:
                nonlocal count
                for frame in frames:
                    if count >= MAX_FRAMES:
                        raise invalid(f"the animation would exceed {MAX_FRAMES} frames")
                    frame.pts, frame.time_base = count, 1 / play_rate
                    count += 1
                    out.mux(video.encode(frame))

            for frame in container.decode(stream):
                time = frame.time
                if time is None or time < start - 1e-6:
                    continue
                if time >= start + seconds - 1e-6:
                    break
                frame.pts = round((time - start) / float(stream.time_base))
                write(_feed(graph, frame))
                progress.fraction((time - start) / max(seconds, 1e-6))
            write(_feed(graph, None))
            if count == 0:
                raise invalid("no frame of the input falls in the animation's time interval")
            out.mux(video.encode(None))
    return outputs.result()


def _sampling_rate(params: AnimationParams, source: Fraction) -> Fraction | None:
    """Frames kept per second; None keeps every (key) frame as decoded."""
    if params.interval_of_frame:
        return 1 / Fraction(params.interval_of_frame).limit_denominator(1000)
    if params.frames_per_second:
        return Fraction(params.frames_per_second).limit_denominator(1000)
    if params.keyframes_only:
        return None
    return min(source, params.fps) if params.fps else source


def _graph(
    stream: Any, size: tuple[int, int], pix_fmt: str, rate: Fraction | None
) -> tuple[Any, Any, Any]:
    """(graph, source, sink): the graph is returned to keep it alive while its contexts run."""
    graph = av.filter.Graph()
    source = graph.add_buffer(template=stream)
    chain = [("fps", f"{rate.numerator}/{rate.denominator}")] if rate else []
    chain += [("scale", f"{size[0]}:{size[1]}"), ("format", pix_fmt)]
    last = source
    for name, args in chain:
        node = graph.add(name, args)
        last.link_to(node)
        last = node
    sink = graph.add("buffersink")
    last.link_to(sink)
    graph.configure()
    return graph, source, sink


def _feed(graph: tuple[Any, Any, Any], frame: Any) -> list[Any]:
    _, source, sink = graph
    source.push(frame)
    frames = []
    # Bounded: each pull takes a frame the graph holds; EAGAIN or EOF ends it.
    while True:
        try:
            frames.append(sink.pull())
        except (av.BlockingIOError, av.EOFError):
            return frames
