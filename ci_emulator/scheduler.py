"""Runs jobs in the emulator's own tasks: Submitted -> Running -> Success | Failed.

One scheduler task waits for "something changed" (a submit, a finished job, a resumed queue),
then starts whatever the queues allow (`EmulatorState.take_startable` applies JobLevel priority,
MaxConcurrent and pausing). Each started job gets a task that waits while running is held,
then probes the object from the bucket folder (MediaInfo) or runs the media job in a worker
process (`media_jobs`; so at most MaxConcurrent workers per queue), and records the outcome.
Closing the scheduler cancels every task it started (killing their workers), so a test's
event loop ends clean.
"""

from __future__ import annotations

import logging
from pathlib import Path

from ci_emulator.jobs import Job, JobState
from ci_emulator.media_jobs import run_media_job
from ci_emulator.objects import MISSING_OBJECT, resolve_object_path
from ci_emulator.probe import ProbeError
from ci_emulator.queues import MediaQueue
from ci_emulator.state import EmulatorState
from ci_emulator.tasks import BackgroundTasks

logger = logging.getLogger(__name__)


class Scheduler:
    def __init__(self, state: EmulatorState) -> None:
        self._state = state
        # The scheduler's own task and one per started job.
        self._tasks = BackgroundTasks()

    def start(self) -> None:
        self._tasks.spawn(self._run(), name="ci-emulator-scheduler")

    async def close(self) -> None:
        await self._tasks.close()

    async def _run(self) -> None:
        # Runs until cancelled by close(); each pass waits for the next change.
        while True:
            await self._state.wait_for_work()
            for queue, job in self._state.take_startable():
                self._tasks.spawn(self._execute(queue, job), name=f"job-{job.job_id}")

    async def _execute(self, queue: MediaQueue, job: Job) -> None:
        state = self._state
        try:
            await state.wait_until_released()
            if job.state is not JobState.RUNNING:
                return  # cancelled while held (a media job may be cancelled Running)
            if job.spec.runs_in_worker:
                await run_media_job(state, job)
                return
            bucket = state.bucket(job.bucket, job.region)
            path = resolve_object_path(bucket.root, job.spec.object_key)
            await self._probe_into(job, path)
        finally:
            state.finished_running(queue, job)

    async def _probe_into(self, job: Job, path: Path | None) -> None:
        clock = self._state.config.clock
        if path is None:
            job.fail(clock(), *MISSING_OBJECT)
            return
        try:
            info = await self._state.config.probe(path)
        except ProbeError as exc:
            job.fail(clock(), str(exc.code), exc.message)
        except Exception:
            # A probe crash must not leave the job Running forever: CI reports its own internal
            # faults as a failed job, and so does the emulator (with the traceback in its log).
            logger.exception("probing %s for job %s crashed", path, job.job_id)
            job.fail(clock(), "InternalError", "the media probe failed unexpectedly")
        else:
            job.succeed(clock(), info)
