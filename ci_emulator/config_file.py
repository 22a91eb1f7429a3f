"""An emulator configuration file (TOML or JSON, same keys), for setups too big for flags.

`EXAMPLE` shows every key (`ci-gateway emulator --help` prints it, so a user of the command
finds the format without reading this module).

Every unknown key is an error, so a typo cannot silently leave a setting at its default. The
file holds secrets; the emulator never logs them, and the file should not be world-readable.
"""

from __future__ import annotations

import json
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from ci_emulator.config import (
    BucketConfig,
    CallbackSettings,
    Credential,
    QueueConfig,
)
from ci_emulator.faults import FaultSpec, check_operation
from gateway._toml import array, optional, required, table

_TOP_LEVEL = frozenset(
    {"host", "port", "fault_seed", "buckets", "credentials", "queues", "limits", "callbacks",
     "faults"}
)  # fmt: skip
_LIMITS = frozenset(
    {"max_clock_skew_s", "max_body_bytes", "queue_max_concurrent", "queue_max_size"}
)


# Every key, with what overrides it; printed by `ci-gateway emulator --help`.
EXAMPLE = """\
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

[limits]                          # optional; these are the defaults
max_clock_skew_s = 900
max_body_bytes = 1048576
queue_max_concurrent = 10
queue_max_size = 10000

[callbacks]                       # optional; these are the defaults
attempts = 3
backoff_s = 0.2
timeout_s = 5.0
json_array = false
on_cancel = false
allow_public_hosts = false        # true: also call back beyond loopback and private networks

[faults.CreateMediaJobs]          # optional; per operation (or "*"), --fault's fields
error_500 = 0.2
commit_then_drop = 0.05
"""


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
    """The file's settings; the tables are read by the gateway's strict reader
    (`gateway._toml`), so every unknown key and mistyped value is an error naming it."""
    top = table(document, "the file", _TOP_LEVEL)
    limits = table(top.get("limits", {}), "limits", _LIMITS)
    return FileSettings(
        host=optional(top, "host", str),
        port=optional(top, "port", int),
        fault_seed=optional(top, "fault_seed", int),
        buckets=tuple(
            _bucket(item, f"buckets[{i}]", base) for i, item in enumerate(array(top, "buckets"))
        ),
        credentials=dict(
            credential_entry(item, f"credentials[{i}]")
            for i, item in enumerate(array(top, "credentials"))
        ),
        queues=tuple(_queue(item, f"queues[{i}]") for i, item in enumerate(array(top, "queues"))),
        limits={name: required(limits, name, int, "limits") for name in limits},
        callbacks=_callbacks(top["callbacks"]) if "callbacks" in top else None,
        faults=_faults(top.get("faults", {})),
    )


def _bucket(item: object, where: str, base: Path) -> BucketConfig:
    values = table(item, where, {"name", "region", "root"})
    root = base / Path(required(values, "root", str, where)).expanduser()
    if not root.is_dir():
        raise ValueError(f"bucket root {root} is not a folder")
    name = required(values, "name", str, where)
    return BucketConfig(name, required(values, "region", str, where), root)


def credential_entry(item: object, where: str) -> tuple[str, Credential]:
    """One `[[credentials]]` table (also what `PUT /_emulator/credentials/<id>` reads)."""
    values = table(item, where, {"secret_id", "secret_key", "token", "expires_at"})
    expires = optional(values, "expires_at", float, where)
    token = optional(values, "token", str, where)
    if expires is not None and token is None:
        raise ValueError("expires_at applies to temporary credentials only: give a token")
    credential = Credential(required(values, "secret_key", str, where), token, expires)
    return required(values, "secret_id", str, where), credential


def _queue(item: object, where: str) -> QueueConfig:
    names = {"bucket", "name", "queue_id", "max_concurrent", "max_size", "category"}
    values = table(item, where, names)
    return QueueConfig(
        bucket=required(values, "bucket", str, where),
        name=required(values, "name", str, where),
        queue_id=optional(values, "queue_id", str, where),
        max_concurrent=optional(values, "max_concurrent", int, where),
        max_size=optional(values, "max_size", int, where),
        category=optional(values, "category", str, where) or "Transcoding",
    )


def _callbacks(item: object) -> CallbackSettings:
    names = {"attempts", "backoff_s", "timeout_s", "json_array", "on_cancel", "allow_public_hosts"}
    return CallbackSettings(**table(item, "callbacks", names))


def _faults(item: object) -> dict[str, FaultSpec]:
    specs: dict[str, FaultSpec] = {}
    for operation, values in table(item, "faults").items():
        check_operation(operation)
        specs[operation] = FaultSpec.from_mapping(table(values, f"faults.{operation}"))
    return specs
