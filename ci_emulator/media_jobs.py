"""Running one media job (every tag but MediaInfo) for the scheduler: Running -> Success |
Failed | Cancel, with a worker process and nothing half-written left behind.

    resolve inputs -> staging folder -> start worker -> progress -> outcome
       done:   publish staged files to their keys (renames), Success with MediaResult and
               the output's MediaInfo
       failed: Failed with the worker's Code/Message;   cancelled (killed): stays Cancel
    always:    the staging folder is removed

A job cancelled (or an emulator shut down) at any point leaves no object behind: files are
only ever written into the staging folder, and published by renames in one synchronous step
after the job is known to have succeeded and not been cancelled.
"""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

from ci_emulator.jobs import Job, JobState
from ci_emulator.media.errors import INTERNAL_ERROR
from ci_emulator.media.model import ObjectRef
from ci_emulator.media.result import media_result
from ci_emulator.media.runner import (
    Outcome,
    WorkerHandle,
    discard_staging,
    publish,
    staging_folder,
    start_worker,
)
from ci_emulator.media.task import MediaTask
from ci_emulator.objects import MISSING_OBJECT, resolve_object_path
from ci_emulator.state import EmulatorState
from ci_emulator.xmlbuild import Fields

logger = logging.getLogger(__name__)


async def run_media_job(state: EmulatorState, job: Job) -> None:
    request = job.spec.media
    assert request is not None
    clock = state.config.clock
    files = _resolve(state, job)
    if files is None:
        job.fail(clock(), *MISSING_OBJECT)
        return
    out_root = _output_root(state, job)
    staging = staging_folder(out_root, job.job_id)
    handle: WorkerHandle | None = None
    try:
        input_ref = ObjectRef(job.bucket, job.region, job.spec.object_key)
        task = MediaTask(
            request=request,
            input_key=job.spec.object_key or None,
            input_path=files.get(input_ref),
            files=files,
            staging=str(staging),
            cpus=state.config.media_worker_cpus,
            hold_after_first_progress=state.workers_held,
        )
        handle = await start_worker(task)
        state.workers[job.job_id] = handle
        if job.state is not JobState.RUNNING:  # cancelled while the process was starting
            handle.kill()
        outcome = await handle.wait(lambda percent: state.report_progress(job, percent))
        _finish(state, job, outcome, staging, out_root)
    except asyncio.CancelledError:
        if handle is not None:  # killed and reaped: nothing of the job outlives its task
            await handle.stop()
        raise
    except Exception:  # like the probe: a runner crash fails the job, never strands it
        logger.exception("running media job %s crashed", job.job_id)
        if job.state is JobState.RUNNING:
            job.fail(clock(), INTERNAL_ERROR, "the media job failed unexpectedly")
    finally:
        state.workers.pop(job.job_id, None)
        discard_staging(staging)


def _resolve(state: EmulatorState, job: Job) -> dict[ObjectRef, str] | None:
    """Every object the job reads, as a file path (None if one cannot name a file)."""
    request = job.spec.media
    assert request is not None
    refs = list(request.extra_inputs)
    if job.spec.object_key:
        refs.insert(0, ObjectRef(job.bucket, job.region, job.spec.object_key))
    files: dict[ObjectRef, str] = {}
    for ref in refs:
        bucket = state.config.bucket(ref.bucket)
        path = None if bucket is None else resolve_object_path(bucket.root, ref.key)
        if path is None:
            return None
        files[ref] = str(path)
    return files


def _output_root(state: EmulatorState, job: Job) -> Path:
    request = job.spec.media
    assert request is not None
    name = request.output.bucket if request.output is not None else job.bucket
    bucket = state.config.bucket(name)
    assert bucket is not None, "validated at submit"
    return bucket.root


def _finish(state: EmulatorState, job: Job, outcome: Outcome, staging: Path, root: Path) -> None:
    clock = state.config.clock
    if job.state is not JobState.RUNNING:
        return  # cancelled: the worker was killed, and nothing is published
    if outcome.result is None:
        job.fail(clock(), outcome.code or INTERNAL_ERROR, outcome.message)
        return
    request = job.spec.media
    assert request is not None
    items: list[tuple[str, Path]] = []
    for item in outcome.result.files:
        destination = resolve_object_path(root, item.key)
        if destination is None:
            job.fail(clock(), "InvalidArgument", f"the output key {item.key} is not valid")
            return
        items.append((item.name, destination))
    try:
        publish(staging, root, items)
    except OSError as exc:
        logger.warning("publishing the outputs of %s failed: %s", job.job_id, exc)
        job.fail(clock(), INTERNAL_ERROR, "the outputs could not be written")
        return
    results: Fields = []
    if request.output is not None and outcome.result.files:
        results += media_result(request.output, outcome.result.files)
    results += _kind_results(job, dict(outcome.result.extra))
    job.succeed(clock(), outcome.result.media_info, results)


def _kind_results(job: Job, extra: dict[str, str]) -> Fields:
    """Result nodes beyond MediaResult: the digital watermark's State, or the message read."""
    tag = job.spec.tag
    if tag == "DigitalWatermark":
        echoed = dict(job.spec.operation_echo).get("DigitalWatermark")
        node: Fields = list(echoed) if isinstance(echoed, list) else []
        return [("DigitalWatermark", [*node, ("State", "Success")])]
    if tag == "ExtractDigitalWatermark":
        return [
            (
                "DigitalWatermark",
                [
                    ("Message", extra.get("Message", "")),
                    ("State", extra.get("State", "Success")),
                    ("Type", extra.get("Type", "Text")),
                    ("Version", extra.get("Version", "V1")),
                ],
            )
        ]
    return []
