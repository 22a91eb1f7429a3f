"""Where the gateway's Tencent credentials come from, and how they are kept out of sight.

`Credentials` never shows its secret key or token in `repr`/`str`, so an accidental log line,
traceback or debug dump cannot leak them. Providers follow botocore's shape: `load()` returns
credentials or `None` ("try the next one"), and a chain picks the first that answers. Rotation
(mounted files, STS) plugs in as further providers without touching callers, which always ask
`await provider.get()` right before signing each attempt.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Protocol

ENV_SECRET_ID = "CI_GATEWAY_SECRET_ID"  # noqa: S105 - variable names, not secrets
ENV_SECRET_KEY = "CI_GATEWAY_SECRET_KEY"  # noqa: S105
ENV_SESSION_TOKEN = "CI_GATEWAY_SESSION_TOKEN"  # noqa: S105


@dataclass(frozen=True)
class Credentials:
    secret_id: str
    secret_key: str = field(repr=False)
    token: str | None = field(default=None, repr=False)

    def __str__(self) -> str:
        return f"Credentials(secret_id={self.secret_id!r}, secret_key=***)"

    __repr__ = __str__


class NoCredentialsError(RuntimeError):
    """No provider could supply credentials."""


class CredentialsProvider(Protocol):
    """Supplies the credentials to sign the next attempt with."""

    @property
    def name(self) -> str:
        """Where credentials come from, for logs and readiness (never a secret)."""
        ...

    async def get(self) -> Credentials: ...


@dataclass(frozen=True)
class StaticCredentialsProvider:
    credentials: Credentials
    name: str = "static"

    async def get(self) -> Credentials:
        return self.credentials


def load_from_environment(environ: Mapping[str, str] | None = None) -> Credentials | None:
    env = os.environ if environ is None else environ
    secret_id, secret_key = env.get(ENV_SECRET_ID, ""), env.get(ENV_SECRET_KEY, "")
    if not secret_id or not secret_key:
        return None
    return Credentials(secret_id, secret_key, env.get(ENV_SESSION_TOKEN) or None)


class EnvironmentCredentialsProvider:
    """Static credentials read once from the environment (fine for a laptop or a sidecar)."""

    name = "environment"

    def __init__(self, environ: Mapping[str, str] | None = None) -> None:
        credentials = load_from_environment(environ)
        if credentials is None:
            raise NoCredentialsError(f"set {ENV_SECRET_ID} and {ENV_SECRET_KEY}")
        self._credentials = credentials

    async def get(self) -> Credentials:
        return self._credentials
