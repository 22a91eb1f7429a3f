"""Snapshot: pictures at times chosen by Mode, and sprite sheets of them.

* `Interval`: from `Start`, one picture every `TimeInterval` seconds (default 1), at most
  `Count` (default: until the end, at most 10,000).
* `Average`: `Count` pictures evenly spread from `Start` to the end (the first at `Start`).
* `KeyFrame`: the key frames from `Start` on, at least `TimeInterval` apart when it is given,
  at most `Count`.

A picture is the first frame at or after its time. With `IsCheckBlack`, a frame whose share of
pixels at most `PixelBlackThreshold` is at least `BlackLevel`% is skipped for the next frame.
With `IsCheckCount`, fewer pictures than `Count` fails the job. Pictures are JPEG (PNG when the
key ends in .png), `Width`/`Height` as in Transcode. `${Number}` counts from 0.

Sprites (`SnapshotOutMode` OnlySprite / SnapshotAndSprite): the same pictures, each scaled to
a cell (CellWidth x CellHeight, default the picture's size) by `ScaleMethod` (DirectScale:
stretched; MaxWHScale: fitted, keeping its aspect, and the cell shrinks to it; MaxWHScaleAndPad:
fitted and padded with Color), tiled Columns x Lines per sheet with Margin and Padding by
FFmpeg's `tile` filter; the last sheet is filled with Color. Sheets are JPEG, `${Number}` from 0.
"""

from __future__ import annotations

from collections.abc import Iterator
from fractions import Fraction
from typing import Any, Final

import av
import av.filter

from ci_emulator.media.errors import invalid
from ci_emulator.media.model import SnapshotParams, SpriteSpec
from ci_emulator.media.outputs import Outputs
from ci_emulator.media.pictures import black_share, scaled, write_picture
from ci_emulator.media.progress import Progress
from ci_emulator.media.sources import duration_s, open_input
from ci_emulator.media.task import MediaTask, WorkerResult

MAX_PICTURES: Final = 10000
DEFAULT_INTERVAL_S: Final = 1.0


def run_snapshot(task: MediaTask, progress: Progress) -> WorkerResult:
    params = task.request.params
    assert isinstance(params, SnapshotParams) and task.input_path is not None
    output = task.request.output
    assert output is not None
    outputs = Outputs(task)
    fmt = "png" if (output.object or "").lower().endswith(".png") else "jpg"
    pictures: list[Any] = []
    with open_input(task.input_path) as container:
        stream = next(iter(container.streams.video), None)
        if stream is None:
            raise invalid("the input has no video stream to take snapshots of")
        stream.thread_type = "AUTO"
        total = duration_s(container)
        for frame in _chosen(container, stream, params, total):
            picture = scaled(frame, params.width, params.height)
            if params.snapshots:
                key = outputs.key(output.object, fmt, number=len(pictures))
                write_picture(picture, outputs.file(key), fmt)
            pictures.append(picture if params.sprite else None)
            progress.fraction(float(frame.time or 0) / max(total, 1e-6))
    if params.check_count and params.count is not None and len(pictures) < params.count:
        raise invalid(f"only {len(pictures)} of the {params.count} snapshots could be taken")
    if not pictures:
        raise invalid("no snapshot could be taken at the times asked for")
    if params.sprite is not None:
        for number, sheet in enumerate(
            _sheets([p for p in pictures if p is not None], params.sprite)
        ):
            key = outputs.key(output.sprite_object, "jpg", number=number)
            write_picture(sheet, outputs.file(key, role="sprite"), "jpg")
    return outputs.result(probe_main=False)


def _chosen(container: Any, stream: Any, params: SnapshotParams, total: float) -> Iterator[Any]:
    limit = min(params.count or MAX_PICTURES, MAX_PICTURES)
    if params.mode == "KeyFrame":
        stream.codec_context.skip_frame = "NONKEY"
        times: Iterator[float] | None = None
    elif params.mode == "Average":
        span = max(0.0, total - params.start)
        times = iter([params.start + span * i / limit for i in range(limit)])
    else:
        step = params.interval or DEFAULT_INTERVAL_S
        times = iter([params.start + step * i for i in range(limit)])
    target = params.start if times is None else next(times, None)
    taken = 0
    if params.start > 0:
        container.seek(int(params.start * 1_000_000), backward=True)
    for frame in container.decode(stream):
        time = frame.time
        if target is None or taken >= limit:
            return
        if time is None or time < target - 1e-3:
            continue
        if params.check_black and black_share(frame, params.pixel_black_threshold) * 100 >= (
            params.black_level
        ):
            continue
        yield frame
        taken += 1
        if times is None:  # KeyFrame: the next one at least TimeInterval later
            target = time + (params.interval or 0.0) if params.interval else time + 1e-6
        else:
            # The next time after this frame (a skipped black stretch may pass several).
            target = next((t for t in times if t > time + 1e-3), None)


def _sheets(pictures: list[Any], sprite: SpriteSpec) -> Iterator[Any]:
    first = pictures[0]
    cell_w = sprite.cell_width or first.width
    cell_h = sprite.cell_height or first.height
    cells = [_cell(picture, cell_w, cell_h, sprite) for picture in pictures]
    width, height = cells[0].width, cells[0].height
    graph = av.filter.Graph()
    source = graph.add_buffer(
        width=width, height=height, format=av.VideoFormat("yuv420p"), time_base=Fraction(1, 25)
    )
    tile = graph.add(
        "tile",
        f"layout={sprite.columns}x{sprite.lines}:margin={sprite.margin}:"
        f"padding={sprite.padding}:color={_ffmpeg_colour(sprite.color)}",
    )
    sink = graph.add("buffersink")
    source.link_to(tile)
    tile.link_to(sink)
    graph.configure()
    for index, cell in enumerate([*cells, None]):
        if cell is not None:
            cell = cell.reformat(format="yuv420p")
            cell.pts = index
            cell.time_base = Fraction(1, 25)
        source.push(cell)
        # Bounded: each pull takes one finished sheet; EAGAIN or EOF ends the pass.
        while True:
            try:
                yield sink.pull()
            except (av.BlockingIOError, av.EOFError):
                break


def _cell(picture: Any, cell_w: int, cell_h: int, sprite: SpriteSpec) -> Any:
    if sprite.scale_method == "DirectScale":
        return picture.reformat(width=cell_w, height=cell_h)
    ratio = min(cell_w / picture.width, cell_h / picture.height)
    fit_w = max(2, int(picture.width * ratio) // 2 * 2)
    fit_h = max(2, int(picture.height * ratio) // 2 * 2)
    fitted = picture.reformat(width=fit_w, height=fit_h)
    if sprite.scale_method == "MaxWHScale" or (fit_w, fit_h) == (cell_w, cell_h):
        return fitted
    graph = av.filter.Graph()
    source = graph.add_buffer(
        template=None,
        width=fit_w,
        height=fit_h,
        format=fitted.format.name,
        time_base=Fraction(1, 25),
    )
    pad = graph.add(
        "pad", f"{cell_w}:{cell_h}:(ow-iw)/2:(oh-ih)/2:color={_ffmpeg_colour(sprite.color)}"
    )
    sink = graph.add("buffersink")
    source.link_to(pad)
    pad.link_to(sink)
    graph.configure()
    fitted.pts = 0
    fitted.time_base = Fraction(1, 25)
    source.push(fitted)
    return sink.pull()


def _ffmpeg_colour(color: str) -> str:
    """CI's Color (a name, `#RRGGBB` or `0xRRGGBB`, or bare hex) in FFmpeg's syntax."""
    if color.startswith("#"):
        return "0x" + color[1:]
    if len(color) == 6 and all(c in "0123456789abcdefABCDEF" for c in color):
        return "0x" + color
    return color
