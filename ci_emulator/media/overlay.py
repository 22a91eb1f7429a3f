"""Visible watermarks: images and text laid over the video at CI's positions.

Position (`Pos`, `LocMode`, `Dx`, `Dy`): `Dx`/`Dy` are pixels (Absolute) or percent of the
video's width/height (Relativity), measured from the edge(s) `Pos` names, inwards; for
`Center`, `Top`, `Bottom`, `Left`, `Right` the centred axis ignores its offset. Image size
(`Image.Mode`): `Original` keeps the picture's size, `Proportion` makes Width/Height a
percentage of the video's (one given: the other keeps the picture's aspect ratio; none: 10% of
the video's width, UNCONFIRMED), `Fixed` is pixels. `Transparency` (1-100) is the opacity.
`StartTime`/`EndTime` limit when it shows. Text is drawn with the built-in pixel font
(`font`): FFmpeg's drawtext filter is not in PyAV's bundled FFmpeg and the emulator ships no
font file, so `FontType` is ignored and FontSize sets the glyph height. `SlideConfig` (moving
watermarks) is accepted and not applied: the mark stays where `Pos` puts it.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import av

from ci_emulator.media import font
from ci_emulator.media.errors import INVALID_MEDIA, MediaFailure
from ci_emulator.media.model import WatermarkSpec
from ci_emulator.media.pipeline import Overlay
from ci_emulator.media.sources import open_input
from ci_emulator.media.task import MediaTask

DEFAULT_PROPORTION = 10.0


def overlays(
    task: MediaTask, marks: Sequence[WatermarkSpec]
) -> Callable[[int, int], list[Overlay]]:
    """Overlays for a video of the size given later (the pipeline knows it once it starts)."""

    def build(width: int, height: int) -> list[Overlay]:
        return [_overlay(task, mark, width, height) for mark in marks]

    return build


def _overlay(task: MediaTask, mark: WatermarkSpec, width: int, height: int) -> Overlay:
    if mark.image is not None:
        picture = _picture(task.path_of(mark.image.source))
        size = _image_size(mark, picture.width, picture.height, width, height)
        picture = picture.reformat(width=size[0], height=size[1], format="rgba")
    else:
        assert mark.text is not None
        picture = font.render(mark.text.text, mark.text.font_size, mark.text.font_color)
    if mark.opacity < 1.0:
        picture = _faded(picture, mark.opacity)
    x, y = place(mark, width, height, picture.width, picture.height)
    return Overlay(picture, x, y, mark.start, mark.end)


def place(mark: WatermarkSpec, width: int, height: int, w: int, h: int) -> tuple[int, int]:
    """Top-left corner of a `w`x`h` mark on a `width`x`height` video."""
    dx = mark.dx * width / 100 if mark.loc_mode == "Relativity" else mark.dx
    dy = mark.dy * height / 100 if mark.loc_mode == "Relativity" else mark.dy
    pos = mark.pos
    if "Left" in pos:
        x = dx
    elif "Right" in pos:
        x = width - w - dx
    else:
        x = (width - w) / 2
    if pos.startswith("Top"):
        y = dy
    elif pos.startswith("Bottom"):
        y = height - h - dy
    else:
        y = (height - h) / 2
    return round(x), round(y)


def _image_size(
    mark: WatermarkSpec, image_w: int, image_h: int, width: int, height: int
) -> tuple[int, int]:
    assert mark.image is not None
    spec = mark.image
    if spec.mode == "Original":
        return image_w, image_h
    scale_w = width / 100 if spec.mode == "Proportion" else 1.0
    scale_h = height / 100 if spec.mode == "Proportion" else 1.0
    w = spec.width * scale_w if spec.width else None
    h = spec.height * scale_h if spec.height else None
    if w is None and h is None:
        w = DEFAULT_PROPORTION * width / 100
    if w is None:
        assert h is not None
        w = h * image_w / image_h
    if h is None:
        h = w * image_h / image_w
    return max(2, round(w)), max(2, round(h))


def _picture(path: str) -> Any:
    with open_input(path) as container:
        try:
            for frame in container.decode(video=0):
                return frame.reformat(format="rgba")
        except (av.error.FFmpegError, IndexError) as exc:
            raise MediaFailure(INVALID_MEDIA, f"the watermark image is unreadable: {exc}") from exc
    raise MediaFailure(INVALID_MEDIA, "the watermark image holds no picture")


def _faded(picture: Any, opacity: float) -> Any:
    """Scale the alpha channel by `opacity` (the overlay filter blends by alpha)."""
    plane = picture.planes[0]
    data = bytearray(bytes(plane))
    table = bytes(int(value * opacity) for value in range(256))
    data[3::4] = bytes(data[3::4]).translate(table)
    faded = av.VideoFrame(picture.width, picture.height, "rgba")
    faded.planes[0].update(bytes(data))
    return faded
