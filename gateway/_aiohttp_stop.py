"""Starting an aiohttp server of the gateway's (`start_site`), and stopping it without leaking
a connection it had just accepted, and without waiting out the grace period for a connection
that has no request in it.

`AppRunner.cleanup()` alone gets two moments wrong (read against aiohttp 3.14, Python 3.11):

* It closes the listening sockets at once. On asyncio's own loop a socket is accepted in one
  loop turn and its transport made in the next, by a task; once the server is closed that task
  fails (the assertion in `asyncio.base_events.Server._attach`, silent unless the loop is in
  debug mode) and drops the socket. The client is left on a connection nobody serves or closes,
  the process holds its descriptor until the garbage collector finds it (`ResourceWarning:
  unclosed <socket.socket ...>`, an error in whichever test runs then).
* It closes idle connections with `RequestHandler.close()`, which only cancels the handler's
  wait for the next request if that wait has begun. A connection whose handler task has not
  run its first step yet (made in the last turn or two before the stop) starts waiting after
  the close, and `Server.shutdown(timeout)` then waits the whole `shutdown_timeout` (60 s by
  default) for a request that will never come, before it cancels the handler.

`stop_runner` stops accepting first, closes the listening sockets only once the sockets already
accepted have their transports, and lets each of those connections reach the point where its
handler waits for a request; only then does it run `runner.cleanup()`, which closes every idle
connection at once and leaves its `shutdown_timeout` to the requests actually being handled.
That takes three loop turns, each explained where it is yielded: asyncio's loop and uvloop both
schedule these steps with `call_soon`, so each is done by the time the turn after it comes.
Its first step, `stop_accepting`, is the whole fix for a bare asyncio server too (the tests'
stream servers use it).
(None of these servers speaks TLS: a TLS connection reaches aiohttp only after its handshake,
which takes round trips, not turns.)
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable

from aiohttp import web


async def start_site(
    runner: web.AppRunner, listen: str, setting: str, *, default_host: str = ""
) -> tuple[str, int]:
    """Set `runner` up and listen on `listen` (`host:port`, `[v6]:port`, `:port` for
    `default_host`; port 0 = any free one); returns the host and the port bound. A port that
    cannot be had is an `OSError` naming `setting`, like the API and health ports' refusals;
    the runner is cleaned up then. The start that `stop_runner` undoes, for the ops port and
    the callback receiver alike."""
    host, _, port = listen.rpartition(":")
    host = host.strip("[]") or default_host
    await runner.setup()
    try:
        try:
            await web.TCPSite(runner, host, int(port)).start()
        except OSError as exc:
            raise OSError(f"cannot listen on {listen} ({setting}): {exc.strerror}") from exc
        return host, int(runner.addresses[0][1])
    except BaseException:
        await runner.cleanup()
        raise


async def stop_accepting(servers: Iterable[object]) -> None:
    """Stop `servers` accepting, but keep them open until the sockets they have just accepted
    have their transports (closing a server now is what drops those): the first step of
    stopping any asyncio server without a leak, aiohttp's (`stop_runner`) or a bare one."""
    loop = asyncio.get_running_loop()
    for server in servers:
        if isinstance(server, asyncio.Server):
            # uvloop accepts and makes the transport in one step, and has no reader to remove.
            for listening in server.sockets:
                loop.remove_reader(listening.fileno())
    # One turn: asyncio's tasks making the transports of the sockets accepted before this run
    # (each was scheduled when its socket was accepted, so ahead of this task's wake-up).
    await asyncio.sleep(0)


async def stop_runner(runner: web.BaseRunner) -> None:
    """Stop `runner`'s sites and close its connections: idle ones at once, ones with a request
    in progress after that request ends or the runner's `shutdown_timeout` passes (aiohttp's
    own grace, and the app's `on_shutdown` hooks, run as in `runner.cleanup()`)."""
    # `site._server`: the listening server; aiohttp's own `runner.addresses` reads it.
    await stop_accepting(site._server for site in runner.sites)
    for site in list(runner.sites):
        await site.stop()  # closes the listening socket; from here nothing new is accepted
    # One turn: a transport made in the turn above, on either loop, has its protocol's
    # `connection_made` scheduled (`call_soon`) ahead of this wake-up; that is where aiohttp
    # registers the connection and creates the task that handles it.
    await asyncio.sleep(0)
    # One turn: that task's first step (it starts waiting for a request, or takes the one that
    # has arrived). On Python 3.12+ aiohttp starts it eagerly and this turn has nothing to do.
    await asyncio.sleep(0)
    await runner.cleanup()
