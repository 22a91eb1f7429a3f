"""Run the emulator on a loopback port: in a test's event loop, or until cancelled.

`start_emulator` binds (port 0 picks a free one), waits until the socket listens, and returns a
`RunningEmulator` whose `url` is ready to use: readiness is awaited, never polled with sleeps.

One answer is not CI's XML: bytes that do not parse as HTTP at all (a bad request line, raw
non-ASCII in the target, an over-long header line) get aiohttp's own plain-text `400 Bad
Request` and a closed connection. Such a request never becomes a request object, so no handler
or middleware sees it, and aiohttp offers no public seam for that answer: `handler_args` and
the runner's keyword arguments only tune the protocol's limits and logging, and replacing
`RequestHandler.handle_error` would mean subclassing aiohttp internals that change between
releases. It is also the faithful answer: in front of CI, the HTTP layer (not CI's service)
refuses what is not HTTP, with its own page. Everything that parses as HTTP, however wrong,
reaches `frontend` and gets CI's error XML.
"""

from __future__ import annotations

import asyncio
import logging
import os
from dataclasses import dataclass, field

from aiohttp import web

from ci_emulator.admin import STATE_KEY
from ci_emulator.app import create_app
from ci_emulator.config import EmulatorConfig
from ci_emulator.state import EmulatorState
from gateway._aiohttp_stop import stop_runner

logger = logging.getLogger(__name__)

SHUTDOWN_TIMEOUT_S = 2.0
"""How long close() lets in-flight requests finish; the emulator's requests take milliseconds,
and requests sleeping out an injected latency are released at once (`FaultPlan.shut_down`)."""


class CannotListen(Exception):
    """`serve` could not bind its address (the port taken, the host not this machine's): the
    CLI prints it as one line, where the bare OSError came with a traceback."""


@dataclass
class RunningEmulator:
    url: str
    """`http://127.0.0.1:<port>`: connect here, send the real CI/COS Host header."""
    port: int
    state: EmulatorState
    _runner: web.AppRunner
    _closed: bool = field(default=False, init=False)

    async def close(self) -> None:
        """Stop listening, end held fault latencies, and wait for the rest to finish. A second
        call returns at once, so a test may close an emulator early and still leave the
        fixture's cleanup in place."""
        if self._closed:
            return
        self._closed = True
        await stop_runner(self._runner)

    async def __aenter__(self) -> RunningEmulator:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()


async def start_emulator(
    config: EmulatorConfig, *, host: str = "127.0.0.1", port: int = 0
) -> RunningEmulator:
    app = create_app(config)
    runner = web.AppRunner(app, access_log=None, shutdown_timeout=SHUTDOWN_TIMEOUT_S)
    await runner.setup()
    try:
        site = web.TCPSite(runner, host, port)
        await site.start()
        bound = runner.addresses[0][1]
    except BaseException:
        await runner.cleanup()
        raise
    url_host = f"[{host}]" if ":" in host else host
    return RunningEmulator(
        url=f"http://{url_host}:{bound}", port=bound, state=app[STATE_KEY], _runner=runner
    )


async def serve(config: EmulatorConfig, host: str = "127.0.0.1", port: int = 0) -> None:
    """Run until cancelled (Ctrl-C under `asyncio.run`, or the caller cancelling the task);
    `CannotListen` when the address cannot be bound."""
    try:
        emulator = await start_emulator(config, host=host, port=port)
    except OSError as exc:  # asyncio's text repeats the address; errno's is the reason alone
        reason = os.strerror(exc.errno) if exc.errno else str(exc)
        raise CannotListen(f"cannot listen on {host}:{port}: {reason}") from exc
    try:
        logger.info("CI emulator listening on %s", emulator.url)
        for bucket in config.buckets:
            logger.info(
                "bucket %s (%s) serves %s: Host %s.ci.%s.myqcloud.com, or %s/_path/%s/%s/ci/",
                bucket.name,
                bucket.region,
                bucket.root,
                bucket.name,
                bucket.region,
                emulator.url,
                bucket.name,
                bucket.region,
            )
            for queue in emulator.state.queues_of(bucket.name):
                logger.info("  queue %s (%s) %s", queue.queue_id, queue.category, queue.name)
        await asyncio.Event().wait()
    finally:
        await emulator.close()
