"""Egress through an HTTP proxy: which origins go through it, and the CONNECT tunnel to them.

Platform teams on Kubernetes often reach the internet only through an egress proxy. `Proxy` is
one (`http://[user:password@]host:port`) with the hosts that bypass it (`NoProxy`, the
`no_proxy` list); `transport.Transport` asks it once per origin whether to use it, so a direct
origin costs nothing more per request than before.

Every origin goes through a `CONNECT host:port` tunnel, https and plain http alike:

* for https the proxy sees only the TLS stream: the signed request, its Authorization and any
  security token never reach it, and the certificate is checked against CI's host as directly;
* for http (the emulator behind `endpoint_url`) the request goes through the tunnel byte for byte
  as it would go directly. The alternative, absolute-form (`GET http://host/path`), would put a
  second request line on the wire beside the one `client` signed, and `Proxy-Authorization` in
  every request rather than once per connection. One path is also one thing to test; the price
  is that a proxy must allow CONNECT to that port (squid's default allows 443 only).

Either way a tunnel is a connection like a direct one for the pool: kept alive, per origin.

Credentials: the password is in no repr, log line or error text. What the proxy answers is read
up to `MAX_ANSWER_BYTES` (the status line only is used), within the caller's connect time-out;
every failure is `TransportError(sent=False)`, because until the tunnel stands nothing of the
request has left (what lets an exactly-once submit be replayed).
"""

from __future__ import annotations

import asyncio
import base64
import ipaddress
import re
from dataclasses import dataclass, field
from typing import Final, cast
from urllib.parse import unquote, urlsplit

from gateway import scrub
from gateway.config.settings import Upstream, is_proxy_url
from gateway.errors import ProxyRefused, TransportError

__all__ = ["MAX_ANSWER_BYTES", "NoProxy", "Proxy", "TunnelAnswer", "from_settings"]

MAX_ANSWER_BYTES: Final = 16 * 1024
"""The proxy's answer to CONNECT, status line and headers: a few hundred bytes from squid,
Envoy or a cloud NAT proxy. Beyond it the answer is refused, not buffered."""

_MAX_REASON_CHARS: Final = 80
_STATUS_LINE: Final = re.compile(rb"HTTP/1\.[01] ([1-9][0-9]{2})(?: ([^\r\n]*))?")
_UNPRINTABLE: Final = re.compile(r"[^\x20-\x7e]")
# 1xx but 101 (Switching Protocols ends the HTTP exchange: no tunnel follows it).
_INTERIM: Final = re.compile(rb"HTTP/1\.[01] 1(?!01)[0-9]{2}[ \r]")

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


@dataclass(frozen=True)
class NoProxy:
    """The hosts reached directly, as curl and httpx read `NO_PROXY`: comma-separated entries;
    `*` alone is every host; a name covers itself and its subdomains (`example.com`,
    `.example.com` and `*.example.com` all match `example.com` and `a.example.com`); an IP or a
    CIDR covers the addresses in it (an IP host only: names are not looked up). An entry may end
    in `:port` to bypass that port only. Loopback is not special: like curl and httpx, `localhost`
    and `127.0.0.1` go through the proxy unless listed."""

    everything: bool = False
    names: tuple[tuple[str, int | None], ...] = ()
    networks: tuple[tuple[Network, int | None], ...] = ()

    @classmethod
    def parse(cls, text: str) -> NoProxy:
        everything = False
        names: list[tuple[str, int | None]] = []
        networks: list[tuple[Network, int | None]] = []
        for raw in text.split(","):
            entry = raw.strip().lower()
            if entry == "*":
                everything = True
            elif entry:
                host, port = _split_port(entry)
                try:
                    networks.append((ipaddress.ip_network(host, strict=False), port))
                except ValueError:
                    names.append((host.removeprefix("*").lstrip(".").rstrip("."), port))
        return cls(everything, tuple(names), tuple(networks))

    def bypasses(self, host: str, port: int) -> bool:
        if self.everything:
            return True
        host = host.lower().rstrip(".")
        try:
            address = ipaddress.ip_address(host)
        except ValueError:
            address = None
        for network, only in self.networks:
            if address is not None and address in network and only in (None, port):
                return True
        for name, only in self.names:
            if (host == name or host.endswith("." + name)) and only in (None, port):
                return True
        return False


def _split_port(entry: str) -> tuple[str, int | None]:
    """`host:port`, `[v6]:port`, `[v6]`, `[v6]/bits`, a bare IPv6 address or a name: the host
    (a CIDR keeps its bits) and the port (None when absent or not a number, which then stays
    part of the host and matches nothing)."""
    if entry.startswith("["):
        host, _, rest = entry[1:].partition("]")
        if rest.startswith("/"):  # `[fd00::]/8`: a bracketed CIDR
            bits, _, rest = rest.partition(":")
            host += bits
            rest = ":" + rest if rest else ""
        port = rest[1:] if rest.startswith(":") else ""
    elif entry.count(":") == 1:
        host, _, port = entry.partition(":")
    else:
        return entry, None
    if port.isdigit():
        return host, int(port)
    return (host, None) if not port else (entry, None)


@dataclass(frozen=True)
class Proxy:
    """An HTTP proxy, and the hosts that bypass it. Its repr shows where it is and whether it
    has credentials, never them."""

    host: str
    port: int
    no_proxy: NoProxy = NoProxy()
    # `Basic <base64 of user:password>`, or None without credentials.
    authorization: str | None = field(default=None, repr=False)
    password: str = field(default="", repr=False)

    @classmethod
    def from_url(cls, url: str, no_proxy: str = "") -> Proxy:
        """`http://[user[:password]@]host[:port]` (port 80 by default), user and password
        percent-decoded as curl reads them. `ValueError` names the setting's shape, never the
        URL (it may hold the password)."""
        if not is_proxy_url(url):
            raise ValueError("a proxy URL must be http://[user:password@]host:port (not shown)")
        parts = urlsplit(url)
        host = parts.hostname
        assert host is not None
        authorization = None
        password = unquote(parts.password or "")
        if parts.username is not None:
            pair = f"{unquote(parts.username)}:{password}".encode()
            authorization = "Basic " + base64.b64encode(pair).decode("ascii")
        return cls(host, parts.port or 80, NoProxy.parse(no_proxy), authorization, password)

    def __repr__(self) -> str:
        credentials = ", with credentials" if self.authorization else ""
        return f"Proxy({_authority(self.host, self.port)}{credentials})"

    @property
    def address(self) -> str:
        """host:port, for the pool's key: no credentials."""
        return _authority(self.host, self.port)

    @property
    def secrets(self) -> tuple[str, ...]:
        """What `scrub.redact` must remove from anything the proxy sends back, however it could
        echo them: the Authorization value, its base64 token alone, and the password, also as
        its UTF-8 bytes read as Latin-1 (how an answer is decoded). Longest first, so that a
        short password inside the token does not break the token's match."""
        token = self.authorization.partition(" ")[2] if self.authorization else ""
        wide = self.password.encode().decode("latin-1")
        values = {self.authorization or "", token, wide, self.password} - {""}
        return tuple(sorted(values, key=len, reverse=True))

    def applies_to(self, host: str, port: int) -> bool:
        """Every origin `no_proxy` does not list, loopback included, as curl, requests and
        httpx decide (Go's net/http exempts loopback; we follow the tools whose variables these
        are). A proxy whose loopback is not ours cannot reach a `127.0.0.1` endpoint, so list it
        in NO_PROXY; a proxy on this host can, and is then used as configured."""
        return not self.no_proxy.bypasses(host, port)

    def connect_request(self, host: str, port: int) -> bytes:
        """`CONNECT host:port` with its Host (RFC 9110 §9.3.6) and, with credentials, their
        `Proxy-Authorization`: the one place they are written."""
        authority = _authority(host, port)
        lines = [f"CONNECT {authority} HTTP/1.1", f"Host: {authority}"]
        if self.authorization:
            lines.append(f"Proxy-Authorization: {self.authorization}")
        return ("\r\n".join(lines) + "\r\n\r\n").encode()


def _authority(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def from_settings(upstream: Upstream) -> Proxy | None:
    """The proxy the settings name, or None (direct). The standard variables were already read
    into them when they were loaded (`gateway.config.load`)."""
    if not upstream.proxy_url:
        return None
    return Proxy.from_url(upstream.proxy_url, upstream.no_proxy)


class TunnelAnswer(asyncio.Protocol):
    """The protocol of a connection to the proxy until it has answered CONNECT: it keeps the
    answer's head (bounded) and then pauses reading, so that nothing more is read before the
    connection is handed over (to TLS, or to `http1` for a plain origin)."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self._head: asyncio.Future[bytes] = loop.create_future()
        self._buffer = bytearray()
        self._extra = False
        self._used = 0  # bytes of interim answers read past
        self._transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports are not registered as `asyncio.Transport`, only duck-typed.
        self._transport = cast(asyncio.Transport, transport)

    def data_received(self, data: bytes) -> None:
        if self._head.done():
            self._abort()  # reading is paused once the head is in: nothing should come
            return
        start = max(0, len(self._buffer) - 3)
        self._buffer += data
        end = self._buffer.find(b"\r\n\r\n", start)
        # An interim answer (`100 Continue`, `103 Early Hints`) precedes the real one: a client
        # must read past it (RFC 9110 §15.2). Within the same bound, counting what it took.
        while (
            end >= 0 and _INTERIM.match(self._buffer) and self._used + end + 4 <= MAX_ANSWER_BYTES
        ):
            self._used += end + 4
            del self._buffer[: end + 4]
            end = self._buffer.find(b"\r\n\r\n")
        if end < 0 or self._used + end + 4 > MAX_ANSWER_BYTES:
            if self._used + len(self._buffer) > MAX_ANSWER_BYTES:
                self._fail("the proxy's answer to CONNECT is too large")
        else:
            # Anything after the head: a refusal's body, or trouble (below, once its status
            # says which).
            self._extra = end + 4 < len(self._buffer)
            if self._transport is not None:
                self._transport.pause_reading()
            self._head.set_result(bytes(self._buffer[:end]))
            self._buffer.clear()

    def connection_lost(self, exc: Exception | None) -> None:
        if not self._head.done():
            message = "the proxy closed the connection before answering CONNECT"
            self._head.set_exception(TransportError(message, sent=False))

    async def accepted(self, proxy: Proxy) -> None:
        """Wait for the answer; return on 2xx, else raise `TransportError(sent=False)` naming
        its status and reason (redacted of the proxy's credentials, should it echo them)."""
        head = await self._head
        match = _STATUS_LINE.fullmatch(head.split(b"\r\n", 1)[0])
        if match is None:
            raise TransportError("the proxy's answer to CONNECT was not HTTP", sent=False)
        status = int(match[1])
        if not 200 <= status < 300:
            # Redacted whole, then made printable and cut: cut first, a secret running past
            # the cut would no longer match and its first part would be shown.
            reason = scrub.redact((match[2] or b"").decode("latin-1"), proxy.secrets)
            reason = _UNPRINTABLE.sub("?", reason)[:_MAX_REASON_CHARS]
            raise ProxyRefused(
                f"the proxy refused the tunnel to CI: {status} {reason}".rstrip(),
                proxy_status=status,
            )
        if self._extra:
            # A TLS server never speaks first: these bytes are the proxy's, and would be read
            # as the start of CI's stream.
            raise TransportError("the proxy sent more than its answer to CONNECT", sent=False)

    def _fail(self, message: str) -> None:
        self._head.set_exception(TransportError(message, sent=False))
        self._abort()

    def _abort(self) -> None:
        if self._transport is not None:
            self._transport.abort()
