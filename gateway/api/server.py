"""Builds the gRPC server around the servicer and owns its lifecycle.

`start_gateway` assembles the pieces in dependency order (metrics, readiness, the probe ports,
credentials, CI client, job tracking, then the API server with its interceptors and servicers)
on one `AsyncExitStack`, and returns a `RunningGateway` that is listening (port 0 picks a free
one, which is what tests and the demo use) and owns that stack. Besides
`ci.media.v1.MediaJobService` the server offers grpc.health.v1 (see `gateway.api.health`) and
server reflection, so `grpcurl list` and `describe` work without the proto files.

With `health_listen` set, a second, plaintext server serves grpc.health.v1 and nothing else
(no API, no reflection, no client authentication: health is public anyway), from the same
`Readiness` servicer, so both ports always give the same answers. It exists for kubelet's gRPC
probes, which can neither speak TLS (the shared layout's API port) nor reach a loopback address
(the sidecar layout's).

`RunningGateway.stop` is the graceful shutdown, in this order: every health status NOT_SERVING
(load balancers stop sending), job tracking drained (every watch ends UNAVAILABLE at once), stop
accepting RPCs, let API calls in flight finish for up to the grace period, then end whatever
still runs: the API calls past the grace first, each with the gateway's own status
(`InFlight.cut`), then the rest (health watches, reflection streams, calls whose request never
came) by grpc's stop. The stack then closes the rest in reverse order of building: job
tracking, the HTTP session towards CI, tracing (its last spans exported, for at most a few
seconds), the credentials provider, the health port and the ops port last: until then both
keep answering probes (NOT_SERVING) through the drain.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import grpc
from google.protobuf.descriptor import ServiceDescriptor
from grpc_health.v1 import health_pb2, health_pb2_grpc

from gateway import tracing
from gateway._chain import PerMethodChain
from gateway._proto import (
    queues_pb2,
    queues_pb2_grpc,
    service_pb2,
    service_pb2_grpc,
    templates_pb2,
    templates_pb2_grpc,
    workflows_pb2,
    workflows_pb2_grpc,
)
from gateway.access.interceptor import ClientAccess
from gateway.api.health import (
    API_SERVICE,
    Readiness,
    ReadinessCheck,
    credentials_check,
    submit_store_check,
)
from gateway.api.interceptors import STREAM_TYPES, InFlight, ObservabilityInterceptor
from gateway.api.malformed import OPS_MAX_REQUEST_BYTES, MalformedRequestInterceptor
from gateway.api.metrics import GatewayMetrics, UpstreamMetrics
from gateway.api.ops_calls import OpsCallLimit
from gateway.api.ops_http import OpsServer, start_ops_server
from gateway.api.ops_reads import OpsReads, read_places
from gateway.api.reflection import enable_reflection
from gateway.api.request_memory import RequestMemory
from gateway.api.resources_service import (
    MediaQueueService,
    MediaTemplateService,
    MediaWorkflowService,
)
from gateway.api.service import MediaJobService
from gateway.api.servicer import Admission
from gateway.config.settings import ServerLimits, Settings
from gateway.credentials import CredentialsProvider
from gateway.jobs.redis_store import RedisSubmitStore
from gateway.jobs.runtime import TrackingRuntime, start_tracking
from gateway.jobs.tracking import PollSchedule, Timer, WatchLimits
from gateway.logs import AttemptLog, event
from gateway.resources.calls import ResourceCalls
from gateway.resources.executions import EVENT_NAME as WORKFLOW_FINISH
from gateway.resources.executions import ExecutionFollower
from gateway.telemetry import Telemetry
from gateway.upstream.client import CiClient
from gateway.upstream.proxy import from_settings as proxy_from_settings
from gateway.upstream.transport import Transport

log = logging.getLogger(__name__)

HEALTH_SERVICE: str = health_pb2.DESCRIPTOR.services_by_name["Health"].full_name
# Queues, templates, workflows (issue 15), served beside MediaJobService.
RESOURCE_SERVICES = (
    queues_pb2.DESCRIPTOR.services_by_name["MediaQueueService"],
    templates_pb2.DESCRIPTOR.services_by_name["MediaTemplateService"],
    workflows_pb2.DESCRIPTOR.services_by_name["MediaWorkflowService"],
)
# Clients may ping an idle connection this often without being told "too many pings" (GOAWAY):
# gRPC clients commonly configure 10-30 s keepalives to survive idle-connection reaping.
CLIENT_PING_MIN_INTERVAL_MS = 10_000
# grpc's own stop waits this much longer than the drain's grace, so that the calls left when
# the grace ends are cut (counted, and answered with the gateway's own status) by the gateway
# rather than by grpc a moment earlier.
CUT_MARGIN_S = 1.0
# Of that margin, how long the calls the gateway cut have to send their status before grpc's
# stop ends what is left (a client that stopped reading may hold its status unsent): the rest
# is slack for the drain's own timers.
CUT_ANSWER_S = CUT_MARGIN_S / 2
# Once every call is ended, how long grpc may take to close its connections before the drain
# goes on without it. grpc's stop completes only when each connection's last write has: a client
# that stopped reading (its TCP window shut) holds one pending until the kernel gives up on it
# (TCP_USER_TIMEOUT, the keepalive time-out: 20 s), and one that reads a byte now and then, for
# ever. Such a connection is left to the process's exit instead of holding the drain past its
# grace (and the pod past terminationGracePeriodSeconds).
CLOSE_WAIT_S = 1.0


# How long the health port keeps a connection with no call in progress, and one that has not
# finished its HTTP/2 handshake: kubelet dials, sends its Check with its headers and closes the
# connection after each probe (within the probe's timeoutSeconds, 2 s in k8s/), so nothing that
# probes waits that long. Without them a stranger's connection that never makes a call was kept
# for ever, and a socket that never sent a byte for grpc's own 120 s handshake time-out.
HEALTH_IDLE_S = 10.0


# What a client may send on a call before the gateway reads it (HTTP/2's initial stream window):
# grpc opens a call's window to its whole request (at most `server.max_request_bytes`) once the
# request is being read, so this bounds only what a call not being read holds: one waiting in
# grpc's backlog, one refused before its request is read, one whose client sends on after its
# request. grpc's default follows its bandwidth-delay probe, which announced 4 MiB on loopback
# (measured), and with it 50 calls holding their request sent on after it took 131 MiB; with
# this, 1.3 MiB. Every real request is smaller (a submit is ~200 bytes); a larger one waits one
# round trip for the rest of its window. The probe only sizes what the gateway receives:
# answers follow the client's own window.
REQUEST_WINDOW_OPTIONS: list[tuple[str, Any]] = [
    ("grpc.http2.bdp_probe", 0),
    ("grpc.http2.lookahead_bytes", 8 * 1024),
]


# The health port's pings: see `health_server_options`.
HEALTH_KEEPALIVE_S = 30.0
HEALTH_KEEPALIVE_TIMEOUT_S = 10.0


def health_server_options(idle_s: float = HEALTH_IDLE_S) -> list[tuple[str, Any]]:
    """grpc core channel arguments for the health port: one tiny request per probe, so a small
    message limit (`OPS_MAX_REQUEST_BYTES`, below the window a call may fill unread: a read
    buffers no more than that, `gateway.api.ops_reads`); no SO_REUSEPORT, for the same reason
    as on the API port; idle connections, and handshakes that do not end, closed after
    `idle_s` (plaintext: grpc's idle timer runs from the accept, so a silent socket is closed
    by either; both measured).

    No `grpc.max_allowed_incoming_connections`, on purpose: kubelet opens a new connection for
    every probe, so whoever filled a cap on this port with connections of their own would lock
    kubelet out, and the pod would be restarted for it. What a connection may hold here is
    bounded instead: calls by `OpsCallLimit` (whose Checks strangers cannot crowd out), time by
    `idle_s`."""
    idle_ms = max(1, int(idle_s * 1000))
    return [
        ("grpc.max_receive_message_length", OPS_MAX_REQUEST_BYTES),
        *REQUEST_WINDOW_OPTIONS,
        ("grpc.so_reuseport", 0),
        ("grpc.max_connection_idle_ms", idle_ms),
        ("grpc.server_handshake_timeout_ms", idle_ms),
        # A connection with a Watch open is not idle: without pings, a peer that vanished
        # (its node gone, a partition) would hold that Watch's place for grpc's default two
        # hours. Answered pings or the connection is closed, and the place freed.
        ("grpc.keepalive_time_ms", int(HEALTH_KEEPALIVE_S * 1000)),
        ("grpc.keepalive_timeout_ms", int(HEALTH_KEEPALIVE_TIMEOUT_S * 1000)),
    ]


# grpc's own time-out on a connection's handshake (TLS, then the client's HTTP/2 settings);
# `max_connection_idle_s` shortens it, never lengthens it.
GRPC_HANDSHAKE_TIMEOUT_S = 120.0
# grpc core's backlog bound when none is set (`grpc.server.max_pending_requests_hard_limit`):
# the least the API server's backlog holds (see `server_options`).
GRPC_BACKLOG_HARD_LIMIT = 3000


def server_options(limits: ServerLimits) -> list[tuple[str, Any]]:
    """grpc core channel arguments for the configured limits.

    The bounds on connections, streams and idleness are grpc core's, each seen to work in
    tests/api/test_connection_bounds.py: `grpc.max_allowed_incoming_connections` counts a
    connection from its accept (one that has sent nothing too) until it closes, per listening
    address, and closes the one beyond at once; `grpc.max_concurrent_streams` is advertised in
    the server's SETTINGS and enforced with REFUSED_STREAM; `grpc.max_connection_idle_ms` sends
    GOAWAY and closes a connection without a call in progress (pings do not count) once its
    HTTP/2 transport is up: at once in plaintext, after the TLS handshake with TLS, so a TLS
    connection stuck in its handshake is left to `grpc.server_handshake_timeout_ms` (measured:
    120 s unless set).

    A burst of new calls waits in grpc core's backlog until grpc.aio picks each up (it asks for
    one call at a time, on the event loop) and the gateway answers it: served, or refused with
    its own OVERLOADED and RetryInfo. With grpc's defaults the backlog ended part of a burst
    bare, before any of the gateway's code ran (no access line, no metric): from 1,000 calls
    waiting (`grpc.server.max_pending_requests`) it ends a random share of each new one
    CANCELLED, and every one from 3,000 (`..._hard_limit`). Measured with calls started at once
    over 1 and 20 connections against the emulator (tests/api/test_call_burst.py): 8-11% of
    2,000 calls, 16-24% of 3,000, 58% of 10,000. CANCELLED tells a caller nothing, and no retry
    policy retries it. Both bounds are set to one value, so that none is shed at random below
    it: at least a connection's full window of calls (`max_streams_per_connection`, itself
    sized to at least what the gateway's own gates let in at once), and never below grpc's own
    3,000, which is what it is by default. So the backlog holds no more than it did (a waiting
    call costs grpc ~13.6 KiB, measured on a bare grpc.aio server with its loop held: ~40 MiB
    full, only while a burst is being picked up), and 3,000 calls at once are all answered by
    the gateway. grpc still ends CANCELLED the calls beyond it (20% of 4,000 at once over 20
    connections, 35% of 5,000), and any left waiting 30 s
    (`grpc.server_max_unrequested_time_in_server`: only a stalled event loop leaves one that
    long).
    """
    options: list[tuple[str, Any]] = [
        # grpc buffers a request whole before the gateway sees it: the smaller limit is the
        # requests' (`gateway.api.request_memory` bounds what they hold together).
        ("grpc.max_receive_message_length", limits.max_request_bytes),
        ("grpc.max_send_message_length", limits.max_message_bytes),
        *REQUEST_WINDOW_OPTIONS,
        ("grpc.keepalive_time_ms", int(limits.keepalive_time_s * 1000)),
        ("grpc.keepalive_timeout_ms", int(limits.keepalive_timeout_s * 1000)),
        # Pings keep a NAT's or a load balancer's entry alive; they are no call, so
        # `max_connection_idle_ms` still closes a connection that only pings.
        ("grpc.keepalive_permit_without_calls", 1),
        ("grpc.http2.min_ping_interval_without_data_ms", CLIENT_PING_MIN_INTERVAL_MS),
        # grpc sets SO_REUSEPORT by default, which lets a second gateway bind the same port and
        # silently split the traffic; a port clash must fail loudly instead.
        ("grpc.so_reuseport", 0),
    ]
    if limits.max_connection_age_s > 0:
        options += [
            ("grpc.max_connection_age_ms", int(limits.max_connection_age_s * 1000)),
            ("grpc.max_connection_age_grace_ms", int(limits.max_connection_age_grace_s * 1000)),
        ]
    if limits.max_connections > 0:
        options.append(("grpc.max_allowed_incoming_connections", limits.max_connections))
    if limits.max_streams_per_connection > 0:
        options.append(("grpc.max_concurrent_streams", limits.max_streams_per_connection))
    # One value for both: no call shed at random below it (see above).
    backlog = max(GRPC_BACKLOG_HARD_LIMIT, limits.max_streams_per_connection)
    options += [
        ("grpc.server.max_pending_requests", backlog),
        ("grpc.server.max_pending_requests_hard_limit", backlog),
    ]
    if limits.max_connection_idle_s > 0:
        idle_ms = max(1, int(limits.max_connection_idle_s * 1000))
        handshake_ms = int(GRPC_HANDSHAKE_TIMEOUT_S * 1000)
        options += [
            ("grpc.max_connection_idle_ms", idle_ms),
            ("grpc.server_handshake_timeout_ms", min(idle_ms, handshake_ms)),
        ]
    return options


def max_concurrent_rpcs(settings: Settings) -> int:
    """The API server's cap on API calls in progress (`InFlight`, which refuses the one beyond
    it at its arrival): `server.max_concurrent_rpcs`, or when 0 the sum of what the gateway's
    own gates admit at once (why: see the setting), so that those gates answer any legitimate
    load first. Health and reflection calls are not counted: `OpsGuards` bounds them apart, on
    each port."""
    limits = settings.server
    if limits.max_concurrent_rpcs:
        return limits.max_concurrent_rpcs
    # MediaJobService's admission and the resource services' one (`_add_resource_services`);
    # the job tracker's watchers and the workflow-run follower's, each `max_watchers`.
    return 2 * settings.retry.max_in_flight_rpcs + 2 * settings.tracking.max_watchers


def api_in_flight(settings: Settings) -> InFlight:
    """The count of API calls in progress, with the bounds it keeps from their arrival: the cap
    on them (`max_concurrent_rpcs`), the memory their requests hold and the time those may take
    to come. Also what `bench.inproc` counts its calls with."""
    limits = settings.server
    return InFlight(
        max_concurrent_rpcs(settings),
        RequestMemory.from_limits(limits),
        limits.request_receive_timeout_s,
    )


class _Fanout:
    """One `Telemetry` that reports to several."""

    def __init__(self, sinks: Sequence[Telemetry]) -> None:
        self._sinks = tuple(sinks)

    def attempt_started(self, operation: str) -> None:
        for sink in self._sinks:
            sink.attempt_started(operation)

    def attempt_finished(self, operation: str, outcome: str, seconds: float) -> None:
        for sink in self._sinks:
            sink.attempt_finished(operation, outcome, seconds)

    def retry_scheduled(self, operation: str, reason: str, delay_s: float) -> None:
        for sink in self._sinks:
            sink.retry_scheduled(operation, reason, delay_s)


def upstream_telemetry(metrics: GatewayMetrics, extra: Sequence[Telemetry] = ()) -> Telemetry:
    """What the CI client reports each attempt to: metrics, the attempt log, then `extra`."""
    return _Fanout([UpstreamMetrics(metrics), AttemptLog(), *extra])


@dataclass
class OpsGuards:
    """What guards health and reflection (open to anyone) on the two ports: for each port a
    bound on the calls in progress and the reads of their requests (each timed; on the API
    port, where grpc may buffer `max_request_bytes` for one, counted), and one malformed-request
    guard for both (its one warning line a minute holds for the process). Bounds of their own:
    strangers who fill the API port's must not refuse kubelet's probes on the health port.
    Neither lets streams take the Checks' places, and on the health port a Check beyond its
    places ends the oldest still waiting for its request instead of being refused
    (`OpsCallLimit`, `evicts`)."""

    api_calls: OpsCallLimit
    health_port_calls: OpsCallLimit
    malformed: MalformedRequestInterceptor
    api_reads: OpsReads
    health_port_reads: OpsReads

    @classmethod
    def from_settings(cls, limits: ServerLimits) -> OpsGuards:
        timeout_s = limits.request_receive_timeout_s
        return cls(
            OpsCallLimit(limits.max_ops_calls),
            OpsCallLimit(limits.max_ops_calls, evicts=True),
            MalformedRequestInterceptor(),
            OpsReads(timeout_s, read_places(limits.max_request_bytes)),
            OpsReads(timeout_s),  # a read holds no more than the window: timed, not counted
        )

    def close(self) -> None:
        """The servers have stopped: no read's timer left behind."""
        self.api_reads.close()
        self.health_port_reads.close()


def api_interceptors(
    settings: Settings,
    access: ClientAccess,
    metrics: GatewayMetrics,
    in_flight: InFlight,
    guards: OpsGuards | None = None,
) -> PerMethodChain:
    """The API server's interceptors, outermost first (the reads of health and reflection
    requests, observability, client access, the bound on health and reflection calls, malformed
    requests), applied once per method. Also what `bench.inproc` runs a call through, so the
    in-process figures are this server's."""
    guards = guards or OpsGuards.from_settings(settings.server)
    return PerMethodChain(
        [
            guards.api_reads,  # outermost: a Check read by it is still counted `unary` inside
            ObservabilityInterceptor(metrics, in_flight),
            access.interceptor(settings.default_bucket, settings.default_region),
            guards.api_calls,
            guards.malformed,
        ]
    )


def media_job_service(
    client: CiClient, settings: Settings, tracking: TrackingRuntime
) -> MediaJobService:
    return MediaJobService(
        client,
        settings,
        submit_store=tracking.submit_store,
        tracker=tracking.tracker,
        callback_url=tracking.callback_url,
    )


@dataclass
class HealthPort:
    """The plaintext grpc.health.v1-only server (`health_listen`)."""

    server: grpc.aio.Server
    address: str
    port: int


def _health_server(
    readiness: Readiness, address: str, guards: OpsGuards, *, idle_s: float = HEALTH_IDLE_S
) -> HealthPort:
    """Bind (not start) a server offering only `readiness.servicer`, behind the same guards as
    health on the API port (its own bounds on calls, whose Checks strangers cannot crowd out,
    and on the time their requests may take); OSError if it cannot bind. `idle_s`: see
    `health_server_options` (shorter in tests)."""
    chain = [guards.health_port_reads, guards.health_port_calls, guards.malformed]
    server = grpc.aio.server(
        interceptors=[PerMethodChain(chain)],
        options=health_server_options(idle_s),
    )
    health_pb2_grpc.add_HealthServicer_to_server(readiness.servicer, server)
    try:
        port = server.add_insecure_port(address)
    except RuntimeError:  # grpc's way of saying the port is taken or the address unusable
        port = 0
    if port == 0:
        raise OSError(f"cannot listen on {address} (health_listen)")
    return HealthPort(server, f"{address.rsplit(':', 1)[0]}:{port}", port)


class ServerStop:
    """Ends every call of the API server at once (`stop(None)`) and waits at most
    `CLOSE_WAIT_S` for grpc to close its connections. One per server, shared by the drain and the
    start's exit stack, so a stop left waiting is started once and reported once.

    A stop still waiting is left running, never cancelled: it awaits grpc's own shutdown future,
    which the drain's first `stop(grace)` awaits too."""

    def __init__(self, server: grpc.aio.Server, bound_s: float = CLOSE_WAIT_S) -> None:
        self._server = server
        self._bound_s = bound_s
        self._stop: asyncio.Future[None] | None = None
        self.left_open = False

    async def __call__(self) -> None:
        if self._stop is None:
            self._stop = asyncio.ensure_future(self._server.stop(None))
        elif self.left_open:
            return  # waited for once already; the process exit closes what is left
        done, _ = await asyncio.wait({self._stop}, timeout=self._bound_s)
        if done:
            self._stop.result()
            return
        self.left_open = True
        event(
            log,
            logging.WARNING,
            "connections left open: a client stopped reading, and its connection's last "
            "write is still pending; the process exit closes it",
            waited_s=self._bound_s,
        )


@dataclass
class RunningGateway:
    server: grpc.aio.Server
    port: int
    address: str
    client: CiClient
    settings: Settings
    readiness: Readiness
    metrics: GatewayMetrics
    in_flight: InFlight
    credentials: CredentialsProvider
    tracking: TrackingRuntime
    stop_server: ServerStop
    # Everything `start_gateway` built, each closed in reverse order of building by `stop`.
    resources: contextlib.AsyncExitStack
    ops: OpsServer | None = None
    health: HealthPort | None = None
    access: ClientAccess | None = None
    # The bounds on health and reflection calls and their reads, on both ports.
    guards: OpsGuards | None = None
    _stopped: asyncio.Event = field(default_factory=asyncio.Event)
    _force: asyncio.Event = field(default_factory=asyncio.Event)

    @property
    def ops_address(self) -> str | None:
        return self.ops.address if self.ops else None

    @property
    def health_address(self) -> str | None:
        return self.health.address if self.health else None

    def force_stop(self) -> None:
        """Cut a drain short (a second Ctrl-C): end the calls still running now."""
        self._force.set()

    async def stop(self, grace_s: float | None = None) -> None:
        """Drain, then close everything; `grace_s` defaults to `settings.shutdown_grace_s`.

        The drain's three steps are in the order that loses no call: readiness NOT_SERVING
        (load balancers stop sending), job tracking (watches end at once with UNAVAILABLE, so
        their clients re-watch elsewhere instead of holding the drain), then the API server's
        grace. Only then does `resources` close the rest, the probe ports last.
        """
        if self._stopped.is_set():
            return
        self._stopped.set()
        grace = self.settings.shutdown_grace_s if grace_s is None else grace_s
        event(log, logging.INFO, "draining", in_flight=self.in_flight.count, grace_s=grace)
        try:
            await self.readiness.enter_graceful_shutdown()
            await self.tracking.drain()
            left = await self._drain_server(grace)
        finally:
            await self.resources.aclose()
        event(log, logging.INFO, "stopped", cut_off=left)

    async def _drain_server(self, grace: float) -> int:
        """Refuse new RPCs, let API calls in flight finish for up to `grace` (or until
        `force_stop`), then end whatever still runs; returns how many API calls were cut off.

        In flight counts a call from its arrival (`InFlight`): a unary call whose request is
        still arriving is waited for, served if the rest comes within the grace, ended
        DEADLINE_EXCEEDED if its request's own time runs out first
        (`server.request_receive_timeout_s`), and otherwise ended by the cut with UNAVAILABLE
        (grpc's "Cancelling all calls": its request never reached a handler, so it is safe to
        send again) and counted as cut off.

        The cut is ours, not grpc's: grpc's own stop gets `CUT_MARGIN_S` more grace, so the
        calls still running when our grace ends are counted *before* they are ended (counted
        after grpc ended them, they would already have left `in_flight`, and every drain would
        report none cut off), and ended by the gateway (`InFlight.cut`), each with a status
        that says what its caller may do: grpc's bare UNAVAILABLE invites a retry, which for a
        submit CI may already be acting on, sent again without the request_id the gateway made
        for it, could make a second job. They get `CUT_ANSWER_S` to send it; grpc's stop then
        ends whatever is left.
        """
        stopping = asyncio.ensure_future(self.server.stop(grace + CUT_MARGIN_S))
        # grpc stops accepting in stop()'s first step, before its first real wait; this yield
        # lets that step run, so the line below is true when logged.
        await asyncio.sleep(0)
        event(log, logging.INFO, "refusing new RPCs")
        idle = asyncio.ensure_future(self.in_flight.wait_idle(grace))
        forced = asyncio.ensure_future(self._force.wait())
        try:
            await asyncio.wait({stopping, idle, forced}, return_when=asyncio.FIRST_COMPLETED)
            finished = idle.done() and idle.result()
            cut_off = 0 if finished else self.in_flight.count
            if not stopping.done():
                # The grace ran out or was forced short (cut what is left), or the API calls
                # are done and only long-lived streams (health watches, reflection) remain,
                # which need not hold the exit. The API calls first, by the gateway itself;
                # then grpc's `None` ends the rest at once (a second `stop(0)` would race the
                # first stop's teardown inside grpc: it may cancel calls on a destroyed
                # server). Bounded: `CUT_ANSWER_S`, then `CLOSE_WAIT_S`.
                cut = self.in_flight.cut()
                if cut:
                    await asyncio.wait(cut, timeout=CUT_ANSWER_S)
                await self.stop_server()
            if not self.stop_server.left_open:
                await stopping  # grpc's stop has completed: this one ends at once
        finally:
            for task in (idle, forced):
                task.cancel()
        return cut_off


async def _close_client(client: CiClient) -> None:
    await client.close()
    event(log, logging.INFO, "closed the HTTP session towards CI")


async def start_gateway(
    settings: Settings,
    credentials: CredentialsProvider,
    *,
    listen: str | None = None,
    telemetry: Telemetry | None = None,
    metrics_listen: str | None = None,
    health_listen: str | None = None,
    readiness_checks: Sequence[ReadinessCheck] = (),
    readiness_interval_s: float | None = None,
    access: ClientAccess | None = None,
    insecure: bool = False,
    timer: Timer | None = None,
) -> RunningGateway:
    """Start serving on `listen` (default `settings.listen`); the ops port (metrics, HTTP
    probes) on `metrics_listen` (default `settings.metrics_listen`; empty = none); the
    plaintext health port on `health_listen` (default `settings.health_listen`; empty = none).
    `timer`: the clock of job tracking and of workflow-run following (the event loop's by
    default; tests pass a manual one to decide when polls happen).

    Each resource is pushed on one `AsyncExitStack` as soon as it exists: should a later step
    fail (a port taken), the stack closes what was built, in reverse order, and otherwise it
    becomes the `RunningGateway`'s to close on `stop`. The probe ports come first, so that they
    close last and answer (NOT_SERVING) throughout a drain.
    """
    # Client access (gateway.access): refuse an unauthenticated non-loopback listen up front.
    access = access or ClientAccess.sidecar()
    address = listen or settings.listen
    access.check_listen(address, insecure=insecure)
    metrics = GatewayMetrics()
    checks = [credentials_check(credentials), *readiness_checks]
    readiness = (
        Readiness(checks)
        if readiness_interval_s is None
        else Readiness(checks, interval_s=readiness_interval_s)
    )
    # Everything NOT_SERVING before any port is bound (HealthServicer starts with "" SERVING).
    await readiness.prepare()
    ops_listen = settings.metrics_listen if metrics_listen is None else metrics_listen
    guards = OpsGuards.from_settings(settings.server)
    health_address = settings.health_listen if health_listen is None else health_listen
    async with contextlib.AsyncExitStack() as stack:
        stack.callback(guards.close)  # after both servers' stop: no call reads any more
        ops: OpsServer | None = None
        if ops_listen:
            ops = await start_ops_server(ops_listen, metrics.registry, readiness)
            stack.push_async_callback(ops.close)
        health: HealthPort | None = None
        if health_address:
            health = _health_server(readiness, health_address, guards)
            # Started at once: a grpc server bound but never started keeps its port until the
            # process exits.
            await health.server.start()
            stack.push_async_callback(health.server.stop, None)
        # Providers that watch files or refresh tokens start (and stop) with the gateway.
        await credentials.start()
        stack.push_async_callback(credentials.close)
        sinks: list[Telemetry] = [] if telemetry is None else [telemetry]
        # Closed after the API server, tracking and the CI client: their last spans are flushed.
        traces = tracing.install(enabled=settings.tracing.enabled)
        if traces is not None:
            stack.push_async_callback(traces.shutdown)
            sinks.append(traces.telemetry)
        proxy = proxy_from_settings(settings.upstream)
        client = CiClient(
            settings=settings,
            credentials=credentials,
            transport=Transport(max_body_bytes=settings.max_response_bytes, proxy=proxy),
            telemetry=upstream_telemetry(metrics, sinks),
        )
        stack.push_async_callback(_close_client, client)
        calls = ResourceCalls(client)
        follower = ExecutionFollower(
            calls,
            schedule=PollSchedule(
                initial_s=settings.tracking.poll_initial_s, max_s=settings.tracking.poll_max_s
            ),
            limits=WatchLimits(
                settings.tracking.max_watchers, settings.tracking.max_watchers_per_client
            ),
            timer=timer,
            describe_timeout_s=settings.timeouts.rpc_deadline_s,
            unreachable_s=settings.tracking.unreachable_s,
        )
        stack.push_async_callback(follower.close)
        # tracker, callbacks (a workflow run's WorkflowFinish goes to the follower, which
        # publishes what it verified through the fan-out, as jobs' are), shared state
        tracking = await start_tracking(
            settings,
            client,
            timer=timer,
            other_events={WORKFLOW_FINISH: follower.on_callback},
            runs=follower,
        )
        stack.push_async_callback(tracking.close)
        tracking.also_drain.append(follower.close)  # run watches end at drain, as job watches do
        if isinstance(tracking.submit_store, RedisSubmitStore):
            # Without its shared store a replica serves no submit: readiness must say so.
            readiness.add_check(submit_store_check(tracking.submit_store.ping, "redis"))
        metrics.watch_retry_budget(client.budgets.tokens)
        metrics.watch_credentials_expiry(credentials.expires_at)
        in_flight = api_in_flight(settings)
        stack.callback(in_flight.close)  # after the server's stop: no call arrives any more
        server = _api_server(
            settings, access, metrics, in_flight, readiness, client, tracking, guards
        )
        _add_resource_services(server, settings, metrics, calls, follower, tracking)
        try:
            port = access.bind(server, address)
        except RuntimeError:  # grpc's way of saying the port is taken or the address unusable
            port = 0
        if port == 0:
            raise OSError(f"cannot listen on {address}")
        await server.start()
        # After a drain this finds the server stopped; it matters when starting fails below.
        stop_server = ServerStop(server)
        stack.push_async_callback(stop_server)
        await readiness.start()
        await access.start()  # watch the access file for client changes
        stack.push_async_callback(access.close)
        resources = stack.pop_all()
    bound = f"{address.rsplit(':', 1)[0]}:{port}"
    event(
        log,
        logging.INFO,
        "gateway listening",
        address=bound,
        ops_address=ops.address if ops else None,
        health_address=health.address if health else None,
        credentials=credentials.name,
        upstream_proxy=proxy.address if proxy else None,  # never its credentials
        pid=os.getpid(),
        event_loop=type(asyncio.get_running_loop()).__module__.split(".")[0],
    )
    return RunningGateway(
        server=server,
        port=port,
        address=bound,
        client=client,
        settings=settings,
        readiness=readiness,
        metrics=metrics,
        in_flight=in_flight,
        credentials=credentials,
        tracking=tracking,
        stop_server=stop_server,
        resources=resources,
        ops=ops,
        health=health,
        access=access,
        guards=guards,
    )


def _add_resource_services(
    server: grpc.aio.Server,
    settings: Settings,
    metrics: GatewayMetrics,
    calls: ResourceCalls,
    follower: ExecutionFollower,
    tracking: TrackingRuntime,
) -> None:
    """Queues, templates and workflows, sharing one admission bound."""
    admission = Admission(settings.retry.max_in_flight_rpcs, "resource RPCs in flight")
    queues_pb2_grpc.add_MediaQueueServiceServicer_to_server(
        MediaQueueService(calls, settings, admission), server
    )
    templates_pb2_grpc.add_MediaTemplateServiceServicer_to_server(
        MediaTemplateService(calls, settings, admission), server
    )
    workflows_pb2_grpc.add_MediaWorkflowServiceServicer_to_server(
        MediaWorkflowService(
            calls, settings, admission, follower=follower, callback_url=tracking.callback_url
        ),
        server,
    )
    for service in RESOURCE_SERVICES:
        initialize_metrics(metrics, service)


def _api_server(
    settings: Settings,
    access: ClientAccess,
    metrics: GatewayMetrics,
    in_flight: InFlight,
    readiness: Readiness,
    client: CiClient,
    tracking: TrackingRuntime,
    guards: OpsGuards,
) -> grpc.aio.Server:
    """The API server, not yet bound: MediaJobService, health and reflection behind the
    observability, client-access, health-and-reflection-call and malformed-request
    interceptors (outermost first), applied once per method (`PerMethodChain`)."""
    limits = settings.server
    server = grpc.aio.server(
        interceptors=[api_interceptors(settings, access, metrics, in_flight, guards)],
        options=server_options(limits),
        # No `maximum_concurrent_rpcs`: `in_flight` enforces the cap on API calls, with the
        # gateway's own OVERLOADED and RetryInfo, where grpc's limiter refused bare.
    )
    service_pb2_grpc.add_MediaJobServiceServicer_to_server(
        media_job_service(client, settings, tracking), server
    )
    health_pb2_grpc.add_HealthServicer_to_server(readiness.servicer, server)
    resources = tuple(service.full_name for service in RESOURCE_SERVICES)
    enable_reflection(server, (API_SERVICE, *resources, HEALTH_SERVICE))  # v1 and v1alpha
    initialize_metrics(metrics, service_pb2.DESCRIPTOR.services_by_name["MediaJobService"])
    return server


def initialize_metrics(metrics: GatewayMetrics, service: ServiceDescriptor) -> None:
    """Zeros for each of `service`'s methods, under the `grpc_type` its calls will be counted
    as (`interceptors.grpc_type`): a watch's zero labelled `unary` would be a series no call
    ever moves, beside the `server_stream` one its first call creates."""
    for method in service.methods:
        kind = STREAM_TYPES[method.client_streaming, method.server_streaming]
        metrics.initialize(kind, service.full_name, (method.name,))
