"""Transcode (and the Watermark kind, a transcode with overlays): one input, one output.

HLS writes a playlist (`Object`, `.m3u8`) and its `.ts` segments beside it, named
`<playlist name>-<n>.ts` as FFmpeg's HLS muxer names them; every segment is listed in
`MediaResult.OutputFile.ObjectName` after the playlist.
"""

from __future__ import annotations

from ci_emulator.media import codecs, overlay
from ci_emulator.media.model import ColourTags, EncodeSpec, TranscodeParams
from ci_emulator.media.outputs import Outputs
from ci_emulator.media.pipeline import Clip, VideoFilters, encode
from ci_emulator.media.progress import Progress
from ci_emulator.media.task import MediaTask, WorkerResult


def run_transcode(task: MediaTask, progress: Progress) -> WorkerResult:
    params = task.request.params
    assert isinstance(params, TranscodeParams)
    filters = VideoFilters()
    if params.watermarks:
        filters.overlays = overlay.overlays(task, params.watermarks)
    return write_encoded(task, params.encode, progress, filters=filters)


def write_encoded(
    task: MediaTask,
    spec: EncodeSpec,
    progress: Progress,
    *,
    filters: VideoFilters | None = None,
    clips: list[Clip] | None = None,
    colour: ColourTags | None = None,
    metadata: dict[str, str] | None = None,
) -> WorkerResult:
    """Encode to the job's one output key (hls: a playlist and its segments)."""
    assert task.request.output is not None
    outputs = Outputs(task)
    ext = codecs.CONTAINERS[spec.format].ext
    key = outputs.key(task.request.output.object, ext)
    path = outputs.file(key)
    pattern = None
    if spec.format == "hls":
        stem = key.rsplit("/", 1)[-1].rsplit(".", 1)[0]
        pattern = str(outputs.staging / f"{stem}-%d.ts")
    if clips is None:
        assert task.input_path is not None
        clips = [Clip(task.input_path, spec.span)]
    encode(
        clips, path, spec, progress,
        filters=filters, colour=colour, metadata=metadata, segment_pattern=pattern,
    )  # fmt: skip
    if pattern is not None:
        adopt_segments(outputs, key, pattern)
    return outputs.result()


def adopt_segments(outputs: Outputs, key: str, pattern: str) -> None:
    directory = key.rsplit("/", 1)[0] + "/" if "/" in key else ""
    template = pattern.rsplit("/", 1)[-1]
    # Bounded by the segments the muxer wrote (numbered from 0 without gaps).
    for number in range(100_000):
        name = template.replace("%d", str(number))
        if not (outputs.staging / name).is_file():
            break
        outputs.adopt(name, directory + name)
