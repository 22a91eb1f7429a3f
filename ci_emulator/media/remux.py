"""Segment and StreamExtract: packets copied into new containers, never re-encoded.

Segment: `Format` hls writes a playlist (`Object`) and `<name>-<n>.ts` segments of about
`Duration` seconds (default 10) through FFmpeg's HLS muxer; any other format, with
`Duration`, cuts a new file (`${Number}` from 0) at the first key frame at least `Duration`
seconds into the current one, so every piece starts with a key frame and plays on its own
(pieces are as long as the input's GOPs allow, as with stream copy anywhere); without
`Duration` it remuxes the whole input into one file of `Format`. `StartTime`/`EndTime`
select the part copied (from the key frame at or before StartTime). Timestamps restart at
zero in each piece.

StreamExtract: stream `Index` of the input into its own file per `Output.StreamExtract`
entry; the container is FFmpeg's choice for the key's extension (`.aac` ADTS, `.m4a`, `.mp4`,
`.h264` raw Annex B, `.mkv`, ...).

A codec the target container cannot hold (AAC into an .mp3, say) fails the job with
InvalidArgument, as a Transcode asking for an impossible combination does.
"""

from __future__ import annotations

from typing import Any, Final

import av

from ci_emulator.media import codecs
from ci_emulator.media.errors import MediaFailure, invalid
from ci_emulator.media.model import SegmentParams, StreamExtractParams
from ci_emulator.media.outputs import Outputs
from ci_emulator.media.progress import Progress
from ci_emulator.media.sources import duration_s, open_input
from ci_emulator.media.task import MediaTask, WorkerResult
from ci_emulator.media.transcode import adopt_segments

MAX_PIECES: Final = 10000
DEFAULT_HLS_TIME_S: Final = 10.0


def run_segment(task: MediaTask, progress: Progress) -> WorkerResult:
    params = task.request.params
    assert isinstance(params, SegmentParams) and task.input_path is not None
    assert task.request.output is not None
    outputs = Outputs(task)
    container_spec = codecs.CONTAINERS[params.format]
    template = task.request.output.object
    with open_input(task.input_path) as source:
        streams = [
            s
            for s in source.streams
            if s.type == "audio" or (s.type == "video" and container_spec.video)
        ]
        if not streams:
            raise invalid(f"the input has no stream a {params.format} file can hold")
        total = duration_s(source)
        start = params.span.start
        end = start + params.span.duration if params.span.duration is not None else float("inf")
        keyed = any(s.type == "video" for s in streams)
        options: dict[str, str] = {}
        pattern = None
        key = ""
        if params.format == "hls":
            key = outputs.key(template, "m3u8")
            stem = key.rsplit("/", 1)[-1].rsplit(".", 1)[0]
            pattern = str(outputs.staging / f"{stem}-%d.ts")
            options = {
                "hls_time": f"{params.duration or DEFAULT_HLS_TIME_S:g}",
                "hls_playlist_type": "vod",
                "hls_list_size": "0",
                "hls_segment_filename": pattern,
            }
        many = params.duration is not None and params.format != "hls"
        writer = _Pieces(outputs, template, container_spec.muxer, container_spec.ext, many, options)
        if start > 0:
            source.seek(int(start * 1_000_000), backward=True)
        try:
            piece_start: float | None = None
            for packet in source.demux(*streams):
                if packet.dts is None or packet.pts is None:
                    continue
                time = float(packet.pts * packet.time_base)
                if time >= end:
                    if not keyed or packet.stream.type == "video":
                        break
                    continue
                boundary = (
                    packet.is_keyframe if keyed and packet.stream.type == "video" else not keyed
                )
                if piece_start is None:
                    piece_start = time
                elif many and boundary and time - piece_start >= (params.duration or 0) - 1e-6:
                    writer.close()
                    piece_start = time
                writer.write(packet, streams)
                progress.fraction((time - start) / max(min(end, total) - start, 1e-6))
            writer.close()
        except (av.error.FFmpegError, ValueError) as exc:
            raise invalid(
                f"the input's streams cannot be written as {params.format}: {exc}"
            ) from exc
        if pattern is not None:
            adopt_segments(outputs, key, pattern)
    if writer.pieces == 0:
        raise invalid("nothing of the input falls between StartTime and EndTime")
    return outputs.result()


class _Pieces:
    """Output files written one after another, each with copies of the input's streams."""

    def __init__(
        self, outputs: Outputs, template: str | None, muxer: str, ext: str, many: bool,
        options: dict[str, str],
    ) -> None:  # fmt: skip
        self._outputs = outputs
        self._template = template
        self._muxer, self._ext, self._many, self._options = muxer, ext, many, options
        self._out: Any = None
        self._map: dict[int, Any] = {}
        self._offsets: dict[int, int] = {}
        self.pieces = 0

    def write(self, packet: Any, streams: list[Any]) -> None:
        if self._out is None:
            if self.pieces >= MAX_PIECES:
                raise invalid(f"the input would make more than {MAX_PIECES} pieces")
            number = self.pieces if self._many else None
            key = self._outputs.key(self._template, self._ext, number=number)
            path = self._outputs.file(key)
            self._out = av.open(str(path), "w", format=self._muxer, container_options=self._options)
            self._map = {s.index: self._out.add_stream_from_template(s) for s in streams}
            self._offsets = {}
            self.pieces += 1
        index = packet.stream.index
        offset = self._offsets.setdefault(index, int(packet.dts))
        packet.dts -= offset
        packet.pts -= offset
        packet.stream = self._map[index]
        self._out.mux(packet)

    def close(self) -> None:
        if self._out is not None:
            self._out.close()
            self._out = None


def run_stream_extract(task: MediaTask, progress: Progress) -> WorkerResult:
    params = task.request.params
    assert isinstance(params, StreamExtractParams) and task.input_path is not None
    outputs = Outputs(task)
    with open_input(task.input_path) as source:
        count = len(source.streams)
        for index, _ in params.streams:
            if index >= count:
                raise invalid(f"the input has no stream {index} (it has {count})")
        total = duration_s(source)
        outs: list[tuple[int, Any, Any]] = []
        try:
            for index, template in params.streams:
                ext = template.rsplit(".", 1)[-1].lower() if "." in template else "mkv"
                key = outputs.key(template, ext)
                out = av.open(str(outputs.file(key)), "w")
                outs.append((index, out, out.add_stream_from_template(source.streams[index])))
            wanted = sorted({index for index, _ in params.streams})
            for packet in source.demux(*[source.streams[i] for i in wanted]):
                if packet.dts is None:
                    continue
                for index, out, stream in outs:
                    if index == packet.stream.index:
                        copy = _copy(packet, stream)
                        out.mux(copy)
                if packet.pts is not None:
                    progress.fraction(float(packet.pts * packet.time_base) / max(total, 1e-6))
        except (av.error.FFmpegError, ValueError) as exc:
            raise invalid(
                f"a stream cannot be written in the container its key names: {exc}"
            ) from exc
        finally:
            for _, out, _ in outs:
                try:
                    out.close()
                except av.error.FFmpegError as exc:
                    raise MediaFailure("InvalidArgument", str(exc)) from exc
    return outputs.result(probe_main=False)


def _copy(packet: Any, stream: Any) -> Any:
    copy = av.Packet(bytes(packet))
    copy.pts, copy.dts, copy.duration = packet.pts, packet.dts, packet.duration
    copy.time_base = packet.time_base
    copy.is_keyframe = packet.is_keyframe
    copy.stream = stream
    return copy
