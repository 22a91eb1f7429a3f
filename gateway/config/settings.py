"""The gateway's settings: small frozen value objects with named defaults.

Sources, lowest precedence first: built-in defaults, an optional TOML file, environment variables
(`CI_GATEWAY_*`), command-line flags. Credentials are deliberately not settings: they come from a
`gateway.credentials` provider so that they never pass through argv (visible in `ps`), a config
dump or a log line.

Every setting is declared once, as a dataclass field whose metadata names its environment
variable, its flag and one line of help (`_option`). The loader, the CLI's flags and the README's
configuration reference (`reference_markdown`, checked by `tests/deploy/test_readme_ops.py`) are
all derived from those declarations, so none of them can drift from the code.

Two settings are secrets: `callbacks.token` and `shared.redis_url` (which may carry a password).
Neither has a flag nor appears in a repr, and each can instead be read from a file named by its
`*_file` twin (a mounted Kubernetes Secret, say): `load_settings` reads such a file once,
replaces the `*_file` setting by the value it holds, and never puts that value in an error.
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field, fields, is_dataclass, replace
from pathlib import Path
from typing import Any

from gateway.model import is_valid_bucket, is_valid_region

DEFAULT_LISTEN = "127.0.0.1:50051"
# The ops port (Prometheus /metrics, /livez, /readyz) is off unless configured: 9090 is also
# Prometheus' own default port, so a fixed default would collide on a developer's machine. The
# container image turns it on (`0.0.0.0:9090`).
DEFAULT_METRICS_LISTEN = ""
# The plaintext health port (grpc.health.v1 only, for kubelet's gRPC probes) is off unless
# configured; the container image turns it on (`0.0.0.0:8081`).
DEFAULT_HEALTH_LISTEN = ""
DEFAULT_CONNECT_TIMEOUT_S = 3.0
DEFAULT_READ_TIMEOUT_S = 30.0
# The ceiling on one RPC when the caller sets no deadline: CI's slowest synchronous call
# (GenerateMediaInfo on a large file) is documented as slow, but never minutes.
DEFAULT_RPC_DEADLINE_S = 60.0
DEFAULT_MAX_RESPONSE_BYTES = 4 * 1024 * 1024
# Kubernetes gives a pod 30 s by default between SIGTERM and SIGKILL; a 5 s preStop sleep plus
# this drain leaves a margin.
DEFAULT_SHUTDOWN_GRACE_S = 20.0
LOG_FORMATS = ("json", "text")

# gRPC server limits. Requests and answers are small (a JobsDetail with MediaInfo is a few KiB);
# 8 MiB leaves room for a 100-job listing without letting one caller pin much memory.
DEFAULT_MAX_MESSAGE_BYTES = 8 * 1024 * 1024
# Server pings find dead peers (a NAT or a load balancer that dropped the connection silently).
DEFAULT_KEEPALIVE_TIME_S = 60.0
DEFAULT_KEEPALIVE_TIMEOUT_S = 20.0
# Clients connect once and keep the connection, so without an age limit a new replica would get
# no traffic from existing clients. After this age the server sends GOAWAY and clients reconnect
# (to whichever replica the Service picks), after at most the grace below.
DEFAULT_MAX_CONNECTION_AGE_S = 300.0
# Long enough for the slowest RPC under the default deadline to finish on the old connection.
DEFAULT_MAX_CONNECTION_AGE_GRACE_S = DEFAULT_RPC_DEADLINE_S + 10.0
# 0 = no server-wide cap. The servicer already sheds API load with RESOURCE_EXHAUSTED and a
# RetryInfo; this cap counts health checks too, so set it well above the servicer's bound.
DEFAULT_MAX_CONCURRENT_RPCS = 0

_HOST_PORT = re.compile(r"^(?:\[[0-9a-fA-F:]+\]|[A-Za-z0-9_.:-]*):[0-9]{1,5}$")


def _option(default: Any, *, env: str, help: str, flag: str | None = None) -> Any:
    """A setting: its default, environment variable, optional flag and one line of help."""
    return field(default=default, metadata={"env": env, "flag": flag, "help": help})


# Marks a field holding a nested group of settings: a `[name]` table in TOML.
_SECTION = {"section": True}


@dataclass(frozen=True)
class Timeouts:
    """Per-attempt bounds; each is further cut to what remains of the caller's deadline."""

    connect_s: float = _option(
        DEFAULT_CONNECT_TIMEOUT_S,
        env="CI_GATEWAY_CONNECT_TIMEOUT_S",
        help="per attempt",
    )
    read_s: float = _option(
        DEFAULT_READ_TIMEOUT_S,
        env="CI_GATEWAY_READ_TIMEOUT_S",
        help="per attempt, body included",
    )
    rpc_deadline_s: float = _option(
        DEFAULT_RPC_DEADLINE_S,
        env="CI_GATEWAY_RPC_DEADLINE_S",
        help="ceiling for a call whose client set no deadline",
    )


@dataclass(frozen=True)
class ServerLimits:
    """The gRPC server's resource limits (`[server]` in TOML)."""

    max_message_bytes: int = _option(
        DEFAULT_MAX_MESSAGE_BYTES,
        env="CI_GATEWAY_MAX_MESSAGE_BYTES",
        flag="--max-message-bytes",
        help="largest gRPC message received or sent",
    )
    keepalive_time_s: float = _option(
        DEFAULT_KEEPALIVE_TIME_S,
        env="CI_GATEWAY_KEEPALIVE_TIME_S",
        flag="--keepalive-time-s",
        help="ping an idle client connection this often",
    )
    keepalive_timeout_s: float = _option(
        DEFAULT_KEEPALIVE_TIMEOUT_S,
        env="CI_GATEWAY_KEEPALIVE_TIMEOUT_S",
        flag="--keepalive-timeout-s",
        help="close the connection when a ping is not answered within this",
    )
    max_connection_age_s: float = _option(
        DEFAULT_MAX_CONNECTION_AGE_S,
        env="CI_GATEWAY_MAX_CONNECTION_AGE_S",
        flag="--max-connection-age-s",
        help="then GOAWAY, so clients reconnect and rebalance across replicas; 0 = never",
    )
    max_connection_age_grace_s: float = _option(
        DEFAULT_MAX_CONNECTION_AGE_GRACE_S,
        env="CI_GATEWAY_MAX_CONNECTION_AGE_GRACE_S",
        flag="--max-connection-age-grace-s",
        help="RPCs still running on an aged connection get this long before it is closed",
    )
    max_concurrent_rpcs: int = _option(
        DEFAULT_MAX_CONCURRENT_RPCS,
        env="CI_GATEWAY_MAX_CONCURRENT_RPCS",
        flag="--max-concurrent-rpcs",
        help="server-wide cap on RPCs in progress, health checks included; 0 = none",
    )


# Retries and load shedding (gateway.retry, gateway.upstream, gateway.service): the reasoning
# behind each default is in gateway/retry.py and the README's retry section.
DEFAULT_MAX_ATTEMPTS = 3
DEFAULT_TRANSIENT_BASE_S = 0.1
DEFAULT_THROTTLED_BASE_S = 0.5
DEFAULT_BACKOFF_CAP_S = 5.0
DEFAULT_BUDGET_CAPACITY = 100.0
DEFAULT_BUDGET_RETRY_COST = 5.0
DEFAULT_BUDGET_TIMEOUT_COST = 10.0
DEFAULT_BUDGET_SUCCESS_REFUND = 1.0
DEFAULT_MAX_IN_FLIGHT_UPSTREAM = 512
DEFAULT_MAX_IN_FLIGHT_RPCS = 2000


@dataclass(frozen=True)
class Retry:
    """Retry policy, retry budget and load-shedding bounds (`[retry]` in TOML)."""

    max_attempts: int = _option(
        DEFAULT_MAX_ATTEMPTS,
        env="CI_GATEWAY_MAX_ATTEMPTS",
        help="attempts per call towards CI, the first included",
    )
    transient_base_s: float = _option(
        DEFAULT_TRANSIENT_BASE_S,
        env="CI_GATEWAY_TRANSIENT_BASE_S",
        help="backoff base after a 5xx or a network error (full jitter, doubling)",
    )
    throttled_base_s: float = _option(
        DEFAULT_THROTTLED_BASE_S,
        env="CI_GATEWAY_THROTTLED_BASE_S",
        help="backoff base after SlowDown or QueueSaturated",
    )
    backoff_cap_s: float = _option(
        DEFAULT_BACKOFF_CAP_S,
        env="CI_GATEWAY_BACKOFF_CAP_S",
        help="longest wait between two attempts (also caps CI's Retry-After)",
    )
    budget_capacity: float = _option(
        DEFAULT_BUDGET_CAPACITY,
        env="CI_GATEWAY_RETRY_BUDGET_CAPACITY",
        help="retry tokens per bucket+region; empty = calls fail fast (RETRY_BUDGET_EXHAUSTED)",
    )
    budget_retry_cost: float = _option(
        DEFAULT_BUDGET_RETRY_COST,
        env="CI_GATEWAY_RETRY_BUDGET_RETRY_COST",
        help="tokens one retry spends",
    )
    budget_timeout_cost: float = _option(
        DEFAULT_BUDGET_TIMEOUT_COST,
        env="CI_GATEWAY_RETRY_BUDGET_TIMEOUT_COST",
        help="tokens a retry after a time-out spends",
    )
    budget_success_refund: float = _option(
        DEFAULT_BUDGET_SUCCESS_REFUND,
        env="CI_GATEWAY_RETRY_BUDGET_SUCCESS_REFUND",
        help="tokens a successful call returns",
    )
    max_in_flight_upstream: int = _option(
        DEFAULT_MAX_IN_FLIGHT_UPSTREAM,
        env="CI_GATEWAY_MAX_IN_FLIGHT_UPSTREAM",
        help="requests to CI at once; beyond it RESOURCE_EXHAUSTED (OVERLOADED), never a queue",
    )
    max_in_flight_rpcs: int = _option(
        DEFAULT_MAX_IN_FLIGHT_RPCS,
        env="CI_GATEWAY_MAX_IN_FLIGHT_RPCS",
        help="API calls at once; beyond it RESOURCE_EXHAUSTED (OVERLOADED) with RetryInfo",
    )

    def __post_init__(self) -> None:
        if self.max_attempts < 1:
            raise ValueError("retry.max_attempts must be >= 1")
        if not 0 < self.transient_base_s <= self.backoff_cap_s:
            raise ValueError("retry: need 0 < transient_base_s <= backoff_cap_s")
        if not 0 < self.throttled_base_s <= self.backoff_cap_s:
            raise ValueError("retry: need 0 < throttled_base_s <= backoff_cap_s")
        costs = (self.budget_capacity, self.budget_retry_cost, self.budget_timeout_cost)
        if min(costs) < 0 or self.budget_success_refund < 0:
            raise ValueError("retry: budget numbers must not be negative")
        if self.max_in_flight_upstream < 1 or self.max_in_flight_rpcs < 1:
            raise ValueError("retry: max_in_flight_upstream and max_in_flight_rpcs must be >= 1")


# Job tracking (WatchMediaJob / WaitMediaJob). A MediaInfo job takes about a second, a transcode
# minutes to hours: look soon, then less and less often, never rarer than the cap.
DEFAULT_POLL_INITIAL_S = 0.5
DEFAULT_POLL_MAX_S = 30.0
# A watcher costs a stream and a little memory, never a request to CI of its own.
DEFAULT_MAX_WATCHERS = 10_000
DEFAULT_MAX_WATCHERS_PER_CLIENT = 100
FANOUT_BACKENDS = ("local", "redis")
SUBMIT_STORES = ("memory", "redis")
_CALLBACK_TOKEN = re.compile(r"^[A-Za-z0-9_-]{32,128}$")


@dataclass(frozen=True)
class Tracking:
    """Job tracking for WatchMediaJob / WaitMediaJob (`[tracking]` in TOML)."""

    poll_initial_s: float = _option(
        DEFAULT_POLL_INITIAL_S,
        env="CI_GATEWAY_POLL_INITIAL_S",
        help="describe a tracked job again this soon after it changed",
    )
    poll_max_s: float = _option(
        DEFAULT_POLL_MAX_S,
        env="CI_GATEWAY_POLL_MAX_S",
        help="the poll interval doubles while a job does not change, up to this",
    )
    max_watchers: int = _option(
        DEFAULT_MAX_WATCHERS,
        env="CI_GATEWAY_MAX_WATCHERS",
        help="watch/wait calls open at once; beyond it RESOURCE_EXHAUSTED",
    )
    max_watchers_per_client: int = _option(
        DEFAULT_MAX_WATCHERS_PER_CLIENT,
        env="CI_GATEWAY_MAX_WATCHERS_PER_CLIENT",
        help="the same per client: its authenticated name, else its gRPC peer",
    )

    def __post_init__(self) -> None:
        if not 0 < self.poll_initial_s <= self.poll_max_s:
            raise ValueError("tracking: need 0 < poll_initial_s <= poll_max_s")
        if self.max_watchers < 1 or self.max_watchers_per_client < 1:
            raise ValueError("tracking: max_watchers and max_watchers_per_client must be >= 1")


@dataclass(frozen=True)
class Callbacks:
    """The receiver of CI's job callbacks (`[callbacks]` in TOML)."""

    listen: str = _option(
        "",
        env="CI_GATEWAY_CALLBACK_LISTEN",
        help="HTTP address of the callback receiver; empty = off (tracking polls only)",
    )
    public_url: str = _option(
        "",
        env="CI_GATEWAY_CALLBACK_PUBLIC_URL",
        help="base URL at which CI reaches the receiver; when set, submits without a CallBack "
        "of their own get the gateway's; `auto` = the receiver's own address",
    )
    # A secret (it is what makes a callback URL unguessable): no flag, and no repr.
    token: str = field(
        default="",
        repr=False,
        metadata={
            "env": "CI_GATEWAY_CALLBACK_TOKEN",
            "flag": None,
            "help": "secret in the callback URL path (32-128 of A-Z a-z 0-9 _ -); empty = "
            "random per process (unless `token_file`); replicas behind one public_url must "
            "share it",
        },
    )
    token_file: str = _option(
        "",
        env="CI_GATEWAY_CALLBACK_TOKEN_FILE",
        flag="--callback-token-file",
        help="file holding `callbacks.token` (surrounding whitespace stripped), e.g. a mounted "
        "Secret; read once at start (restart to rotate); not together with `token`",
    )

    def __post_init__(self) -> None:
        if self.token and self.token_file:
            raise ValueError("callbacks.token and callbacks.token_file are both set: set one")
        if self.listen and not _HOST_PORT.fullmatch(self.listen):
            raise ValueError(f"callbacks.listen {self.listen!r} must be host:port or empty")
        url = self.public_url
        if url and url != "auto" and not re.match(r"^https?://[^/?#]+(/[^?#]*)?$", url):
            raise ValueError("callbacks.public_url must be an http(s) URL or `auto`")
        if self.token and not _CALLBACK_TOKEN.fullmatch(self.token):
            raise ValueError("callbacks.token must be 32-128 of A-Z a-z 0-9 _ -")


@dataclass(frozen=True)
class Shared:
    """State shared by replicas through Redis (`[shared]` in TOML)."""

    # May hold a password: no flag, and no repr.
    redis_url: str = field(
        default="",
        repr=False,
        metadata={
            "env": "CI_GATEWAY_REDIS_URL",
            "flag": None,
            "help": "Redis for `fanout` and `submit_store`, e.g. `redis://redis:6379/0`",
        },
    )
    redis_url_file: str = _option(
        "",
        env="CI_GATEWAY_REDIS_URL_FILE",
        flag="--redis-url-file",
        help="file holding `shared.redis_url` (surrounding whitespace stripped), e.g. a mounted "
        "Secret; read once at start (restart to rotate); not together with `redis_url`",
    )
    fanout: str = _option(
        "local",
        env="CI_GATEWAY_FANOUT",
        help="how a verified callback reaches every replica's watchers: `local` or `redis`",
    )
    submit_store: str = _option(
        "memory",
        env="CI_GATEWAY_SUBMIT_STORE",
        help="where request_id -> job records live (24 h): `memory` or `redis`",
    )

    def __post_init__(self) -> None:
        if self.redis_url and self.redis_url_file:
            raise ValueError("shared.redis_url and shared.redis_url_file are both set: set one")
        if self.fanout not in FANOUT_BACKENDS:
            raise ValueError(f"shared.fanout must be one of {FANOUT_BACKENDS}")
        if self.submit_store not in SUBMIT_STORES:
            raise ValueError(f"shared.submit_store must be one of {SUBMIT_STORES}")
        if self.redis_url and not re.match(r"^(rediss?|unix)://", self.redis_url):
            raise ValueError("shared.redis_url must be a redis://, rediss:// or unix:// URL")


@dataclass(frozen=True)
class Settings:
    listen: str = _option(
        DEFAULT_LISTEN, env="CI_GATEWAY_LISTEN", flag="--listen", help="gRPC address"
    )
    default_bucket: str = _option(
        "",
        env="CI_GATEWAY_DEFAULT_BUCKET",
        flag="--default-bucket",
        help="bucket (`name-APPID`) when a request names none",
    )
    default_region: str = _option(
        "",
        env="CI_GATEWAY_DEFAULT_REGION",
        flag="--default-region",
        help="region when a request names none",
    )
    # Where to connect instead of `https://<bucket>.ci.<region>.myqcloud.com` (the emulator, a
    # proxy). The real CI host name is still sent and signed as the Host header.
    endpoint_url: str | None = _option(
        None,
        env="CI_GATEWAY_ENDPOINT_URL",
        flag="--endpoint-url",
        help="connect here instead of `https://<bucket>.ci.<region>.myqcloud.com` (the "
        "emulator); the real CI host is still sent and signed as `Host`",
    )
    timeouts: Timeouts = field(default_factory=Timeouts, metadata=_SECTION)
    max_response_bytes: int = _option(
        DEFAULT_MAX_RESPONSE_BYTES,
        env="CI_GATEWAY_MAX_RESPONSE_BYTES",
        help="larger CI answers are refused",
    )
    log_level: str = _option(
        "INFO",
        env="CI_GATEWAY_LOG_LEVEL",
        flag="--log-level",
        help="DEBUG, INFO, WARNING or ERROR",
    )
    log_format: str = _option(
        "json",
        env="CI_GATEWAY_LOG_FORMAT",
        flag="--log-format",
        help="`json` (one object per line) or `text`",
    )
    metrics_listen: str = _option(
        DEFAULT_METRICS_LISTEN,
        env="CI_GATEWAY_METRICS_LISTEN",
        flag="--metrics-listen",
        help="HTTP address of `/metrics`, `/livez`, `/readyz`; empty = off",
    )
    health_listen: str = _option(
        DEFAULT_HEALTH_LISTEN,
        env="CI_GATEWAY_HEALTH_LISTEN",
        flag="--health-listen",
        help="plaintext gRPC address serving only `grpc.health.v1` (kubelet's gRPC probes: no "
        "TLS, no client credentials, no API); empty = off",
    )
    shutdown_grace_s: float = _option(
        DEFAULT_SHUTDOWN_GRACE_S,
        env="CI_GATEWAY_SHUTDOWN_GRACE_S",
        flag="--shutdown-grace-s",
        help="on SIGTERM/SIGINT, how long in-flight RPCs may take to finish",
    )
    # Client access and upstream credentials (gateway.auth, gateway.credentials_config): file
    # names only; the files name key sources and hashed tokens, never a secret.
    access_file: str = _option(
        "",
        env="CI_GATEWAY_ACCESS_FILE",
        flag="--access-file",
        help="TOML file: client access mode, TLS, clients and their policies; empty = sidecar "
        "(loopback only, no client credentials)",
    )
    credentials_file: str = _option(
        "",
        env="CI_GATEWAY_CREDENTIALS_FILE",
        flag="--credentials-file",
        help="TOML file: upstream accounts, where their keys come from, which bucket each "
        "signs for; empty = the `CI_GATEWAY_SECRET_ID`/`_KEY` variables",
    )
    server: ServerLimits = field(default_factory=ServerLimits, metadata=_SECTION)
    retry: Retry = field(default_factory=Retry, metadata=_SECTION)
    tracking: Tracking = field(default_factory=Tracking, metadata=_SECTION)
    callbacks: Callbacks = field(default_factory=Callbacks, metadata=_SECTION)
    shared: Shared = field(default_factory=Shared, metadata=_SECTION)

    def __post_init__(self) -> None:
        problems = []
        if self.default_bucket and not is_valid_bucket(self.default_bucket):
            problems.append(f"default_bucket {self.default_bucket!r} is not 'name-APPID'")
        if self.default_region and not is_valid_region(self.default_region):
            problems.append(f"default_region {self.default_region!r} is not a region name")
        if self.endpoint_url and not re.match(r"^https?://[^/]+/?$", self.endpoint_url):
            problems.append(f"endpoint_url {self.endpoint_url!r} must be http(s)://host[:port]")
        if not _HOST_PORT.fullmatch(self.listen):
            problems.append(f"listen {self.listen!r} must be host:port")
        if self.metrics_listen and not _HOST_PORT.fullmatch(self.metrics_listen):
            problems.append(f"metrics_listen {self.metrics_listen!r} must be host:port or empty")
        if self.health_listen and not _HOST_PORT.fullmatch(self.health_listen):
            problems.append(f"health_listen {self.health_listen!r} must be host:port or empty")
        for name in ("connect_s", "read_s", "rpc_deadline_s"):
            if getattr(self.timeouts, name) <= 0:
                problems.append(f"timeouts.{name} must be positive")
        if self.max_response_bytes < 64 * 1024:
            problems.append("max_response_bytes must be at least 65536")
        if self.log_format not in LOG_FORMATS:
            problems.append(f"log_format {self.log_format!r} must be one of {LOG_FORMATS}")
        if self.shutdown_grace_s < 0:
            problems.append("shutdown_grace_s must not be negative")
        limits = self.server
        if limits.max_message_bytes < 64 * 1024:
            problems.append("server.max_message_bytes must be at least 65536")
        for name in ("keepalive_time_s", "keepalive_timeout_s"):
            if getattr(limits, name) <= 0:
                problems.append(f"server.{name} must be positive")
        for name in (
            "max_connection_age_s",
            "max_connection_age_grace_s",
            "max_concurrent_rpcs",
        ):
            if getattr(limits, name) < 0:
                problems.append(f"server.{name} must not be negative")
        if problems:
            raise ValueError("; ".join(problems))


@dataclass(frozen=True)
class Option:
    """One documented setting, as the loader, the CLI and the README see it."""

    key: str  # "timeouts.read_s" addresses a nested value
    env: str
    flag: str | None
    default: Any
    help: str


def _options(cls: type[Any], prefix: str = "") -> Iterator[Option]:
    for f in fields(cls):
        if f.metadata.get("section"):
            assert isinstance(f.default_factory, type) and is_dataclass(f.default_factory)
            yield from _options(f.default_factory, f"{prefix}{f.name}.")
        elif "env" in f.metadata:
            yield Option(
                f"{prefix}{f.name}",
                f.metadata["env"],
                f.metadata["flag"],
                f.default,
                f.metadata["help"],
            )


OPTIONS: tuple[Option, ...] = tuple(_options(Settings))
# Environment variable -> settings key.
ENVIRONMENT = {option.env: option.key for option in OPTIONS}
_SECTIONS = {f.name: f for f in fields(Settings) if f.metadata.get("section")}


def _coerce(template: Any, key: str, value: Any) -> Any:
    if value is None or isinstance(template, str) or template is None:
        return value if value is None else str(value)
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        raise ValueError(f"{key}: {value!r} is not a valid {type(template).__name__}")
    try:
        return type(template)(value)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{key}: {value!r} is not a valid {type(template).__name__}") from exc


def _flatten(values: Mapping[str, Any]) -> dict[str, Any]:
    """`{"timeouts": {"read_s": 3}}` (TOML's tables) -> `{"timeouts.read_s": 3}`."""
    flat: dict[str, Any] = {}
    for key, value in values.items():
        if key in _SECTIONS and isinstance(value, Mapping):
            for sub, sub_value in value.items():
                flat[f"{key}.{sub}"] = sub_value
        else:
            flat[key] = value
    return flat


def _apply(settings: Settings, values: Mapping[str, Any], source: str) -> Settings:
    top: dict[str, Any] = {}
    nested: dict[str, dict[str, Any]] = {}
    for key, value in _flatten(values).items():
        section, _, name = key.partition(".")
        if name and section in _SECTIONS:
            current = getattr(settings, section)
            if name not in {f.name for f in fields(current)}:
                raise ValueError(f"{source}: unknown setting {key!r}")
            nested.setdefault(section, {})[name] = _coerce(getattr(current, name), key, value)
        elif not name and key not in _SECTIONS and key in {f.name for f in fields(Settings)}:
            top[key] = _coerce(getattr(settings, key), key, value)
        else:
            raise ValueError(f"{source}: unknown setting {key!r}")
    for section, changes in nested.items():
        top[section] = replace(getattr(settings, section), **changes)
    return replace(settings, **top)


# Secret settings that may come from a file instead: (section, value field); the file's setting
# is the value's name + `_file`.
SECRET_FILES = (("callbacks", "token"), ("shared", "redis_url"))
# A token or a URL is short: a larger file is a wrong path (or /dev/zero), not a secret.
MAX_SECRET_FILE_BYTES = 64 * 1024


def read_secret_file(key: str, path: str) -> str:
    """The content of the file the setting `key` names, stripped of surrounding whitespace.
    `ValueError` names `key` and `path`, never the content."""
    try:
        with open(path, "rb") as handle:
            data = handle.read(MAX_SECRET_FILE_BYTES + 1)
    except OSError as exc:
        reason = exc.strerror or type(exc).__name__
        raise ValueError(f"{key} {path!r} cannot be read: {reason}") from None
    if len(data) > MAX_SECRET_FILE_BYTES:
        raise ValueError(f"{key} {path!r} is larger than {MAX_SECRET_FILE_BYTES} bytes")
    try:
        text = data.decode("utf-8").strip()
    except UnicodeDecodeError:
        raise ValueError(f"{key} {path!r} is not UTF-8 text") from None
    if not text:
        raise ValueError(f"{key} {path!r} is empty")
    return text


def resolve_secret_files(settings: Settings) -> Settings:
    """`settings` with each secret's `*_file` read now and replaced by the value it holds (the
    `*_file` setting then empty): the files are read once, at start, so a rotated file needs a
    restart. The value is validated like one set directly; errors name the file's setting and
    path, never the content."""
    changes: dict[str, Any] = {}
    for section, name in SECRET_FILES:
        group = getattr(settings, section)
        path = getattr(group, f"{name}_file")
        if not path:
            continue
        key = f"{section}.{name}_file"
        value = read_secret_file(key, path)
        try:
            changes[section] = replace(group, **{name: value, f"{name}_file": ""})
        except ValueError as exc:  # the section's own check of the value: names no content
            raise ValueError(f"{key} {path!r}: {exc}") from None
    return replace(settings, **changes) if changes else settings


def load_settings(
    *,
    config_file: Path | None = None,
    environ: Mapping[str, str] | None = None,
    overrides: Mapping[str, Any] | None = None,
) -> Settings:
    """Build settings from file < environment < overrides (flags, keyed like `OPTIONS`), then
    read the secrets' `*_file`s (`resolve_secret_files`); `ValueError` names the offending key."""
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
    return resolve_secret_files(settings)


def _markdown_default(value: Any) -> str:
    if value is None or value == "":
        return "none"
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    return f"`{value}`"


def reference_markdown() -> str:
    """The README's configuration table, generated from the declarations above."""
    lines = [
        "| setting | env | flag | default | meaning |",
        "|---|---|---|---|---|",
    ]
    for option in OPTIONS:
        flag = f"`{option.flag}`" if option.flag else ""
        lines.append(
            f"| `{option.key}` | `{option.env}` | {flag} | {_markdown_default(option.default)} "
            f"| {option.help} |"
        )
    return "\n".join(lines) + "\n"
