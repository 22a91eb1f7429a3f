"""SDRtoHDR, SuperResolution, VideoProcess and VideoEnhance: documented approximations over a
real transcode (CI runs trained models; the emulator produces files of the right shape).

* SuperResolution: lanczos upscaling (swscale) so the short side reaches 720 (`sdtohd`) or
  2160 (`hdto4k`), aspect ratio kept, even sides; an input already that large keeps its size
  unless `EnableScaleUp` is true (default true, UNCONFIRMED), which still never shrinks it.
* SDRtoHDR: the picture is re-encoded at 10 bits (yuv420p10le where the encoder has it) and
  tagged BT.2020 primaries and matrix with the HLG (arib-std-b67) or HDR10 (smpte2084 / PQ)
  transfer, which is what a player and the output's MediaInfo see; pixel values are not
  tone-mapped.
* VideoProcess ColorEnhance: Saturation (0-100) -> FFmpeg `hue` saturation 1 + s/100;
  Contrast (0-100) -> `colorlevels` stretching the input range by c/5 percent at each end;
  Correction (0-100) -> `vibrance` intensity c/100. MsSharpen: SharpenLevel (0-10) -> `unsharp`
  luma amount level/4.
* VideoEnhance: any of the above, plus FrameEnhance.FrameDoubling (twice the frame rate,
  FFmpeg's `fps` filter duplicating frames).

The transcode parameters (inline `Transcode`, or the output key's container with default
codecs) decide container and codecs, as for Transcode.
"""

from __future__ import annotations

from typing import Final

from ci_emulator.media import overlay
from ci_emulator.media.model import ColourTags, EnhanceParams
from ci_emulator.media.pipeline import VideoFilters
from ci_emulator.media.progress import Progress
from ci_emulator.media.task import MediaTask, WorkerResult
from ci_emulator.media.transcode import write_encoded

SHORT_SIDE: Final = {"sdtohd": 720, "hdto4k": 2160}
HDR_TAGS: Final = {
    "HLG": ColourTags("bt2020", "arib-std-b67", "bt2020nc", "yuv420p10le"),
    "HDR10": ColourTags("bt2020", "smpte2084", "bt2020nc", "yuv420p10le"),
}


def run_enhance(task: MediaTask, progress: Progress) -> WorkerResult:
    params = task.request.params
    assert isinstance(params, EnhanceParams)
    filters = VideoFilters(steps=_steps(params))
    if params.super_resolution is not None:
        short = SHORT_SIDE[params.super_resolution]
        filters.scale_flags = "lanczos"
        filters.size = lambda width, height: upscaled(width, height, short, params.scale_up)
    if params.frame_doubling:
        filters.fps_factor = 2
    if params.watermarks:
        filters.overlays = overlay.overlays(task, params.watermarks)
    colour = HDR_TAGS[params.hdr_mode] if params.hdr_mode else None
    return write_encoded(task, params.encode, progress, filters=filters, colour=colour)


def upscaled(width: int, height: int, short: int, scale_up: bool) -> tuple[int, int]:
    """Size with the short side at `short` (never smaller than the input)."""
    current = min(width, height)
    if current >= short or (not scale_up and current >= short):
        return width - width % 2, height - height % 2
    ratio = short / current
    return _even(width * ratio), _even(height * ratio)


def _even(value: float) -> int:
    return max(2, round(value / 2) * 2)


def _steps(params: EnhanceParams) -> list[tuple[str, str]]:
    steps: list[tuple[str, str]] = []
    if params.contrast:
        low = params.contrast / 500
        steps.append(
            ("colorlevels", f"rimin={low}:gimin={low}:bimin={low}:rimax={1 - low}:gimax="
             f"{1 - low}:bimax={1 - low}")
        )  # fmt: skip
    if params.saturation:
        steps.append(("hue", f"s={1 + params.saturation / 100}"))
    if params.correction:
        steps.append(("vibrance", f"intensity={params.correction / 100}"))
    if params.sharpen:
        steps.append(("unsharp", f"5:5:{params.sharpen / 4}"))
    return steps
