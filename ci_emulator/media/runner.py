"""Running one media task in its own worker process, from the emulator's event loop.

    start_worker(task) --forkserver--> process running worker.main(task, pipe)
    WorkerHandle.wait(on_progress) <-- ("progress", n)*, then ("done", result) | ("failed", ...)
    WorkerHandle.kill()            --> SIGKILL: cancel, or the emulator shutting down

Why a process per job (not threads, not a pool): FFmpeg work in a thread would still hold
the GIL between calls and compete with the loop answering requests; and a job must be
stoppable mid-run (cancel), which a pool's shared worker cannot offer. Processes are forked
from a forkserver that has imported PyAV and the media modules once, so a start costs
milliseconds; the first start launches the forkserver itself (off the loop, in a thread).
How many run at once is the scheduler's business (each queue's MaxConcurrent).

The parent never blocks on a pipe: it reads the worker's messages when the loop says the
pipe is readable, and learns that the process ended from its sentinel.
"""

from __future__ import annotations

import asyncio
import contextlib
import multiprocessing
import os
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any, Final

from ci_emulator.media.errors import INTERNAL_ERROR
from ci_emulator.media.task import MediaTask, WorkerResult

STAGING_DIR: Final = ".ci-emulator-staging"
"""Folder (in the output bucket's folder) where running jobs write; never published."""

_PRELOAD: Final = ["ci_emulator.media.worker"]
_context: multiprocessing.context.ForkServerContext | None = None


def _forkserver() -> multiprocessing.context.ForkServerContext:
    global _context  # one forkserver per emulator process, made on first use
    if _context is None:
        context = multiprocessing.get_context("forkserver")
        context.set_forkserver_preload(_PRELOAD)
        _context = context
    return _context


@dataclass(frozen=True)
class Outcome:
    """How a worker ended: `result` on success, else `code`/`message` (killed: "Killed")."""

    result: WorkerResult | None
    code: str = ""
    message: str = ""


class WorkerHandle:
    def __init__(self, process: Any, conn: Connection) -> None:
        self._process = process
        self._conn = conn
        self._killed = False

    @property
    def pid(self) -> int | None:
        pid = self._process.pid
        return int(pid) if pid is not None else None

    def go(self) -> None:
        """Let a worker held after its first progress report go on (test control)."""
        with contextlib.suppress(OSError):
            self._conn.send(("go",))

    def kill(self) -> None:
        if not self._killed and self._process.exitcode is None:
            self._killed = True
            with contextlib.suppress(OSError):
                self._process.kill()

    async def wait(self, on_progress: Callable[[int], None]) -> Outcome:
        """Forward progress until the worker answers or dies; then reap the process."""
        loop = asyncio.get_running_loop()
        answered: asyncio.Future[Outcome] = loop.create_future()
        fd = self._conn.fileno()

        def readable() -> None:
            try:
                # Bounded: each pass consumes one message already in the pipe.
                while not answered.done() and self._conn.poll():
                    message = self._conn.recv()
                    if message[0] == "progress":
                        on_progress(int(message[1]))
                    elif message[0] == "done":
                        answered.set_result(Outcome(message[1]))
                    else:
                        answered.set_result(Outcome(None, str(message[1]), str(message[2])))
            except (EOFError, OSError):
                if not answered.done():
                    answered.set_result(self._death())
            if answered.done():
                loop.remove_reader(fd)

        loop.add_reader(fd, readable)
        try:
            outcome = await answered
        finally:
            loop.remove_reader(fd)
        await self._reap()
        return outcome

    def _death(self) -> Outcome:
        if self._killed:
            return Outcome(None, "Killed", "the worker was stopped")
        return Outcome(None, INTERNAL_ERROR, "the media worker ended without an answer")

    async def _reap(self) -> None:
        """Wait for the process to exit (its sentinel turns readable), then join it."""
        if self._process.exitcode is None:
            loop = asyncio.get_running_loop()
            ended = loop.create_future()
            sentinel = self._process.sentinel

            def exited() -> None:
                if not ended.done():
                    ended.set_result(None)

            loop.add_reader(sentinel, exited)
            try:
                async with asyncio.timeout(30):
                    await ended
            except TimeoutError:
                self.kill()
            finally:
                loop.remove_reader(sentinel)
        self._process.join(timeout=5)
        self._conn.close()


async def start_worker(task: MediaTask) -> WorkerHandle:
    """Start `task` in a new worker process (the forkserver start runs off the loop)."""
    from ci_emulator.media import worker  # the process target; imported where it runs

    context = _forkserver()
    parent, child = context.Pipe(duplex=True)
    process = context.Process(
        target=worker.main, args=(task, child), name=f"ci-media-{task.request.tag}", daemon=True
    )
    try:
        await asyncio.to_thread(process.start)
    finally:
        child.close()  # the worker holds its own end; ours would hide its EOF
    return WorkerHandle(process, parent)


def staging_folder(root: Path, job_id: str) -> Path:
    folder = root / STAGING_DIR / job_id
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def discard_staging(folder: Path) -> None:
    """Remove a job's staging folder and, if no other job uses it, the staging root."""
    shutil.rmtree(folder, ignore_errors=True)
    with contextlib.suppress(OSError):
        folder.parent.rmdir()


def publish(staging: Path, root: Path, items: list[tuple[str, Path]]) -> None:
    """Move staged files (name in `staging` -> destination) into place, each atomically."""
    for name, destination in items:
        destination.parent.mkdir(parents=True, exist_ok=True)
        os.replace(staging / name, destination)
