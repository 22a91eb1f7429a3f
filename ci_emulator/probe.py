"""Real media info for the emulator, formatted the way CI's MediaInfo job reports it.

CI's MediaInfo is ffprobe output re-spelled into CI node names (``codec_tag`` -> ``CodecTag``,
``bit_rate`` in bps -> ``Bitrate`` in kbps, six-decimal floats). The emulator must answer with
what the object really is, or tests would only prove that the gateway agrees with a fixture, so
this module opens the file with FFmpeg (through PyAV) and re-creates that formatting::

    probe(path) --stat--> av.open --> _scan (bounded packet read) --> _format, _video, _audio
                --> {"Format": {...}, "Stream": {"Audio": [...], "Subtitle": [...], "Video": [...]}}

The result is plain ordered dicts of node name -> text (every CI scalar is text on the wire), in
the order of CI's own sample (API notes §3.3): keys alphabetical in every node, ``Stream``
children ``Audio``, ``Subtitle``, ``Video``, each a list (possibly empty) because CI repeats the
node per stream. The emulator serialises this straight to XML or JSON.

Decisions where CI's output is not pinned down by its documentation (each one also noted at the
code that implements it):

* A value FFmpeg does not know is left out, not invented. ffprobe's JSON writer drops such
  fields, and CI's sample Video node (§3.3) lacks exactly the fields ffprobe leaves out for a
  file without aspect-ratio or field-order information: ``Sar``, ``Dar``, ``FieldOrder``.
  Exceptions, because the notes show CI writing them: colour fields say ``unknown`` (EN doc
  example), ``Language`` says ``und``, ``Rotation`` says ``0.000000``.
* ``Fps`` is FFmpeg's ``r_frame_rate`` and ``AvgFps`` its ``avg_frame_rate``, both ``%.6f`` as in
  the §3.3 sample (``25.000000``); an unknown rate is ``0.000000``.
* ``CodecTimeBase`` equals ``Timebase`` (the stream's time base): every CI sample shows them
  equal (``1/12800`` for 25 fps video, which ffprobe's old codec time base would print as
  ``1/50``).
* ``Rotation`` is clockwise degrees in ``[0, 360)``, the convention of the legacy ``rotate`` tag
  that phones write (a display matrix FFmpeg reads as -90 counter-clockwise is ``90.000000``).
  CI's sign convention is UNCONFIRMED.
* ``RefFrames`` is ``1``: FFmpeg learns an H.264 stream's reference count only while decoding
  slices, so ffprobe (and, by the sample's ``<RefFrames>1</RefFrames>``, CI) prints the codec
  context default.
* ``NumProgram`` cannot be read through PyAV; it is ``1`` for MPEG-TS (which FFmpeg gives one
  program per PAT entry; single-program streams are the norm) and ``0`` otherwise.
"""

from __future__ import annotations

import asyncio
import os
import re
import stat
import time
from enum import StrEnum
from fractions import Fraction
from pathlib import Path
from typing import Any, Final

import av
import av.error

__all__ = [
    "MAX_SCAN_PACKETS",
    "MAX_SCAN_SECONDS",
    "ProbeError",
    "ProbeErrorCode",
    "checked_size",
    "probe",
    "probe_async",
]

MAX_SCAN_PACKETS: Final = 200_000
"""Most packets read after opening. The scan exists to find each video stream's display matrix
(one decoded key frame) and, only for containers that do not store a frame count (Matroska,
MPEG-TS), to count video packets; 200k packets is over two hours of 25 fps video."""

MAX_SCAN_SECONDS: Final = 3.0
"""Wall-clock bound on the same scan, so one huge object cannot stall a probe worker. A count
cut short by either bound is dropped (``NumFrames`` left out), never reported as if complete."""

_AV_TIME_BASE: Final = 1_000_000
"""FFmpeg's ``AV_TIME_BASE``: container-level start time and duration are in microseconds."""

_MPEGTS_FORMATS: Final = frozenset({"mpegts", "mpegtsraw"})

# FFmpeg's enum values -> the names ffprobe prints (libavutil/pixdesc.c tables, FFmpeg 8).
# An unspecified value, or one these tables do not know, is reported as ``unknown``.
_COLOR_RANGES: Final[dict[int, str]] = {1: "tv", 2: "pc"}
_COLOR_PRIMARIES: Final[dict[int, str]] = {
    0: "reserved",
    1: "bt709",
    3: "reserved",
    4: "bt470m",
    5: "bt470bg",
    6: "smpte170m",
    7: "smpte240m",
    8: "film",
    9: "bt2020",
    10: "smpte428",
    11: "smpte431",
    12: "smpte432",
    22: "ebu3213",
}
_COLOR_TRANSFERS: Final[dict[int, str]] = {
    0: "reserved",
    1: "bt709",
    3: "reserved",
    4: "bt470m",
    5: "bt470bg",
    6: "smpte170m",
    7: "smpte240m",
    8: "linear",
    9: "log100",
    10: "log316",
    11: "iec61966-2-4",
    12: "bt1361e",
    13: "iec61966-2-1",
    14: "bt2020-10",
    15: "bt2020-12",
    16: "smpte2084",
    17: "smpte428",
    18: "arib-std-b67",
}
# AVFieldOrder; 0 (AV_FIELD_UNKNOWN) is absent on purpose: ffprobe leaves the field out.
_FIELD_ORDERS: Final[dict[int, str]] = {1: "progressive", 2: "tt", 3: "bb", 4: "tb", 5: "bt"}

_UNKNOWN: Final = "unknown"
_UNDETERMINED_LANGUAGE: Final = "und"
_DEFAULT_REF_FRAMES: Final = "1"

# av_channel_layout_describe() of a layout with unspecified order ("2 channels"): ffprobe omits
# channel_layout for those rather than print a description that is not a layout name.
_UNSPECIFIED_LAYOUT: Final = re.compile(r"^\d+ channels?$")

# What FFmpeg, PyAV and the file system raise for a file that is missing, unreadable or not
# media. Anything else is a bug in this module and is allowed to surface as itself.
_MEDIA_FAILURES: Final = (
    av.error.FFmpegError,
    OSError,
    ValueError,  # includes UnicodeDecodeError from odd tags or codec tags
    ArithmeticError,  # a zero denominator in a rational the file supplied
    RuntimeError,
    AttributeError,  # PyAV streams without a codec context
)


class ProbeErrorCode(StrEnum):
    """Why a probe failed, spelled as a CI job failure ``Code``.

    CI's catalogue of job-level failure codes (a ``Failed`` JobsDetail's ``Code``) is
    UNCONFIRMED (API notes §6.2, §11). The first three reuse the documented request-level codes
    whose meaning matches; ``InvalidMedia`` is ours, for the case no documented code covers.
    """

    RESOURCE_NOT_FOUND = "ResourceNotFound"
    """The input object does not exist (documented: "input resource does not exist")."""
    RESOURCE_ACCESS_DENIED = "ResourceAccessDenied"
    """The object exists but cannot be read (documented: "no permission on the resource")."""
    RESOURCE_DOWNLOAD_FAILED = "ResourceDownloadFailed"
    """Reading the object failed with an I/O error (documented: "input resource download
    failed"; for the emulator, reading the file is the download)."""
    INVALID_MEDIA = "InvalidMedia"
    """The object was read but is not media FFmpeg can parse (empty, text, random bytes)."""


class ProbeError(Exception):
    """The only exception :func:`probe` raises, so the emulator can turn every failure into a
    ``Failed`` job (or an error body) without knowing FFmpeg's exception tree."""

    def __init__(self, code: ProbeErrorCode, message: str) -> None:
        super().__init__(code, message)
        self.code = code
        self.message = message

    def __str__(self) -> str:
        return f"{self.code}: {self.message}"


def probe(path: str | os.PathLike[str]) -> dict[str, Any]:
    """Return the CI ``MediaInfo`` of the file at ``path`` (shape: see the module docstring).

    Blocking: FFmpeg reads the file header, then a bounded scan reads packets
    (:data:`MAX_SCAN_PACKETS`, :data:`MAX_SCAN_SECONDS`) and decodes one key frame per video
    stream. Never decodes the whole file. Raises only :class:`ProbeError`.
    """
    file = Path(path)
    size = checked_size(file)
    try:
        # "file:" + an absolute path stops FFmpeg reading a protocol ("concat:", "http:") out of
        # an object key, and the whitelist stops playlists (HLS, concat) reaching the network.
        with av.open(
            "file:" + str(file.resolve()),
            mode="r",
            container_options={"protocol_whitelist": "file"},
            metadata_errors="replace",
        ) as container:
            return _media_info(container, size)
    except ProbeError:
        raise
    except FileNotFoundError as exc:  # removed between the stat and the open
        raise ProbeError(ProbeErrorCode.RESOURCE_NOT_FOUND, _reason(exc)) from exc
    except PermissionError as exc:
        raise ProbeError(ProbeErrorCode.RESOURCE_ACCESS_DENIED, _reason(exc)) from exc
    except OSError as exc:  # EIO and friends: the bytes could not be read, whatever they are
        raise ProbeError(ProbeErrorCode.RESOURCE_DOWNLOAD_FAILED, _reason(exc)) from exc
    except _MEDIA_FAILURES as exc:
        raise ProbeError(
            ProbeErrorCode.INVALID_MEDIA, f"the input is not readable media: {_reason(exc)}"
        ) from exc


async def probe_async(path: str | os.PathLike[str]) -> dict[str, Any]:
    """:func:`probe` on a worker thread: FFmpeg's file I/O and parsing would block the loop."""
    return await asyncio.to_thread(probe, path)


def checked_size(file: Path) -> int:
    """Classify what FFmpeg would only report as a generic open failure, and read ``Size``.

    The file system tells a missing object from an unreadable one precisely; an empty object is
    rejected here because FFmpeg's message for it ("Invalid data") explains nothing.
    """
    try:
        info = file.stat()
    except (FileNotFoundError, NotADirectoryError, ValueError) as exc:  # ValueError: NUL in path
        raise ProbeError(
            ProbeErrorCode.RESOURCE_NOT_FOUND, "the input resource does not exist"
        ) from exc
    except PermissionError as exc:
        raise ProbeError(ProbeErrorCode.RESOURCE_ACCESS_DENIED, _reason(exc)) from exc
    except OSError as exc:
        raise ProbeError(ProbeErrorCode.RESOURCE_DOWNLOAD_FAILED, _reason(exc)) from exc
    if not stat.S_ISREG(info.st_mode):
        # An object store has no directories: a "folder" key is simply not an object.
        raise ProbeError(ProbeErrorCode.RESOURCE_NOT_FOUND, "the input resource does not exist")
    if info.st_size == 0:
        raise ProbeError(ProbeErrorCode.INVALID_MEDIA, "the input is empty (0 bytes)")
    return info.st_size


def _reason(exc: BaseException) -> str:
    """FFmpeg's/the OS's reason without the file name: the message ends up in a job's
    ``Message``, and the emulator's local path is nobody's business."""
    strerror = getattr(exc, "strerror", None)
    if isinstance(strerror, str) and strerror:
        return strerror
    return type(exc).__name__ if not str(exc) else str(exc)


def _media_info(container: Any, size: int) -> dict[str, Any]:
    streams = list(container.streams)
    if not streams:
        # A container FFmpeg opens but finds no track in (an MP4 cut inside its moov box) is
        # no media CI could describe; UNCONFIRMED whether CI fails the job or answers a Format
        # with NumStream 0: failing it is the reading a caller cannot mistake for a real file.
        raise ProbeError(ProbeErrorCode.INVALID_MEDIA, "the input has no audio or video streams")
    rotations, frame_counts = _scan(container, streams)
    audio: list[dict[str, str]] = []
    subtitles: list[dict[str, str]] = []
    video: list[dict[str, str]] = []
    for stream in streams:
        kind = stream.type
        if kind == "video":
            index = int(stream.index)
            video.append(_video(stream, rotations.get(index), frame_counts.get(index)))
        elif kind == "audio":
            audio.append(_audio(stream))
        elif kind == "subtitle":
            subtitles.append(_node({"Index": str(stream.index), "Language": _language(stream)}))
        # Data and attachment streams have no CI node; they still count in NumStream.
    return {
        "Format": _format(container, size, len(streams)),
        "Stream": {"Audio": audio, "Subtitle": subtitles, "Video": video},
    }


def _format(container: Any, size: int, num_streams: int) -> dict[str, str]:
    name = str(container.format.name)
    bit_rate = container.bit_rate
    return _node(
        {
            "Bitrate": _kbps(bit_rate),
            "Duration": _seconds(container.duration, Fraction(1, _AV_TIME_BASE)),
            "FormatLongName": str(container.format.long_name),
            "FormatName": name,
            "NumProgram": "1" if set(name.split(",")) & _MPEGTS_FORMATS else "0",
            # ffprobe's nb_streams counts every stream, data and attachments included.
            "NumStream": str(num_streams),
            "Size": str(size),
            "StartTime": _seconds(container.start_time, Fraction(1, _AV_TIME_BASE)),
        }
    )


def _video(stream: Any, ccw_rotation: float | None, counted_frames: int | None) -> dict[str, str]:
    fields = _common(stream)
    frames = int(stream.frames or 0)
    fields.update(
        {
            "AvgFps": _rate(stream.average_rate),
            "Fps": _rate(stream.base_rate),
            "NumFrames": str(frames) if frames > 0 else _optional_int(counted_frames),
            "Rotation": _fixed6(_clockwise(ccw_rotation, stream.metadata)),
        }
    )
    ctx = stream.codec_context
    if ctx is not None:
        width, height = int(ctx.width), int(ctx.height)
        sar, dar = _aspect_ratios(stream.sample_aspect_ratio, width, height)
        profile = ctx.profile
        depth = getattr(ctx, "reorder_depth", None)  # the raw count; has_b_frames is a bool
        fields.update(
            {
                "ColorPrimaries": _COLOR_PRIMARIES.get(int(ctx.color_primaries), _UNKNOWN),
                "ColorRange": _COLOR_RANGES.get(int(ctx.color_range), _UNKNOWN),
                "ColorTransfer": _COLOR_TRANSFERS.get(int(ctx.color_trc), _UNKNOWN),
                "Dar": dar,
                "FieldOrder": _FIELD_ORDERS.get(int(ctx.field_order)),
                "HasBFrame": str(int(depth if depth is not None else ctx.has_b_frames)),
                "Height": str(height),
                "Level": str(int(ctx.level)),
                "PixFormat": str(ctx.pix_fmt) if ctx.pix_fmt else None,
                "Profile": str(profile) if profile else None,
                "RefFrames": _DEFAULT_REF_FRAMES,
                "Sar": sar,
                "Width": str(width),
            }
        )
    return _node(fields)


def _audio(stream: Any) -> dict[str, str]:
    fields = _common(stream)
    ctx = stream.codec_context
    if ctx is not None:
        layout = str(ctx.layout.name)
        fmt = ctx.format
        fields.update(
            {
                "Channel": str(int(ctx.channels)),
                "ChannelLayout": None if _UNSPECIFIED_LAYOUT.match(layout) else layout,
                "SampleFmt": str(fmt.name) if fmt is not None else None,
                "SampleRate": str(int(ctx.sample_rate)),
            }
        )
    return _node(fields)


def _common(stream: Any) -> dict[str, str | None]:
    """The fields Video and Audio share, from the stream and its codec parameters."""
    time_base = stream.time_base
    timebase_text = _slash(time_base) if time_base else None
    fields: dict[str, str | None] = {
        "CodecTimeBase": timebase_text,
        "Duration": _seconds(stream.duration, time_base),
        "Index": str(stream.index),
        "Language": _language(stream),
        "StartTime": _seconds(stream.start_time, time_base),
        "Timebase": timebase_text,
    }
    ctx = stream.codec_context
    if ctx is not None:
        codec = ctx.codec
        tag = _codec_tag(ctx)
        fields.update(
            {
                "Bitrate": _kbps(ctx.bit_rate),
                # The descriptor's name ("av1"), not the decoder's ("libdav1d"), as ffprobe.
                "CodecLongName": str(codec.long_name) or None,
                "CodecName": str(codec.canonical_name) or None,
                # ffprobe prints "0x%04x": 8 hex digits for any real FourCC, fewer for 0.
                "CodecTag": f"0x{tag:04x}" if tag is not None else None,
                "CodecTagString": _fourcc_text(tag) if tag is not None else None,
            }
        )
    return fields


def _scan(container: Any, streams: list[Any]) -> tuple[dict[int, float], dict[int, int]]:
    """Read packets, within the bounds, for what the header does not say.

    Returns each video stream's display-matrix rotation (counter-clockwise degrees, as FFmpeg
    reports it; absent when no key frame could be decoded) and the packet count of each video
    stream whose container stores no frame count (only when the whole file was read).
    PyAV does not expose a stream's coded side data, but FFmpeg's decoders attach the display
    matrix to every frame, so one decoded key frame carries it.
    """
    videos = {int(s.index): s for s in streams if s.type == "video"}
    to_rotate = {i for i, s in videos.items() if s.codec_context is not None}
    to_count = {i for i, s in videos.items() if not s.frames}
    if not to_rotate and not to_count:
        return {}, {}
    for index in to_rotate:
        # One frame is all we want: frame threads would only delay it behind the thread count.
        videos[index].codec_context.thread_count = 1
    rotations: dict[int, float] = {}
    counts = dict.fromkeys(to_count, 0)
    deadline = time.monotonic() + MAX_SCAN_SECONDS
    read = 0
    complete = False
    try:
        for packet in container.demux(*(videos[i] for i in sorted(to_rotate | to_count))):
            if packet.size == 0:  # PyAV's end-of-stream flush marker, not a frame
                continue
            index = int(packet.stream.index)
            if index in counts:
                counts[index] += 1
            if index in to_rotate and packet.is_keyframe:
                to_rotate.discard(index)
                rotation = _decoded_rotation(videos[index], packet)
                if rotation is not None:
                    rotations[index] = rotation
            if not to_rotate and not to_count:
                break
            read += 1
            if read >= MAX_SCAN_PACKETS or time.monotonic() > deadline:
                break
        else:
            complete = True
    except _MEDIA_FAILURES:
        # A damaged tail: keep the rotations found, drop the counts (they are incomplete).
        complete = False
    return rotations, (counts if complete else {})


def _decoded_rotation(stream: Any, packet: Any) -> float | None:
    try:
        # A key frame decodes on its own; the flush drains the decoder's reordering delay.
        frames = list(stream.decode(packet)) + list(stream.decode(None))
    except _MEDIA_FAILURES:
        return None
    return float(frames[0].rotation) if frames else None


def _aspect_ratios(sar: Fraction | None, width: int, height: int) -> tuple[str | None, str | None]:
    """ffprobe's ``N:M`` pair: FFmpeg's guessed SAR (stream, else codec), and the DAR it implies.

    ffprobe reduces the DAR with ``av_reduce(.., 1024*1024)``; an exact reduction is the same
    for any real SAR. An unknown SAR (FFmpeg's ``0:1``) leaves both out, as CI's sample does.
    """
    if sar is None or sar <= 0 or width <= 0 or height <= 0:
        return None, None
    dar = Fraction(width * sar.numerator, height * sar.denominator)
    return _colon(sar), _colon(dar)


def _clockwise(ccw_rotation: float | None, metadata: Any) -> float:
    """Clockwise degrees in [0, 360): from the display matrix, else the legacy ``rotate`` tag."""
    if ccw_rotation is not None:
        degrees = -ccw_rotation
    else:
        try:
            degrees = float(dict(metadata or {}).get("rotate", 0.0))
        except (TypeError, ValueError):
            degrees = 0.0
    return (degrees % 360.0) + 0.0  # + 0.0 turns -0.0 into 0.0


def _codec_tag(ctx: Any) -> int | None:
    try:
        text = str(ctx.codec_tag)  # PyAV decodes the FourCC as ASCII
    except UnicodeDecodeError:
        return None
    raw = text.encode("latin-1", errors="replace")
    return int.from_bytes(raw[:4].ljust(4, b"\0"), "little")


def _fourcc_text(tag: int) -> str:
    """av_fourcc_make_string(): printable bytes as-is, any other byte as ``[n]``."""
    out = []
    for shift in (0, 8, 16, 24):
        byte = (tag >> shift) & 0xFF
        char = chr(byte)
        printable = char.isascii() and (char.isalnum() or char in ". -_")
        out.append(char if printable else f"[{byte}]")
    return "".join(out)


def _language(stream: Any) -> str:
    language = stream.language
    return str(language) if language else _UNDETERMINED_LANGUAGE


def _node(fields: dict[str, str | None]) -> dict[str, str]:
    """Drop unknown fields and order keys as CI's sample does (alphabetically)."""
    return {key: value for key, value in sorted(fields.items()) if value is not None}


def _fixed6(value: float) -> str:
    return f"{value:.6f}"


def _seconds(timestamp: int | None, time_base: Fraction | None) -> str | None:
    if timestamp is None or not time_base:
        return None
    # ts * av_q2d(tb), the double arithmetic ffprobe's print_time does.
    return _fixed6(int(timestamp) * (time_base.numerator / time_base.denominator))


def _kbps(bit_rate: int | None) -> str | None:
    return _fixed6(int(bit_rate) / 1000) if bit_rate and bit_rate > 0 else None


def _rate(rate: Fraction | None) -> str:
    return _fixed6(float(rate)) if rate else _fixed6(0.0)


def _slash(ratio: Fraction) -> str:
    return f"{ratio.numerator}/{ratio.denominator}"


def _colon(ratio: Fraction) -> str:
    return f"{ratio.numerator}:{ratio.denominator}"


def _optional_int(value: int | None) -> str | None:
    return str(value) if value is not None else None
