"""What crosses into a worker process, and what comes back: picklable values only.

    parent (runner) --MediaTask--> worker process --("progress", n)*--> parent
                                                  --("done", WorkerResult)--> parent
                                                  | ("failed", code, message)

The worker writes only into `MediaTask.staging` (a private folder in the output bucket's
folder, so publishing is a rename on one file system) and names each file it made in a
`Produced`; the parent moves them to their object keys only after the job succeeded and was
not cancelled meanwhile. That is how no half-written object is ever visible.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from ci_emulator.media.model import MediaRequest, ObjectRef


@dataclass(frozen=True)
class MediaTask:
    request: MediaRequest
    input_key: str | None
    input_path: str | None
    """The input object's file; None for a Concat without Input."""
    files: dict[ObjectRef, str]
    """Other objects the job reads (fragments, images), already resolved to files."""
    staging: str
    cpus: tuple[int, ...] = ()
    """CPUs the worker pins itself to (empty: inherited)."""
    hold_after_first_progress: bool = False
    """A test control (`EmulatorState.hold_workers`): stop after the first progress report
    until the parent says go, so a test can observe or cancel a job mid-run."""

    def path_of(self, ref: ObjectRef) -> str:
        """The file of an input reference (the job's own input when `ref` is it)."""
        found = self.files.get(ref)
        if found is None:
            if self.input_path is None:
                raise KeyError(ref)
            return self.input_path
        return found


@dataclass(frozen=True)
class Produced:
    name: str
    """File name inside the staging folder."""
    key: str
    """The object key it is published under."""
    role: Literal["main", "sprite"] = "main"
    md5: str = ""


@dataclass(frozen=True)
class WorkerResult:
    files: tuple[Produced, ...]
    media_info: dict[str, Any] | None = None
    """MediaInfo of the main output (CI reports the output's MediaInfo)."""
    extra: tuple[tuple[str, str], ...] = field(default=())
    """Kind-specific result values, e.g. ("Message", <extracted digital watermark>)."""
