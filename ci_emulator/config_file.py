"""An emulator configuration file (TOML or JSON, same keys), for setups too big for flags.

    host = "127.0.0.1"                # optional; --host wins
    port = 9000                       # optional; --port wins
    fault_seed = 7                    # optional; --fault-seed wins

    [[buckets]]                       # one or more
    name = "examplebucket-1250000000"
    region = "ap-guangzhou"
    root = "media/examplebucket"      # relative paths are relative to this file

    [[credentials]]                   # one or more (or from flags / the environment)
    secret_id = "AKIDEXAMPLE"
    secret_key = "..."
    token = "..."                     # optional: a temporary (STS) credential ...
    expires_at = 1767225600           # ... refused (ExpiredToken) after this Unix time

    [[queues]]                        # optional, besides each bucket's default queue
    bucket = "examplebucket-1250000000"
    name = "fast"
    queue_id = "p0123456789abcdef0123456789abcdef"   # optional; default: stable per name
    max_concurrent = 2
    max_size = 100
    category = "Transcoding"

    [limits]                          # optional; EmulatorConfig's names and defaults
    max_clock_skew_s = 900
    max_body_bytes = 1048576
    queue_max_concurrent = 10
    queue_max_size = 10000

    [callbacks]                       # optional; CallbackSettings' names and defaults
    attempts = 3
    backoff_s = 0.2
    timeout_s = 5.0
    json_array = false
    on_cancel = false

    [faults.CreateMediaJobs]          # optional; FaultSpec per operation (or "*")
    error_500 = 0.2
    commit_then_drop = 0.05

Every unknown key is an error, so a typo cannot silently leave a setting at its default. The
file holds secrets; the emulator never logs them, and the file should not be world-readable.
"""

from __future__ import annotations

import json
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from ci_emulator.config import (
    BucketConfig,
    CallbackSettings,
    Credential,
    QueueConfig,
)
from ci_emulator.faults import FaultSpec, check_operation

_TOP_LEVEL = frozenset(
    {"host", "port", "fault_seed", "buckets", "credentials", "queues", "limits", "callbacks",
     "faults"}
)  # fmt: skip
T = TypeVar("T")

_LIMITS = frozenset(
    {"max_clock_skew_s", "max_body_bytes", "queue_max_concurrent", "queue_max_size"}
)


class ConfigFileError(ValueError):
    """The file cannot be read or says something the emulator cannot do; names the file."""


@dataclass(frozen=True)
class FileSettings:
    """What a file contributes; the CLI merges it with flags into one `EmulatorConfig`."""

    host: str | None = None
    port: int | None = None
    fault_seed: int | None = None
    buckets: tuple[BucketConfig, ...] = ()
    credentials: Mapping[str, Credential] = field(default_factory=dict)
    queues: tuple[QueueConfig, ...] = ()
    limits: Mapping[str, int] = field(default_factory=dict)
    callbacks: CallbackSettings | None = None
    faults: Mapping[str, FaultSpec] = field(default_factory=dict)


def load_config_file(path: Path) -> FileSettings:
    try:
        raw = path.read_bytes()
        document: object = (
            json.loads(raw) if path.suffix.lower() == ".json" else tomllib.loads(raw.decode())
        )
    except (OSError, UnicodeDecodeError, ValueError) as exc:  # TOML/JSON errors are ValueErrors
        raise ConfigFileError(f"{path}: {exc}") from exc
    try:
        return parse_settings(document, base=path.parent)
    except (ValueError, TypeError) as exc:
        raise ConfigFileError(f"{path}: {exc}") from exc


def parse_settings(document: object, *, base: Path) -> FileSettings:
    top = _table(document, "the file", _TOP_LEVEL)
    return FileSettings(
        host=_optional(top, "host", str),
        port=_optional(top, "port", int),
        fault_seed=_optional(top, "fault_seed", int),
        buckets=tuple(_bucket(item, base) for item in _array(top, "buckets")),
        credentials=dict(_credential(item) for item in _array(top, "credentials")),
        queues=tuple(_queue(item) for item in _array(top, "queues")),
        limits={
            name: _required(limits, name, int)
            for limits in [_table(top.get("limits", {}), "limits", _LIMITS)]
            for name in limits
        },
        callbacks=_callbacks(top["callbacks"]) if "callbacks" in top else None,
        faults=_faults(top.get("faults", {})),
    )


def _bucket(item: object, base: Path) -> BucketConfig:
    table = _table(item, "a bucket", {"name", "region", "root"})
    root = base / Path(_required(table, "root", str)).expanduser()
    if not root.is_dir():
        raise ValueError(f"bucket root {root} is not a folder")
    return BucketConfig(_required(table, "name", str), _required(table, "region", str), root)


def _credential(item: object) -> tuple[str, Credential]:
    table = _table(item, "a credential", {"secret_id", "secret_key", "token", "expires_at"})
    expires = table.get("expires_at")
    if expires is not None and (isinstance(expires, bool) or not isinstance(expires, int | float)):
        raise ValueError("a credential's expires_at is Unix seconds")
    token = _optional(table, "token", str)
    if expires is not None and token is None:
        raise ValueError("expires_at applies to temporary credentials only: give a token")
    credential = Credential(_required(table, "secret_key", str), token, expires)
    return _required(table, "secret_id", str), credential


def _queue(item: object) -> QueueConfig:
    names = {"bucket", "name", "queue_id", "max_concurrent", "max_size", "category"}
    table = _table(item, "a queue", names)
    return QueueConfig(
        bucket=_required(table, "bucket", str),
        name=_required(table, "name", str),
        queue_id=_optional(table, "queue_id", str),
        max_concurrent=_optional(table, "max_concurrent", int),
        max_size=_optional(table, "max_size", int),
        category=_optional(table, "category", str) or "Transcoding",
    )


def _callbacks(item: object) -> CallbackSettings:
    names = {"attempts", "backoff_s", "timeout_s", "json_array", "on_cancel"}
    table = _table(item, "callbacks", names)
    return CallbackSettings(**table)


def _faults(item: object) -> dict[str, FaultSpec]:
    table = _table(item, "faults", None)
    specs: dict[str, FaultSpec] = {}
    for operation, values in table.items():
        check_operation(operation)
        specs[operation] = FaultSpec.from_mapping(_table(values, f"faults.{operation}", None))
    return specs


def _table(value: object, what: str, allowed: frozenset[str] | set[str] | None) -> dict[str, Any]:
    if not isinstance(value, Mapping):
        raise ValueError(f"{what} must be a table/object")
    unknown = set(value) - allowed if allowed is not None else set()
    if unknown:
        raise ValueError(f"unknown key(s) in {what}: {', '.join(sorted(map(str, unknown)))}")
    return dict(value)


def _array(table: Mapping[str, Any], name: str) -> list[object]:
    value = table.get(name, [])
    if not isinstance(value, list):
        raise ValueError(f"{name} must be an array")
    return value


def _required(table: Mapping[str, Any], name: str, kind: type[T]) -> T:
    value = _optional(table, name, kind)
    if value is None:
        raise ValueError(f"{name} is required")
    return value


def _optional(table: Mapping[str, Any], name: str, kind: type[T]) -> T | None:
    value = table.get(name)
    if value is None:
        return None
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        raise ValueError(f"{name} must be of type {kind.__name__}")
    return value
