"""Opening inputs for the kinds: FFmpeg restricted to local files, failures as CI job codes.

Every kind opens its input through `open_input`, so a missing object, an unreadable one and
bytes FFmpeg cannot parse fail alike in every kind, with the probe's codes and messages.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import av

from ci_emulator.media.errors import INVALID_MEDIA, MediaFailure
from ci_emulator.probe import ProbeError, checked_size


@contextlib.contextmanager
def open_input(path: str | Path) -> Iterator[Any]:
    """An input container; MediaFailure (ResourceNotFound, InvalidMedia, ...) if unusable."""
    file = Path(path)
    try:
        checked_size(file)
    except ProbeError as exc:
        raise MediaFailure(str(exc.code), exc.message) from exc
    try:
        container = av.open(
            "file:" + str(file.resolve()),
            mode="r",
            container_options={"protocol_whitelist": "file"},
            metadata_errors="replace",
        )
    except (av.error.FFmpegError, OSError, ValueError) as exc:
        raise MediaFailure(INVALID_MEDIA, f"the input is not readable media: {exc}") from exc
    try:
        yield container
    finally:
        container.close()


def duration_s(container: Any) -> float:
    """The container's duration in seconds (0 when FFmpeg does not know it)."""
    if container.duration:
        return float(container.duration) / 1_000_000
    longest = 0.0
    for stream in container.streams:
        if stream.duration and stream.time_base:
            longest = max(longest, float(stream.duration * stream.time_base))
    return longest
