"""Credentials from a mounted directory (a Kubernetes Secret, Vault Agent output), re-read when
it changes, without a restart.

The directory holds one value per file, surrounding whitespace ignored:

    secret_id       the SecretId (required)
    secret_key      the SecretKey (required)
    session_token   the STS token, when the keys are temporary (optional)
    expired_time    Unix seconds when temporary keys expire (optional; never sent after it)

A `Poller` compares the files' fingerprints (`gateway._files`) every few seconds. A change is
read as a whole and swapped in memory at once: an attempt already signed keeps the keys it was
signed with, the next attempt gets the new ones, so a rotation fails no call. A missing, empty
or malformed file keeps the previous credentials and logs a warning naming the file (never its
content); the next change is tried again.

When CI refuses the keys in use, the client's `renew` checks the files at once rather than at the
next poll, so a call signed just before kubelet swapped the Secret is resent with the new keys
instead of failing. Refusals arriving together (every call in flight, after a rotation) share
that check.

Kubernetes swaps all files at once (the `..data` symlink), and the files are read through one
resolved `..data`, so a pair is never mixed. A writer without that symlink may update the files
one after another; there a change is adopted only once two consecutive checks agree, so a new
SecretId is not paired with the old SecretKey halfway through. Write each file by `rename`.
"""

from __future__ import annotations

import asyncio
import logging
import math
import os
import re
import time
from pathlib import Path

from gateway._files import (
    Fingerprint,
    Poller,
    SecretFileError,
    Sleep,
    fingerprint,
    read_secret_file,
)
from gateway.credentials import (
    Clock,
    Credentials,
    SingleSourceProvider,
)
from gateway.logs import event

log = logging.getLogger(__name__)

FILE_SECRET_ID = "secret_id"  # noqa: S105 - file names, not secrets
FILE_SECRET_KEY = "secret_key"  # noqa: S105
FILE_SESSION_TOKEN = "session_token"  # noqa: S105
FILE_EXPIRED_TIME = "expired_time"
KUBERNETES_DATA = "..data"
# Kubelet refreshes mounted Secrets every minute or so; 5 s adds little to that and costs a
# handful of stat calls.
DEFAULT_POLL_INTERVAL_S = 5.0
# An STS token is ~1-2 KiB; anything much larger is not a credential file.
MAX_FILE_BYTES = 16 * 1024
# Printable ASCII without spaces: SecretIds, SecretKeys and tokens are all of this form.
_VALUE = re.compile(r"^[\x21-\x7e]+$")


class CredentialFileError(Exception):
    """A credential file is missing or unusable; the text names the file, never its content."""


def _read_value(path: Path, name: str, *, required: bool) -> str | None:
    try:
        text = read_secret_file(path, label=name, max_bytes=MAX_FILE_BYTES, encoding="ascii")
    except SecretFileError as problem:
        if problem.missing and not required:
            return None
        raise CredentialFileError(str(problem)) from None
    if not _VALUE.fullmatch(text):
        raise CredentialFileError(f"{name} contains spaces or control characters")
    return text


def read_directory(directory: Path) -> Credentials:
    """Read one consistent set of credentials; `CredentialFileError` when incomplete."""
    data = directory / KUBERNETES_DATA
    base = Path(os.path.realpath(data)) if data.exists() else directory
    secret_id = _read_value(base / FILE_SECRET_ID, FILE_SECRET_ID, required=True)
    secret_key = _read_value(base / FILE_SECRET_KEY, FILE_SECRET_KEY, required=True)
    token = _read_value(base / FILE_SESSION_TOKEN, FILE_SESSION_TOKEN, required=False)
    expired = _read_value(base / FILE_EXPIRED_TIME, FILE_EXPIRED_TIME, required=False)
    expires_at: float | None = None
    if expired is not None:
        try:
            expires_at = float(expired)
        except ValueError:
            expires_at = math.nan
        if not math.isfinite(expires_at):  # float() also reads "nan", "inf" and "1e999"
            raise CredentialFileError(f"{FILE_EXPIRED_TIME} is not Unix seconds")
    assert secret_id is not None and secret_key is not None  # required=True
    return Credentials(secret_id, secret_key, token, expires_at)


class DirectoryCredentialsProvider(SingleSourceProvider):
    """The credentials in a mounted directory, swapped in memory whenever the files change."""

    def __init__(
        self,
        directory: Path,
        *,
        poll_interval_s: float = DEFAULT_POLL_INTERVAL_S,
        clock: Clock = time.time,
        sleep: Sleep = asyncio.sleep,
    ) -> None:
        super().__init__(f"directory:{directory}", clock=clock)
        self.directory = directory
        self._paths = [
            directory / name
            for name in (
                KUBERNETES_DATA,
                FILE_SECRET_ID,
                FILE_SECRET_KEY,
                FILE_SESSION_TOKEN,
                FILE_EXPIRED_TIME,
            )
        ]
        self._seen: Fingerprint | None = None
        self._pending: Fingerprint | None = None
        self._lock = asyncio.Lock()
        self._checks = 0  # checks of the files begun so far (`_reload`)
        self._poller = Poller(self.poll, poll_interval_s, name=self.name, sleep=sleep)

    def __repr__(self) -> str:
        return f"DirectoryCredentialsProvider({str(self.directory)!r})"

    async def start(self) -> None:
        """Load, then watch; a second call (the gateway and its owner both starting it) is a
        no-op."""
        if self._poller.running:
            return
        await self.poll()
        self._poller.start()

    async def close(self) -> None:
        await self._poller.close()

    async def get(self) -> Credentials:
        if self._seen is None:
            await self.poll()  # used before start(): load on first use
        return self._usable()

    def at_hand(self) -> Credentials | None:
        # `get` waits only for its first read of the directory.
        return None if self._seen is None else self._usable()

    async def _reload(self) -> None:
        # A rotation makes CI refuse every call in flight at once. A check begun after this
        # refusal saw the files as they are since, so a refusal that waited for the lock while
        # one ran needs none of its own: the refusals arriving together share one check,
        # instead of reading the files once each, in turn. A refusal counts as one check: a
        # directory without `..data` still adopts a change only once two checks agree.
        asked_at = self._checks
        try:
            async with self._lock:
                if self._checks == asked_at:
                    await self._poll()
        except Exception as exc:  # keep the call's own error; the class name only, as Poller
            event(
                log,
                logging.WARNING,
                "mounted credentials: check failed",
                source=self.name,
                error=type(exc).__name__,
            )

    async def poll(self) -> bool:
        """Check the files once; True when new credentials were swapped in."""
        async with self._lock:
            return await self._poll()

    async def _poll(self) -> bool:
        self._checks += 1
        seen = await asyncio.to_thread(fingerprint, self._paths)
        if seen == self._seen:
            return False
        atomic = seen[0][1] is not None  # a `..data` symlink: Kubernetes swaps files at once
        if not atomic and self._current is not None and seen != self._pending:
            self._pending = seen  # adopt once the next check sees the same files
            return False
        try:
            credentials = await asyncio.to_thread(read_directory, self.directory)
        except CredentialFileError as problem:
            self._seen = seen  # warn once; read again after the next change
            keeping = self._current is not None
            event(
                log,
                logging.WARNING,
                "mounted credentials unusable; keeping the previous ones"
                if keeping
                else "mounted credentials unusable; none loaded",
                source=self.name,
                problem=str(problem),
            )
            return False
        if await asyncio.to_thread(fingerprint, self._paths) != seen:
            return False  # changed while being read: the next check reads the final state
        self._seen, self._pending = seen, None
        self._adopt(credentials)
        event(
            log,
            logging.INFO,
            "mounted credentials loaded",
            source=self.name,
            generation=self._generation,
            expires_at=credentials.expires_at,
        )
        return True
