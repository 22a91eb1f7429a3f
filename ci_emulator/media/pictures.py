"""Still pictures: encode one frame as JPEG, PNG or WebP, and the frame-level helpers the
picture kinds (Snapshot, SmartCover) share."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path
from typing import Any, Final

import av

from ci_emulator.media.model import VideoSpec
from ci_emulator.media.pipeline import target_size

_ENCODERS: Final[dict[str, tuple[str, str]]] = {
    "jpg": ("mjpeg", "yuvj420p"),
    "png": ("png", "rgb24"),
    "webp": ("libwebp", "yuv420p"),
}


def write_picture(frame: Any, path: Path, fmt: str) -> None:
    """Encode `frame` as one `fmt` picture (jpg, png, webp) into `path`."""
    codec, pix_fmt = _ENCODERS[fmt]
    ctx: Any = av.CodecContext.create(codec, "w")
    ctx.width, ctx.height = frame.width, frame.height
    ctx.pix_fmt = pix_fmt
    ctx.time_base = Fraction(1, 25)
    if codec == "mjpeg":
        ctx.options = {"qmin": "2", "qmax": "5"}  # CI's snapshots are good-quality JPEGs
    picture = frame.reformat(format=pix_fmt)
    picture.pts = 0
    data = b"".join(bytes(packet) for packet in [*ctx.encode(picture), *ctx.encode(None)])
    path.write_bytes(data)


def scaled(frame: Any, width: int | None, height: int | None) -> Any:
    """`frame` at Width/Height (one given: aspect kept; neither: as is), made even."""
    size = target_size(frame.width, frame.height, VideoSpec(width=width, height=height))
    if size == (frame.width, frame.height):
        return frame
    return frame.reformat(width=size[0], height=size[1])


def black_share(frame: Any, threshold: int) -> float:
    """Share (0..1) of the frame's pixels whose luma is at most `threshold`."""
    gray = frame.reformat(format="gray")
    plane = gray.planes[0]
    stride, width = int(plane.line_size), int(gray.width)
    data = bytes(plane)
    rows = b"".join(data[row * stride : row * stride + width] for row in range(gray.height))
    dark = len(rows) - len(rows.translate(None, bytes(range(threshold + 1))))
    return dark / max(1, len(rows))


def luma_thumbnail(frame: Any, side: int = 8) -> bytes:
    """A `side`x`side` grey thumbnail: the picture's gist, for comparing two frames."""
    small = frame.reformat(width=side, height=side, format="gray")
    plane = small.planes[0]
    stride = int(plane.line_size)
    data = bytes(plane)
    return b"".join(data[row * stride : row * stride + side] for row in range(side))
