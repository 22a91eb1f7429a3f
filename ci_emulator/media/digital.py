"""DigitalWatermark and ExtractDigitalWatermark: an embedded message the extraction recovers.

CI hides the message in the picture with a proprietary algorithm. The emulator's documented
approximation embeds it in the container instead: the input's streams are copied, unchanged,
into the output (the output key's container, mp4 by default) with the metadata tag
`ci_digital_watermark` = `V1:Text:<Message>`. ExtractDigitalWatermark reads that tag back. It
survives copying and remuxing (Segment, StreamExtract to a container that keeps tags), not a
re-encode: a re-encoded copy is reported as carrying no watermark.

Extraction result (UNCONFIRMED: the catalogue does not settle the node): the job succeeds and
`Operation.DigitalWatermark` carries `Message`, `State` (`Success`, or `Failed` with an empty
Message when the input has no watermark), `Type` and `Version`.
"""

from __future__ import annotations

from typing import Any, Final

import av

from ci_emulator.media import codecs
from ci_emulator.media.errors import invalid
from ci_emulator.media.model import DigitalWatermarkParams, ExtractDigitalWatermarkParams
from ci_emulator.media.outputs import Outputs
from ci_emulator.media.progress import Progress
from ci_emulator.media.sources import duration_s, open_input
from ci_emulator.media.task import MediaTask, WorkerResult

TAG: Final = "ci_digital_watermark"
_PREFIX: Final = "V1:Text:"


def run_digital_watermark(task: MediaTask, progress: Progress) -> WorkerResult:
    params = task.request.params
    assert isinstance(params, DigitalWatermarkParams) and task.input_path is not None
    assert task.request.output is not None
    outputs = Outputs(task)
    container = codecs.CONTAINERS[params.encode.format]
    key = outputs.key(task.request.output.object, container.ext)
    options = {"movflags": "use_metadata_tags"} if container.muxer in ("mp4", "mov") else {}
    with open_input(task.input_path) as source:
        streams = [s for s in source.streams if s.type in ("video", "audio")]
        total = duration_s(source)
        out: Any
        try:
            with av.open(
                str(outputs.file(key)), "w", format=container.muxer, container_options=options
            ) as out:
                out.metadata[TAG] = _PREFIX + params.message
                copies = {s.index: out.add_stream_from_template(s) for s in streams}
                for packet in source.demux(*streams):
                    if packet.dts is None:
                        continue
                    packet.stream = copies[packet.stream.index]
                    out.mux(packet)
                    if packet.pts is not None:
                        progress.fraction(float(packet.pts * packet.time_base) / max(total, 1e-6))
        except (av.error.FFmpegError, ValueError) as exc:
            raise invalid(f"the input cannot be copied into {params.encode.format}: {exc}") from exc
    return outputs.result()


def run_extract_digital_watermark(task: MediaTask, progress: Progress) -> WorkerResult:
    params = task.request.params
    assert isinstance(params, ExtractDigitalWatermarkParams) and task.input_path is not None
    with open_input(task.input_path) as source:
        value = str(dict(source.metadata).get(TAG, ""))
    progress.fraction(0.99)
    found = value.startswith(_PREFIX)
    return WorkerResult(
        files=(),
        extra=(
            ("Message", value[len(_PREFIX) :] if found else ""),
            ("State", "Success" if found else "Failed"),
            ("Type", params.type),
            ("Version", params.version),
        ),
    )
