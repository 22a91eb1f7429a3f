"""Small files the gateway reads at run time: noticing that they changed, and reading secrets.

**Watching.** Mounted Secrets and ConfigMaps (credentials, the access file) change under a running
gateway. Kubernetes updates a Secret or ConfigMap volume by writing a new timestamped directory and
swapping the `..data` symlink to it in one `rename`; the visible files are symlinks through
`..data`. Inotify on such a volume reports events on the hidden directories rather than the
files, and a `subPath` mount never changes at all, so the portable, dependency-free way to see a
rotation is to look every few seconds: resolve each path (a swapped `..data` resolves elsewhere)
and compare inode, size and modification time. A check costs a few `stat` calls, made off the
event loop by the owner of a `Poller`, so request handling only ever reads what was loaded.

**Reading secrets.** A token, a URL with a password, a key: one value per file, read with
`read_secret_file`, the one reader for all of them. It caps the size (a wrong path such as
`/dev/zero` or a log file is refused, not read whole), strips surrounding whitespace (editors and
`echo` add a newline), refuses an empty file, and raises `SecretFileError`, whose text names the
file and never its content, with no exception chained (a traceback would print it).
"""

from __future__ import annotations

import asyncio
import codecs
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


# A token, a URL or a key is short: a larger file is a wrong path, not a secret.
MAX_SECRET_FILE_BYTES = 64 * 1024


class SecretFileError(ValueError):
    """A secret file cannot be used; the text names the file, never its content. `missing` is
    True when the file does not exist (an optional file may be absent)."""

    def __init__(self, message: str, *, missing: bool = False) -> None:
        super().__init__(message)
        self.missing = missing


def read_secret_file(
    path: str | os.PathLike[str],
    *,
    label: str | None = None,
    max_bytes: int = MAX_SECRET_FILE_BYTES,
    encoding: str = "utf-8",
) -> str:
    """The text of a one-value secret file, surrounding whitespace stripped.

    `SecretFileError` when the file cannot be read, is larger than `max_bytes`, is not text in
    `encoding`, or holds only whitespace; its text starts with `label` (default: the path
    quoted) and never quotes the content. Blocking: call it off the event loop when it runs
    while serving."""
    where = label if label is not None else repr(os.fspath(path))
    try:
        with open(path, "rb") as handle:
            data = handle.read(max_bytes + 1)
    except OSError as exc:
        reason = exc.strerror or type(exc).__name__
        missing = isinstance(exc, FileNotFoundError)
        raise SecretFileError(f"{where} cannot be read: {reason}", missing=missing) from None
    if len(data) > max_bytes:
        raise SecretFileError(f"{where} is larger than {max_bytes} bytes")
    try:
        text = data.decode(encoding).strip()
    except UnicodeDecodeError:
        name = codecs.lookup(encoding).name.upper()
        raise SecretFileError(f"{where} is not {name} text") from None
    if not text:
        raise SecretFileError(f"{where} is empty")
    return text
