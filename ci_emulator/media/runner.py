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

A job's task may be cancelled at any point (a cancel, the emulator closing): its worker is then
killed and reaped before the cancellation goes on (`WorkerHandle.stop`), however far the start
had come. The start runs in a thread, which a cancellation cannot stop: it is waited for, and
the process it made is stopped. Left to itself, that process ran the job with nobody reading
its pipe (its first progress report died of BrokenPipeError, logged as a crashed worker) and
outlived the emulator's `close`.
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

START_TIMEOUT_S: Final = 60.0
"""Bound on a worker's start (the first one also starts the forkserver, which imports PyAV)."""
EXIT_TIMEOUT_S: Final = 30.0
"""Bound on the wait for a worker's exit once it has answered or been killed."""


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

    async def stop(self) -> None:
        """Kill the worker and reap it: when this returns, the process is gone, even should
        the caller be cancelled meanwhile (it is then cancelled once the process is gone)."""
        self.kill()
        await self._reap()

    def _death(self) -> Outcome:
        if self._killed:
            return Outcome(None, "Killed", "the worker was stopped")
        return Outcome(None, INTERNAL_ERROR, "the media worker ended without an answer")

    async def _reap(self) -> None:
        """Wait for the process to exit (its sentinel turns readable; killed after
        `EXIT_TIMEOUT_S`), then join it. A cancellation meanwhile waits for the exit too."""
        try:
            if self._process.exitcode is None:
                loop = asyncio.get_running_loop()
                ended = loop.create_future()
                sentinel = self._process.sentinel

                def exited() -> None:
                    if not ended.done():
                        ended.set_result(None)

                loop.add_reader(sentinel, exited)
                try:
                    await _outlasting_cancellation(ended, EXIT_TIMEOUT_S)
                finally:
                    loop.remove_reader(sentinel)
                    if not ended.done():
                        self.kill()
        finally:
            self._process.join(timeout=5)
            self._conn.close()


async def _outlasting_cancellation(future: asyncio.Future[Any], timeout_s: float) -> None:
    """Wait for `future` (at most `timeout_s`) however often the task is cancelled meanwhile,
    then raise the cancellation, if any: what the task holds must outlive the work `future`
    stands for (a thread starting a process, a process exiting)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout_s
    cancelled = False
    # Each pass ends with the future, at the deadline, or at a cancellation (noted).
    while not future.done() and (left := deadline - loop.time()) > 0:
        try:
            await asyncio.wait({future}, timeout=left)
        except asyncio.CancelledError:
            cancelled = True
    if cancelled:
        raise asyncio.CancelledError


async def start_worker(task: MediaTask) -> WorkerHandle:
    """Start `task` in a new worker process (the forkserver start runs off the loop). Cancelled
    meanwhile, the start is still waited for (its thread hands the pipe's child end to the
    forkserver, so that end stays open until then), and the process it made is stopped before
    the cancellation goes on."""
    from ci_emulator.media import worker  # the process target; imported where it runs

    context = _forkserver()
    parent, child = context.Pipe(duplex=True)
    process = context.Process(
        target=worker.main, args=(task, child), name=f"ci-media-{task.request.tag}", daemon=True
    )
    handle = WorkerHandle(process, parent)
    # A future of the executor's, not a task: nothing that cancels tasks reaches the thread.
    starting = asyncio.get_running_loop().run_in_executor(None, process.start)

    def started() -> bool:
        return starting.done() and starting.exception() is None

    try:
        await _outlasting_cancellation(starting, START_TIMEOUT_S)
    except asyncio.CancelledError:
        if started():
            await handle.stop()
        else:
            parent.close()
        raise
    finally:
        child.close()  # the worker holds its own end; ours would hide its EOF
    if not started():
        parent.close()
        if starting.done():
            starting.result()  # the start's own error
        raise TimeoutError(f"the media worker did not start within {START_TIMEOUT_S} s")
    return handle


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
