"""The tracing seam: what the gateway's modules call, each hook a no-op until `install` runs.

Call sites (each a line or two, so the modules that own them stay about their own concern):

    gateway.api.interceptors   start_rpc / end_rpc       the server span of every API call
    gateway.upstream.client    inject, attempt_answered  traceparent towards CI; CI's RequestId
    gateway.jobs.submit        span(RECONCILE_SPAN)      the exactly-once reconcile
    gateway.jobs.callbacks     traced_http_handler       a span per callback received
    gateway.api.server         install / Installed       set up at start, flushed at stop

The client span of each CI attempt hangs off `gateway.telemetry`, the seam through which the CI
client already reports every attempt: `Installed.telemetry` is one more sink there.

Why a module-level switch and not a tracer handed down: the hooks sit deep in code (a submit's
reconcile, a header dict) that no gateway object reaches without new parameters everywhere, and
OpenTelemetry keeps its own current span in a context variable for the same reason. One process
serves one gateway (`ci-gateway serve`); tests that start several trace at most one at a time,
and `install` refuses a second. When off, a hook costs one global read and a compare.

The OpenTelemetry packages are imported only by `install` and `check` (`gateway.tracing.spans`
and `export`), so a gateway installed without the `tracing` extra runs as before, and one that
enables tracing without the packages fails at start with what to install.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import logging
import os
import threading
from collections.abc import Awaitable, Callable, Iterable, MutableMapping
from contextlib import AbstractContextManager
from dataclasses import dataclass
from types import ModuleType
from typing import Any, Protocol, TypeVar

from gateway import scrub
from gateway.rpc_context import RpcScope
from gateway.telemetry import Telemetry

log = logging.getLogger(__name__)

RECONCILE_SPAN = "reconcile submit"
CALLBACK_SPAN = "CI job callback"
EXTRA_HINT = "pip install 'ci-gateway[tracing]'"
# A collector that is down must not hold a drain (or the process's exit) for the exporter's
# own 10 s timeout and retries: spans not sent by then are dropped.
SHUTDOWN_TIMEOUT_S = 5.0

AttributeValue = str | bool | int | float


class TracingUnavailable(ValueError):
    """Tracing is enabled but cannot run: the OpenTelemetry packages are not installed."""


class SpanHandle(Protocol):
    """What code inside a span may do with it (nothing, when tracing is off)."""

    def set_attribute(self, key: str, value: AttributeValue) -> None: ...


class RpcTrace(Protocol):
    """An RPC's open server span; `end` closes it with what the call's scope recorded."""

    def end(self, status_code: int, status_name: str, scope: RpcScope) -> None: ...

    def log_ids(self) -> dict[str, str]:
        """`trace_id` and `span_id` (W3C hex) for the call's access line, so a log line leads
        to its trace; empty when the span has no valid context."""
        ...


class _Backend(Protocol):
    """`gateway.tracing.spans.Spans`, as the hooks see it."""

    def start_rpc(
        self, method: str, metadata: Iterable[Any] | None, request_id: str
    ) -> RpcTrace: ...

    def internal(self, name: str) -> AbstractContextManager[SpanHandle]: ...

    def http_server(
        self, name: str, method: str, route: str
    ) -> AbstractContextManager[Callable[[int], None]]: ...

    def inject(self, headers: MutableMapping[str, str]) -> None: ...

    def attempt_answered(self, ci_request_id: str) -> None: ...


class _NoSpan:
    def set_attribute(self, key: str, value: AttributeValue) -> None:
        pass


_NO_SPAN: AbstractContextManager[SpanHandle] = contextlib.nullcontext(_NoSpan())
_active: _Backend | None = None


@dataclass(frozen=True)
class Installed:
    """Tracing as installed by `install`: the attempt-span sink for the CI client's telemetry,
    and `shutdown`, which the gateway runs last-but-one at stop (spans flushed, hooks off)."""

    telemetry: Telemetry
    backend: _Backend
    stop_sdk: Callable[[], None]  # blocking: flush the queued spans, stop the exporters

    async def shutdown(self, timeout_s: float = SHUTDOWN_TIMEOUT_S) -> None:
        global _active
        if _active is self.backend:
            _active = None
        if not await _run_in_daemon_thread(self.stop_sdk, timeout_s):
            log.warning("tracing: spans not exported within %.0f s of stopping, dropped", timeout_s)


def _sdk_disabled() -> bool:
    """OpenTelemetry's own kill switch, honoured over `[tracing] enabled`."""
    return os.environ.get("OTEL_SDK_DISABLED", "").strip().lower() == "true"


def _import(module: str) -> ModuleType:
    try:
        return importlib.import_module(module)
    except ModuleNotFoundError as exc:
        if exc.name is None or not exc.name.startswith("opentelemetry"):
            raise
        raise TracingUnavailable(
            "tracing is enabled ([tracing] enabled / CI_GATEWAY_TRACING_ENABLED) but the "
            f"OpenTelemetry packages are not installed (missing module {exc.name!r}); "
            f"install them with: {EXTRA_HINT}"
        ) from exc


def check(*, enabled: bool) -> None:
    """Raise what `install` would raise (missing packages, an `OTEL_*` value the gateway cannot
    honour), without starting anything: the CLI calls it before serving, to fail with a message
    instead of a traceback."""
    if not enabled or _sdk_disabled():
        return
    _import("gateway.tracing.spans")
    _import("gateway.tracing.export").check_environment()


def install(*, enabled: bool) -> Installed | None:
    """Start tracing for this process if `enabled` (and `OTEL_SDK_DISABLED` is not `true`):
    build the SDK from the `OTEL_*` variables and turn the hooks on. None when off.

    The variables are read from the process environment, as the SDK itself reads them."""
    global _active
    if not enabled:
        return None
    if _sdk_disabled():
        log.info("tracing: enabled, but OTEL_SDK_DISABLED=true turns it off")
        return None
    if _active is not None:
        raise RuntimeError("tracing is already installed in this process")
    spans = _import("gateway.tracing.spans")
    export = _import("gateway.tracing.export")
    provider, description = export.build_provider()
    backend = spans.Spans(provider.get_tracer("ci-gateway", export.gateway_version()))
    _active = backend
    log.info("tracing: on, %s", description)
    return Installed(spans.AttemptSpans(backend), backend, provider.shutdown)


async def _run_in_daemon_thread(work: Callable[[], None], timeout_s: float) -> bool:
    """Run blocking `work` off the loop; True if it ended within `timeout_s`. A daemon thread,
    not the loop's executor: `asyncio.run` joins that executor at exit, and an exporter stuck
    on an unreachable collector would then hold the process."""
    loop = asyncio.get_running_loop()
    done: asyncio.Future[None] = loop.create_future()

    def finished() -> None:
        if not done.done():
            done.set_result(None)

    def run() -> None:
        try:
            work()
        except Exception:  # the SDK's own failure to stop must not end the drain
            log.exception("tracing: stopping the SDK failed")
        finally:
            with contextlib.suppress(RuntimeError):  # the loop closed meanwhile
                loop.call_soon_threadsafe(finished)

    threading.Thread(target=run, name="ci-gateway-tracing-stop", daemon=True).start()
    try:
        await asyncio.wait_for(asyncio.shield(done), timeout_s)
    except TimeoutError:
        return False
    return True


# ---- the hooks -------------------------------------------------------------------------------


def start_rpc(method: str, metadata: Iterable[Any] | None, request_id: str) -> RpcTrace | None:
    """Open the server span of an API call, a child of the caller's `traceparent` (W3C, from
    the gRPC metadata; `baggage` is read into the call's context too). None when off."""
    backend = _active
    return None if backend is None else backend.start_rpc(method, metadata, request_id)


def end_rpc(trace: RpcTrace | None, status_code: int, status_name: str, scope: RpcScope) -> None:
    if trace is not None:
        trace.end(status_code, status_name, scope)


def span(name: str) -> AbstractContextManager[SpanHandle]:
    """An internal span around a step worth seeing in a trace (a reconcile), a child of the
    current span; a shared do-nothing context when off."""
    backend = _active
    return _NO_SPAN if backend is None else backend.internal(name)


def inject(headers: MutableMapping[str, str]) -> None:
    """Put the current CI attempt's `traceparent` into the request headed for CI."""
    backend = _active
    if backend is not None:
        backend.inject(headers)


def attempt_answered(ci_request_id: str, known: Iterable[str] = ()) -> None:
    """CI answered the current attempt with this RequestId (recorded on its span), redacted as
    the caller and the access log get it (`known`: the secrets the request was signed with): a
    peer echoing the request may put its Authorization there."""
    backend = _active
    if backend is not None and ci_request_id:
        backend.attempt_answered(scrub.redact(ci_request_id, known))


class _HasStatus(Protocol):
    @property
    def status(self) -> int: ...


Request = TypeVar("Request")
Response = TypeVar("Response", bound=_HasStatus)


def traced_http_handler(
    name: str, method: str, route: str, handler: Callable[[Request], Awaitable[Response]]
) -> Callable[[Request], Awaitable[Response]]:
    """`handler` (an aiohttp one, say) with a server span per request, named `name`, recording
    `method`, `route` (the template: never the path itself, which may hold a secret) and the
    answer's status."""

    async def traced(request: Request) -> Response:
        backend = _active
        if backend is None:
            return await handler(request)
        with backend.http_server(name, method, route) as answered:
            response = await handler(request)
            answered(response.status)
            return response

    return traced
