"""What the emulator remembers of CI's resources beside jobs: templates, workflows, their runs.

`EmulatorState.resources` holds one `ResourceState`; the template and workflow APIs
(`resource_api`) and the submit path (template resolution) read and change it. Runs are started
through `runner`, which the app sets up with the server and cancels on close, so no run outlives
`RunningEmulator.close()`.

Test controls (no sleeping): `await wait_for_run(run_id, {"Success", "Failed"})` wakes on every
change of any run; `object_uploaded(bucket, key)` is how the emulator learns of an upload (it
stores no objects of its own: the bucket is a folder), starting a run of every Active workflow
whose Start node's prefix (and extension filter) takes the key.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable

from ci_emulator.errors import CiError
from ci_emulator.templates import TemplateStore
from ci_emulator.workflows import Execution, Workflow, WorkflowRunner, WorkflowStore, matches_upload


class ResourceState:
    def __init__(self, buckets: Iterable[str], now: float) -> None:
        self.templates = TemplateStore(now, tuple(buckets))
        self.workflows = WorkflowStore()
        self.runner: WorkflowRunner | None = None
        """Set while the app runs (`app._run_workflows`)."""
        self.uploads_seen = 0
        self._changed = asyncio.Event()

    def start_run(self, workflow: Workflow, object_key: str, now: float) -> Execution:
        if self.runner is None:
            raise CiError("ServiceUnavailable", "the workflow runner is not running")
        execution = self.workflows.new_execution(workflow, object_key, now)
        self.runner.start(execution)
        self.changed()
        return execution

    def object_uploaded(self, bucket: str, key: str, now: float) -> list[Execution]:
        """An object appeared under `key`: start the runs CI would start for it."""
        self.uploads_seen += 1
        workflows = sorted(
            (w for w in self.workflows.workflows.values() if w.bucket == bucket),
            key=lambda w: (w.created_at, w.workflow_id),
        )
        return [self.start_run(w, key, now) for w in workflows if matches_upload(w, key)]

    def changed(self) -> None:
        """Wake `wait_for_run` (an event swapped per change, so none is missed)."""
        changed, self._changed = self._changed, asyncio.Event()
        changed.set()

    async def wait_for_run(
        self,
        run_id: str,
        states: Iterable[str],
        *,
        timeout: float = 10.0,  # noqa: ASYNC109 - a bounded wait is the point of this helper
    ) -> Execution:
        wanted = frozenset(states)
        async with asyncio.timeout(timeout):
            while True:  # bounded by the timeout; each pass waits for the next change
                execution = self.workflows.executions[run_id]
                if execution.state in wanted:
                    return execution
                await self._changed.wait()
