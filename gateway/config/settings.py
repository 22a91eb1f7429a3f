"""The gateway's settings: small frozen value objects, each field the one declaration of a setting.

Sources, lowest precedence first: these defaults, an optional TOML file, environment variables,
command-line flags (`gateway.config.load`). Credentials are deliberately not settings: they come
from a `gateway.credentials` provider so that they never pass through argv (visible in `ps`), a
config dump or a log line.

Every setting is declared once, as a dataclass field (`_option`): the field's default *is* the
default (code elsewhere reads it from the class, e.g. `Retry.max_attempts`, never from a parallel
constant that could drift), and its metadata holds one line of help, the flag if the setting has
one, and the older environment variable names still accepted. The canonical environment
variable is derived from where the field sits, `CI_GATEWAY_<SECTION>_<NAME>` or, at the top
level, `CI_GATEWAY_<NAME>` (`env_name`), so no name is written by hand. The loader, the CLI's
flags and the README's configuration table (`gateway.config.reference`, checked by
`tests/deploy/test_readme_ops.py`) all read `OPTIONS`, so none of them can drift from the code.

Three settings are secrets: `callbacks.token`, and `shared.redis_url` and `upstream.proxy_url`
(which may carry a password). None has a flag or appears in a repr, and each can instead be read
from a file named by its `*_file` twin (a mounted Kubernetes Secret, say), which
`gateway.config.load` resolves.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterator
from dataclasses import dataclass, field, fields, is_dataclass
from typing import Any
from urllib.parse import urlsplit

from gateway.model import is_valid_bucket, is_valid_region

ENV_PREFIX = "CI_GATEWAY_"
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR")
LOG_FORMATS = ("json", "text")
EVENT_LOOPS = ("auto", "uvloop", "asyncio")
FANOUT_BACKENDS = ("local", "redis")
SUBMIT_STORES = ("memory", "redis")

_HOST_PORT = re.compile(r"^(?:\[[0-9a-fA-F:]+\]|[A-Za-z0-9_.:-]*):[0-9]{1,5}$")
_CALLBACK_TOKEN = re.compile(r"^[A-Za-z0-9_-]{32,128}$")


def _option(
    default: Any,
    *,
    help: str,
    flag: str | None = None,
    aliases: tuple[str, ...] = (),
    secret: bool = False,
) -> Any:
    """A setting: its default, one line of help, an optional flag, and the environment names it
    had before `CI_GATEWAY_<SECTION>_<NAME>` (still accepted). A `secret` has no flag (argv is
    visible in `ps`) and no repr."""
    if secret and flag is not None:
        raise ValueError("a secret setting cannot have a flag")
    metadata = {"help": help, "flag": flag, "aliases": aliases, "secret": secret}
    return field(default=default, repr=not secret, metadata=metadata)


# What one byte of a request costs the gateway while its call is held (by a slow CI, say),
# parsed and with what is built from it (the XML, the HTTP body): measured on a `serve` process
# with the calls held past their deadline, up to 38.9 for the densest request validation takes
# (a submit of 2,000 empty unknown nodes: 12 KiB on the wire, ~457 KiB held), 16.7 for a
# workflow of 1,200 nodes (73 KiB), 6.7 for a long text. `server.max_request_memory_mb` counts
# a request that has come at this many times its size.
REQUEST_HELD_FACTOR = 40


# Marks a field holding a nested group of settings: a `[name]` table in TOML.
_SECTION = {"section": True}


def _require_finite(section: object, name: str) -> None:
    """Every number of `section` finite (`name`: its TOML table, empty at the top level). The
    loader refuses nan and inf for every number, but settings built in code (tests, embedders)
    skip the loader, and a NaN compares false in every range check after this one. Every
    section with numbers, and `Settings` for its own, calls it first."""
    for option in fields(section):  # type: ignore[arg-type]
        value = getattr(section, option.name)
        if isinstance(value, float) and not math.isfinite(value):
            where = f"{name}.{option.name}" if name else option.name
            raise ValueError(f"{where} must be a finite number")


@dataclass(frozen=True)
class Timeouts:
    """Per-attempt bounds; each is further cut to what remains of the caller's deadline."""

    connect_s: float = _option(3.0, help="per attempt", aliases=("CI_GATEWAY_CONNECT_TIMEOUT_S",))
    read_s: float = _option(
        30.0, help="per attempt, body included", aliases=("CI_GATEWAY_READ_TIMEOUT_S",)
    )
    # CI's slowest synchronous call (GenerateMediaInfo on a large file) is documented as slow,
    # but never minutes.
    rpc_deadline_s: float = _option(
        60.0,
        help="ceiling for a call whose client set no deadline",
        aliases=("CI_GATEWAY_RPC_DEADLINE_S",),
    )

    def __post_init__(self) -> None:
        # A NaN time-out compares false with every remaining deadline: attempts without a bound.
        _require_finite(self, "timeouts")


@dataclass(frozen=True)
class Upstream:
    """How the gateway reaches CI (`[upstream]` in TOML): directly, or through an egress HTTP
    proxy (`gateway.upstream.proxy`, which tunnels every origin with CONNECT).

    An explicit `proxy_url` or `no_proxy` wins over its environment variable. The variables are
    read once, when the settings are loaded (`gateway.config.load`), as curl and httpx read them:
    `https_proxy`/`HTTPS_PROXY` for CI (`http_proxy`/`HTTP_PROXY` when `endpoint_url` is plain
    http), `no_proxy`/`NO_PROXY`; the lowercase name wins when both are set (urllib's rule, which
    httpx and requests follow), and a value without a scheme is taken as `http://`. `ALL_PROXY`
    is not read: the gateway speaks one scheme to CI, and `HTTPS_PROXY` names it exactly. Set
    `proxy_from_env = false` to ignore them (a pod that inherits a proxy meant for other
    traffic); `no_proxy = "*"` also sends everything direct."""

    # May hold a password: a secret (no flag, no repr), also readable from `proxy_url_file`.
    proxy_url: str = _option(
        "",
        secret=True,
        help="egress HTTP proxy towards CI, `http://[user:password@]host:port` (CONNECT); "
        "empty = `HTTPS_PROXY` and the like (see `proxy_from_env`)",
    )
    proxy_url_file: str = _option(
        "",
        flag="--proxy-url-file",
        help="file holding `upstream.proxy_url` (surrounding whitespace stripped), e.g. a "
        "mounted Secret; read once at start; not together with `proxy_url`",
    )
    no_proxy: str = _option(
        "",
        help="hosts reached without the proxy: comma list of names (each covers its "
        "subdomains), IPs, CIDRs, `host:port`, `*` = all; empty = `NO_PROXY` (see "
        "`proxy_from_env`)",
    )
    proxy_from_env: bool = _option(
        True,
        help="when `proxy_url` / `no_proxy` are empty, take them from `HTTPS_PROXY` "
        "(`HTTP_PROXY` for an http `endpoint_url`) / `NO_PROXY`, lowercase names first",
    )

    def __post_init__(self) -> None:
        if self.proxy_url and self.proxy_url_file:
            raise ValueError("upstream.proxy_url and upstream.proxy_url_file are both set: set one")
        if self.proxy_url and not is_proxy_url(self.proxy_url):
            # Fixed text: the value may hold a password.
            raise ValueError(
                "upstream.proxy_url must be http://[user:password@]host:port (value not shown)"
            )


def is_proxy_url(url: str) -> bool:
    """`http://[user[:password]@]host[:port][/]`: the only kind of proxy the transport speaks
    to (no TLS to the proxy itself, no SOCKS)."""
    try:
        parts = urlsplit(url)
        port = parts.port  # raises ValueError when it is not a port
    except ValueError:
        return False
    return (
        parts.scheme == "http"
        and port != 0  # `:0` would connect nowhere (`Proxy` took it as the default, 80)
        and bool(parts.hostname)
        and parts.path in ("", "/")
        and not parts.query
        and not parts.fragment
    )


@dataclass(frozen=True)
class ServerLimits:
    """The gRPC server's resource limits (`[server]` in TOML).

    The bounds that hold memory (`max_connections`, `max_ops_calls`, `max_request_memory_mb`
    here, with `retry.max_in_flight_rpcs`, `tracking.max_watchers` and
    `shared.submit_store_max_mb`) are sized together: at rest (~82 MiB) plus each bound times
    what one unit of it costs stays within 90% of a 256 MiB container in the costliest layout
    (TLS, the embedded submit store), so that a flood is refused RESOURCE_EXHAUSTED at a bound
    before the pod is OOM-killed with every call in flight on it. README: "Memory at the
    bounds"; `tests/deploy/test_memory_bounds.py` holds the measured costs and checks the
    defaults and each shipped manifest against them. Raise a bound and the memory limit
    together."""

    # Answers are small (a JobsDetail with MediaInfo is a few KiB); 8 MiB leaves room for a
    # 100-job listing. Requests have their own, smaller limit (`max_request_bytes`).
    max_message_bytes: int = _option(
        8 * 1024 * 1024,
        flag="--max-message-bytes",
        help="largest gRPC message sent (an answer); requests: `server.max_request_bytes`",
        aliases=("CI_GATEWAY_MAX_MESSAGE_BYTES",),
    )
    # grpc buffers a call's whole request before any of the gateway's code sees it, as its
    # bytes come, for as long as the client takes to send them: with 8 MiB, 20 calls each
    # sending all but the last byte of one held 162 MiB of a `serve` process (measured), and
    # the arrival cap let 1,824 in. Real requests are a few hundred bytes (a submit ~200, a
    # describe ~40); the largest the gateway is known to take whole are management calls: a
    # workflow chain of 1,200 nodes is 73 KiB (tests/resources/test_workflows.py); the 2,000
    # unknown nodes validation takes in one request are ~12 KiB. grpc refuses a request that
    # says it is larger RESOURCE_EXHAUSTED from its 5-byte length prefix, before buffering it
    # (measured).
    max_request_bytes: int = _option(
        128 * 1024,
        flag="--max-request-bytes",
        help="largest gRPC request received; a larger one is refused RESOURCE_EXHAUSTED "
        '("Received message larger than max (N vs. LIMIT)", from grpc, before it is read)',
    )
    # What the requests of the calls in progress may hold, so that a flood of large requests
    # is refused before the pod is OOM-killed (`gateway.api.request_memory`). 16 MiB: the
    # requests of every call the gates admit at once (512 submits of ~500 bytes, 512 resource
    # calls and 800 watches of ~50: ~13 MiB as counted) with room for calls arriving, and up
    # to three requests of `max_request_bytes` (5 MiB each as counted) beside a light load.
    max_request_memory_mb: int = _option(
        16,
        flag="--max-request-memory-mb",
        help="memory the requests of API calls in progress may hold (MiB), as counted: "
        "`server.max_request_bytes` for a call whose request is still coming (what grpc may "
        f"buffer for it), {REQUEST_HELD_FACTOR} times its size once it has come (what a request "
        "held while CI answers costs, measured), until the call ends; beyond it "
        "RESOURCE_EXHAUSTED (OVERLOADED) with RetryInfo",
    )
    # The bounds above count the calls whose request is still coming, they do not end them: a
    # client that opens 128 calls and never finishes their requests fills the requests' bound
    # (1,824, the arrival cap) for as long as it keeps them open, and every other call is
    # refused meanwhile (`gateway.api.receive_timeout`). Every RPC here has one request, which
    # a gRPC client sends with the call's headers: a submit is ~200 bytes, one round trip.
    # 10 s leave a real client room for a stalled link's retransmissions (TCP's first back-offs
    # add up to ~3 s) and the largest request (128 KiB) a link of 13 KiB/s, while the calls
    # of a client that never finishes give their places back within seconds.
    request_receive_timeout_s: float = _option(
        10.0,
        flag="--request-receive-timeout-s",
        help="time an API call's request may take to come, from the call's start (its "
        "headers); a call whose request has not come by then is ended DEADLINE_EXCEEDED "
        "(REQUEST_TIMEOUT) and its place and request memory given back at once (every RPC "
        "has one request, which gRPC clients send with the headers); health and reflection "
        "requests too, on both ports (each of a reflection stream's from the answer before)",
    )
    # Server pings find dead peers (a NAT or a load balancer that dropped the connection
    # silently).
    keepalive_time_s: float = _option(
        60.0,
        flag="--keepalive-time-s",
        help="ping an idle client connection this often",
        aliases=("CI_GATEWAY_KEEPALIVE_TIME_S",),
    )
    keepalive_timeout_s: float = _option(
        20.0,
        flag="--keepalive-timeout-s",
        help="close the connection when a ping is not answered within this",
        aliases=("CI_GATEWAY_KEEPALIVE_TIMEOUT_S",),
    )
    # Clients connect once and keep the connection, so without an age limit a new replica would
    # get no traffic from existing clients. After this age the server sends GOAWAY and clients
    # reconnect (to whichever replica the Service picks), after at most the grace below.
    max_connection_age_s: float = _option(
        300.0,
        flag="--max-connection-age-s",
        help="then GOAWAY, so clients reconnect and rebalance across replicas; 0 = never",
        aliases=("CI_GATEWAY_MAX_CONNECTION_AGE_S",),
    )
    # Long enough for the slowest RPC under the default deadline to finish on the old
    # connection.
    max_connection_age_grace_s: float = _option(
        Timeouts.rpc_deadline_s + 10.0,
        flag="--max-connection-age-grace-s",
        help="RPCs still running on an aged connection get this long before it is closed",
        aliases=("CI_GATEWAY_MAX_CONNECTION_AGE_GRACE_S",),
    )
    # The one bound on API calls whose request never comes: the servicers' admission counts a
    # call only once its request is in (a stranger's are refused from their metadata, but a
    # client's, or any local process's in the sidecar layout, were held for as long as it liked,
    # ~21 KiB each). The gateway counts every API call from its arrival, before its request is
    # read (`gateway.api.interceptors.InFlight`, the count a drain waits for), and refuses the
    # one beyond this cap there, with OVERLOADED and RetryInfo, as its other bounds do (not
    # grpc's `maximum_concurrent_rpcs`, which refuses bare). Health and reflection are bounded
    # apart (`max_ops_calls`). 0 derives it from the bounds the gateway's own gates keep, summed
    # (`gateway.api.server.max_concurrent_rpcs`, 1,824 by default), so that a legitimate load
    # meets those first and this cap only ever refuses calls beyond all of them: the half-open
    # ones. A fixed default would fall below that sum as soon as an operator raised a watcher
    # cap. A fixed value above the sum lets that many more half-open calls in, each ~21 KiB.
    max_concurrent_rpcs: int = _option(
        0,
        flag="--max-concurrent-rpcs",
        help="API calls in progress at once on the API port, those whose request has not come "
        "yet included (health and reflection: `server.max_ops_calls`); beyond it "
        "RESOURCE_EXHAUSTED (OVERLOADED) with RetryInfo, before the request is read; 0 = the "
        "sum of the gateway's own bounds: 2 x `retry.max_in_flight_rpcs` (job and resource "
        "calls) + 2 x `tracking.max_watchers` (job and run watchers)",
        aliases=("CI_GATEWAY_MAX_CONCURRENT_RPCS",),
    )
    # Health and reflection need no client credentials, and their calls can stay open as long
    # as the client likes: without a bound, anyone who reaches the port could hold any number
    # (gateway.api.ops_calls). gRPC clients that check health themselves keep one Watch per
    # connection to the replica; kubelet's probes are short Checks. ~21 KiB a call, on each of
    # two ports: 200 are ~8 MiB (1,000 were ~41 MiB, a sixth of a 256 MiB pod for strangers).
    # A tenth is kept for Checks, so that strangers holding Watch streams cannot get kubelet's
    # probes refused (and a healthy pod restarted); on the health port a Check beyond its places
    # ends the oldest whose request has not come, instead of being refused.
    max_ops_calls: int = _option(
        200,
        help="health and reflection calls in progress at once on each of the API and health "
        "ports (they need no client credentials), those whose request has not come included: "
        "a tenth (at least 1) for health Checks, the rest for Watch and reflection streams, "
        "of which one peer address takes one only while it holds fewer than are free (half at "
        "most, alone); beyond them a stream is RESOURCE_EXHAUSTED; on the health port a Check "
        "beyond its "
        "places ends the oldest still waiting for its request instead of being refused, so "
        "holding calls open does not fail kubelet's probes",
    )

    # Each connection costs the gateway ~22 KiB idle, ~58 KiB with TLS (measured), and a file
    # descriptor. A fleet needs far fewer: the bench's watch item uses 20, a sidecar's client
    # one, and a shared layout's client pods with a few connections each are spread over 2+
    # replicas; a connection being replaced (max_connection_age) lives on beside its successor
    # for up to the age grace, so count each twice. 300 TLS connections are ~17 MiB of the
    # 256 MiB the defaults are sized for (500 were ~28 MiB, until the requests' own bound,
    # `max_request_memory_mb`, needed room; 2,000 were ~113 MiB: with the other bounds full,
    # far past k8s/shared's limit); k8s/shared, which keeps no submit store in memory, allows
    # 860. grpc closes the one beyond at once, before any byte (no status can be sent).
    max_connections: int = _option(
        300,
        flag="--max-connections",
        help="connections open at once to the API port; one more is closed as it opens "
        "(clients see UNAVAILABLE and retry it like any failed connect); 0 = no bound",
    )
    # HTTP/2's SETTINGS_MAX_CONCURRENT_STREAMS: a gRPC client library queues a call beyond it
    # until one of its connection's calls ends (grpc's C core, measured; grpc-go and grpc-java
    # buffer them likewise), and grpc refuses a stream beyond it (REFUSED_STREAM) from a
    # client that ignores the setting. A queue the caller cannot see is worse than the
    # admission's OVERLOADED with RetryInfo, so one connection carries at least as many calls
    # as the gateway's own gates let in at once (`max_concurrent_rpcs`, 1,824 by default): a
    # sidecar's client often has one channel, and the bench's memory item holds 1,000 submits
    # on one (its watch item, 50 watches a connection; a client's watches are capped at 100 of
    # each kind). It refuses a flood of streams in grpc's core, before any Python runs; memory
    # is bounded by the total (`max_concurrent_rpcs`), not by this.
    max_streams_per_connection: int = _option(
        2000,
        flag="--max-streams-per-connection",
        help="calls in progress at once on one connection (HTTP/2 MAX_CONCURRENT_STREAMS); "
        "gRPC clients queue one more until one ends; 0 = no bound",
    )
    # Idle = no call in progress: keepalive pings do not count, an open watch or a call whose
    # request has not come does. A gRPC client reconnects at its next call (a TCP and TLS
    # handshake, milliseconds), so reaping costs a legitimate client almost nothing, while a
    # connection a client abandoned, or a stranger opened and left, gives back its place under
    # `max_connections` within two minutes instead of max_connection_age + grace (370 s), or
    # never when the age is 0. grpc's idle timer starts once its HTTP/2 transport is up (after
    # the TLS handshake): a TLS connection whose handshake never ends is closed by grpc's
    # handshake time-out (120 s), which this bound shortens when it is shorter.
    max_connection_idle_s: float = _option(
        120.0,
        flag="--max-connection-idle-s",
        help="close a connection that has had no call in progress for this long (GOAWAY; "
        "clients reconnect at their next call; pings do not count), and a TLS one whose "
        "handshake has not ended by then (120 s at most); 0 = never",
    )

    def __post_init__(self) -> None:
        _require_finite(self, "server")  # a NaN keepalive reaches grpc's channel options


@dataclass(frozen=True)
class Retry:
    """Retry policy, retry budget and load-shedding bounds (`[retry]` in TOML).

    `gateway.upstream.retry` builds its policy and budgets from these fields, defaults included;
    the reasoning behind each number is there and in the README's retry section."""

    max_attempts: int = _option(
        3,
        help="attempts per call towards CI, the first included",
        aliases=("CI_GATEWAY_MAX_ATTEMPTS",),
    )
    transient_base_s: float = _option(
        0.1,
        help="backoff base after a 5xx or a network error (full jitter, doubling)",
        aliases=("CI_GATEWAY_TRANSIENT_BASE_S",),
    )
    throttled_base_s: float = _option(
        0.5,
        help="backoff base after SlowDown or QueueSaturated",
        aliases=("CI_GATEWAY_THROTTLED_BASE_S",),
    )
    backoff_cap_s: float = _option(
        5.0,
        help="longest wait between two attempts (also caps CI's Retry-After)",
        aliases=("CI_GATEWAY_BACKOFF_CAP_S",),
    )
    # CI documents no bound on how long it may go on creating a job after its answer was lost,
    # nor that its listing shows a job as soon as it exists: a look right after a lost answer
    # can miss a job CI is still committing, and a resend then makes a second one. A second is
    # long against CI's tens of milliseconds per call, short against a caller's deadline.
    submit_settle_s: float = _option(
        1.0,
        help="a submit whose outcome is unknown (time-out, reset, 5xx) and whose job a first "
        "look did not find is looked for again and resent only after this long, plus the "
        "backoff's jitter, and only if the caller's deadline leaves room for it; else it ends "
        "UNAVAILABLE (SUBMIT_OUTCOME_UNKNOWN); 0 = resend right after the first look",
    )
    budget_capacity: float = _option(
        100.0,
        help="retry tokens per bucket+region; empty = calls fail fast (RETRY_BUDGET_EXHAUSTED)",
    )
    budget_retry_cost: float = _option(5.0, help="tokens one retry spends")
    # A time-out ties up a connection for long: it costs more.
    budget_timeout_cost: float = _option(10.0, help="tokens a retry after a time-out spends")
    budget_success_refund: float = _option(1.0, help="tokens a successful call returns")
    max_in_flight_upstream: int = _option(
        512,
        help="requests to CI at once; beyond it RESOURCE_EXHAUSTED (OVERLOADED), never a queue",
        aliases=("CI_GATEWAY_MAX_IN_FLIGHT_UPSTREAM",),
    )
    # Each of two admissions (job calls; queue, template and workflow calls) lets this many in.
    # An admitted call costs up to ~43 KiB (held by a slow CI, measured), and can wait for
    # CI, for credentials, for Redis or in a backoff: 2 x 512 are ~43 MiB. As many as may be at
    # CI at once (`max_in_flight_upstream`): one admitted beyond those would only be refused
    # there, or wait. 2,000 (before) were ~168 MiB, most of a 256 MiB pod.
    max_in_flight_rpcs: int = _option(
        512,
        help="API calls at once, in each of two admissions (job calls; queue, template and "
        "workflow calls); beyond it RESOURCE_EXHAUSTED (OVERLOADED) with RetryInfo; "
        "watch streams and `WaitMediaJob` are bounded by the watcher caps "
        "(`tracking.max_watchers`, `max_watchers_per_client`) instead",
        aliases=("CI_GATEWAY_MAX_IN_FLIGHT_RPCS",),
    )

    def __post_init__(self) -> None:
        # A NaN budget never spends, a NaN settle resends unsettled, an infinite cap lets a
        # backoff or CI's Retry-After wait without end.
        _require_finite(self, "retry")
        if self.max_attempts < 1:
            raise ValueError("retry.max_attempts must be >= 1")
        if not 0 < self.transient_base_s <= self.backoff_cap_s:
            raise ValueError("retry: need 0 < transient_base_s <= backoff_cap_s")
        if not 0 < self.throttled_base_s <= self.backoff_cap_s:
            raise ValueError("retry: need 0 < throttled_base_s <= backoff_cap_s")
        if self.submit_settle_s < 0:
            raise ValueError("retry.submit_settle_s must be >= 0")
        costs = (self.budget_capacity, self.budget_retry_cost, self.budget_timeout_cost)
        if min(costs) < 0 or self.budget_success_refund < 0:
            raise ValueError("retry: budget numbers must not be negative")
        if self.max_in_flight_upstream < 1 or self.max_in_flight_rpcs < 1:
            raise ValueError("retry: max_in_flight_upstream and max_in_flight_rpcs must be >= 1")


@dataclass(frozen=True)
class Tracking:
    """Job tracking for WatchMediaJob / WaitMediaJob (`[tracking]` in TOML).

    A MediaInfo job takes about a second, a transcode minutes to hours: look soon, then less and
    less often, never rarer than the cap. A watcher costs a stream and a little memory, never a
    request to CI of its own."""

    poll_initial_s: float = _option(
        0.5,
        help="describe a tracked job again this soon after it changed",
        aliases=("CI_GATEWAY_POLL_INITIAL_S",),
    )
    poll_max_s: float = _option(
        30.0,
        help="the poll interval doubles while a job does not change, up to this",
        aliases=("CI_GATEWAY_POLL_MAX_S",),
    )
    # Counted apart for job watches (WatchMediaJob, WaitMediaJob: ~35 KiB each, measured on
    # distinct jobs) and run watches (WatchWorkflowExecution: ~43 KiB): 400 of each are ~30
    # MiB; 10,000 (before) were ~760 MiB, an OOM kill in any shipped pod long before a refusal.
    # Four clients at their own cap (`max_watchers_per_client`); a fleet that watches more
    # spreads its watches over replicas, or raises this and the pod's memory limit together.
    max_watchers: int = _option(
        400,
        help="watch/wait calls open at once, job watches and workflow-run watches each; "
        "beyond it RESOURCE_EXHAUSTED",
        aliases=("CI_GATEWAY_MAX_WATCHERS",),
    )
    max_watchers_per_client: int = _option(
        100,
        help="the same per client: its authenticated name, else its gRPC peer",
        aliases=("CI_GATEWAY_MAX_WATCHERS_PER_CLIENT",),
    )
    # Long enough for a few polls at `poll_max_s` and a CI blip with its retries; short enough
    # that a client watching without a deadline learns of an outage within minutes.
    unreachable_s: float = _option(
        90.0,
        help="a job's (or workflow run's) watches and waits end UNAVAILABLE "
        "(UPSTREAM_UNREACHABLE, with CI's last error) once every read of its state has failed "
        "for this long (CI answering 5xx or 429, unreachable, timing out), counted per tracked "
        "job from its first failed read; a successful read resets it; the job may still be "
        "running: watch again",
    )

    def __post_init__(self) -> None:
        _require_finite(self, "tracking")  # an infinite poll_max_s: a watch never polls again
        if not 0 < self.poll_initial_s <= self.poll_max_s:
            raise ValueError("tracking: need 0 < poll_initial_s <= poll_max_s")
        if self.max_watchers < 1 or self.max_watchers_per_client < 1:
            raise ValueError("tracking: max_watchers and max_watchers_per_client must be >= 1")
        if self.unreachable_s <= 0:
            raise ValueError("tracking.unreachable_s must be > 0")


@dataclass(frozen=True)
class Callbacks:
    """The receiver of CI's job callbacks (`[callbacks]` in TOML)."""

    listen: str = _option(
        "",
        help="HTTP address of the callback receiver; empty = off (tracking polls only)",
        aliases=("CI_GATEWAY_CALLBACK_LISTEN",),
    )
    public_url: str = _option(
        "",
        help="base URL at which CI reaches the receiver; when set, submits without a CallBack "
        "of their own get the gateway's; `auto` = the receiver's own address",
        aliases=("CI_GATEWAY_CALLBACK_PUBLIC_URL",),
    )
    # A secret: it is what makes a callback URL unguessable.
    token: str = _option(
        "",
        secret=True,
        help="secret in the callback URL path (32-128 of A-Z a-z 0-9 _ -); empty = "
        "random per process (unless `token_file`); replicas behind one public_url must "
        "share it",
        aliases=("CI_GATEWAY_CALLBACK_TOKEN",),
    )
    token_file: str = _option(
        "",
        flag="--callback-token-file",
        help="file holding `callbacks.token` (surrounding whitespace stripped), e.g. a mounted "
        "Secret; read once at start (restart to rotate); not together with `token`",
        aliases=("CI_GATEWAY_CALLBACK_TOKEN_FILE",),
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

    # May hold a password.
    redis_url: str = _option(
        "",
        secret=True,
        help="Redis for `fanout` and `submit_store`, e.g. `redis://redis:6379/0`",
        aliases=("CI_GATEWAY_REDIS_URL",),
    )
    redis_url_file: str = _option(
        "",
        flag="--redis-url-file",
        help="file holding `shared.redis_url` (surrounding whitespace stripped), e.g. a mounted "
        "Secret; read once at start (restart to rotate); not together with `redis_url`",
        aliases=("CI_GATEWAY_REDIS_URL_FILE",),
    )
    fanout: str = _option(
        "local",
        help="how a verified callback reaches every replica's watchers: `local` or `redis`",
        aliases=("CI_GATEWAY_FANOUT",),
    )
    submit_store: str = _option(
        "memory",
        help="where request_id -> job records live (24 h): `memory` or `redis`",
        aliases=("CI_GATEWAY_SUBMIT_STORE",),
    )
    # ~30,000 records of callers' own request_ids (~1.1 KiB each): a day of a sidecar's submits
    # at one every 3 s. Counted whole in the 256 MiB the defaults are sized for (`ServerLimits`);
    # with `submit_store = "redis"` it costs the gateway nothing.
    submit_store_max_mb: float = _option(
        32.0,
        help="memory the `memory` submit store may hold (MiB); past it the oldest records go "
        "first (a repeat of their request_id then reconciles with CI); counted in the "
        "memory the other bounds leave under the pod's limit",
    )

    def __post_init__(self) -> None:
        _require_finite(self, "shared")
        if not self.submit_store_max_mb > 0:
            raise ValueError("shared.submit_store_max_mb must be more than 0")
        if self.redis_url and self.redis_url_file:
            raise ValueError("shared.redis_url and shared.redis_url_file are both set: set one")
        if self.fanout not in FANOUT_BACKENDS:
            raise ValueError(f"shared.fanout must be one of {FANOUT_BACKENDS}")
        if self.submit_store not in SUBMIT_STORES:
            raise ValueError(f"shared.submit_store must be one of {SUBMIT_STORES}")
        if self.redis_url and not re.match(r"^(rediss?|unix)://", self.redis_url):
            raise ValueError("shared.redis_url must be a redis://, rediss:// or unix:// URL")


@dataclass(frozen=True)
class Tracing:
    """OpenTelemetry tracing (`[tracing]` in TOML); see `gateway.tracing`.

    Only the switch is a setting. Where spans go and how many are kept are OpenTelemetry's
    standard `OTEL_*` variables (`OTEL_EXPORTER_OTLP_ENDPOINT`, `OTEL_SERVICE_NAME`,
    `OTEL_TRACES_SAMPLER`...), read by its SDK, so the gateway is configured like any other
    traced service. The switch is explicit rather than implied by those variables: platforms
    inject `OTEL_EXPORTER_OTLP_ENDPOINT` into every pod, and tracing has a cost (CPU per call,
    data sent to a collector) that the gateway's operator should choose."""

    enabled: bool = _option(
        False,
        help="trace RPCs, CI attempts, submit reconciles and callbacks with OpenTelemetry, "
        "exported as the standard `OTEL_*` variables say (needs `ci-gateway[tracing]`)",
    )


@dataclass(frozen=True)
class Settings:
    """Everything the gateway is configured with; the sections are `[name]` tables in TOML."""

    listen: str = _option("127.0.0.1:50051", flag="--listen", help="gRPC address")
    default_bucket: str = _option(
        "", flag="--default-bucket", help="bucket (`name-APPID`) when a request names none"
    )
    default_region: str = _option(
        "", flag="--default-region", help="region when a request names none"
    )
    # Where to connect instead of `https://<bucket>.ci.<region>.myqcloud.com` (the emulator, a
    # proxy). The real CI host name is still sent and signed as the Host header.
    endpoint_url: str | None = _option(
        None,
        flag="--endpoint-url",
        help="connect here instead of `https://<bucket>.ci.<region>.myqcloud.com` (the "
        "emulator); the real CI host is still sent and signed as `Host`",
    )
    timeouts: Timeouts = field(default_factory=Timeouts, metadata=_SECTION)
    upstream: Upstream = field(default_factory=Upstream, metadata=_SECTION)
    max_response_bytes: int = _option(4 * 1024 * 1024, help="larger CI answers are refused")
    log_level: str = _option("INFO", flag="--log-level", help="DEBUG, INFO, WARNING or ERROR")
    log_format: str = _option(
        "json", flag="--log-format", help="`json` (one object per line) or `text`"
    )
    # uvloop is a dependency on Linux and a few % cheaper per call (gateway.api.process);
    # `asyncio` is the way back should a problem with it ever appear.
    event_loop: str = _option(
        "auto",
        flag="--event-loop",
        help="`auto` (uvloop when installed, else asyncio's own), `uvloop` or `asyncio`",
    )
    # Off unless configured: 9090 is also Prometheus' own default port, so a fixed default
    # would collide on a developer's machine. The container image turns it on (`0.0.0.0:9090`).
    metrics_listen: str = _option(
        "",
        flag="--metrics-listen",
        help="HTTP address of `/metrics`, `/livez`, `/readyz`; empty = off",
    )
    # Off unless configured; the container image turns it on (`0.0.0.0:8081`).
    health_listen: str = _option(
        "",
        flag="--health-listen",
        help="plaintext gRPC address serving only `grpc.health.v1` (kubelet's gRPC probes: no "
        "TLS, no client credentials, no API); empty = off",
    )
    # Kubernetes gives a pod 30 s by default between SIGTERM and SIGKILL; a 5 s preStop sleep
    # plus this drain leaves a margin.
    shutdown_grace_s: float = _option(
        20.0,
        flag="--shutdown-grace-s",
        help="on SIGTERM/SIGINT, how long in-flight RPCs may take to finish",
    )
    # Client access and upstream credentials (gateway.access, gateway.credentials): file names
    # only; the files name key sources and hashed tokens, never a secret.
    access_file: str = _option(
        "",
        flag="--access-file",
        help="TOML file: client access mode, TLS, clients and their policies; empty = sidecar "
        "(loopback only, no client credentials)",
    )
    credentials_file: str = _option(
        "",
        flag="--credentials-file",
        help="TOML file: upstream accounts, where their keys come from, which bucket each "
        "signs for; empty = the `CI_GATEWAY_SECRET_ID`/`_KEY` variables",
    )
    server: ServerLimits = field(default_factory=ServerLimits, metadata=_SECTION)
    retry: Retry = field(default_factory=Retry, metadata=_SECTION)
    tracking: Tracking = field(default_factory=Tracking, metadata=_SECTION)
    callbacks: Callbacks = field(default_factory=Callbacks, metadata=_SECTION)
    shared: Shared = field(default_factory=Shared, metadata=_SECTION)
    tracing: Tracing = field(default_factory=Tracing, metadata=_SECTION)

    def __post_init__(self) -> None:
        _require_finite(self, "")  # the sections check their own
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
        if self.log_level.upper() not in LOG_LEVELS:
            problems.append(f"log_level {self.log_level!r} must be one of {LOG_LEVELS}")
        if self.log_format not in LOG_FORMATS:
            problems.append(f"log_format {self.log_format!r} must be one of {LOG_FORMATS}")
        if self.event_loop not in EVENT_LOOPS:
            problems.append(f"event_loop {self.event_loop!r} must be one of {EVENT_LOOPS}")
        if self.shutdown_grace_s < 0:
            problems.append("shutdown_grace_s must not be negative")
        limits = self.server
        if limits.max_message_bytes < 64 * 1024:
            problems.append("server.max_message_bytes must be at least 65536")
        if limits.max_request_bytes < 16 * 1024:
            problems.append("server.max_request_bytes must be at least 16384")
        least_mb = -(-REQUEST_HELD_FACTOR * limits.max_request_bytes // 2**20)  # rounded up
        if limits.max_request_memory_mb < least_mb:
            problems.append(
                f"server.max_request_memory_mb must hold one request of server.max_request_bytes "
                f"once it has come ({REQUEST_HELD_FACTOR} times it): at least {least_mb}"
            )
        if limits.max_ops_calls < 1:
            problems.append("server.max_ops_calls must be at least 1")
        for name in ("keepalive_time_s", "keepalive_timeout_s", "request_receive_timeout_s"):
            if getattr(limits, name) <= 0:
                problems.append(f"server.{name} must be positive")
        for name in (
            "max_connection_age_s",
            "max_connection_age_grace_s",
            "max_concurrent_rpcs",
            "max_connections",
            "max_streams_per_connection",
            "max_connection_idle_s",
        ):
            if getattr(limits, name) < 0:
                problems.append(f"server.{name} must not be negative")
        if problems:
            raise ValueError("; ".join(problems))


@dataclass(frozen=True)
class Option:
    """One declared setting, as the loader, the CLI and the README see it."""

    key: str  # "timeouts.read_s" addresses a nested value
    env: str  # the canonical environment variable (`env_name`)
    aliases: tuple[str, ...]  # older environment names, still accepted
    flag: str | None
    default: Any
    help: str
    secret: bool


def env_name(key: str) -> str:
    """The canonical environment variable of a setting: `timeouts.read_s` ->
    `CI_GATEWAY_TIMEOUTS_READ_S`, `listen` -> `CI_GATEWAY_LISTEN`."""
    return ENV_PREFIX + key.replace(".", "_").upper()


def _options(cls: type[Any], prefix: str = "") -> Iterator[Option]:
    for f in fields(cls):
        if f.metadata.get("section"):
            assert isinstance(f.default_factory, type) and is_dataclass(f.default_factory)
            yield from _options(f.default_factory, f"{prefix}{f.name}.")
        else:
            key = f"{prefix}{f.name}"
            yield Option(
                key,
                env_name(key),
                f.metadata["aliases"],
                f.metadata["flag"],
                f.default,
                f.metadata["help"],
                f.metadata["secret"],
            )


OPTIONS: tuple[Option, ...] = tuple(_options(Settings))
