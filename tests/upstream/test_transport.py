"""The HTTP/1.1 client towards CI (`gateway.upstream.transport` + `http1`) against scripted raw
peers on 127.0.0.1: each test's server is a few lines of asyncio streams writing exactly the
bytes under test, and counting the connections it was given, so keep-alive, the pool bound and
every hostile answer are proven on the wire rather than by looking inside the client.

What each refusal must say matters as much as that it happens: `sent` decides whether a job
submit may be replayed (tests/integration/test_resilience.py runs the exactly-once side).

Every test runs twice, on asyncio's own loop and on uvloop (the gateway's default): see
`pytest_asyncio_loop_factories` in conftest.py.
"""

from __future__ import annotations

import asyncio
import contextlib
import gzip
import socket
import ssl
import struct
import zlib
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import pytest
import trustme

from gateway.errors import TransportError, UpstreamProtocolError, UpstreamTimeout
from gateway.status import to_status
from gateway.upstream.client import parse_error
from gateway.upstream.http1 import (
    MAX_FRAMING_BYTES,
    MAX_HEAD_BYTES,
    MAX_HEADERS,
    Http1Connection,
)
from gateway.upstream.transport import HttpRequest, HttpResponse, Transport
from tests.fixtures.tcp import server_context, stream_server

LIMIT = 64 * 1024  # max_body_bytes of these tests
OK = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nX-CI-Request-Id: r1\r\n\r\nok"

Handler = Callable[["Peer", asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


@dataclass
class Peer:
    """What the scripted server saw."""

    url: str = ""
    connections: int = 0
    open_now: int = 0
    most_open: int = 0
    requests: list[bytes] = field(default_factory=list)
    closed_by_client: int = 0
    closed: asyncio.Event = field(default_factory=asyncio.Event)  # a client closed a connection
    arrived: asyncio.Event = field(default_factory=asyncio.Event)  # `wanted` requests came in
    wanted: int = 0
    release: asyncio.Event = field(default_factory=asyncio.Event)


async def read_request(peer: Peer, reader: asyncio.StreamReader) -> bytes | None:
    """One request (head and Content-Length body), or None at EOF."""
    try:
        head = await reader.readuntil(b"\r\n\r\n")
    except (asyncio.IncompleteReadError, ConnectionError):
        return None
    length = 0
    for line in head.split(b"\r\n"):
        name, _, value = line.partition(b":")
        if name.lower() == b"content-length":
            length = int(value)
    request = head + await reader.readexactly(length)
    peer.requests.append(request)
    if peer.wanted and len(peer.requests) >= peer.wanted:
        peer.arrived.set()
    return request


async def until_eof(peer: Peer, reader: asyncio.StreamReader) -> None:
    """Wait for the client to close its side (bounded by each test's own time-out)."""
    with contextlib.suppress(ConnectionError):
        for _ in range(10_000):  # far more than any test sends
            if not await reader.read(65536):
                break
    peer.closed_by_client += 1
    peer.closed.set()


@contextlib.asynccontextmanager
async def opened(**options: Any) -> AsyncIterator[Transport]:
    """A `Transport` closed after the test, whatever it raised."""
    transport = Transport(**options)
    try:
        yield transport
    finally:
        await transport.close()


@contextlib.asynccontextmanager
async def serve(handler: Handler, *, tls: ssl.SSLContext | None = None) -> AsyncIterator[Peer]:
    """`handler` for each connection, which is closed when it returns; when the block ends,
    handlers still blocked (on a client that never closes) are cancelled and every connection
    is closed (`stream_server`)."""
    peer = Peer()

    async def on_connection(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        peer.connections += 1
        peer.open_now += 1
        peer.most_open = max(peer.most_open, peer.open_now)
        try:
            await handler(peer, reader, writer)
        finally:
            peer.open_now -= 1
            writer.transport.abort()

    async with stream_server(on_connection, tls=tls) as server:
        host = "localhost" if tls else "127.0.0.1"
        peer.url = f"{'https' if tls else 'http'}://{host}:{server.port}"
        yield peer


def first_connection_unread(first: Handler) -> Handler:
    """`first` serves the first connection, with a small receive buffer (no autotuning), so a
    large request it leaves unread stays in the client's buffers; later connections are
    answered `OK`, to show the client carries on."""

    async def handler(
        peer: Peer, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        if peer.connections > 1:
            await answering(OK)(peer, reader, writer)
            return
        sock = writer.get_extra_info("socket")
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 65536)
        await first(peer, reader, writer)

    return handler


def answering(*answers: bytes, then_close: bool = False) -> Handler:
    """Answer each request on a connection with the next of `answers` (the last repeats)."""

    async def handler(
        peer: Peer, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        for index in range(1000):
            if await read_request(peer, reader) is None:
                return
            writer.write(answers[min(index, len(answers) - 1)])
            await writer.drain()
            if then_close:
                return

    return handler


def request(
    url: str, method: str = "GET", body: bytes | None = None, **headers: str
) -> HttpRequest:
    return HttpRequest(method, url + "/jobs/j1?x=1", {"Host": "ci.example", **headers}, body)


async def send(
    transport: Transport, peer: Peer, method: str = "GET", *, timeout: float = 5.0
) -> HttpResponse:
    return await transport.send(
        request(peer.url, method), connect_timeout=timeout, total_timeout=timeout
    )


@pytest.fixture
async def transport() -> AsyncIterator[Transport]:
    async with opened(max_body_bytes=LIMIT) as transport:
        yield transport


# ---- what goes on the wire, and a plain answer ----------------------------------------------


async def test_the_request_is_the_callers_head_and_body_and_nothing_else(
    transport: Transport,
) -> None:
    async with serve(answering(OK)) as peer:
        sent = HttpRequest(
            "POST",
            peer.url + "/jobs?a=%2F",
            {"Host": "b.ci.example", "Content-Type": "application/xml", "Authorization": "q"},
            b"<Request/>",
        )
        response = await transport.send(sent, connect_timeout=5, total_timeout=5)
        cancel = HttpRequest("PUT", peer.url + "/jobs/j1?cancel", {"Host": "b.ci.example"})
        await transport.send(cancel, connect_timeout=5, total_timeout=5)
    assert peer.requests == [
        b"POST /jobs?a=%2F HTTP/1.1\r\nHost: b.ci.example\r\nContent-Type: application/xml\r\n"
        b"Authorization: q\r\nContent-Length: 10\r\n\r\n<Request/>",
        # No body, no Content-Type (CI's cancel); its length said, so no server waits for one.
        b"PUT /jobs/j1?cancel HTTP/1.1\r\nHost: b.ci.example\r\nContent-Length: 0\r\n\r\n",
    ]
    assert (response.status, response.reason, response.body) == (200, "OK", b"ok")
    assert response.headers.get("x-ci-request-id") == "r1"
    assert response.headers.get("X-CI-REQUEST-ID") == "r1"
    assert response.headers.get("Retry-After", "") == ""


async def test_a_host_header_is_added_only_when_the_caller_sets_none(transport: Transport) -> None:
    async with serve(answering(OK)) as peer:
        bare = HttpRequest("GET", peer.url, {"host": "given"})
        await transport.send(bare, connect_timeout=5, total_timeout=5)
        await transport.send(HttpRequest("GET", peer.url, {}), connect_timeout=5, total_timeout=5)
        with_user = peer.url.replace("//", "//user:secret@")
        await transport.send(HttpRequest("GET", with_user, {}), connect_timeout=5, total_timeout=5)
    assert peer.requests[0] == b"GET / HTTP/1.1\r\nhost: given\r\n\r\n"
    assert peer.requests[1] == f"GET / HTTP/1.1\r\nHost: {peer.url[7:]}\r\n\r\n".encode()
    assert peer.requests[2] == peer.requests[1]  # never the URL's user:password


@pytest.mark.parametrize(
    "headers",
    [{"X-Evil": "a\r\nX-Injected: 1"}, {"X-Evil": "a\nb"}, {"X-Evil": "a\rb"}, {"X\r\nY": "1"}],
)
async def test_a_line_break_in_a_header_is_refused_before_anything_is_sent(
    transport: Transport, headers: dict[str, str]
) -> None:
    async with serve(answering(OK)) as peer:
        with pytest.raises(TransportError) as caught:
            await transport.send(
                HttpRequest("GET", peer.url + "/", headers), connect_timeout=5, total_timeout=5
            )
    assert caught.value.sent is False
    assert "X-Injected" not in str(caught.value) and peer.connections == 0


@pytest.mark.parametrize(
    "headers",
    [{"Content-Length": 10}, {"X-Token": b"secret-token"}, {7: "seven"}, {"X-None": None}],
    ids=["int", "bytes", "int-name", "none"],
)
async def test_a_header_that_is_not_text_is_refused_before_anything_is_sent(
    transport: Transport, headers: dict[Any, Any]
) -> None:
    """`client` builds every header as str (it signs them as such): anything else is a bug,
    refused before connecting with a fixed message (never the value: it may be a secret),
    rather than converted into something other than what was signed."""
    async with serve(answering(OK)) as peer:
        with pytest.raises(TransportError) as caught:
            await transport.send(
                HttpRequest("POST", peer.url + "/", headers, b"0123456789"),
                connect_timeout=5,
                total_timeout=5,
            )
    assert caught.value.sent is False
    assert str(caught.value) == "request to CI refused: a header name or value that is not text"
    assert peer.connections == 0 and transport.open_connections == 0


async def test_a_bad_url_is_refused_before_anything_is_sent(transport: Transport) -> None:
    for url in ("ftp://h/x", "http://h:notaport/x", "http:///x", "http://h?x=1"):
        with pytest.raises(TransportError) as caught:
            await transport.send(HttpRequest("GET", url, {}), connect_timeout=1, total_timeout=1)
        assert caught.value.sent is False


# ---- body framing ---------------------------------------------------------------------------


async def test_a_chunked_answer_is_joined(transport: Transport) -> None:
    chunked = (
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
        b"5;ext=1\r\nhello\r\n1\r\n \r\n5\r\nworld\r\n0\r\nTrailer: x\r\n\r\n"
    )
    async with serve(answering(chunked)) as peer:
        first = await send(transport, peer)
        second = await send(transport, peer)
    assert first.body == second.body == b"hello world"
    assert peer.connections == 1  # chunked answers end the exchange, the connection stays


async def test_a_body_read_to_the_close(transport: Transport) -> None:
    async with serve(answering(b"HTTP/1.0 200 OK\r\n\r\nuntil the end", then_close=True)) as peer:
        first = await send(transport, peer)
        second = await send(transport, peer)
    assert first.body == second.body == b"until the end"
    assert peer.connections == 2


@pytest.mark.parametrize("status", [204, 304])
async def test_no_body_is_read_for_204_and_304(transport: Transport, status: int) -> None:
    answer = f"HTTP/1.1 {status} X\r\nETag: e\r\n\r\n".encode()
    async with serve(answering(answer, OK)) as peer:
        first = await send(transport, peer)
        second = await send(transport, peer)
    assert (first.status, first.body, second.body) == (status, b"", b"ok")
    assert peer.connections == 1


async def test_a_head_answer_has_no_body_whatever_its_length_says(transport: Transport) -> None:
    async with serve(answering(b"HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n")) as peer:
        response = await send(transport, peer, "HEAD")
    assert (response.status, response.body) == (200, b"")
    assert response.headers.get("Content-Length") == "1000"


async def test_interim_1xx_answers_are_skipped(transport: Transport) -> None:
    answer = (
        b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\n"
        b"HTTP/1.1 201 Created\r\nContent-Length: 4\r\n\r\ndone"
    )
    async with serve(answering(answer, OK)) as peer:
        response = await send(transport, peer)
        again = await send(transport, peer)
    assert (response.status, response.reason, response.body) == (201, "Created", b"done")
    assert response.headers.get("Link") is None  # the interim answer's headers are not its
    assert again.body == b"ok" and peer.connections == 1


async def test_a_gzip_answer_nobody_asked_for_is_still_read(transport: Transport) -> None:
    body = b"<Response>" + b"x" * 5000 + b"</Response>"
    for encoding, packed in [
        ("gzip", gzip.compress(body)),
        ("deflate", zlib.compress(body)),
        ("identity", body),
    ]:
        answer = (
            f"HTTP/1.1 200 OK\r\nContent-Encoding: {encoding}\r\n"
            f"Content-Length: {len(packed)}\r\n\r\n"
        ).encode() + packed
        async with serve(answering(answer)) as peer:
            response = await send(transport, peer)
        assert response.body == body, encoding
        assert b"accept-encoding" not in peer.requests[0].lower()


# ---- keep-alive and the pool ----------------------------------------------------------------


async def test_keep_alive_reuses_one_connection(transport: Transport) -> None:
    async with serve(answering(OK)) as peer:
        for _ in range(5):
            assert (await send(transport, peer)).body == b"ok"
    assert peer.connections == 1
    assert len(peer.requests) == 5


async def test_connections_send_without_delay(transport: Transport) -> None:
    """TCP_NODELAY: a request is one write, and Nagle would hold a second segment back."""
    async with serve(answering(OK)) as peer:
        await send(transport, peer)
        (idle,) = [c for stack in transport._idle.values() for c in stack]  # the pooled one
        assert idle.transport is not None
        sock = idle.transport.get_extra_info("socket")
        assert sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY) != 0


@pytest.mark.parametrize(
    "answer",
    [
        b"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 2\r\n\r\nok",
        b"HTTP/1.0 200 OK\r\nContent-Length: 2\r\n\r\nok",
    ],
    ids=["connection-close", "http-1.0"],
)
async def test_an_answer_that_does_not_keep_alive_is_not_reused(
    transport: Transport, answer: bytes
) -> None:
    # The peer keeps its side open: only the client's reading of the answer closes it.
    async with serve(answering(answer)) as peer:
        await send(transport, peer)
        await send(transport, peer)
    assert peer.connections == 2
    assert transport.open_connections == 0


async def test_bytes_after_the_answer_stop_its_connection_being_reused(
    transport: Transport,
) -> None:
    async with serve(answering(OK + b"HTTP/1.1 200 OK\r\n", OK)) as peer:
        assert (await send(transport, peer)).body == b"ok"
        assert (await send(transport, peer)).body == b"ok"
    assert peer.connections == 2


async def test_data_on_an_idle_connection_discards_it(transport: Transport) -> None:
    async def handler(
        peer: Peer, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        await read_request(peer, reader)
        writer.write(OK)
        if peer.connections == 1:
            writer.write(b"surprise")  # later, on the idle connection
            await until_eof(peer, reader)  # the client closes it
        else:
            await answering(OK)(peer, reader, writer)

    async with serve(handler) as peer:
        await send(transport, peer)
        await asyncio.wait_for(peer.closed.wait(), 5)
        assert (await send(transport, peer)).body == b"ok"
    assert peer.connections == 2


async def test_a_connection_the_peer_closed_while_idle_is_not_used(transport: Transport) -> None:
    async def handler(
        peer: Peer, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        await read_request(peer, reader)
        writer.write(OK)
        await writer.drain()
        if peer.connections > 1:
            await answering(OK)(peer, reader, writer)
        # else: the handler returns and closes (a server's keep-alive time-out)

    async with serve(handler) as peer:
        await send(transport, peer)
        # The client learns of the close within a few passes of its loop (yields, not a timed
        # wait: the close is already on the wire).
        for _ in range(1000):
            if transport.open_connections == 0:
                break
            await asyncio.sleep(0)
        assert transport.open_connections == 0
        assert (await send(transport, peer)).body == b"ok"
    assert peer.connections == 2


async def test_an_answer_before_the_request_is_written_ends_its_connection(
    transport: Transport,
) -> None:
    """CI may answer (a 413, a 400) before it has read the body, and keep the connection: the
    rest of the body would reach CI as the next request's start, so the connection is not
    reused; and since CI is not reading, a polite close would wait for ever to flush the rest,
    so it is aborted (its unsent bytes dropped)."""
    size = 16 * 1024 * 1024  # far over the socket buffers the peer leaves unread
    early = b"HTTP/1.1 413 Payload Too Large\r\nContent-Length: 0\r\n\r\n"
    received: list[int] = []
    counted = asyncio.Event()

    async def answer_early(
        peer: Peer, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        await reader.readuntil(b"\r\n\r\n")  # the head only: the body is left unread
        writer.write(early)
        await writer.drain()
        await peer.release.wait()  # the client has its answer
        count = 0
        with contextlib.suppress(ConnectionError):
            for _ in range(100_000):  # bounded: far more passes than the body needs
                data = await reader.read(65536)
                if not data:
                    break
                count += len(data)
        received.append(count)
        counted.set()

    async with serve(first_connection_unread(answer_early)) as peer:
        response = await transport.send(
            request(peer.url, "POST", b"b" * size), connect_timeout=5, total_timeout=5
        )
        assert response.status == 413
        assert transport.open_connections == 0  # not back in the pool
        peer.release.set()
        await asyncio.wait_for(counted.wait(), 10)
        assert received[0] < size  # aborted: the body's rest was never sent
        assert (await send(transport, peer)).body == b"ok"
    assert peer.connections == 2


async def test_an_exchange_on_a_connection_already_lost_fails_at_once_sent_false() -> None:
    """The pool skips a connection whose close it has seen; `exchange` refuses one on its
    own as well (whoever calls it, and between connecting and the first exchange): nothing was
    written, so the request is safely retried, at once rather than at the deadline. On uvloop
    a write to the closed transport raised RuntimeError; on asyncio's it was dropped and the
    exchange waited out its deadline."""
    loop = asyncio.get_running_loop()

    async def handler(
        peer: Peer, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        return  # accepted, then closed at once

    async with serve(handler) as peer:
        port = int(peer.url.rpartition(":")[2])
        gone: list[Http1Connection] = []
        _, connection = await loop.create_connection(
            lambda: Http1Connection(("http", "127.0.0.1", port, ""), gone.append), "127.0.0.1", port
        )
        await asyncio.wait_for(connection.wait_lost(), 5)  # the close is noticed
        assert gone == [connection] and not connection.usable
        started = loop.time()
        with pytest.raises(TransportError) as caught:
            await connection.exchange(
                b"GET / HTTP/1.1\r\nHost: ci.example\r\n\r\n",
                head_request=False,
                max_body=LIMIT,
                deadline=loop.time() + 10,
                loop=loop,
            )
        assert not isinstance(caught.value, UpstreamTimeout) and caught.value.sent is False
        assert str(caught.value) == "CI closed the connection before it was used"
        assert loop.time() - started < 5  # at once, not at the deadline


async def test_an_expired_idle_connection_is_closed_when_next_met() -> None:
    async with opened(max_body_bytes=LIMIT, idle_expiry_s=-1.0) as transport:  # expired at once

        async def handler(
            peer: Peer, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
        ) -> None:
            await answering(OK)(peer, reader, writer)
            await until_eof(peer, reader)

        async with serve(handler) as peer:
            await send(transport, peer)
            await send(transport, peer)
            await asyncio.wait_for(peer.closed.wait(), 5)
        assert peer.connections == 2


async def test_the_pool_bounds_connections_in_total_and_reuses_them() -> None:
    async with opened(max_body_bytes=LIMIT, pool_size=4) as transport:

        async def handler(
            peer: Peer, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
        ) -> None:
            for _ in range(100):
                if await read_request(peer, reader) is None:
                    return
                await peer.arrived.wait()  # hold every answer until 4 requests are in
                writer.write(OK)

        async with serve(handler) as peer:
            peer.wanted = 4
            results = await asyncio.gather(*(send(transport, peer) for _ in range(40)))
            assert transport.open_connections == 4
        assert [result.body for result in results] == [b"ok"] * 40
        assert peer.connections == 4 and peer.most_open == 4
        assert len(peer.requests) == 40


async def test_a_caller_waits_for_a_connection_no_longer_than_its_time_out() -> None:
    async with opened(max_body_bytes=LIMIT, pool_size=1) as transport:

        async def handler(
            peer: Peer, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
        ) -> None:
            await read_request(peer, reader)
            await peer.release.wait()
            writer.write(OK)

        async with serve(handler) as peer:
            peer.wanted = 1
            busy = asyncio.ensure_future(send(transport, peer))
            await asyncio.wait_for(peer.arrived.wait(), 5)
            with pytest.raises(UpstreamTimeout) as caught:
                await send(transport, peer, timeout=0.2)
            assert caught.value.sent is False
            assert "waiting for a connection" in str(caught.value)
            peer.release.set()
            assert (await busy).body == b"ok"


async def test_an_idle_connection_of_another_origin_makes_room() -> None:
    async with opened(max_body_bytes=LIMIT, pool_size=1) as transport:

        async def handler(
            peer: Peer, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
        ) -> None:
            await answering(OK)(peer, reader, writer)
            await until_eof(peer, reader)

        async with serve(handler) as first, serve(answering(OK)) as second:
            await send(transport, first)
            await send(transport, second)
            await asyncio.wait_for(first.closed.wait(), 5)
            assert transport.open_connections == 1


async def test_cancelled_sends_close_their_connections_and_free_the_pool() -> None:
    async with opened(max_body_bytes=LIMIT, pool_size=8) as transport:

        async def handler(
            peer: Peer, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
        ) -> None:
            if peer.connections <= 8:
                await read_request(peer, reader)  # never answered
                await until_eof(peer, reader)
            else:
                await answering(OK)(peer, reader, writer)

        async with serve(handler) as peer:
            peer.wanted = 8
            calls = [asyncio.ensure_future(send(transport, peer)) for _ in range(50)]
            await asyncio.wait_for(peer.arrived.wait(), 5)  # 8 in flight, 42 waiting
            for call in calls:
                call.cancel()
            results = await asyncio.gather(*calls, return_exceptions=True)
            assert all(isinstance(result, asyncio.CancelledError) for result in results)
            assert transport.open_connections == 0
            for _ in range(8):  # every held connection was closed by the client
                if peer.closed_by_client == 8:
                    break
                peer.closed.clear()
                await asyncio.wait_for(peer.closed.wait(), 5)
            assert peer.closed_by_client == 8
            replies = await asyncio.gather(*(send(transport, peer) for _ in range(20)))
            assert [reply.body for reply in replies] == [b"ok"] * 20
            assert peer.connections <= 16 and transport.open_connections <= 8


async def test_close_closes_everything_and_the_transport_stays_usable() -> None:
    transport = Transport(max_body_bytes=LIMIT)

    async def handler(
        peer: Peer, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        if peer.connections == 2:
            await read_request(peer, reader)  # held: the client closes it under the call
            await until_eof(peer, reader)
        else:
            await answering(OK)(peer, reader, writer)

    async with serve(handler) as peer:
        await send(transport, peer)
        peer.wanted = 2
        busy = asyncio.ensure_future(send(transport, peer))
        other = asyncio.ensure_future(send(transport, peer))
        await asyncio.wait_for(peer.arrived.wait(), 5)
        await transport.close()
        outcomes = await asyncio.gather(busy, other, return_exceptions=True)
        held = [outcome for outcome in outcomes if isinstance(outcome, TransportError)]
        assert len(held) == 1 and held[0].sent is True
        assert transport.open_connections == 0
        assert (await send(transport, peer)).body == b"ok"
    await transport.close()


# ---- hostile and broken answers -------------------------------------------------------------


def scripted(*parts: bytes, delay: float = 0.0, hold: bool = False) -> Handler:
    """Read the request, write `parts` (pausing `delay` between them), then close, or wait for
    the client to go away (`hold`)."""

    async def handler(
        peer: Peer, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        await read_request(peer, reader)
        for part in parts:
            writer.write(part)
            await writer.drain()
            if delay:
                await asyncio.sleep(delay)  # the behaviour under test: a slow peer
        if hold:
            await until_eof(peer, reader)

    return handler


async def refused(transport: Transport, handler: Handler, *, timeout: float = 5.0) -> Exception:
    async with serve(handler) as peer:
        with pytest.raises((TransportError, UpstreamProtocolError)) as caught:
            await send(transport, peer, timeout=timeout)
    assert transport.open_connections == 0
    return caught.value


@pytest.mark.parametrize(
    "answer",
    [
        b"hello, this is not HTTP\r\n\r\n",
        b"HTTP/1.1 2OO OK\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nBad Header Name: x\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Length: 3\r\n\r\nok",
        b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nhello\r\n0\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhelloXX0\r\n\r\n",
        b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: h2c\r\nConnection: upgrade\r\n\r\n",
    ],
    ids=[
        "not-http",
        "status",
        "header-name",
        "two-lengths",
        "length-and-chunked",
        "chunk-size",
        "chunk-end",
        "upgrade",
    ],
)
async def test_an_answer_that_is_not_http_is_a_transport_error_sent(
    transport: Transport, answer: bytes
) -> None:
    """Unreadable framing says nothing of what CI did with the request: outcome unknown, as a
    reset would be (reads retry; a submit reconciles before any replay)."""
    error = await refused(transport, scripted(answer, hold=True))
    assert isinstance(error, TransportError) and error.sent is True
    assert str(error) == "CI's answer was not valid HTTP"


def endless_chunk_framing(kind: str) -> list[bytes]:
    """An answer whose body stays a few bytes while its chunk framing grows: several times
    the framing budget of that body, in 8 KiB writes."""
    head = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
    pieces = 4 * (MAX_HEAD_BYTES + MAX_FRAMING_BYTES) // 8192
    if kind == "size-zeros":  # a chunk-size line of leading zeros that never ends
        return [head, *[b"0" * 8192] * pieces]
    if kind == "extension":  # one chunk extension that never ends
        return [head, b"5;name=", *[b"v" * 8192] * pieces]
    if kind == "trailer":  # one trailer field that never ends (llhttp buffers none of these)
        return [head, b"5\r\nhello\r\n0\r\nX-Trailer: ", *[b"t" * 8192] * pieces]
    # One-byte chunks, each with an 8 KiB extension: the body grows, the framing far faster.
    chunk = b"1;e=" + b"x" * 8186 + b"\r\nb\r\n"
    return [head, *[chunk] * pieces]


@pytest.mark.parametrize("kind", ["size-zeros", "extension", "trailer", "every-chunk"])
async def test_chunk_framing_over_its_budget_is_refused_as_it_arrives(
    transport: Transport, kind: str
) -> None:
    """llhttp bounds none of a chunk-size line, an extension or a trailer: without a budget
    a peer could stream framing for as long as the deadline lasts while the body stays empty."""
    error = await refused(transport, scripted(*endless_chunk_framing(kind), hold=True), timeout=10)
    assert isinstance(error, TransportError) and error.sent is True
    assert not isinstance(error, UpstreamTimeout)
    assert str(error) == "CI's answer was not valid HTTP"


async def test_chunk_framing_within_its_budget_is_read(transport: Transport) -> None:
    """Small chunks with short extensions, and a trailer: ordinary framing, several bytes per
    body byte, stays well inside the budget."""
    body = b"x" * (LIMIT // 2)
    chunks = b"".join(b"1;ext=1\r\n" + body[i : i + 1] + b"\r\n" for i in range(len(body)))
    answer = (
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
        + chunks
        + b"0\r\nX-Trailer: t\r\n\r\n"
    )
    async with serve(answering(answer)) as peer:
        assert (await send(transport, peer)).body == body


async def test_bytes_that_are_not_utf8_in_the_reason_and_headers_still_map(
    transport: Transport,
) -> None:
    """HTTP allows any octet in a reason phrase or field value (obs-text). Each undecodable
    byte becomes U+FFFD, so the answer still maps to a status (whose message must be UTF-8:
    a lone surrogate there made building it raise), and valid UTF-8 stays as sent. CI's
    RequestId also travels as gRPC metadata, which is printable ASCII: it is percent-encoded
    (`client.ci_request_id`; tests/resources/test_hostile_upstream.py sends it end to end)."""
    answer = (
        b"HTTP/1.1 503 Slow \xff Down \xc3\xa9\r\nX-CI-Request-Id: r\xfe1\r\n"
        b"Content-Length: 0\r\n\r\n"
    )
    async with serve(answering(answer)) as peer:
        response = await send(transport, peer)
    assert response.reason == "Slow \ufffd Down \u00e9"
    assert response.headers.get("X-CI-Request-Id") == "r\ufffd1"
    status = to_status(parse_error(response))
    assert status.message == "CI error HTTP 503: Slow \ufffd Down \u00e9 (RequestId r%EF%BF%BD1)"
    assert status.SerializeToString()


async def test_a_close_before_the_answer_is_sent_true(transport: Transport) -> None:
    error = await refused(transport, scripted())
    assert isinstance(error, TransportError) and error.sent is True
    assert str(error) == "CI closed the connection before answering"


async def test_a_reset_after_the_request_is_sent_true(transport: Transport) -> None:
    async def handler(
        peer: Peer, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        await read_request(peer, reader)
        sock = writer.get_extra_info("socket")
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        writer.transport.abort()

    error = await refused(transport, handler)
    assert isinstance(error, TransportError) and error.sent is True


@pytest.mark.parametrize(
    "answer",
    [
        b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nhalf",
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n",
        b"HTTP/1.1 200 OK\r\nContent-Le",
    ],
    ids=["length", "chunked", "in-the-head"],
)
async def test_a_close_mid_answer_is_cut_short(transport: Transport, answer: bytes) -> None:
    error = await refused(transport, scripted(answer))
    assert isinstance(error, TransportError) and error.sent is True
    assert str(error) == "CI's answer was cut short"


async def test_a_slow_trickle_is_bounded_by_the_total_time_out(transport: Transport) -> None:
    answer = b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n" + b"x" * 100
    loop = asyncio.get_running_loop()
    started = loop.time()
    error = await refused(
        transport,
        scripted(*(answer[i : i + 1] for i in range(len(answer))), delay=0.02),
        timeout=0.5,
    )
    assert isinstance(error, UpstreamTimeout) and error.sent is True
    assert str(error) == "timed out waiting for CI's answer"
    assert loop.time() - started < 2.0


async def test_a_peer_that_never_reads_is_bounded_by_the_total_time_out(
    transport: Transport,
) -> None:
    """The request fills the socket buffers and the rest waits in the transport's: the
    deadline still ends the exchange (its timer does not wait on the writing), the connection
    is aborted with its unsent bytes, and the next call is served as usual."""
    size = 16 * 1024 * 1024  # far over the socket buffers

    async def never_read(
        peer: Peer, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        await peer.release.wait()  # accepted, never read (until the test is over)

    loop = asyncio.get_running_loop()
    async with serve(first_connection_unread(never_read)) as peer:
        started = loop.time()
        with pytest.raises(UpstreamTimeout) as caught:
            await transport.send(
                request(peer.url, "POST", b"b" * size), connect_timeout=5, total_timeout=0.5
            )
        assert loop.time() - started < 3.0
        assert caught.value.sent is True
        assert str(caught.value) == "timed out waiting for CI's answer"
        assert transport.open_connections == 0
        assert (await send(transport, peer)).body == b"ok"
        peer.release.set()
    assert peer.connections == 2


async def test_headers_over_the_cap_are_refused_as_they_arrive(transport: Transport) -> None:
    line = b"X-Filler: " + b"y" * 1000 + b"\r\n"
    endless = [b"HTTP/1.1 200 OK\r\n", *([line] * (4 * MAX_HEAD_BYTES // len(line)))]
    error = await refused(transport, scripted(*endless, hold=True))
    assert isinstance(error, TransportError) and error.sent is True
    assert str(error) == "CI's answer headers are too large"


async def test_one_huge_header_line_is_refused(transport: Transport) -> None:
    answer = b"HTTP/1.1 200 OK\r\nX-Big: " + b"z" * (2 * MAX_HEAD_BYTES) + b"\r\n\r\n"
    error = await refused(transport, scripted(answer, hold=True))
    assert str(error) == "CI's answer headers are too large"


async def test_endless_interim_answers_count_against_the_header_cap(transport: Transport) -> None:
    continues = [b"HTTP/1.1 100 Continue\r\n\r\n"] * (2 * MAX_HEAD_BYTES // 25)
    error = await refused(transport, scripted(*continues, hold=True))
    assert str(error) == "CI's answer headers are too large"


async def test_too_many_headers_are_refused(transport: Transport) -> None:
    answer = b"HTTP/1.1 200 OK\r\n" + b"X: y\r\n" * (MAX_HEADERS + 1) + b"\r\n"
    error = await refused(transport, scripted(answer, hold=True))
    assert isinstance(error, TransportError) and error.sent is True
    assert str(error) == "CI's answer has too many headers"


async def test_a_content_length_over_the_cap_is_refused_before_the_body(
    transport: Transport,
) -> None:
    # The body never comes: the refusal must not wait for it.
    answer = b"HTTP/1.1 200 OK\r\nContent-Length: 1000000000\r\n\r\n"
    error = await refused(transport, scripted(answer, hold=True), timeout=30)
    assert isinstance(error, UpstreamProtocolError) and error.http_status == 200
    assert str(error) == f"CI's answer exceeds the {LIMIT}-byte limit"


@pytest.mark.parametrize("framing", ["chunked", "close"])
async def test_a_body_over_the_cap_is_refused_as_it_arrives(
    transport: Transport, framing: str
) -> None:
    head = (
        b"HTTP/1.1 503 Slow Down\r\nTransfer-Encoding: chunked\r\n\r\n"
        if framing == "chunked"
        else b"HTTP/1.0 503 Slow Down\r\n\r\n"
    )
    piece = b"x" * 8192
    chunk = b"2000\r\n" + piece + b"\r\n" if framing == "chunked" else piece
    error = await refused(transport, scripted(head, *[chunk] * (4 * LIMIT // 8192), hold=True))
    assert isinstance(error, UpstreamProtocolError) and error.http_status == 503


async def test_a_decompression_bomb_is_refused_not_inflated(transport: Transport) -> None:
    bomb = gzip.compress(b"\0" * (64 * LIMIT))  # 4 MiB of zeros in ~4 KiB
    answer = (
        f"HTTP/1.1 200 OK\r\nContent-Encoding: gzip\r\nContent-Length: {len(bomb)}\r\n\r\n"
    ).encode() + bomb
    assert len(bomb) < LIMIT
    error = await refused(transport, scripted(answer, hold=True))
    assert isinstance(error, UpstreamProtocolError) and error.http_status == 200
    assert str(error) == f"CI's answer exceeds the {LIMIT}-byte limit"


@pytest.mark.parametrize(
    ("encoding", "body", "message"),
    [
        ("br", b"anything", "CI's answer has an unsupported Content-Encoding"),
        ("gzip", b"not gzip at all", "CI's answer could not be decompressed"),
        ("gzip", gzip.compress(b"<Response/>")[:-8], "CI's answer could not be decompressed"),
    ],
    ids=["unknown", "corrupt", "truncated"],
)
async def test_an_answer_that_does_not_decode_is_refused(
    transport: Transport, encoding: str, body: bytes, message: str
) -> None:
    answer = (
        f"HTTP/1.1 200 OK\r\nContent-Encoding: {encoding}\r\nContent-Length: {len(body)}\r\n\r\n"
    ).encode() + body
    error = await refused(transport, scripted(answer, hold=True))
    assert str(error) == message


@pytest.mark.parametrize("encoding", ["gzip", "deflate"])
@pytest.mark.parametrize("framing", ["length", "chunked", "close"])
async def test_an_empty_body_labelled_compressed_is_empty(
    transport: Transport, encoding: str, framing: str
) -> None:
    """No bytes at all is no compressed stream to end: an empty body, as servers send with
    an error status and their usual Content-Encoding."""
    head = f"HTTP/1.1 404 Not Found\r\nContent-Encoding: {encoding}\r\n".encode()
    if framing == "length":
        answer = head + b"Content-Length: 0\r\n\r\n"
    elif framing == "chunked":
        answer = head + b"Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n"
    else:
        answer = head.replace(b"HTTP/1.1", b"HTTP/1.0") + b"\r\n"
    async with serve(answering(answer, then_close=framing == "close")) as peer:
        response = await send(transport, peer)
    assert (response.status, response.body) == (404, b"")


def chunked(data: bytes) -> bytes:
    """`data` as two chunks and the last one."""
    half = len(data) // 2
    return (
        b"".join(
            f"{len(part):x}\r\n".encode() + part + b"\r\n" for part in (data[:half], data[half:])
        )
        + b"0\r\n\r\n"
    )


BODY = b"<Response>" + b"c" * 500 + b"</Response>"


@pytest.mark.parametrize(
    ("fields", "payload", "to_the_close"),
    [
        # RFC 9110 §5.3: repeated lines are one list. llhttp frames by the last line's last
        # coding, and the codings before it are the body's to undo.
        (
            b"Transfer-Encoding: gzip\r\nTransfer-Encoding: chunked\r\n",
            chunked(gzip.compress(BODY)),
            False,
        ),
        (b"Transfer-Encoding: gzip, chunked\r\n", chunked(gzip.compress(BODY)), False),
        (b"Transfer-Encoding: identity, chunked\r\n", chunked(BODY), False),
        (
            b"Content-Encoding: identity\r\nContent-Encoding: gzip\r\n"
            b"Transfer-Encoding: chunked\r\n",
            chunked(gzip.compress(BODY)),
            False,
        ),
        (b"Transfer-Encoding: deflate\r\n", zlib.compress(BODY), True),
    ],
    ids=["te-lines", "te-list", "te-identity", "ce-lines", "te-to-the-close"],
)
async def test_every_coding_of_the_answer_is_undone(
    transport: Transport, fields: bytes, payload: bytes, to_the_close: bool
) -> None:
    answer = b"HTTP/1.1 200 OK\r\n" + fields + b"\r\n" + payload
    async with serve(answering(answer, then_close=to_the_close)) as peer:
        response = await send(transport, peer)
    assert response.body == BODY


@pytest.mark.parametrize(
    ("fields", "payload", "message"),
    [
        (
            b"Transfer-Encoding: br, chunked\r\n",
            chunked(b"not decoded here"),
            "CI's answer has an unsupported Transfer-Encoding",
        ),
        (  # chunked, then more: llhttp reads to the close, and the chunks are still in it
            b"Transfer-Encoding: chunked\r\nTransfer-Encoding: gzip\r\n",
            gzip.compress(chunked(BODY)),
            "CI's answer has an unsupported Transfer-Encoding",
        ),
        (  # an empty element last: llhttp reads to the close, the chunks still in the body
            b"Transfer-Encoding: chunked,\r\n",
            chunked(BODY),
            "CI's answer has an unsupported Transfer-Encoding",
        ),
        (  # chunked twice: llhttp undoes one
            b"Transfer-Encoding: chunked, chunked\r\n",
            chunked(chunked(BODY)),
            "CI's answer has an unsupported Transfer-Encoding",
        ),
        (
            b"Content-Encoding: gzip\r\nTransfer-Encoding: gzip, chunked\r\n",
            chunked(gzip.compress(gzip.compress(BODY))),
            "CI's answer is compressed more than once",
        ),
        (
            b"Content-Encoding: deflate\r\nContent-Encoding: gzip\r\n"
            b"Transfer-Encoding: chunked\r\n",
            chunked(gzip.compress(zlib.compress(BODY))),
            "CI's answer is compressed more than once",
        ),
    ],
    ids=[
        "te-unknown",
        "te-after-chunked",
        "te-chunked-comma",
        "te-chunked-twice",
        "te-and-ce",
        "ce-twice",
    ],
)
async def test_a_coding_that_is_not_undone_is_refused_never_returned_as_plain(
    transport: Transport, fields: bytes, payload: bytes, message: str
) -> None:
    answer = b"HTTP/1.1 200 OK\r\n" + fields + b"\r\n" + payload
    error = await refused(transport, scripted(answer, hold=True))
    assert isinstance(error, UpstreamProtocolError) and error.http_status == 200
    assert str(error) == message


async def test_a_compressed_body_read_to_the_close_must_end_its_stream(
    transport: Transport,
) -> None:
    truncated = gzip.compress(b"<Response/>" * 50)[:-8]
    answer = b"HTTP/1.0 200 OK\r\nContent-Encoding: gzip\r\n\r\n" + truncated
    error = await refused(transport, scripted(answer))
    assert isinstance(error, TransportError) and error.sent is True
    assert str(error) == "CI's answer could not be decompressed"


# ---- connecting -----------------------------------------------------------------------------


async def test_a_refused_connection_is_sent_false(transport: Transport) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # bound, not listening: connections are refused
        with pytest.raises(TransportError) as caught:
            await transport.send(
                request(f"http://127.0.0.1:{port}"), connect_timeout=5, total_timeout=5
            )
    assert caught.value.sent is False
    assert str(caught.value) == "cannot connect to CI: Connect call failed" or (
        str(caught.value).startswith("cannot connect to CI: ")
    )
    assert transport.open_connections == 0


async def test_a_connect_time_out_is_sent_false(transport: Transport) -> None:
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(0)
        port = listener.getsockname()[1]
        with socket.create_connection(("127.0.0.1", port)):  # fills the accept queue
            with pytest.raises(UpstreamTimeout) as caught:
                await transport.send(
                    request(f"http://127.0.0.1:{port}"), connect_timeout=0.2, total_timeout=5
                )
    assert caught.value.sent is False
    assert str(caught.value) == "timed out connecting to CI"
    assert transport.open_connections == 0


async def test_a_name_is_looked_up_and_its_addresses_tried_in_turn(transport: Transport) -> None:
    closing = b"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 2\r\n\r\nok"
    async with serve(answering(closing)) as peer:
        # localhost may come back as ::1 first, where nothing listens: the next address is
        # tried. The second connection reuses the lookup.
        by_name = peer.url.replace("127.0.0.1", "localhost")
        for _ in range(2):
            response = await transport.send(request(by_name), connect_timeout=5, total_timeout=5)
            assert response.body == b"ok"
    assert peer.connections == 2


async def test_a_name_that_does_not_resolve_is_sent_false(transport: Transport) -> None:
    with pytest.raises(TransportError) as caught:
        await transport.send(
            request("http://no-such-host.invalid"), connect_timeout=3, total_timeout=3
        )
    assert caught.value.sent is False
    assert transport.open_connections == 0


# ---- TLS ------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def ca() -> trustme.CA:
    return trustme.CA()


async def test_https_with_an_injected_ca_and_keep_alive(ca: trustme.CA) -> None:
    client_context = ssl.create_default_context()
    ca.configure_trust(client_context)
    async with opened(max_body_bytes=LIMIT, ssl_context=client_context) as transport:
        async with serve(answering(OK), tls=server_context(ca)) as peer:
            for _ in range(3):
                response = await send(transport, peer)
                assert response.body == b"ok"
        assert peer.connections == 1


async def test_https_to_an_untrusted_server_is_refused_sent_false(ca: trustme.CA) -> None:
    async with opened(max_body_bytes=LIMIT) as transport:  # the system's CAs
        async with serve(answering(OK), tls=server_context(ca)) as peer:
            with pytest.raises(TransportError) as caught:
                await send(transport, peer)
        assert caught.value.sent is False
        assert str(caught.value) == "cannot connect to CI: TLS handshake failed"


async def test_https_checks_the_name_against_the_url_host(ca: trustme.CA) -> None:
    client_context = ssl.create_default_context()
    ca.configure_trust(client_context)
    async with opened(max_body_bytes=LIMIT, ssl_context=client_context) as transport:
        async with serve(answering(OK), tls=server_context(ca)) as peer:
            wrong = peer.url.replace("localhost", "127.0.0.1")  # the cert names localhost only
            with pytest.raises(TransportError) as caught:
                await transport.send(request(wrong), connect_timeout=5, total_timeout=5)
        assert caught.value.sent is False
