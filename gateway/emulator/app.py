"""Assemble the aiohttp application: admin routes, the CI front end, and the job scheduler.

The scheduler lives in the app's `cleanup_ctx`, so it starts with the server and is cancelled
(with every job task) when the server shuts down; nothing outlives `RunningEmulator.close()`.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

from aiohttp import web

from gateway.emulator.admin import STATE_KEY, add_admin_routes
from gateway.emulator.config import EmulatorConfig
from gateway.emulator.frontend import CiFrontend
from gateway.emulator.scheduler import Scheduler
from gateway.emulator.state import EmulatorState


def create_app(config: EmulatorConfig) -> web.Application:
    state = EmulatorState(config)
    app = web.Application()
    app[STATE_KEY] = state
    add_admin_routes(app)
    # Registered last: aiohttp resolves routes in order, so /_emulator/* wins over the catch-all.
    app.router.add_route("*", "/{tail:.*}", CiFrontend(state).handle)
    app.cleanup_ctx.append(_run_scheduler)
    return app


async def _run_scheduler(app: web.Application) -> AsyncIterator[None]:
    scheduler = Scheduler(app[STATE_KEY])
    scheduler.start()
    yield
    await scheduler.close()
