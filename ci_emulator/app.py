"""Assemble the aiohttp application: admin routes, the CI front end, and the job scheduler.

The scheduler and the callback dispatcher live in the app's `cleanup_ctx`, so they start with the
server and are cancelled (with every job and delivery task, and the callback client session) when
the server shuts down; nothing outlives `RunningEmulator.close()`. Requests sleeping out an
injected latency are released by `on_shutdown`, so they do not hold the close either.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

from aiohttp import web

from ci_emulator.admin import STATE_KEY, add_admin_routes
from ci_emulator.callbacks import CallbackDispatcher
from ci_emulator.config import EmulatorConfig
from ci_emulator.frontend import CiFrontend
from ci_emulator.scheduler import Scheduler
from ci_emulator.state import EmulatorState


def create_app(config: EmulatorConfig) -> web.Application:
    state = EmulatorState(config)
    app = web.Application()
    app[STATE_KEY] = state
    add_admin_routes(app)
    # Registered last: aiohttp resolves routes in order, so /_emulator/* wins over the catch-all.
    app.router.add_route("*", "/{tail:.*}", CiFrontend(state).handle)
    app.cleanup_ctx.append(_run_callbacks)
    app.cleanup_ctx.append(_run_scheduler)
    app.on_shutdown.append(_release_held_requests)
    return app


async def _release_held_requests(app: web.Application) -> None:
    # aiohttp runs `on_shutdown` before it waits (up to its shutdown timeout) for in-flight
    # handlers: a request sleeping out an injected latency must not hold the close that long.
    app[STATE_KEY].faults.shut_down()


async def _run_callbacks(app: web.Application) -> AsyncIterator[None]:
    state = app[STATE_KEY]
    dispatcher = CallbackDispatcher(state, state.config.callbacks)
    state.job_end_listeners.append(dispatcher.job_ended)
    yield
    # Runs after the scheduler's cleanup (cleanup_ctx unwinds in reverse): no job ends later.
    state.job_end_listeners.remove(dispatcher.job_ended)
    await dispatcher.close()


async def _run_scheduler(app: web.Application) -> AsyncIterator[None]:
    scheduler = Scheduler(app[STATE_KEY])
    scheduler.start()
    yield
    await scheduler.close()
