"""The credentials file: which upstream accounts exist, where their keys come from, and which
bucket each one signs for. It names sources (variables, directories, roles), never keys.

    default = "main"                  # the account for buckets not listed under [buckets]

    [accounts.main]
    source = "directory"              # environment | directory | sts
    path = "/var/run/secrets/ci-gateway/tencent"
    poll_interval_s = 5               # optional

    [accounts.partner]
    source = "sts"                    # AssumeRole, renewed before expiry
    role_arn = "qcs::cam::uin/100000000002:roleName/ci-gateway"
    region = "ap-guangzhou"
    base = "main"                     # the account whose keys call STS (not an sts one)
    duration_s = 7200                 # optional, 900..43200
    session_name = "ci-gateway"       # optional
    endpoint = "sts.tencentcloudapi.com"   # optional

    [buckets]
    "partner-videos-1250000002" = "partner"

`source = "environment"` reads `CI_GATEWAY_SECRET_ID`, `CI_GATEWAY_SECRET_KEY` and the optional
`CI_GATEWAY_SESSION_TOKEN`. Without a credentials file the gateway uses exactly that.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from gateway import _toml
from gateway.credentials import (
    BucketCredentialsProvider,
    CredentialsProvider,
    EnvironmentCredentialsProvider,
)
from gateway.credentials.mounted import DEFAULT_POLL_INTERVAL_S, DirectoryCredentialsProvider
from gateway.credentials.refreshing import RefreshingCredentialsProvider
from gateway.credentials.sts import AssumeRoleSpec, StsFetcher
from gateway.model import is_valid_bucket

SOURCES = ("environment", "directory", "sts")
_KEYS = {
    "environment": {"source"},
    "directory": {"source", "path", "poll_interval_s"},
    "sts": {
        "source",
        "role_arn",
        "region",
        "base",
        "duration_s",
        "session_name",
        "endpoint",
        "scheme",
    },
}


def _string(table: Mapping[str, Any], key: str, where: str, default: str | None = None) -> str:
    value = _toml.optional(table, key, str, where)
    value = default if value is None else value
    if not value:
        raise ValueError(f"{where}: {key} must be a non-empty string")
    return value


def _number(table: Mapping[str, Any], key: str, where: str, default: float) -> float:
    value = _toml.optional(table, key, float, where)
    value = default if value is None else value
    if value <= 0:
        raise ValueError(f"{where}: {key} must be a positive number")
    return value


ProxyFor = Callable[[str, int], str | None]
"""The egress proxy URL for a host and port (`sts.tencentcloudapi.com:443`, or an account's
`endpoint`), or None: decided by whoever knows the settings' proxy and `no_proxy` (the CLI)."""


def _account(
    name: str,
    table: Mapping[str, Any],
    built: Mapping[str, CredentialsProvider],
    environ: Mapping[str, str] | None,
    proxy_for: ProxyFor | None,
) -> CredentialsProvider:
    where = f"accounts.{name}"
    source = table.get("source")
    if source not in SOURCES:
        raise ValueError(f"{where}: source must be one of {', '.join(SOURCES)}")
    table = _toml.table(table, where, _KEYS[source])
    if source == "environment":
        return EnvironmentCredentialsProvider(environ)
    if source == "directory":
        return DirectoryCredentialsProvider(
            Path(_string(table, "path", where)),
            poll_interval_s=_number(table, "poll_interval_s", where, DEFAULT_POLL_INTERVAL_S),
        )
    base_name = _string(table, "base", where)
    base = built.get(base_name)
    if base is None or isinstance(base, RefreshingCredentialsProvider):
        raise ValueError(
            f"{where}: base {base_name!r} must name an environment or directory account"
        )
    spec = AssumeRoleSpec(
        role_arn=_string(table, "role_arn", where),
        region=_string(table, "region", where),
        session_name=_string(table, "session_name", where, AssumeRoleSpec.session_name),
        duration_s=int(_number(table, "duration_s", where, AssumeRoleSpec.duration_s)),
        endpoint=_toml.optional(table, "endpoint", str, where),
        scheme=_string(table, "scheme", where, AssumeRoleSpec.scheme),
    )
    if proxy_for is not None:
        spec = dataclasses.replace(spec, proxy=proxy_for(*spec.address))
    return RefreshingCredentialsProvider(StsFetcher(spec, base), name=f"sts:{spec.role_arn}")


def build_credentials(
    data: Mapping[str, Any],
    *,
    environ: Mapping[str, str] | None = None,
    proxy_for: ProxyFor | None = None,
) -> CredentialsProvider:
    """The provider the parsed file describes; `ValueError` names the offending key.
    `proxy_for`: the egress proxy STS accounts go through (see `ProxyFor`); without it they
    go directly."""
    data = _toml.table(data, "", {"default", "accounts", "buckets"})
    if not data.get("accounts"):
        raise ValueError("accounts: at least one [accounts.<name>] table is required")
    accounts = {
        name: _toml.table(table, f"accounts.{name}")
        for name, table in _toml.table(data["accounts"], "accounts").items()
    }
    built: dict[str, CredentialsProvider] = {}
    # Keys from the environment or a directory first: STS accounts call STS with them.
    for name, table in sorted(accounts.items(), key=lambda item: item[1].get("source") == "sts"):
        built[name] = _account(name, table, built, environ, proxy_for)
    default_name = data.get("default", next(iter(accounts)) if len(accounts) == 1 else None)
    if default_name not in built:
        raise ValueError("default must name an account (required with several accounts)")
    by_bucket: dict[str, CredentialsProvider] = {}
    for bucket, account in _toml.table(data.get("buckets", {}), "buckets").items():
        if not is_valid_bucket(bucket):
            raise ValueError(f"buckets: {bucket!r} is not 'name-APPID'")
        if account not in built:
            raise ValueError(f"buckets.{bucket}: {account!r} is not an account")
        by_bucket[bucket] = built[account]
    default = built[default_name]
    if not by_bucket:
        return default
    return BucketCredentialsProvider(default, by_bucket)


def load_credentials_file(
    path: Path, *, environ: Mapping[str, str] | None = None, proxy_for: ProxyFor | None = None
) -> CredentialsProvider:
    data = _toml.load(path)
    try:
        return build_credentials(data, environ=environ, proxy_for=proxy_for)
    except ValueError as exc:
        raise ValueError(f"{path}: {exc}") from None


def open_credentials(
    credentials_file: str,
    *,
    environ: Mapping[str, str] | None = None,
    proxy_for: ProxyFor | None = None,
) -> CredentialsProvider:
    """The `credentials_file` setting: a file name, or empty for the environment variables."""
    if not credentials_file:
        return EnvironmentCredentialsProvider(environ)
    return load_credentials_file(Path(credentials_file), environ=environ, proxy_for=proxy_for)
