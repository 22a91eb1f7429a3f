"""Noticing that files changed, by polling: mounted Secrets and ConfigMaps, the access file.

Kubernetes updates a Secret or ConfigMap volume by writing a new timestamped directory and
swapping the `..data` symlink to it in one `rename`; the visible files are symlinks through
`..data`. Inotify on such a volume reports events on the hidden directories rather than the
files, and a `subPath` mount never changes at all, so the portable, dependency-free way to see a
rotation is to look every few seconds: resolve each path (a swapped `..data` resolves elsewhere)
and compare inode, size and modification time. A check costs a few `stat` calls.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
from collections.abc import Awaitable, Callable, Iterable
from pathlib import Path

log = logging.getLogger(__name__)

Fingerprint = tuple[tuple[str, str | None, tuple[int, int, int, int] | None], ...]
Sleep = Callable[[float], Awaitable[None]]


def fingerprint(paths: Iterable[Path]) -> Fingerprint:
    """Where each path resolves to and its (device, inode, size, mtime); None when missing."""
    result = []
    for path in paths:
        try:
            resolved: str | None = os.path.realpath(path)
            stat = os.stat(path)
            identity: tuple[int, int, int, int] | None = (
                stat.st_dev,
                stat.st_ino,
                stat.st_size,
                stat.st_mtime_ns,
            )
        except OSError:
            resolved, identity = None, None
        result.append((str(path), resolved, identity))
    return tuple(result)


class Poller:
    """Runs `check` every `interval_s` until closed. `check` handles its own expected failures;
    anything else is logged by class name only (an exception's text could quote a file)."""

    def __init__(
        self,
        check: Callable[[], Awaitable[object]],
        interval_s: float,
        *,
        name: str,
        sleep: Sleep = asyncio.sleep,
    ) -> None:
        if interval_s <= 0:
            raise ValueError("a poll interval must be positive")
        self._check = check
        self._interval_s = interval_s
        self._name = name
        self._sleep = sleep
        self._task: asyncio.Task[None] | None = None

    @property
    def running(self) -> bool:
        return self._task is not None and not self._task.done()

    def start(self) -> None:
        if not self.running:
            self._task = asyncio.create_task(self._run(), name=f"poll:{self._name}")

    async def close(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def _run(self) -> None:
        # Ends only by cancellation (close); each round is one bounded check.
        while True:
            await self._sleep(self._interval_s)
            try:
                await self._check()
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # keep watching whatever one round did
                log.warning("%s: check failed (%s)", self._name, type(exc).__name__)
