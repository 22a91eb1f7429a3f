"""The worker process: run one media task, report progress, answer done or failed.

The entry point (`main`) runs in a process forked from the emulator's forkserver, with this
module (and so PyAV and FFmpeg) already imported there, so a job starts in milliseconds. It
reads nothing from the emulator but its `MediaTask`, writes only into the task's staging
folder, and sends its answer over the pipe; the parent kills the process to cancel it.
"""

from __future__ import annotations

import logging
import os
import signal
from collections.abc import Callable
from multiprocessing.connection import Connection
from typing import Final

from ci_emulator.media import (
    animation,
    concat,
    cover,
    digital,
    enhance,
    montage,
    remux,
    snapshot,
    transcode,
    voice,
)  # fmt: skip
from ci_emulator.media.errors import INTERNAL_ERROR, MediaFailure
from ci_emulator.media.progress import Progress
from ci_emulator.media.task import MediaTask, WorkerResult

logger = logging.getLogger(__name__)

Kind = Callable[[MediaTask, Progress], WorkerResult]

KINDS: Final[dict[str, Kind]] = {
    "Transcode": transcode.run_transcode,
    "Watermark": transcode.run_transcode,
    "Snapshot": snapshot.run_snapshot,
    "Animation": animation.run_animation,
    "Concat": concat.run_concat,
    "Segment": remux.run_segment,
    "StreamExtract": remux.run_stream_extract,
    "SmartCover": cover.run_smart_cover,
    "VoiceSeparate": voice.run_voice_separate,
    "SDRtoHDR": enhance.run_enhance,
    "SuperResolution": enhance.run_enhance,
    "VideoProcess": enhance.run_enhance,
    "VideoEnhance": enhance.run_enhance,
    "VideoMontage": montage.run_video_montage,
    "DigitalWatermark": digital.run_digital_watermark,
    "ExtractDigitalWatermark": digital.run_extract_digital_watermark,
}


def run(task: MediaTask, progress: Progress) -> WorkerResult:
    """Run `task` in this process (the worker's body; tests may call it directly)."""
    kind = KINDS.get(task.request.tag)
    if kind is None:
        raise MediaFailure("NotImplemented", f"the CI emulator cannot run {task.request.tag}")
    return kind(task, progress)


def main(task: MediaTask, conn: Connection) -> None:
    """Process entry: run, then send `("done", result)` or `("failed", code, message)`."""
    # Ctrl-C in a terminal reaches the whole process group; the parent decides what stops.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    if task.cpus:
        os.sched_setaffinity(0, task.cpus)
    message: tuple[object, ...]
    try:
        message = ("done", run(task, Progress(conn, hold=task.hold_after_first_progress)))
    except MediaFailure as exc:
        message = ("failed", exc.code, exc.message)
    except Exception:  # the process boundary: a crash becomes a Failed job, logged here
        logger.exception("media worker for %s crashed", task.request.tag)
        message = ("failed", INTERNAL_ERROR, "the media worker failed unexpectedly")
    try:
        conn.send(message)
    except OSError:  # the parent has gone (it was cancelled or shut down)
        pass
    finally:
        conn.close()
