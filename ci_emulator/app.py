"""Assemble the aiohttp application: admin routes, the CI front end, and the job scheduler.

The scheduler and the callback dispatcher live in the app's `cleanup_ctx`, so they start with the
server and are cancelled (with every job and delivery task, and the callback client session) when
the server shuts down; nothing outlives `RunningEmulator.close()`. Requests sleeping out an
injected latency are released by `on_shutdown`, so they do not hold the close either.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

from aiohttp import web
from lxml import etree

from ci_emulator.admin import STATE_KEY, add_admin_routes
from ci_emulator.callbacks import CallbackDispatcher
from ci_emulator.config import BucketConfig, EmulatorConfig
from ci_emulator.errors import CiError
from ci_emulator.frontend import CiFrontend
from ci_emulator.handlers import submit_jobs
from ci_emulator.jobs import Job, WorkflowOrigin
from ci_emulator.resource_api import add_admin_routes as add_resource_admin_routes
from ci_emulator.scheduler import Scheduler
from ci_emulator.state import EmulatorState
from ci_emulator.workflows import FINAL_JOB_STATES, RUN_JOB_TIMEOUT_S, WorkflowRunner


def create_app(config: EmulatorConfig) -> web.Application:
    state = EmulatorState(config)
    app = web.Application()
    app[STATE_KEY] = state
    add_admin_routes(app)
    add_resource_admin_routes(app)
    # Registered last: aiohttp resolves routes in order, so /_emulator/* wins over the catch-all.
    app.router.add_route("*", "/{tail:.*}", CiFrontend(state).handle)
    app.cleanup_ctx.append(_run_callbacks)
    app.cleanup_ctx.append(_run_scheduler)
    app.cleanup_ctx.append(_run_workflows)
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


async def _run_workflows(app: web.Application) -> AsyncIterator[None]:
    """Workflow runs: their node jobs go through the submit path, their WorkflowFinish through a
    callback dispatcher of their own. Unwound first, so no run submits to a closed scheduler."""
    state = app[STATE_KEY]
    dispatcher = CallbackDispatcher(state, state.config.callbacks)

    async def wait_for_job(job_id: str) -> Job:
        return await state.wait_for_job_state(job_id, FINAL_JOB_STATES, timeout=RUN_JOB_TIMEOUT_S)

    def bucket(name: str) -> BucketConfig:
        config = state.config.bucket(name)
        if config is None:  # a run's bucket is one the emulator serves: never in practice
            raise CiError("NoSuchBucket", "The specified bucket does not exist.")
        return config

    def submit(config: BucketConfig, request: etree._Element, origin: WorkflowOrigin) -> Job:
        # A node's request is in the single form: one job.
        return submit_jobs(state, config, request, workflow=origin)[0]

    runner = WorkflowRunner(
        submit=submit,
        wait_for_job=wait_for_job,
        bucket=bucket,
        queue=state.queues.get,
        notify=dispatcher.send,
        clock=state.config.clock,
        on_change=state.resources.changed,
    )
    state.resources.runner = runner
    yield
    state.resources.runner = None
    await runner.close()
    await dispatcher.close()
