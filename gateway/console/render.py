"""What the operator's CLI prints: aligned tables for people, JSON for scripts, errors explained.

`--json` prints the RPC's response message itself (`MessageToDict` with the proto's field
names, enums by name), never a shape of our own: a script written against it reads the same
fields as a client of the API, and the protos' compatibility rules (`buf breaking`) protect it.

Tables show CI's values as CI sent them (times, the `Progress` text, MediaInfo strings), with
`-` for an empty cell, so nothing looks measured that was not.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Sequence

import grpc
from google.protobuf import json_format
from google.protobuf.message import Message
from google.rpc import error_details_pb2
from grpc_status import rpc_status

from gateway._proto import media_pb2

EMPTY = "-"
JOB_COLUMNS = ("JOB ID", "TAG", "STATE", "PROGRESS", "INPUT", "CREATED", "ENDED", "RESULT")
STREAM_COLUMNS = ("STREAM", "INDEX", "CODEC", "DETAILS", "BITRATE", "DURATION")
# What of `ErrorInfo.metadata` a person needs to follow an error up with CI or Tencent support
# (CI's message is already in the status message).
CI_METADATA = ("ci_code", "ci_request_id")
_NUMBER = re.compile(r"\s*(\d+(?:\.\d+)?)")


def as_dict(message: Message) -> dict[str, object]:
    return json_format.MessageToDict(message, preserving_proto_field_name=True)


def to_json(message: Message) -> str:
    """One message, indented: what `--json` prints for a command with one answer."""
    return json.dumps(as_dict(message), indent=2, ensure_ascii=False)


def to_json_line(message: Message) -> str:
    """One message on one line: `watch --json` prints one per update (JSON Lines)."""
    return json.dumps(as_dict(message), ensure_ascii=False, separators=(",", ":"))


def table(header: Sequence[str], rows: Iterable[Sequence[str]]) -> str:
    """Left-aligned columns two spaces apart, empty cells shown as `-`."""
    cells = [list(header), *([value or EMPTY for value in row] for row in rows)]
    widths = [max(len(row[i]) for row in cells) for i in range(len(header))]
    return "\n".join(
        "  ".join(value.ljust(width) for value, width in zip(row, widths, strict=True)).rstrip()
        for row in cells
    )


def state_name(job: media_pb2.JobsDetail) -> str:
    """CI's own state text (`Running`), or the enum's name when no text came with it."""
    if job.state_text:
        return job.state_text
    if job.state == media_pb2.JOB_STATE_UNSPECIFIED:
        return "Unknown"
    return media_pb2.JobState.Name(job.state).removeprefix("JOB_STATE_").title()


def percent(job: media_pb2.JobsDetail) -> float | None:
    """The job's `Progress` as 0..100, None while CI reports none (a job that has not started,
    or a CI region that never sends the node); a successful job is 100 whatever it says."""
    if job.state == media_pb2.JOB_STATE_SUCCESS:
        return 100.0
    found = _NUMBER.match(job.progress)
    return None if found is None else min(max(float(found.group(1)), 0.0), 100.0)


def percent_text(job: media_pb2.JobsDetail) -> str:
    value = percent(job)
    return EMPTY if value is None else f"{value:.0f}%"


def result(job: media_pb2.JobsDetail) -> str:
    """CI's failure code and message; empty for a job that did not fail (CI sets both to
    `Success` for one that did, and leaves them out before the end)."""
    if job.code in ("", "Success"):
        return ""
    return f"{job.code}: {job.message}" if job.message else job.code


def jobs_table(jobs: Sequence[media_pb2.JobsDetail]) -> str:
    """One row per job; the RESULT column only when some job failed (it is empty otherwise,
    and the table fits a narrower terminal without it)."""
    rows = [
        [
            job.job_id,
            job.tag,
            state_name(job),
            percent_text(job),
            job.input.object,
            job.creation_time,
            job.end_time,
            result(job),
        ]
        for job in jobs
    ]
    if any(row[-1] for row in rows):
        return table(JOB_COLUMNS, rows)
    return table(JOB_COLUMNS[:-1], (row[:-1] for row in rows))


def media_info_text(info: media_pb2.MediaInfo) -> str:
    """The container (one line per field) and its streams (one row each)."""
    fmt = info.format
    container = table(
        ("FORMAT", fmt.format_name or EMPTY),
        (
            ("long name", fmt.format_long_name),
            ("duration", fmt.duration and f"{fmt.duration} s"),
            ("bitrate", fmt.bitrate and f"{fmt.bitrate} kb/s"),
            ("size", fmt.size and f"{fmt.size} bytes"),
            ("streams", fmt.num_stream),
        ),
    )
    rows: list[tuple[str, ...]] = []
    for video in info.stream.video:
        size = f"{video.width}x{video.height}" if video.width and video.height else ""
        fps = f"{video.fps} fps" if video.fps else ""
        details = ", ".join(part for part in (size, fps, video.pix_format) if part)
        rows.append(
            ("video", video.index, video.codec_name, details, video.bitrate, video.duration)
        )
    for audio in info.stream.audio:
        rate = f"{audio.sample_rate} Hz" if audio.sample_rate else ""
        channels = f"{audio.channel} ch" if audio.channel else ""
        details = ", ".join(part for part in (rate, channels, audio.channel_layout) if part)
        rows.append(
            ("audio", audio.index, audio.codec_name, details, audio.bitrate, audio.duration)
        )
    for subtitle in info.stream.subtitle:
        rows.append(("subtitle", subtitle.index, "", subtitle.language, "", ""))
    return f"{container}\n\n{table(STREAM_COLUMNS, rows)}" if rows else container


def explain(error: grpc.aio.AioRpcError) -> str:
    """A gateway error for people: the status code and message, then what the rich status adds
    (`ErrorInfo` reason and CI's identifiers, each bad field, when to retry)."""
    lines = [f"{error.code().name}: {error.details() or '(no message)'}"]
    status = rpc_status.from_call(error)  # type: ignore[arg-type]  # an aio call works too
    for detail in status.details if status is not None else ():
        if detail.Is(error_details_pb2.ErrorInfo.DESCRIPTOR):
            info = error_details_pb2.ErrorInfo()
            detail.Unpack(info)
            known = [key for key in CI_METADATA if key in info.metadata]
            extra = "".join(f", {key} {info.metadata[key]}" for key in known)
            lines.append(f"  reason {info.reason}{extra}")
        elif detail.Is(error_details_pb2.BadRequest.DESCRIPTOR):
            bad = error_details_pb2.BadRequest()
            detail.Unpack(bad)
            lines += (f"  {v.field}: {v.description}" for v in bad.field_violations)
        elif detail.Is(error_details_pb2.RetryInfo.DESCRIPTOR):
            retry = error_details_pb2.RetryInfo()
            detail.Unpack(retry)
            lines.append(f"  retry after {retry.retry_delay.ToTimedelta().total_seconds():g} s")
    return "\n".join(lines)
