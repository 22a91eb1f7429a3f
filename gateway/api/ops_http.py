"""The ops port: Prometheus `/metrics` plus `/livez` and `/readyz` for HTTP probes.

It is an aiohttp server in the gateway's own event loop rather than prometheus-client's
`start_http_server` thread: aiohttp is already a dependency, the server starts and stops with
the rest of the gateway (no daemon thread left serving during or after a drain), port 0 reports
the port it bound, and a stalled event loop shows up as a stalled scrape, which is the truth.

`/livez` and `/readyz` read the same `Readiness` as the gRPC health service, for load balancers
and tools that cannot speak gRPC health (the kubelet probes the plaintext health port,
`health_listen`, with gRPC). The port serves nothing else: no API, no configuration, no secret.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from aiohttp import web
from prometheus_client import CollectorRegistry
from prometheus_client.aiohttp import make_aiohttp_handler

from gateway._aiohttp_log import server_logger
from gateway._aiohttp_stop import start_site, stop_runner
from gateway.api.health import Readiness

log = logging.getLogger(__name__)

SHUTDOWN_TIMEOUT_S = 1.0
# A connection that never completes a request would otherwise stay open for aiohttp's default
# keep-alive of an hour: probes and scrapers send a request at once, so 15 s is plenty, and an
# unfinished request is dropped after it (the same bounds as the callback port).
IDLE_TIMEOUT_S = 15.0
LINGER_S = 2.0


@dataclass
class OpsServer:
    address: str
    port: int
    _runner: web.AppRunner

    async def close(self) -> None:
        await stop_runner(self._runner)


def _app(registry: CollectorRegistry, readiness: Readiness) -> web.Application:
    async def livez(request: web.Request) -> web.Response:
        if readiness.alive:
            return web.Response(text="ok\n")
        return web.Response(status=503, text="not alive: draining\n")

    async def readyz(request: web.Request) -> web.Response:
        if readiness.ready:
            return web.Response(text="ok\n")
        return web.Response(status=503, text="not ready: " + ", ".join(readiness.failing) + "\n")

    app = web.Application()
    app.router.add_get("/metrics", make_aiohttp_handler(registry))
    app.router.add_get("/livez", livez)
    app.router.add_get("/readyz", readyz)
    return app


async def start_ops_server(
    listen: str, registry: CollectorRegistry, readiness: Readiness
) -> OpsServer:
    runner = web.AppRunner(
        _app(registry, readiness),
        access_log=None,
        logger=server_logger(f"{__name__}.http", "ops"),
        shutdown_timeout=SHUTDOWN_TIMEOUT_S,
        keepalive_timeout=IDLE_TIMEOUT_S,
        lingering_time=LINGER_S,
    )
    # An empty host means every interface.
    host, port = await start_site(runner, listen, "metrics_listen", default_host="0.0.0.0")  # noqa: S104
    shown = f"[{host}]" if ":" in host else host
    return OpsServer(f"{shown}:{port}", port, runner)
