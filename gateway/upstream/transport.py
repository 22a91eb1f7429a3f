"""HTTP I/O towards CI: one request in, status + headers + a size-capped body out.

No signing, no retries, no XML. The wire is `http1.Http1Connection` (asyncio's Protocol API,
httptools' parser; on uvloop, the default loop or plain asyncio); this module is the interface
`client` calls and the keep-alive pool. Every failure is translated in these two modules, into
`TransportError` whose `sent` says whether the request may have reached CI (which decides
whether a job submit may be replayed): `sent=False` only when it certainly never left (no
connection could be made or waited for, or the request was refused before writing).

What goes on the wire is the caller's method, target and headers as given (`client` sets Host,
Content-Type, Content-Length and signs them), plus Host and Content-Length when missing. Nothing
else: no User-Agent, no Accept, and no Accept-Encoding (CI's answers are small XML; inflating
them costs CPU and a decompression bomb is one more thing to refuse; a compressed answer sent
anyway is still read, bounded, by `http1`). A header name or value that is not str, or that
holds a line break, is refused before connecting (`sent=False`).

The pool, per (scheme, host, port): at most `pool_size` connections in total (callers wait, up
to their own time-out, when all are busy; an idle connection of another origin is closed to make
room), the most recently used idle one first (LIFO: the others age out), a connection idle for
more than `idle_expiry_s` is closed when next met (no timer per connection), and a connection
goes back only after a complete keep-alive answer. A cancelled `send` aborts its connection.

With a `proxy` (`gateway.upstream.proxy`), an origin it applies to is reached through a CONNECT
tunnel, decided once per origin (when its URL is first met: nothing more per request). A tunnel
is pooled like a direct connection, under a key that also names the proxy, and counts against
the same `pool_size`; the proxy's name, not CI's, is looked up. Its failures before the tunnel
stands are `sent=False`, like any failure to connect.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import socket
import ssl
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Final, TypeVar, cast
from urllib.parse import urlsplit

from gateway.errors import TransportError, UpstreamTimeout
from gateway.upstream.http1 import Http1Connection, HttpResponse, Key
from gateway.upstream.proxy import Proxy, TunnelAnswer

__all__ = ["HttpRequest", "HttpResponse", "Transport"]

IDLE_EXPIRY_S: Final = 15.0
"""Under the keep-alive time-outs servers commonly use (nginx 75 s, many load balancers 60 s,
some 20 s): a connection is not reused once the peer may be closing it."""

# Methods whose request means something with a body: sent with `Content-Length: 0` when they
# have none, as RFC 9110 asks (and aiohttp did), so no server waits for a body or wants a 411.
_BODY_METHODS: Final = frozenset({"POST", "PUT", "PATCH"})
_MAX_ORIGINS: Final = 256

DNS_TTL_S: Final = 60.0
"""How long a name's addresses are reused for new connections (aiohttp's `ttl_dns_cache` was
60 s too): a burst of new connections makes one lookup, not one each (in Kubernetes, with
`ndots: 5`, each lookup is several queries)."""

Address = tuple[str, int]  # what a connection goes to: the origin's host, or the proxy's
P = TypeVar("P", bound=asyncio.BaseProtocol)


@dataclass(unsafe_hash=True)
class HttpRequest:
    # Read-only by type (`Final`), not `frozen=True`: a frozen dataclass sets each field through
    # `object.__setattr__`, ~3x the cost of building a plain one, and every attempt builds one.
    # `unsafe_hash` keeps the hash the frozen class had.
    method: Final[str]
    # Already percent-encoded; sent as is.
    url: Final[str]
    headers: Final[Mapping[str, str]]
    body: Final[bytes | None] = None


@dataclass(frozen=True, slots=True)
class _Origin:
    key: Key
    host: str
    port: int
    tls: bool
    authority: str  # the URL's host[:port], for a Host header the caller did not set
    literal: bool  # the host is an IP address: nothing to look up
    proxy: Proxy | None  # None: direct


def _has(headers: Mapping[str, str], name: str) -> bool:
    return any(key.lower() == name for key in headers)


class Transport:
    """A keep-alive pool of HTTP/1.1 connections, shared by every call to CI."""

    def __init__(
        self,
        *,
        max_body_bytes: int,
        pool_size: int = 100,
        ssl_context: ssl.SSLContext | None = None,
        idle_expiry_s: float = IDLE_EXPIRY_S,
        proxy: Proxy | None = None,
    ) -> None:
        """`ssl_context`: the system's CAs by default (`ssl.create_default_context()`).
        `proxy`: where to tunnel to the origins it applies to (None: every origin direct)."""
        self._max_body_bytes = max_body_bytes
        self._proxy = proxy
        self._pool_size = pool_size
        self._ssl_context = ssl_context
        self._idle_expiry_s = idle_expiry_s
        self._origins: dict[str, _Origin] = {}
        self._addresses: dict[Address, tuple[float, list[str]]] = {}  # (expiry, addresses)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._idle: dict[Key, list[Http1Connection]] = {}
        self._all: set[Http1Connection] = set()  # connected and not yet lost
        self._slots = 0  # connections counted against pool_size: connecting, busy or idle
        self._waiters: deque[asyncio.Future[None]] = deque()

    @property
    def open_connections(self) -> int:
        """Connections held against `pool_size` (connecting, in use or idle)."""
        return self._slots

    async def close(self) -> None:
        """Close every connection (busy ones fail their `send` with `sent=True`) and wait
        until each is gone. The transport stays usable: a later `send` connects afresh."""
        for waiter in self._waiters:
            if not waiter.done():
                waiter.set_result(None)  # to try again: there will be room
        self._waiters.clear()
        connections = list(self._all)
        for connection in connections:
            connection.abort()
        for connection in connections:
            await connection.wait_lost()

    async def send(
        self, request: HttpRequest, *, connect_timeout: float, total_timeout: float
    ) -> HttpResponse:
        """Send once. `total_timeout` bounds the whole exchange: the wait for a free
        connection, connecting, and the answer to its last byte."""
        loop = asyncio.get_running_loop()
        if loop is not self._loop:
            self._adopt(loop)
        now = loop.time()
        deadline = now + total_timeout
        url = request.url
        end = url.find("/", url.find("//") + 2)
        prefix, target = (url[:end], url[end:]) if end > 0 else (url, "/")
        origin = self._origins.get(prefix) or self._origin(prefix)
        payload = self._payload(request, origin, target)
        connection = self._take_idle(origin.key, now)
        if connection is None:
            connection = await self._acquire(origin, deadline, connect_timeout, loop)
        try:
            response = await connection.exchange(
                payload,
                head_request=request.method == "HEAD",
                max_body=self._max_body_bytes,
                deadline=deadline,
                loop=loop,
            )
        except BaseException:
            # An error, a time-out or the caller's cancellation: the connection's state is
            # unknown (half an answer may be on its way), so it is closed, never reused.
            connection.abort()
            self._release(connection)
            raise
        if connection.reusable:
            self._put_idle(connection, loop.time())
        else:
            connection.close_idle()
            self._release(connection)
        return response

    # The request ------------------------------------------------------------------------

    def _origin(self, prefix: str) -> _Origin:
        try:
            parts = urlsplit(prefix)
            port = parts.port
        except ValueError:
            raise TransportError("invalid CI URL", sent=False) from None
        host = parts.hostname
        if parts.scheme not in ("http", "https") or not host or parts.query or parts.fragment:
            raise TransportError("invalid CI URL", sent=False)
        tls = parts.scheme == "https"
        port = port or (443 if tls else 80)
        # host[:port] as the URL spells it, never a `user:password@` in front of it.
        authority = parts.netloc.rpartition("@")[2]
        proxy = self._proxy
        if proxy is not None and not proxy.applies_to(host, port):
            proxy = None
        # The proxy is part of the key: a tunnel is to one origin through one proxy.
        key = (parts.scheme, host, port, proxy.address if proxy is not None else "")
        origin = _Origin(key, host, port, tls, authority, _is_literal(host), proxy)
        if len(self._origins) >= _MAX_ORIGINS:
            self._origins.clear()
        self._origins[prefix] = origin
        return origin

    @staticmethod
    def _payload(request: HttpRequest, origin: _Origin, target: str) -> bytes:
        """The request as one buffer for a single write: head (request line and the caller's
        headers, in order) and body."""
        headers = request.headers
        body = request.body
        lines = [f"{request.method} {target} HTTP/1.1"]
        try:
            lines.extend(map(": ".join, headers.items()))
        except TypeError:
            # A name or value that is not str (an int Content-Length, bytes): `client` signs
            # the headers as str, so converting here could send other bytes than it signed.
            # Refused like a line break: a bug of the caller, caught before anything is sent.
            raise TransportError(
                "request to CI refused: a header name or value that is not text", sent=False
            ) from None
        if "Host" not in headers and not _has(headers, "host"):
            lines.append("Host: " + origin.authority)
        if "Content-Length" not in headers and not _has(headers, "content-length"):
            if body is not None:
                lines.append(f"Content-Length: {len(body)}")
            elif request.method in _BODY_METHODS:
                lines.append("Content-Length: 0")
        lines.append("\r\n")
        head = "\r\n".join(lines)
        # One CR and one LF per line and nowhere else: a header value carrying a line break
        # would smuggle a header (or a request) of its own.
        count = len(lines)
        if head.count("\n") != count or head.count("\r") != count or "\0" in head or " " in target:
            raise TransportError("request to CI refused: a line break in its head", sent=False)
        data = head.encode()
        return data + body if body else data

    # The pool ---------------------------------------------------------------------------

    def _adopt(self, loop: asyncio.AbstractEventLoop) -> None:
        """First use, or a new event loop (tests): connections of another loop are useless."""
        for connection in self._all:
            with contextlib.suppress(RuntimeError):  # that loop is closed
                connection.abort()
        self._loop = loop
        self._idle = {}
        self._all = set()
        self._slots = 0
        self._waiters = deque()

    def _take_idle(self, key: Key, now: float) -> Http1Connection | None:
        stack = self._idle.get(key)
        while stack:
            connection = stack.pop()
            connection.in_pool = False
            if connection.usable and now - connection.idle_since <= self._idle_expiry_s:
                return connection
            connection.close_idle()
            self._release(connection)
        return None

    def _put_idle(self, connection: Http1Connection, now: float) -> None:
        connection.idle_since = now
        connection.in_pool = True
        stack = self._idle.get(connection.key)
        if stack is None:
            stack = self._idle[connection.key] = []
        stack.append(connection)
        # The oldest are at the bottom: the lazy expiry looks there, once per return.
        while stack and now - stack[0].idle_since > self._idle_expiry_s:
            oldest = stack.pop(0)
            oldest.in_pool = False
            oldest.close_idle()
            self._release(oldest)
        self._wake()

    def _release(self, connection: Http1Connection) -> None:
        """Give back the connection's slot (once) and let a waiting caller have it."""
        if connection.holds_slot:
            connection.holds_slot = False
            self._slots -= 1
            self._wake()

    def _wake(self) -> None:
        waiters = self._waiters
        while waiters:
            waiter = waiters.popleft()
            if not waiter.done():
                waiter.set_result(None)
                return

    def _lost(self, connection: Http1Connection) -> None:
        """`connection_lost` of any connection: an idle one leaves the pool at once."""
        self._all.discard(connection)
        if connection.in_pool:
            connection.in_pool = False
            stack = self._idle.get(connection.key)
            if stack is not None:
                with contextlib.suppress(ValueError):
                    stack.remove(connection)
            self._release(connection)

    def _evict_idle(self) -> bool:
        """Close the oldest idle connection of any origin, to open one for another."""
        for stack in self._idle.values():
            if stack:
                oldest = stack.pop(0)
                oldest.in_pool = False
                oldest.close_idle()
                self._release(oldest)
                return True
        return False

    async def _acquire(
        self,
        origin: _Origin,
        deadline: float,
        connect_timeout: float,
        loop: asyncio.AbstractEventLoop,
    ) -> Http1Connection:
        # Bounded: each pass either returns, connects, evicts one idle connection, or waits
        # (until woken or the deadline).
        while True:
            connection = self._take_idle(origin.key, loop.time())
            if connection is not None:
                return connection
            if self._slots < self._pool_size:
                self._slots += 1
                # The connect time-out counts from here, not from before a wait for room.
                connect_by = min(loop.time() + connect_timeout, deadline)
                try:
                    return await self._connect(origin, connect_by, loop)
                except BaseException:
                    self._slots -= 1
                    self._wake()
                    raise
            if not self._evict_idle():
                await self._wait_for_slot(deadline, loop)

    async def _wait_for_slot(self, deadline: float, loop: asyncio.AbstractEventLoop) -> None:
        waiter: asyncio.Future[None] = loop.create_future()
        self._waiters.append(waiter)
        try:
            async with asyncio.timeout_at(deadline):
                await waiter
        except BaseException as exc:
            with contextlib.suppress(ValueError):
                self._waiters.remove(waiter)
            if waiter.done() and not waiter.cancelled():
                self._wake()  # woken as we left: the slot goes to the next caller
            if isinstance(exc, TimeoutError):
                raise UpstreamTimeout(
                    "timed out waiting for a connection to CI", sent=False
                ) from None
            raise

    async def _connect(
        self, origin: _Origin, connect_by: float, loop: asyncio.AbstractEventLoop
    ) -> Http1Connection:
        context: ssl.SSLContext | None = None
        if origin.tls:
            context = self._ssl_context
            if context is None:
                context = self._ssl_context = ssl.create_default_context()
        via = "" if origin.proxy is None else " through the proxy"
        try:
            async with asyncio.timeout_at(connect_by):
                if origin.proxy is None:
                    transport, connection = await self._connect_direct(origin, context, loop)
                else:
                    transport, connection = await self._tunnel(origin, origin.proxy, context, loop)
        except TimeoutError:
            raise UpstreamTimeout(f"timed out connecting to CI{via}", sent=False) from None
        except ssl.SSLError as exc:
            raise TransportError("cannot connect to CI: TLS handshake failed", sent=False) from exc
        except OSError as exc:
            raise TransportError(
                f"cannot connect to CI{via}: {exc.strerror or 'refused'}", sent=False
            ) from exc
        sock = transport.get_extra_info("socket")
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self._all.add(connection)
        return connection

    async def _connect_direct(
        self, origin: _Origin, context: ssl.SSLContext | None, loop: asyncio.AbstractEventLoop
    ) -> tuple[asyncio.BaseTransport, Http1Connection]:
        key = origin.key
        lost = self._lost
        return await self._connect_any(
            (origin.host, origin.port),
            origin.literal,
            lambda: Http1Connection(key, lost),
            context,
            origin.host,
            loop,
        )

    async def _tunnel(
        self,
        origin: _Origin,
        proxy: Proxy,
        context: ssl.SSLContext | None,
        loop: asyncio.AbstractEventLoop,
    ) -> tuple[asyncio.BaseTransport, Http1Connection]:
        """Connect to the proxy, have it CONNECT to the origin, then hand the connection to a
        `Http1Connection`: through TLS for CI's host (`start_tls`, the certificate checked
        against it as directly), or as is for a plain origin."""
        address = (proxy.host, proxy.port)
        raw, answer = await self._connect_any(
            address, _is_literal(proxy.host), lambda: TunnelAnswer(loop), None, "", loop
        )
        raw_transport = cast(asyncio.Transport, raw)
        connection = Http1Connection(origin.key, self._lost)
        try:
            raw_transport.write(proxy.connect_request(origin.host, origin.port))
            await answer.accepted(proxy)
            if context is None:
                raw_transport.set_protocol(connection)
                connection.connection_made(raw_transport)
                raw_transport.resume_reading()
                return raw_transport, connection
            tls = await loop.start_tls(
                raw_transport, connection, context, server_hostname=origin.host
            )
        except BaseException:
            raw_transport.abort()
            raise
        if tls is None:  # the connection closed during the handshake
            raise ConnectionResetError("the tunnel closed during the TLS handshake")
        connection.connection_made(tls)  # start_tls leaves it to the caller
        return tls, connection

    async def _connect_any(
        self,
        address: Address,
        literal: bool,
        factory: Callable[[], P],
        context: ssl.SSLContext | None,
        server_hostname: str,
        loop: asyncio.AbstractEventLoop,
    ) -> tuple[asyncio.BaseTransport, P]:
        """Connect to the host's addresses in turn until one answers (the last error raised);
        the certificate is checked against `server_hostname` whatever address answered."""
        host, port = address
        addresses = [host] if literal else await self._resolve(address, loop)
        for index, ip in enumerate(addresses):
            try:
                return await loop.create_connection(
                    factory,
                    ip,
                    port,
                    ssl=context,
                    server_hostname=server_hostname if context is not None else None,
                )
            except OSError:
                if index + 1 < len(addresses):
                    continue
                self._addresses.pop(address, None)  # the name may have moved: look it up again
                raise
        raise OSError("no address")  # getaddrinfo raises rather than answering none

    async def _resolve(self, address: Address, loop: asyncio.AbstractEventLoop) -> list[str]:
        now = loop.time()
        cached = self._addresses.get(address)
        if cached is not None and cached[0] > now:
            return cached[1]
        infos = await loop.getaddrinfo(*address, type=socket.SOCK_STREAM)
        addresses = list(dict.fromkeys(str(info[4][0]) for info in infos))
        if len(self._addresses) >= _MAX_ORIGINS:
            self._addresses.clear()
        self._addresses[address] = (now + DNS_TTL_S, addresses)
        return addresses


def _is_literal(host: str) -> bool:
    """An IP address: nothing to look up."""
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True
