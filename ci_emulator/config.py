"""What one emulator instance serves: buckets, credentials, limits, and the injectable seams.

Frozen value objects with named defaults, so a test states only what it changes and two
emulators in one process never share mutable settings. The clock and the probe are plain
callables here (not module globals) because tests must be able to pin time and replace the media
probe without patching.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeAlias

from ci_emulator.faults import FaultSpec, check_operation
from ci_emulator.probe_cache import CachedProbe
from ci_emulator.probe_types import Probe

Clock: TypeAlias = Callable[[], float]
"""Unix seconds. Signature windows, CreationTime/StartTime/EndTime all read this one clock."""

DEFAULT_MAX_CLOCK_SKEW_S = 900
"""How far in the future a signature window may start and still be honoured. 15 minutes is the
tolerance COS/S3-style services apply before answering RequestTimeTooSkewed; the official SDK
starts its windows 60 s in the past, so honest clients never come near it. Expiry is strict: the
window's end is a promise the signer made, and stretching it only widens the replay window."""

DEFAULT_MAX_BODY_BYTES = 1024 * 1024
"""Largest request body read. A MediaInfo submit is well under 4 KiB; CI documents no limit
(UNCONFIRMED), only that an oversized body is InvalidContent 413."""

DEFAULT_QUEUE_MAX_CONCURRENT = 10
"""Jobs one queue runs at once, CI's documented default `MaxConcurrent`."""

DEFAULT_QUEUE_MAX_SIZE = 10000
"""Jobs one queue may hold waiting, CI's documented default `MaxSize`."""


@dataclass(frozen=True)
class CallbackSettings:
    """How the emulator delivers callbacks; defaults suit a test (quick, but retried)."""

    attempts: int = 3
    """Total tries per callback, the first included."""
    backoff_s: float = 0.2
    """Wait before the second try; doubled before each later one."""
    timeout_s: float = 5.0
    """Per try: connect, send and read the answer."""
    json_array: bool = False
    """Send JSON `JobsDetail` as a one-element array instead of an object."""
    on_cancel: bool = False
    """Also report jobs that end `Cancel`."""
    allow_public_hosts: bool = False
    """Also call back hosts beyond loopback and private networks (refused, and logged, else)."""

    def __post_init__(self) -> None:
        if self.attempts < 1 or self.backoff_s < 0 or self.timeout_s <= 0:
            raise ValueError("callback attempts must be >= 1, backoff >= 0, timeout > 0")


@dataclass(frozen=True)
class BucketConfig:
    """One bucket bound to CI, and the local folder that stands in for its objects."""

    name: str
    """`name-APPID`, e.g. `examplebucket-1250000000`."""
    region: str
    """e.g. `ap-guangzhou`."""
    root: Path
    """Object key `input/a.mp4` is the file `root / "input/a.mp4"`."""


@dataclass(frozen=True)
class Credential:
    """A SecretKey, optionally temporary (STS): then requests must carry and sign its token."""

    secret_key: str
    token: str | None = None
    expires_at: float | None = None
    """Unix seconds after which the temporary credential is refused (ExpiredToken)."""

    def __repr__(self) -> str:
        # Never let a secret reach a log line through a repr.
        return f"Credential(secret_key=<hidden>, token={'<hidden>' if self.token else None})"


@dataclass(frozen=True)
class QueueConfig:
    """A media queue beyond the bucket's default one (CI creates queues outside its API)."""

    bucket: str
    name: str
    queue_id: str | None = None
    """Fixed id (`p` + 32 hex), so clients can be configured with it; None derives a stable one
    from bucket and name."""
    max_concurrent: int | None = None
    max_size: int | None = None
    category: str = "Transcoding"


def _default_probe() -> Probe:
    # Imported lazily: the probe pulls in FFmpeg bindings, which a config object should not need.
    from ci_emulator.probe import probe_async

    return CachedProbe(probe_async)


@dataclass(frozen=True)
class EmulatorConfig:
    """Everything `create_app` needs. `credentials` maps SecretId -> SecretKey or `Credential`."""

    buckets: tuple[BucketConfig, ...]
    credentials: Mapping[str, str | Credential]
    max_clock_skew_s: int = DEFAULT_MAX_CLOCK_SKEW_S
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES
    queue_max_concurrent: int = DEFAULT_QUEUE_MAX_CONCURRENT
    queue_max_size: int = DEFAULT_QUEUE_MAX_SIZE
    probe: Probe = field(default_factory=_default_probe)
    clock: Clock = time.time
    queues: tuple[QueueConfig, ...] = ()
    callbacks: CallbackSettings = CallbackSettings()
    faults: Mapping[str, FaultSpec] = field(default_factory=dict)
    """Fault specs installed at start, by operation name (or `"*"`); see `faults.FaultPlan`."""
    fault_seed: int = 0
    media_worker_cpus: tuple[int, ...] = ()
    """CPUs the media worker processes run on (empty: wherever the emulator may run). A
    benchmark pins the emulator to one core and its workers to the others, so submits are
    measured while media jobs run beside them, not on top of them."""

    def __post_init__(self) -> None:
        for operation in self.faults:
            check_operation(operation)
        names = [bucket.name for bucket in self.buckets]
        if len(set(names)) != len(names):
            raise ValueError("each bucket may be configured only once")
        for queue in self.queues:
            if queue.bucket not in names:
                raise ValueError(f"queue {queue.name!r} names an unknown bucket {queue.bucket!r}")
            if queue.category not in ("Transcoding", "SpeedTranscoding"):
                raise ValueError("a queue's category is Transcoding or SpeedTranscoding")
        if self.max_body_bytes <= 0 or self.queue_max_concurrent <= 0 or self.max_clock_skew_s < 0:
            raise ValueError("limits must be positive")

    def credential(self, secret_id: str) -> Credential | None:
        """The credential for a SecretId, whichever form the mapping holds it in."""
        value = self.credentials.get(secret_id)
        if value is None or isinstance(value, Credential):
            return value
        return Credential(secret_key=value)

    def bucket(self, name: str) -> BucketConfig | None:
        return next((bucket for bucket in self.buckets if bucket.name == name), None)
