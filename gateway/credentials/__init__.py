"""Where the gateway's Tencent credentials come from, and how they are kept out of sight.

`Credentials` never shows its secret key or token in `repr`/`str`, so an accidental log line,
traceback or debug dump cannot leak them. A provider hands out the credentials to sign the next
attempt with; the CI client asks `provider.for_bucket(bucket).at_hand()` right before signing
each attempt, and awaits its `get()` when that answers None (the keys may need a wait), so a
rotation (mounted files, STS refresh) takes effect on the very next attempt while attempts
already signed finish with the keys they were signed with. When CI refuses the
keys an attempt was signed with, the client asks `await provider.renew(refused)`: whether the
provider hands out other keys by now (rotated while the attempt was in flight, or found on a
re-read of the source the refusal prompted), in which case the attempt is resent once.

Implementations, chosen by configuration (`gateway.credentials.config_file`):

- `StaticCredentialsProvider`, `EnvironmentCredentialsProvider` (here): fixed keys;
- `DirectoryCredentialsProvider` (`gateway.credentials.mounted`): a mounted Secret, re-read
  when Kubernetes swaps it;
- `RefreshingCredentialsProvider` (`gateway.credentials.refreshing`): temporary credentials
  (Tencent STS, `gateway.credentials.sts`) renewed in the background before they expire;
- `BucketCredentialsProvider` (here): several upstream accounts, one per bucket, and a default.

The first three have one source each and share its bookkeeping through `SingleSourceProvider`:
they differ only in how credentials are loaded and kept fresh.

Readiness and metrics read `statuses()`: where credentials come from and when they expire,
never the values.

A provider that may wait for a remote service in `get` (STS) waits no longer than the call it
signs for has time: the CI client sets `SIGN_BY` around each `get`, from the call's deadline.
A context variable rather than a parameter of `get`: `get()` is the whole contract every provider
(ours, and any an embedder or a test writes) implements, and only a provider that waits reads
the bound, where it waits.
"""

from __future__ import annotations

import asyncio
import os
import re
import time
from collections.abc import Callable, Mapping, Sequence
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Protocol

from gateway.errors import NoCredentialsError

ENV_SECRET_ID = "CI_GATEWAY_SECRET_ID"  # noqa: S105 - variable names, not secrets
ENV_SECRET_KEY = "CI_GATEWAY_SECRET_KEY"  # noqa: S105
ENV_SESSION_TOKEN = "CI_GATEWAY_SESSION_TOKEN"  # noqa: S105
# SecretIds, SecretKeys and STS tokens are printable ASCII without spaces (as the directory
# source requires of its files). A value pasted with a trailing newline would otherwise pass
# readiness and then fail every call: the SecretId and the token travel in HTTP headers.
_CREDENTIAL_TEXT = re.compile(r"[\x21-\x7e]+")

# Credentials closer than this to their expiry are never handed out: the attempt they sign may
# take up to the read time-out (30 s by default) to reach CI, and CI refuses an expired token.
EXPIRY_MARGIN_S = 60.0

# When the attempt about to be signed must have its credentials, on the event loop's clock
# (`loop.time()`); None (the default): no bound (background work, readiness). Set by the CI
# client around each `get` from the call's deadline; read by a provider about to wait.
SIGN_BY: ContextVar[float | None] = ContextVar("credentials_sign_by", default=None)

Clock = Callable[[], float]
"""Unix seconds (STS's ExpiredTime is Unix time, so the refresh windows use wall-clock time)."""


@dataclass(frozen=True)
class Credentials:
    secret_id: str
    secret_key: str = field(repr=False)
    token: str | None = field(default=None, repr=False)
    # Unix seconds after which CI refuses the token; None for permanent keys.
    expires_at: float | None = None

    def __str__(self) -> str:
        return f"Credentials(secret_id={self.secret_id!r}, secret_key=***)"

    __repr__ = __str__

    def same_keys(self, other: Credentials) -> bool:
        """Whether `other` signs exactly as these do (the expiry aside)."""
        return (self.secret_id, self.secret_key, self.token) == (
            other.secret_id,
            other.secret_key,
            other.token,
        )

    def usable_at(self, now: float, margin_s: float = EXPIRY_MARGIN_S) -> bool:
        """Whether an attempt signed now can still reach CI before the credentials expire."""
        return self.expires_at is None or self.expires_at - now > margin_s


@dataclass(frozen=True)
class CredentialStatus:
    """What readiness, metrics and logs may know about one source: never a value."""

    source: str
    valid: bool
    expires_at: float | None = None
    # How many times the source has loaded new credentials (rotations, refreshes).
    generation: int = 0


class CredentialsProvider(Protocol):
    """Supplies the credentials to sign the next attempt with."""

    @property
    def name(self) -> str:
        """Where credentials come from, for logs and readiness (never a secret)."""
        ...

    async def get(self) -> Credentials:
        """Credentials usable right now; `NoCredentialsError` when there are none."""
        ...

    def at_hand(self) -> Credentials | None:
        """What `get` would hand out, when it would without waiting or doing anything else
        (raising as it would), or None when it may: then the caller awaits `get`. The CI client
        asks this first on every attempt, so a provider whose keys are in hand costs no bound
        for `get` (`SIGN_BY`) and no coroutine (~7,000 instructions an attempt, bench/README).
        None is always truthful; keys only when `get` would hand out those very keys."""
        ...

    def for_bucket(self, bucket: str) -> CredentialsProvider:
        """The provider whose account owns `bucket` (itself for single-account providers)."""
        ...

    async def renew(self, refused: Credentials) -> bool:
        """CI refused `refused`: whether `get` now hands out other keys. A source that can have
        changed unseen (a mounted file not yet polled) is re-read first. Never raises, and
        never waits on a remote service."""
        ...

    def statuses(self) -> Sequence[CredentialStatus]:
        """One entry per source behind this provider, for readiness and metrics."""
        ...

    def expires_at(self) -> float | None:
        """The earliest expiry of the credentials in use (None: none expire)."""
        ...

    async def start(self) -> None:
        """Load the first credentials and start any background watching or refreshing."""
        ...

    async def close(self) -> None:
        """Stop background work; idempotent."""
        ...


def has_valid_credentials(provider: CredentialsProvider) -> bool:
    """Readiness: every source behind the provider has usable credentials now (no I/O)."""
    return all(status.valid for status in provider.statuses())


async def check_credentials(provider: CredentialsProvider) -> None:
    """A readiness probe: raises `NoCredentialsError` naming the sources without usable
    credentials (for several accounts, `provider.get` alone checks only the default one)."""
    failing = [status.source for status in provider.statuses() if not status.valid]
    if failing:
        raise NoCredentialsError(f"no valid credentials from {', '.join(failing)}")


class SingleSourceProvider:
    """The provider contract for one source of credentials, less the loading.

    Every single-source provider holds the credentials it loaded last, counts how many sets it
    has loaded (`generation`), refuses to hand out credentials that are missing or about to
    expire, reports one status, and is its own provider for every bucket. That is all here; a
    subclass loads credentials its own way and passes each new set to `_adopt`, overrides `get`
    only to load or refresh on demand, and `start`/`close` only when it works in the background.
    """

    def __init__(
        self, name: str, *, clock: Clock = time.time, margin_s: float = EXPIRY_MARGIN_S
    ) -> None:
        self.name = name
        self._clock = clock
        self._margin_s = margin_s
        self._current: Credentials | None = None
        self._generation = 0
        self._changed = asyncio.Event()

    def __repr__(self) -> str:
        return f"{type(self).__name__}(name={self.name!r})"

    @property
    def generation(self) -> int:
        """How many sets of credentials have been loaded so far."""
        return self._generation

    def _adopt(self, credentials: Credentials) -> None:
        """Make `credentials` the ones handed out from now on, and wake `wait_for_generation`."""
        self._current = credentials
        self._generation += 1
        changed, self._changed = self._changed, asyncio.Event()
        changed.set()

    def _usable(self) -> Credentials:
        """The current credentials if an attempt signed now can reach CI before they expire."""
        current = self._current
        if current is None:
            raise NoCredentialsError(f"no valid credentials from {self.name}")
        if not current.usable_at(self._clock(), self._margin_s):
            raise NoCredentialsError(f"the credentials from {self.name} have expired")
        return current

    async def get(self) -> Credentials:
        return self._usable()

    # Whether `get` is this class's own `_usable()` (never waits): set per subclass below.
    _get_never_waits = True

    def __init_subclass__(cls, **kwargs: object) -> None:
        super().__init_subclass__(**kwargs)
        cls._get_never_waits = cls.get is SingleSourceProvider.get

    def at_hand(self) -> Credentials | None:
        """The protocol's: the current credentials, as `get` hands them out. A subclass with
        its own `get` answers None here unless it says otherwise by overriding this too."""
        return self._usable() if self._get_never_waits else None

    def for_bucket(self, bucket: str) -> CredentialsProvider:
        return self

    async def renew(self, refused: Credentials) -> bool:
        """Whether the keys loaded last differ from `refused`; a source that can be re-read on
        demand does so first (`_reload`)."""
        await self._reload()
        current = self._current
        return current is not None and not current.same_keys(refused)

    async def _reload(self) -> None:
        """Look at the source again now, if it may have changed unseen (none here)."""
        return None

    def statuses(self) -> Sequence[CredentialStatus]:
        current = self._current
        valid = current is not None and current.usable_at(self._clock(), self._margin_s)
        expires = current.expires_at if current is not None else None
        return (CredentialStatus(self.name, valid, expires, self._generation),)

    def expires_at(self) -> float | None:
        return self._current.expires_at if self._current is not None else None

    async def wait_for_generation(self, generation: int) -> None:
        """Return once `generation` sets of credentials have been loaded (bound it with a
        time-out: it waits for the source to change)."""
        while self._generation < generation:
            await self._changed.wait()

    async def start(self) -> None:
        """Nothing runs in the background unless a subclass says otherwise."""
        return None

    async def close(self) -> None:
        return None


class StaticCredentialsProvider(SingleSourceProvider):
    """Fixed credentials handed in by code (the demo, tests)."""

    def __init__(
        self, credentials: Credentials, name: str = "static", *, clock: Clock = time.time
    ) -> None:
        super().__init__(name, clock=clock)
        self._adopt(credentials)


def load_from_environment(environ: Mapping[str, str] | None = None) -> Credentials | None:
    env = os.environ if environ is None else environ
    secret_id, secret_key = env.get(ENV_SECRET_ID, ""), env.get(ENV_SECRET_KEY, "")
    if not secret_id or not secret_key:
        return None
    return Credentials(secret_id, secret_key, env.get(ENV_SESSION_TOKEN) or None)


class EnvironmentCredentialsProvider(StaticCredentialsProvider):
    """Static credentials read once from the environment (fine for a laptop or a sidecar)."""

    def __init__(self, environ: Mapping[str, str] | None = None) -> None:
        credentials = load_from_environment(environ)
        if credentials is None:
            raise NoCredentialsError(f"set {ENV_SECRET_ID} and {ENV_SECRET_KEY}")
        values = (
            (ENV_SECRET_ID, credentials.secret_id),
            (ENV_SECRET_KEY, credentials.secret_key),
            (ENV_SESSION_TOKEN, credentials.token or "x"),
        )
        for name, value in values:
            if not _CREDENTIAL_TEXT.fullmatch(value):  # the message names it, never shows it
                raise NoCredentialsError(
                    f"{name} contains spaces or control characters (a trailing newline?)"
                )
        super().__init__(credentials, "environment")


class BucketCredentialsProvider:
    """Several upstream accounts: each bucket (`name-APPID`) signed by the account owning it.

    Buckets not in the map use the default provider. One provider may serve several buckets;
    each is started and closed once.
    """

    name = "buckets"

    def __init__(
        self, default: CredentialsProvider, by_bucket: Mapping[str, CredentialsProvider]
    ) -> None:
        self._default = default
        self._by_bucket = dict(by_bucket)

    def __repr__(self) -> str:
        default, count = self._default.name, len(self._by_bucket)
        return f"BucketCredentialsProvider(default={default!r}, buckets={count})"

    def _providers(self) -> list[CredentialsProvider]:
        unique: dict[int, CredentialsProvider] = {id(self._default): self._default}
        for provider in self._by_bucket.values():
            unique.setdefault(id(provider), provider)
        return list(unique.values())

    async def get(self) -> Credentials:
        return await self._default.get()

    def at_hand(self) -> Credentials | None:
        return self._default.at_hand()

    def for_bucket(self, bucket: str) -> CredentialsProvider:
        return self._by_bucket.get(bucket, self._default).for_bucket(bucket)

    async def renew(self, refused: Credentials) -> bool:
        """The default account's (the client asks the bucket's own provider instead)."""
        return await self._default.renew(refused)

    def statuses(self) -> Sequence[CredentialStatus]:
        return tuple(status for p in self._providers() for status in p.statuses())

    def expires_at(self) -> float | None:
        expiries = [e for p in self._providers() if (e := p.expires_at()) is not None]
        return min(expiries, default=None)

    async def start(self) -> None:
        for provider in self._providers():
            await provider.start()

    async def close(self) -> None:
        for provider in self._providers():
            await provider.close()
