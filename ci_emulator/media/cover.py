"""SmartCover: the `Count` most telling frames, as pictures (`${Number}` from 0, in time order).

The heuristic (CI's is a trained model; this is a documented stand-in): candidates are frames
spread evenly over the video (4 per picture asked for, at least 10, at most 50, the first and
last 5% skipped: fades and titles). Each is scored by its luma contrast (the standard deviation
of a 32x32 grey thumbnail) times the share of it that is not black, so flat, dark or blank
frames lose. The best scores win; with `DeleteDuplicates`, a candidate whose 8x8 average-hash
differs from an already chosen picture's in at most `DUPLICATE_BITS` of 64 bits is dropped (so a
static video may yield fewer pictures than `Count`).
"""

from __future__ import annotations

import math
from typing import Any, Final

from ci_emulator.media.errors import invalid
from ci_emulator.media.model import SmartCoverParams
from ci_emulator.media.outputs import Outputs
from ci_emulator.media.pictures import black_share, luma_thumbnail, scaled, write_picture
from ci_emulator.media.progress import Progress
from ci_emulator.media.sources import duration_s, open_input
from ci_emulator.media.task import MediaTask, WorkerResult

DUPLICATE_BITS: Final = 6
EDGE_SHARE: Final = 0.05


def run_smart_cover(task: MediaTask, progress: Progress) -> WorkerResult:
    params = task.request.params
    assert isinstance(params, SmartCoverParams) and task.input_path is not None
    assert task.request.output is not None
    outputs = Outputs(task)
    candidates: list[tuple[float, float, Any]] = []  # (score, time, frame)
    with open_input(task.input_path) as container:
        stream = next(iter(container.streams.video), None)
        if stream is None:
            raise invalid("the input has no video stream to pick a cover from")
        stream.thread_type = "AUTO"
        total = duration_s(container)
        wanted = min(50, max(10, 4 * params.count))
        first, last = total * EDGE_SHARE, total * (1 - EDGE_SHARE)
        times = [first + (last - first) * i / max(1, wanted - 1) for i in range(wanted)]
        position = 0
        for frame in container.decode(stream):
            time = frame.time
            if time is None or position >= len(times):
                if position >= len(times):
                    break
                continue
            if time + 1e-3 < times[position]:
                continue
            candidates.append((score(frame), time, frame))
            # Several candidate times may fall within one frame of a short video.
            while position < len(times) and times[position] <= time + 1e-3:
                position += 1
            progress.fraction(time / max(total, 1e-6))
    if not candidates:
        raise invalid("the input has no frame to make a cover of")
    chosen: list[tuple[float, Any, int]] = []  # (time, frame, hash)
    for _, time, frame in sorted(candidates, key=lambda item: (-item[0], item[1])):
        fingerprint = average_hash(frame)
        if params.delete_duplicates and any(
            bin(fingerprint ^ other).count("1") <= DUPLICATE_BITS for _, _, other in chosen
        ):
            continue
        chosen.append((time, frame, fingerprint))
        if len(chosen) == params.count:
            break
    for number, (_, frame, _) in enumerate(sorted(chosen, key=lambda item: item[0])):
        key = outputs.key(task.request.output.object, params.format, number=number)
        write_picture(scaled(frame, params.width, params.height), outputs.file(key), params.format)
    return outputs.result(probe_main=False)


def score(frame: Any) -> float:
    """Contrast x non-black share: higher for detailed, lit pictures."""
    pixels = luma_thumbnail(frame, 32)
    mean = sum(pixels) / len(pixels)
    spread = math.sqrt(sum((value - mean) ** 2 for value in pixels) / len(pixels))
    return spread * (1.0 - black_share(frame, 16))


def average_hash(frame: Any) -> int:
    """64 bits: each 8x8 thumbnail pixel above the thumbnail's mean."""
    pixels = luma_thumbnail(frame, 8)
    mean = sum(pixels) / len(pixels)
    bits = 0
    for value in pixels:
        bits = (bits << 1) | (value > mean)
    return bits
