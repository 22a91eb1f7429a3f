"""`tests.fixtures.tcp.StreamServer`, the scripted TCP peer of the Redis, relay and HTTP tests:
when it closes, no connection it accepted is left open, whatever point of asyncio's accepting
it had reached. One that is (`asyncio.start_server` leaves them) is found by the garbage
collector later, in another test, as a ResourceWarning the suite turns into that test's error.
"""

from __future__ import annotations

import asyncio
import socket
import ssl

import pytest
import trustme

from tests.fixtures.tcp import CLOSE_TIMEOUT_S, Handler, StreamServer, server_context

WAIT_S = 5.0


async def hold(_: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    pass  # a peer that says nothing and leaves the connection open


async def wait_for_ever(_: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    await asyncio.Event().wait()


async def over(client: socket.socket) -> bool:
    """Whether the server side of `client` is gone (EOF, or reset: never accepted)."""
    loop = asyncio.get_running_loop()
    try:
        return await asyncio.wait_for(loop.sock_recv(client, 1), WAIT_S) == b""
    except ConnectionResetError:
        return True


# asyncio accepts a connection in one loop turn, makes its transport in the next (from a task),
# calls the protocol's `connection_made` in the one after, and the handler starts in the next:
# closing after 0 to 5 turns meets every step of that.
@pytest.mark.parametrize("turns", range(6))
@pytest.mark.parametrize("handler", [hold, wait_for_ever])
async def test_close_ends_a_connection_made_at_any_point_before_it(
    handler: Handler, turns: int
) -> None:
    server = StreamServer(handler)
    port = await server.start()
    with socket.create_connection(("127.0.0.1", port)) as client:  # done by the kernel at once
        client.setblocking(False)
        for _ in range(turns):
            await asyncio.sleep(0)
        await asyncio.wait_for(server.close(), WAIT_S)
        assert await over(client)
        assert asyncio.all_tasks() == {asyncio.current_task()}  # no handler left running
        await server.close()  # a second close: nothing to do


async def test_close_does_not_wait_for_a_tls_connection_whose_handshake_failed() -> None:
    """asyncio tells the app's protocol nothing of a TLS connection whose handshake failed, so
    no handler or `connection_made` of the server's ever sees it; its close still knows when it
    is gone (the server's own count of transports) instead of waiting out its bound."""
    server = StreamServer(hold)
    port = await server.start(tls=server_context(trustme.CA()))
    untrusting = ssl.create_default_context()  # the system's CAs: not this test's
    with pytest.raises(ssl.SSLCertVerificationError):
        await asyncio.open_connection(
            "127.0.0.1", port, ssl=untrusting, server_hostname="localhost"
        )
    assert server.accepted == 0  # no handler ran
    await asyncio.wait_for(server.close(), CLOSE_TIMEOUT_S / 2)
