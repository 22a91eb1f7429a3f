"""The access file: how callers authenticate and what each may do.

    mode = "shared"                   # sidecar (default) | shared
    reload_interval_s = 5             # optional: how often the file is checked for changes
    # mode "sidecar" only: the shared-resource writes local callers may make (default none),
    # of queues_write, templates_write, workflows_write, a group (queues, ...) or "*":
    # sidecar_operations = ["templates_write"]

    [tls]                             # optional in sidecar mode
    cert_file = "/etc/ci-gateway/tls/tls.crt"
    key_file = "/etc/ci-gateway/tls/tls.key"
    client_ca_file = "/etc/ci-gateway/tls/ca.crt"   # optional: require client certificates

    [[clients]]
    name = "transcoder"                         # for logs; never shown to other clients;
                                                # scopes its request_ids: keep it stable
    certificate_names = ["transcoder.media"]    # mTLS: the certificate's subject CN or a SAN
    token_sha256 = ["<64 hex digits>"]          # bearer tokens, stored as their SHA-256
    buckets = ["videos-1250000000"]             # "*" = any bucket
    regions = ["ap-guangzhou"]                  # optional, default any ("*")
    operations = ["submit", "describe", "list", "cancel", "media_info"]   # or "*"
                                                # queues|templates|workflows[_read|_write]
    tags = ["MediaInfo"]                        # optional, default any; other tags'
                                                # jobs are not found for it, even by id
    rate_per_s = 20                             # optional token bucket ...
    burst = 40                                  # ... of this size (default: rate_per_s, >= 1)

**sidecar**: no client credentials; the gateway must listen on loopback. Changing the bucket's
queues, templates or workflows is refused unless `sidecar_operations` names it. **shared**:
every call must present a client certificate from `client_ca_file` whose CN or a SAN is some
client's `certificate_names`, or an `authorization: Bearer <token>` whose SHA-256 is some client's
`token_sha256`. Client entries are re-read when the file changes (checked in the background
every `reload_interval_s`), and the watches and waits still open that the new entries would
refuse end then (`gateway.access.open_calls`); `mode`, `[tls]` and `reload_interval_s` apply at
start only.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from gateway import _toml
from gateway.access.policy import (
    ANY,
    OPERATION_GROUPS,
    SIDECAR_GUARDED,
    ClientPolicy,
    Operation,
    RateLimit,
    expand,
)
from gateway.access.tls import TlsConfig
from gateway.model import is_valid_bucket, is_valid_region

MODES = ("sidecar", "shared")
_SHA256_HEX = re.compile(r"^[0-9a-f]{64}$")
_CLIENT_KEYS = {
    "name",
    "certificate_names",
    "token_sha256",
    "buckets",
    "regions",
    "operations",
    "tags",
    "rate_per_s",
    "burst",
}
_OPERATION_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_]*$")


@dataclass(frozen=True)
class AccessConfig:
    mode: str = "sidecar"
    tls: TlsConfig | None = None
    clients: tuple[ClientPolicy, ...] = ()
    # How often the file is checked for changes (`ClientAccess`): a few `stat` calls each time.
    reload_interval_s: float = 5.0
    by_token: Mapping[str, ClientPolicy] = field(default_factory=dict, repr=False)
    by_certificate_name: Mapping[str, ClientPolicy] = field(default_factory=dict, repr=False)
    # Sidecar mode: which of `SIDECAR_GUARDED` local callers may call (expanded; "*" = all).
    sidecar_operations: frozenset[str] = frozenset()

    @property
    def shared(self) -> bool:
        return self.mode == "shared"

    @property
    def mtls(self) -> bool:
        return self.tls is not None and self.tls.mtls


def _strings(table: Mapping[str, Any], key: str, where: str, *, required: bool) -> list[str]:
    value = table.get(key)
    if value is None and not required:
        return []
    if (
        not isinstance(value, list)
        or not value
        or not all(isinstance(item, str) and item for item in value)
    ):
        raise ValueError(f"{where}: {key} must be a non-empty list of strings")
    return value


def _client(entry: object, where: str) -> ClientPolicy:
    table = _toml.table(entry, where, _CLIENT_KEYS)
    name = _toml.optional(table, "name", str, where)
    if not name:
        raise ValueError(f"{where}: name must be a non-empty string")
    where = f"{where} ({name})"
    buckets = _strings(table, "buckets", where, required=True)
    for bucket in buckets:
        if bucket != ANY and not is_valid_bucket(bucket):
            raise ValueError(f"{where}: bucket {bucket!r} is not 'name-APPID' or '*'")
    regions = _strings(table, "regions", where, required=False) or [ANY]
    for region in regions:
        if region != ANY and not is_valid_region(region):
            raise ValueError(f"{where}: region {region!r} is not a region name or '*'")
    operations = _strings(table, "operations", where, required=True)
    known = {operation.value for operation in Operation}
    for operation in operations:
        # A name outside the known operations must at least look like an RPC method name.
        if operation != ANY and operation not in known and not _OPERATION_NAME.fullmatch(operation):
            raise ValueError(f"{where}: unknown operation {operation!r}")
    tags = _strings(table, "tags", where, required=False) or [ANY]
    hashes = [h.lower() for h in _strings(table, "token_sha256", where, required=False)]
    for digest in hashes:
        if not _SHA256_HEX.fullmatch(digest):
            raise ValueError(f"{where}: token_sha256 entries must be 64 hex digits")
    names = _strings(table, "certificate_names", where, required=False)
    if not names and not hashes:
        raise ValueError(f"{where}: give certificate_names, token_sha256 or both")
    rate: RateLimit | None = None
    per_s = _toml.optional(table, "rate_per_s", float, where)
    if per_s is not None:
        burst = _toml.optional(table, "burst", float, where)
        burst = max(1.0, per_s) if burst is None else burst
        if per_s <= 0 or burst < 1:
            raise ValueError(f"{where}: rate_per_s must be positive and burst at least 1")
        rate = RateLimit(per_s, burst)
    elif "burst" in table:
        raise ValueError(f"{where}: burst needs rate_per_s")
    return ClientPolicy(
        name=name,
        buckets=frozenset(buckets),
        operations=expand(operations),
        tags=frozenset(tags),
        regions=frozenset(regions),
        rate=rate,
        certificate_names=frozenset(names),
        token_sha256=frozenset(hashes),
    )


def _tls(entry: object, base: Path) -> TlsConfig:
    table = _toml.table(entry, "tls", {"cert_file", "key_file", "client_ca_file"})

    def path(key: str) -> Path:
        value = table.get(key)
        if not isinstance(value, str) or not value:
            raise ValueError(f"tls: {key} must be a file name")
        return base / value  # relative names are relative to the access file

    client_ca = path("client_ca_file") if "client_ca_file" in table else None
    return TlsConfig(path("cert_file"), path("key_file"), client_ca)


def build_access(data: Mapping[str, Any], *, base: Path = Path()) -> AccessConfig:
    """The configuration the parsed file describes; `ValueError` names the offending key."""
    data = _toml.table(
        data, "", {"mode", "tls", "clients", "reload_interval_s", "sidecar_operations"}
    )
    mode = data.get("mode", AccessConfig.mode)
    if mode not in MODES:
        raise ValueError(f"mode must be one of {', '.join(MODES)}")
    interval = _toml.optional(data, "reload_interval_s", float)
    if interval is None:
        interval = AccessConfig.reload_interval_s
    if interval <= 0:
        raise ValueError("reload_interval_s must be a positive number")
    tls = _tls(data["tls"], base) if "tls" in data else None
    entries = _toml.array(data, "clients")
    clients = [_client(entry, f"clients[{index}]") for index, entry in enumerate(entries)]
    config = _index(mode, tls, clients, interval)
    if "sidecar_operations" in data:
        if mode != "sidecar":
            raise ValueError("sidecar_operations applies only in mode sidecar")
        guarded = _sidecar_operations(data)
        config = dataclasses.replace(config, sidecar_operations=guarded)
    return config


def _sidecar_operations(data: Mapping[str, Any]) -> frozenset[str]:
    names = _strings(data, "sidecar_operations", "access file", required=True)
    allowed = {ANY, *SIDECAR_GUARDED}
    allowed |= {group for group, members in OPERATION_GROUPS.items() if members & SIDECAR_GUARDED}
    for name in names:
        if name not in allowed:
            raise ValueError(
                f"sidecar_operations: {name!r} is not one of {', '.join(sorted(allowed))}"
            )
    return expand(names)


def _index(
    mode: str, tls: TlsConfig | None, clients: Sequence[ClientPolicy], interval: float
) -> AccessConfig:
    names: set[str] = set()
    by_token: dict[str, ClientPolicy] = {}
    by_certificate_name: dict[str, ClientPolicy] = {}
    for client in clients:
        if client.name in names:
            raise ValueError(f"clients: the name {client.name!r} is used twice")
        names.add(client.name)
        for digest in client.token_sha256:
            if digest in by_token:
                raise ValueError(f"clients ({client.name}): a token_sha256 is used twice")
            by_token[digest] = client
        for name in client.certificate_names:
            if name in by_certificate_name:
                raise ValueError(f"clients ({client.name}): certificate name {name!r} used twice")
            by_certificate_name[name] = client
    if mode == "shared":
        if not clients:
            raise ValueError("mode shared needs at least one [[clients]] entry")
        if by_certificate_name and not (tls and tls.mtls):
            raise ValueError("certificate_names need tls.client_ca_file (mTLS)")
        if not by_token and not (tls and tls.mtls):
            raise ValueError("mode shared needs tls.client_ca_file (mTLS) or token_sha256")
    elif clients:
        raise ValueError("[[clients]] apply only in mode shared (sidecar trusts every caller)")
    return AccessConfig(mode, tls, tuple(clients), interval, by_token, by_certificate_name)


def load_access_file(path: Path) -> AccessConfig:
    """The access file's configuration; `ValueError` (naming the file) when it is unusable,
    `OSError` when it cannot be read. Blocking: `ClientAccess` calls it off the event loop."""
    data = _toml.load(path)
    try:
        return build_access(data, base=path.parent)
    except ValueError as exc:
        raise ValueError(f"{path}: {exc}") from None
