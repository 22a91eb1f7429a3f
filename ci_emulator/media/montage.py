"""VideoMontage: a highlights reel of `Duration` seconds (approximated).

CI picks highlights with a model trained per `Scene`. The emulator takes `PIECES` equally long
pieces spread evenly over the input (the first at its start, the last ending at its end) and
splices them with the Concat pipeline, re-encoded to the given Container/Video/Audio; an
input no longer than `Duration` is used whole.
"""

from __future__ import annotations

from typing import Final

from ci_emulator.media.model import MontageParams, TimeSpan
from ci_emulator.media.pipeline import Clip
from ci_emulator.media.progress import Progress
from ci_emulator.media.sources import duration_s, open_input
from ci_emulator.media.task import MediaTask, WorkerResult
from ci_emulator.media.transcode import write_encoded

PIECES: Final = 4


def run_video_montage(task: MediaTask, progress: Progress) -> WorkerResult:
    params = task.request.params
    assert isinstance(params, MontageParams) and task.input_path is not None
    with open_input(task.input_path) as source:
        total = duration_s(source)
    if total <= params.duration:
        clips = [Clip(task.input_path)]
    else:
        piece = params.duration / PIECES
        step = (total - piece) / (PIECES - 1)
        clips = [Clip(task.input_path, TimeSpan(i * step, piece)) for i in range(PIECES)]
    return write_encoded(task, params.encode, progress, clips=clips)
