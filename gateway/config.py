"""The gateway's settings: small frozen value objects with named defaults.

Sources, lowest precedence first: built-in defaults, an optional TOML file, environment variables
(`CI_GATEWAY_*`), command-line flags. Credentials are deliberately not settings: they come from a
`gateway.credentials` provider so that they never pass through argv (visible in `ps`), a config
dump or a log line.
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any

DEFAULT_LISTEN = "127.0.0.1:50051"
DEFAULT_CONNECT_TIMEOUT_S = 3.0
DEFAULT_READ_TIMEOUT_S = 30.0
# The ceiling on one RPC when the caller sets no deadline: CI's slowest synchronous call
# (GenerateMediaInfo on a large file) is documented as slow, but never minutes.
DEFAULT_RPC_DEADLINE_S = 60.0
DEFAULT_MAX_RESPONSE_BYTES = 4 * 1024 * 1024
# UNCONFIRMED: CI documents comma-joined ids for DescribeMediaJob but no maximum; 10 is the
# tolerant guess used across the gateway (validation) and the emulator.
MAX_DESCRIBE_JOB_IDS = 10

_BUCKET = re.compile(r"^[a-z0-9](?:[a-z0-9-]{0,48}[a-z0-9])?-[0-9]{1,20}$")
_REGION = re.compile(r"^[a-z]{2,}(?:-[a-z0-9]+){1,3}$")


def is_valid_bucket(value: str) -> bool:
    """`name-APPID`: lower-case letters, digits and dashes, then a dash and the numeric APPID."""
    return bool(_BUCKET.fullmatch(value))


def is_valid_region(value: str) -> bool:
    """`ap-guangzhou`, `na-siliconvalley`, `ap-shanghai-fsi`, ..."""
    return bool(_REGION.fullmatch(value))


@dataclass(frozen=True)
class Timeouts:
    """Per-attempt bounds; each is further cut to what remains of the caller's deadline."""

    connect_s: float = DEFAULT_CONNECT_TIMEOUT_S
    read_s: float = DEFAULT_READ_TIMEOUT_S
    rpc_deadline_s: float = DEFAULT_RPC_DEADLINE_S


@dataclass(frozen=True)
class Settings:
    listen: str = DEFAULT_LISTEN
    default_bucket: str = ""
    default_region: str = ""
    # Where to connect instead of `https://<bucket>.ci.<region>.myqcloud.com` (the emulator, a
    # proxy). The real CI host name is still sent and signed as the Host header.
    endpoint_url: str | None = None
    timeouts: Timeouts = field(default_factory=Timeouts)
    max_response_bytes: int = DEFAULT_MAX_RESPONSE_BYTES
    log_level: str = "INFO"

    def __post_init__(self) -> None:
        problems = []
        if self.default_bucket and not is_valid_bucket(self.default_bucket):
            problems.append(f"default_bucket {self.default_bucket!r} is not 'name-APPID'")
        if self.default_region and not is_valid_region(self.default_region):
            problems.append(f"default_region {self.default_region!r} is not a region name")
        if self.endpoint_url and not re.match(r"^https?://[^/]+/?$", self.endpoint_url):
            problems.append(f"endpoint_url {self.endpoint_url!r} must be http(s)://host[:port]")
        for name in ("connect_s", "read_s", "rpc_deadline_s"):
            if getattr(self.timeouts, name) <= 0:
                problems.append(f"timeouts.{name} must be positive")
        if self.max_response_bytes < 64 * 1024:
            problems.append("max_response_bytes must be at least 65536")
        if problems:
            raise ValueError("; ".join(problems))


# Environment variable -> settings key ("timeouts.read_s" addresses a nested value).
ENVIRONMENT = {
    "CI_GATEWAY_LISTEN": "listen",
    "CI_GATEWAY_DEFAULT_BUCKET": "default_bucket",
    "CI_GATEWAY_DEFAULT_REGION": "default_region",
    "CI_GATEWAY_ENDPOINT_URL": "endpoint_url",
    "CI_GATEWAY_CONNECT_TIMEOUT_S": "timeouts.connect_s",
    "CI_GATEWAY_READ_TIMEOUT_S": "timeouts.read_s",
    "CI_GATEWAY_RPC_DEADLINE_S": "timeouts.rpc_deadline_s",
    "CI_GATEWAY_MAX_RESPONSE_BYTES": "max_response_bytes",
    "CI_GATEWAY_LOG_LEVEL": "log_level",
}


def _coerce(template: Any, key: str, value: Any) -> Any:
    if value is None or isinstance(template, str) or template is None:
        return value if value is None else str(value)
    try:
        return type(template)(value)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{key}: {value!r} is not a valid {type(template).__name__}") from exc


def _apply(settings: Settings, values: Mapping[str, Any], source: str) -> Settings:
    top: dict[str, Any] = {}
    nested: dict[str, Any] = {}
    known = {f.name for f in fields(Settings)}
    timeout_names = {f.name for f in fields(Timeouts)}
    for key, value in values.items():
        section, _, name = key.partition(".")
        if section == "timeouts" and name in timeout_names:
            nested[name] = _coerce(getattr(settings.timeouts, name), key, value)
        elif section == "timeouts" and isinstance(value, Mapping) and not name:
            for sub, sub_value in value.items():
                if sub not in timeout_names:
                    raise ValueError(f"{source}: unknown setting timeouts.{sub}")
                nested[sub] = _coerce(getattr(settings.timeouts, sub), f"timeouts.{sub}", sub_value)
        elif key in known and key != "timeouts":
            top[key] = _coerce(getattr(settings, key), key, value)
        else:
            raise ValueError(f"{source}: unknown setting {key!r}")
    if nested:
        top["timeouts"] = replace(settings.timeouts, **nested)
    return replace(settings, **top)


def load_settings(
    *,
    config_file: Path | None = None,
    environ: Mapping[str, str] | None = None,
    overrides: Mapping[str, Any] | None = None,
) -> Settings:
    """Build settings from file < environment < overrides (flags); `ValueError` names the
    offending key."""
    settings = Settings()
    if config_file is not None:
        with config_file.open("rb") as handle:
            settings = _apply(settings, tomllib.load(handle), str(config_file))
    if environ is not None:
        from_env = {key: environ[var] for var, key in ENVIRONMENT.items() if environ.get(var)}
        settings = _apply(settings, from_env, "environment")
    if overrides:
        given = {key: value for key, value in overrides.items() if value is not None}
        settings = _apply(settings, given, "flags")
    return settings
