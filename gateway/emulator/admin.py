"""The out-of-process control surface, under `/_emulator/` (a prefix CI never uses).

Tests in the emulator's own loop call `EmulatorState` directly; a gateway or demo running against
an emulator in another process uses these instead. JSON, unauthenticated (the emulator listens on
loopback), and answered whatever the Host header says:

    GET  /_emulator/health              {"status": "ok"}
    GET  /_emulator/counters            requests, jobs, per-operation and per-error counts
    POST /_emulator/scheduling/pause    keep new jobs in Submitted
    POST /_emulator/scheduling/resume
    POST /_emulator/running/hold        keep started jobs in Running
    POST /_emulator/running/release
"""

from __future__ import annotations

from aiohttp import web

from gateway.emulator.state import EmulatorState

ADMIN_PREFIX = "/_emulator"

STATE_KEY = web.AppKey("ci_emulator_state", EmulatorState)


def add_admin_routes(app: web.Application) -> None:
    app.router.add_get(f"{ADMIN_PREFIX}/health", _health)
    app.router.add_get(f"{ADMIN_PREFIX}/counters", _counters)
    app.router.add_post(f"{ADMIN_PREFIX}/scheduling/{{action:pause|resume}}", _scheduling)
    app.router.add_post(f"{ADMIN_PREFIX}/running/{{action:hold|release}}", _running)


async def _health(request: web.Request) -> web.Response:
    return web.json_response({"status": "ok"})


async def _counters(request: web.Request) -> web.Response:
    return web.json_response(request.app[STATE_KEY].counters())


async def _scheduling(request: web.Request) -> web.Response:
    state = request.app[STATE_KEY]
    if request.match_info["action"] == "pause":
        state.pause_scheduling()
    else:
        state.resume_scheduling()
    return web.json_response({"scheduler_paused": state.scheduler_paused})


async def _running(request: web.Request) -> web.Response:
    state = request.app[STATE_KEY]
    if request.match_info["action"] == "hold":
        state.hold_running()
    else:
        state.release_running()
    return web.json_response({"running_held": state.running_held})
