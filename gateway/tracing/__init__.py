"""Tracing with OpenTelemetry: a server span per RPC, a client span per CI attempt, a span per
exactly-once reconcile and per CI callback, exported over OTLP. Off unless `[tracing] enabled`.

The rest of the gateway calls the hooks re-exported here (`gateway.tracing.hooks`), never
OpenTelemetry itself. Until `install` runs, every hook returns after one global read, and no
OpenTelemetry module is even imported, so the packages are an optional extra
(`ci-gateway[tracing]`) and a gateway without tracing pays nothing for it.

    hooks   the seam: install / shutdown, and the no-op-when-off hooks other modules call
    spans   the span tree, on OpenTelemetry's API (imported only once tracing is installed)
    export  the SDK's provider, sampler and exporters from the standard `OTEL_*` variables
"""

from gateway.tracing.hooks import (
    CALLBACK_SPAN,
    RECONCILE_SPAN,
    Installed,
    RpcTrace,
    SpanHandle,
    TracingUnavailable,
    attempt_answered,
    check,
    end_rpc,
    inject,
    install,
    span,
    start_rpc,
    traced_http_handler,
)

__all__ = [
    "CALLBACK_SPAN",
    "RECONCILE_SPAN",
    "Installed",
    "RpcTrace",
    "SpanHandle",
    "TracingUnavailable",
    "attempt_answered",
    "check",
    "end_rpc",
    "inject",
    "install",
    "span",
    "start_rpc",
    "traced_http_handler",
]
