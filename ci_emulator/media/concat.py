"""Concat: the clips (Start fragments, the job's input, End fragments) one after another,
re-encoded to the template's Container/Video/Audio. Each clip is scaled to the first video
clip's size (or the given one) and converted to one frame rate; a clip without sound is
given silence so later clips stay in sync. `StartTime`/`EndTime` cut a fragment.

Approximated: `DirectConcat` (CI's stream copy) re-encodes too, which gives the same result
for clips that share codecs; `SceneChangeInfo` FADE and GRADIENT both fade each clip in and
out over `Time` seconds (a cross-dissolve would overlap the clips); AudioMix is not applied.
"""

from __future__ import annotations

from ci_emulator.media.model import ConcatParams
from ci_emulator.media.pipeline import Clip, VideoFilters
from ci_emulator.media.progress import Progress
from ci_emulator.media.task import MediaTask, WorkerResult
from ci_emulator.media.transcode import write_encoded


def run_concat(task: MediaTask, progress: Progress) -> WorkerResult:
    params = task.request.params
    assert isinstance(params, ConcatParams)
    clips = [Clip(task.path_of(ref), span) for ref, span in params.fragments]
    filters = VideoFilters(fade_s=params.fade_s)
    return write_encoded(task, params.encode, progress, filters=filters, clips=clips)
