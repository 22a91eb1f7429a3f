"""The objects a finished job wrote, in one shape for every kind (`JobsDetail.outputs`).

CI reports a job's files in `Operation.MediaResult` (job catalogue §1.2, appendix A.1)::

    MediaResult
      OutputFile
        Bucket, Region, ObjectPrefix, ObjectName[], Md5Info[] { ObjectName, Md5 }
        SpriteOutputFile { Bucket, Region, ObjectPrefix, ObjectName[], Md5Info[] }

and "the actual output file is StringConcat(ObjectPrefix, ObjectName)". So the keys come from
there alone: a `${Number}` (or `${number}`, `${ext}`, `${InputName}`) in the request's `Output`
is never expanded here, since CI's own expansion is what it wrote; `snapshot/${Number}.jpg`
becomes as many objects as CI lists names (`snapshot/` + `0.jpg`, `snapshot/` + `1.jpg`, ...).

The request's `Output` (CI echoes it in the job's `Operation`) adds what MediaResult does not say:

* the **role** of each object. A file of `SpriteOutputFile` is a sprite. A file of `OutputFile`
  takes the role of the `Output` node whose value names it: `Object` main, `SpriteObject` sprite,
  `AuObject` audio, `BassObject` bass, `DrumObject` drum, `StreamExtract[].Object` stream. A
  value with placeholders names every key it could expand to (a placeholder stands for any text);
  when several match, the one with the most literal text wins (an exact key beats a pattern),
  and a file no node names is main (VoiceSeparate's tracks may all sit in one `OutputFile`);
* a **bucket or region** the result leaves out.

Only a job in state Success lists outputs: before that (and after a failure) CI has promised no
file. Nothing is guessed either: a Success without `MediaResult` (a kind that writes nothing, or
an answer that omits it) lists none rather than keys that may not exist.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

from gateway._proto import job_kinds_pb2, media_pb2, outputs_pb2

__all__ = ["fill_outputs", "outputs_of"]

_PLACEHOLDER = re.compile(r"\$\{[^}]*\}")
R = outputs_pb2.OutputRole


@dataclass(frozen=True, slots=True)
class _Namer:
    """One `Output` value: the keys it names, and how specifically."""

    pattern: re.Pattern[str]
    literal: int  # characters outside placeholders: more is more specific
    role: outputs_pb2.OutputRole
    stream_index: str = ""


def _namer(template: str, role: outputs_pb2.OutputRole, stream_index: str = "") -> _Namer:
    literals = _PLACEHOLDER.split(template)
    # A placeholder expands to any text CI chose (a frame number, an extension, a name).
    pattern = re.compile(".*".join(re.escape(part) for part in literals), re.DOTALL)
    return _Namer(pattern, sum(map(len, literals)), role, stream_index)


def _namers(output: job_kinds_pb2.Output) -> list[_Namer]:
    """Every `Output` value that names files, in the order that breaks ties."""
    named = [
        _namer(stream.object, R.OUTPUT_ROLE_STREAM, stream.index)
        for stream in output.stream_extract
        if stream.object
    ]
    for template, role in (
        (output.au_object, R.OUTPUT_ROLE_AUDIO),
        (output.bass_object, R.OUTPUT_ROLE_BASS),
        (output.drum_object, R.OUTPUT_ROLE_DRUM),
        (output.object, R.OUTPUT_ROLE_MAIN),
        (output.sprite_object, R.OUTPUT_ROLE_SPRITE),
    ):
        if template:
            named.append(_namer(template, role))
    return named


def _role_of(key: str, namers: list[_Namer]) -> tuple[outputs_pb2.OutputRole, str]:
    best: _Namer | None = None
    for namer in namers:
        if namer.pattern.fullmatch(key) and (best is None or namer.literal > best.literal):
            best = namer
    if best is None:
        return R.OUTPUT_ROLE_MAIN, ""
    return best.role, best.stream_index


def _files(
    files: job_kinds_pb2.OutputFile, output: job_kinds_pb2.Output
) -> Iterator[tuple[str, str, str, str]]:
    """(bucket, region, key, md5) of each file a result's file set names."""
    bucket = files.bucket or output.bucket
    region = files.region or output.region
    md5s = {info.object_name: info.md5 for info in files.md5_info if info.object_name}
    for name in files.object_name:
        key = files.object_prefix + name
        # Md5Info names the file as ObjectName does; a full key there is accepted too.
        yield bucket, region, key, md5s.get(name) or md5s.get(key, "")


def outputs_of(job: media_pb2.JobsDetail) -> list[outputs_pb2.OutputObject]:
    """The objects `job` wrote, per the module docstring (empty unless it succeeded)."""
    if job.state != media_pb2.JOB_STATE_SUCCESS:
        return []  # before `job.operation`: a job still running costs one read of an int
    operation = job.operation
    if not operation.HasField("media_result"):
        return []
    output = operation.output
    main = operation.media_result.output_file
    sprites = job_kinds_pb2.OutputFile()
    sprites.CopyFrom(main.sprite_output_file)
    # A sprite set that names no bucket or region of its own shares its parent's.
    sprites.bucket = sprites.bucket or main.bucket
    sprites.region = sprites.region or main.region
    namers = _namers(output)
    found: list[outputs_pb2.OutputObject] = []
    seen: set[tuple[str, str, str]] = set()
    for files, from_sprites in ((main, False), (sprites, True)):
        for bucket, region, key, md5 in _files(files, output):
            if (bucket, region, key) in seen:
                continue  # one object, listed twice
            seen.add((bucket, region, key))
            if from_sprites:
                role, index = R.OUTPUT_ROLE_SPRITE, ""
            else:
                role, index = _role_of(key, namers)
            found.append(
                outputs_pb2.OutputObject(
                    bucket=bucket, region=region, key=key, md5=md5, role=role, stream_index=index
                )
            )
    return found


def fill_outputs(jobs: Iterable[media_pb2.JobsDetail]) -> None:
    """Set `outputs` on every job the gateway is about to return (replacing any it had)."""
    for job in jobs:
        # `ClearField` rather than `del job.outputs[:]`, and no `extend` of nothing: the
        # repeated field's container is not built for a job that wrote nothing (most answers:
        # a submit's, a running job's).
        job.ClearField("outputs")
        found = outputs_of(job)
        if found:
            job.outputs.extend(found)
