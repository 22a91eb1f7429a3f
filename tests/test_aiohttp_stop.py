"""`gateway._aiohttp_stop.stop_runner`, the stop of the ops port, the callback receiver, the
emulator and the tests' aiohttp apps: a connection accepted in the loop turns just before it is
closed, not leaked, and an idle connection does not hold the stop for the grace period.

`AppRunner.cleanup()` alone, on Python 3.11's own loop, leaves a connection accepted two turns
before it open for ever (asyncio's task making its transport fails on the closed server and
drops the socket: the client never hears back, the garbage collector later warns of the unclosed
socket, in whichever test runs then), and waits out `shutdown_timeout` for one accepted a turn
or two later whose handler had not started when aiohttp closed the idle connections.

Each case runs in a loop of its own, as the gateway does (`asyncio.Runner`), on asyncio's loop
and on uvloop, so that the garbage collected after the loop closes is the case's own.
"""

from __future__ import annotations

import asyncio
import gc
import socket
import time
import warnings
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any, cast

import pytest
from aiohttp import web
from prometheus_client import CollectorRegistry

from ci_emulator.config import EmulatorConfig
from ci_emulator.server import start_emulator
from gateway._aiohttp_stop import stop_runner
from gateway.api.health import Readiness
from gateway.api.ops_http import start_ops_server
from gateway.jobs.callbacks import CallbackReceiver
from gateway.jobs.fanout import LocalFanOut
from gateway.jobs.tracking import JobDescriber

try:
    import uvloop
except ImportError:  # Windows: the gateway runs on asyncio's loop there
    uvloop = None  # type: ignore[assignment]

LoopFactory = Callable[[], asyncio.AbstractEventLoop]
LOOPS = [pytest.param(asyncio.new_event_loop, id="asyncio")]
if uvloop is not None:
    LOOPS.append(pytest.param(uvloop.new_event_loop, id="uvloop"))

WAIT_S = 2.0
"""How long a client waits to hear from the server; a leaked connection never answers."""
STOP_S = 0.5
"""Well under every grace period here (1 s for the ops port, 2 s for the emulator, aiohttp's
60 s elsewhere): a stop that waits one out for an idle connection fails."""

# Each starts a server on loopback and returns its port and what stops it.
Started = tuple[int, Callable[[], Awaitable[None]]]


async def bare_runner() -> Started:
    """aiohttp's defaults: a 60 s `shutdown_timeout`."""
    runner = web.AppRunner(web.Application(), access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    return runner.addresses[0][1], lambda: stop_runner(runner)


async def ops_port() -> Started:
    ops = await start_ops_server("127.0.0.1:0", CollectorRegistry(), Readiness())
    return ops.port, ops.close


async def callback_receiver() -> Started:
    receiver = CallbackReceiver(token="t", client=cast(JobDescriber, None), fanout=LocalFanOut())
    base = await receiver.start("127.0.0.1:0")
    return int(base.rpartition(":")[2]), receiver.close


async def emulator() -> Started:
    running = await start_emulator(EmulatorConfig(buckets=(), credentials={}))
    return running.port, running.close


def run_alone(loop_factory: LoopFactory, main: Coroutine[Any, Any, str]) -> tuple[str, list[str]]:
    """`main`'s result in a loop of its own, and the ResourceWarnings (unclosed sockets and
    transports) the garbage collector finds once that loop is closed."""
    gc.collect()  # what earlier tests left is theirs: reported now, outside the record below
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with asyncio.Runner(loop_factory=loop_factory) as runner:
            result = runner.run(main)
        gc.collect()
    return result, [str(w.message) for w in caught if issubclass(w.category, ResourceWarning)]


async def heard(client: socket.socket) -> str:
    """What the server side of `client` did: closed it ("EOF"), reset it (never accepted), or
    nothing in `WAIT_S` ("open": leaked)."""
    loop = asyncio.get_running_loop()
    try:
        data = await asyncio.wait_for(loop.sock_recv(client, 1024), WAIT_S)
    except ConnectionResetError:
        return "reset"
    except TimeoutError:
        return "open"
    return "EOF" if data == b"" else f"data {data!r}"


async def stopped_in(stop: Callable[[], Awaitable[None]]) -> float:
    started = time.monotonic()
    async with asyncio.timeout(WAIT_S):  # a stop waiting out a 60 s grace fails here, at once
        await stop()
    return time.monotonic() - started


# asyncio accepts a connection in one loop turn, makes its transport in the next (from a task),
# calls aiohttp's `connection_made` in the one after, and aiohttp's handler task starts in the
# next: stopping after 0 to 5 turns meets every step of that. (uvloop accepts and makes the
# transport in one turn.)
@pytest.mark.parametrize("turns", range(6))
@pytest.mark.parametrize("start", [bare_runner, ops_port, callback_receiver, emulator])
@pytest.mark.parametrize("loop_factory", LOOPS)
def test_a_connection_made_just_before_the_stop_is_closed_at_once(
    loop_factory: LoopFactory, start: Callable[[], Awaitable[Started]], turns: int
) -> None:
    async def main() -> str:
        port, stop = await start()
        with socket.create_connection(("127.0.0.1", port)) as client:  # the kernel's, at once
            client.setblocking(False)
            for _ in range(turns):
                await asyncio.sleep(0)  # one loop turn each: see above
            took = await stopped_in(stop)
            assert took < STOP_S
            return await heard(client)

    result, leaked = run_alone(loop_factory, main())
    assert result in ("EOF", "reset")
    assert leaked == []


async def exchange(client: socket.socket, path: str) -> bytes:
    """Send a keep-alive GET for `path`; return the response once its body (`done`) is in."""
    loop = asyncio.get_running_loop()
    await loop.sock_sendall(client, f"GET {path} HTTP/1.1\r\nHost: test\r\n\r\n".encode())
    response = b""
    for _ in range(100):  # a response this small comes in one or two reads
        chunk = await asyncio.wait_for(loop.sock_recv(client, 4096), WAIT_S)
        response += chunk
        if not chunk or response.endswith(b"done"):
            break
    return response


async def serve(app: web.Application, *, shutdown_timeout: float = 60.0) -> Started:
    runner = web.AppRunner(app, access_log=None, shutdown_timeout=shutdown_timeout)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    return runner.addresses[0][1], lambda: stop_runner(runner)


async def done(request: web.Request) -> web.Response:
    return web.Response(text="done")


@pytest.mark.parametrize("loop_factory", LOOPS)
def test_a_kept_alive_connection_between_requests_is_closed_at_once(
    loop_factory: LoopFactory,
) -> None:
    async def main() -> str:
        app = web.Application()
        app.router.add_get("/", done)
        port, stop = await serve(app)
        with socket.create_connection(("127.0.0.1", port)) as client:
            client.setblocking(False)
            assert (await exchange(client, "/")).startswith(b"HTTP/1.1 200 OK")
            assert await stopped_in(stop) < STOP_S
            return await heard(client)

    assert run_alone(loop_factory, main()) == ("EOF", [])


@pytest.mark.parametrize("loop_factory", LOOPS)
def test_a_request_in_progress_is_answered_before_its_connection_closes(
    loop_factory: LoopFactory,
) -> None:
    """The grace is kept for what it is for: a request being handled when the stop begins is
    answered (here it is released by the app's `on_shutdown`, which the stop runs first)."""

    async def main() -> str:
        handling = asyncio.Event()
        release = asyncio.Event()

        async def slow(request: web.Request) -> web.Response:
            handling.set()
            await release.wait()
            return web.Response(text="done")

        async def on_shutdown(app: web.Application) -> None:
            release.set()

        app = web.Application()
        app.router.add_get("/slow", slow)
        app.on_shutdown.append(on_shutdown)
        port, stop = await serve(app)
        with socket.create_connection(("127.0.0.1", port)) as client:
            client.setblocking(False)
            answer = asyncio.ensure_future(exchange(client, "/slow"))
            await asyncio.wait_for(handling.wait(), WAIT_S)
            await stopped_in(stop)
            response = await answer
            assert response.startswith(b"HTTP/1.1 200 OK") and response.endswith(b"done")
            return await heard(client)

    assert run_alone(loop_factory, main()) == ("EOF", [])
