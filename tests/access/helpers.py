"""Test doubles and writers for the credential and access tests.

Nothing here fakes what a real component can do: the emulator really verifies signatures, the
gateway really serves gRPC over TLS. These helpers only produce inputs (a Secret volume written
the way kubelet writes it, certificates, a clock the test moves) and observe outputs (which
SecretIds the emulator was asked about).
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import secrets
import shutil
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import pytest

from ci_emulator.config import Credential
from gateway.credentials import Credentials
from gateway.logs import JsonFormatter
from tests.conftest import BUCKET

CANARY = "LEAKCANARY"


def canary_credentials(
    label: str, *, token: bool = False, expires_at: float | None = None
) -> Credentials:
    """Credentials whose secret parts are recognisable in any output they might leak into."""
    return Credentials(
        "AKID" + label.upper() + secrets.token_hex(8),
        f"SK-{CANARY}-{label}-" + secrets.token_hex(12),
        f"TOKEN-{CANARY}-{label}-" + secrets.token_urlsafe(24) if token else None,
        expires_at,
    )


def emulator_credential(credentials: Credentials) -> str | Credential:
    """How the emulator is told about `credentials` (temporary ones with token and expiry)."""
    if credentials.token is None:
        return credentials.secret_key
    return Credential(credentials.secret_key, credentials.token, credentials.expires_at)


class RecordingCredentials(dict[str, "str | Credential"]):
    """The emulator's SecretId -> key mapping, noting every SecretId a request presented (the
    emulator looks each one up before checking the signature), with the emulator's time."""

    def __init__(self, *items: Credentials, clock: Any = time.time) -> None:
        super().__init__({c.secret_id: emulator_credential(c) for c in items})
        self.seen: list[tuple[str, float]] = []
        self._clock = clock

    def add(self, credentials: Credentials) -> None:
        self[credentials.secret_id] = emulator_credential(credentials)

    def get(self, key: str, default: Any = None) -> Any:
        self.seen.append((key, self._clock()))
        return super().get(key, default)

    @property
    def ids(self) -> list[str]:
        return [secret_id for secret_id, _ in self.seen]


class SecretVolume:
    """A directory written the way kubelet's AtomicWriter updates a Secret volume: the files go
    into a fresh `..<timestamp>` directory, a `..data_tmp` symlink to it replaces `..data` by
    `rename` (atomic), the visible names are symlinks through `..data`, and the previous
    directory is deleted afterwards."""

    def __init__(self, root: Path) -> None:
        self.root = root
        root.mkdir(parents=True, exist_ok=True)
        self._version = 0

    def publish(self, files: dict[str, str]) -> None:
        self._version += 1
        data = self.root / "..data"
        previous = Path(os.path.realpath(data)) if data.is_symlink() else None
        fresh = self.root / f"..2026_01_01_00_00_{self._version:02d}.{secrets.token_hex(4)}"
        fresh.mkdir()
        for name, content in files.items():
            (fresh / name).write_text(content)
        tmp = self.root / "..data_tmp"
        os.symlink(fresh.name, tmp)
        os.replace(tmp, data)
        for name in files:
            link = self.root / name
            if not link.is_symlink():
                os.symlink(f"..data/{name}", link)
        if previous is not None:
            shutil.rmtree(previous)

    def publish_credentials(self, credentials: Credentials) -> None:
        files = {"secret_id": credentials.secret_id + "\n", "secret_key": credentials.secret_key}
        if credentials.token is not None:
            files["session_token"] = credentials.token
        if credentials.expires_at is not None:
            files["expired_time"] = str(int(credentials.expires_at))
        self.publish(files)


def write_plain_credentials(directory: Path, credentials: Credentials) -> None:
    """The files written directly (no `..data`), as a hand-made or Vault Agent directory."""
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "secret_id").write_text(credentials.secret_id)
    (directory / "secret_key").write_text(credentials.secret_key + "\n")


class FakeClock:
    """Unix time that moves only when the test says so."""

    def __init__(self, start: float | None = None) -> None:
        self.now = time.time() if start is None else start

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


class FakeSleep:
    """An injected `sleep`: records each requested delay and returns only when the test
    releases it (after moving its clock), so background loops run step by step."""

    def __init__(self, clock: FakeClock | None = None) -> None:
        self.clock = clock
        self.delays: list[float] = []
        self._asked = asyncio.Event()
        self._release = asyncio.Event()

    async def __call__(self, delay: float) -> None:
        self.delays.append(delay)
        self._asked.set()
        await self._release.wait()
        self._release.clear()

    async def next_delay(self, timeout: float = 5.0) -> float:
        """Wait until the loop asks to sleep; the delay it asked for."""
        await asyncio.wait_for(self._asked.wait(), timeout)
        self._asked.clear()
        return self.delays[-1]

    def release(self) -> None:
        """Let the sleeping loop go on, moving the clock by the delay it asked for."""
        if self.clock is not None:
            self.clock.advance(self.delays[-1])
        self._release.set()


def sha256_hex(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def bearer(token: str) -> tuple[tuple[str, str], ...]:
    """The call metadata presenting `token` as a bearer token."""
    return (("authorization", f"Bearer {token}"),)


def token_access_file(path: Path, *clients: tuple[str, str], tls: Path | None = None) -> Path:
    """A shared-mode access file at `path`: each (name, bearer token) a client with every
    operation on the suite's bucket; re-read every 5 s (token rotation tests); served over TLS
    with `tls`'s `tls.crt` and `tls.key` when given."""
    entries = "".join(
        f"""
[[clients]]
name = "{name}"
token_sha256 = ["{sha256_hex(token)}"]
buckets = ["{BUCKET}"]
operations = ["*"]
"""
        for name, token in clients
    )
    served = (
        f'[tls]\ncert_file = "{tls / "tls.crt"}"\nkey_file = "{tls / "tls.key"}"\n' if tls else ""
    )
    path.write_text(f'mode = "shared"\nreload_interval_s = 5\n{served}{entries}')
    return path


def assert_no_canary(texts: Iterable[str], secrets_: Iterable[str]) -> None:
    blob = "\n".join(texts)
    for secret in secrets_:
        assert secret not in blob, "a secret leaked"


def log_text(caplog: pytest.LogCaptureFixture) -> str:
    """Every captured record as the gateway writes it (message and structured fields)."""
    formatter = JsonFormatter()
    return "\n".join(formatter.format(record) for record in caplog.records)
