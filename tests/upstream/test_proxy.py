"""Egress through an HTTP proxy (`gateway.upstream.proxy` + `transport`), against a CONNECT proxy
and scripted origins on loopback (tests/fixtures/connect_proxy.py, test_transport's peers).

On the wire: one CONNECT per pooled connection, with the proxy's credentials, CI's host name
left to the proxy to resolve, TLS to CI's certificate through the tunnel, keep-alive per origin
and the pool's bound. Every way a proxy can refuse, stall or flood is `sent=False` (the request
never left) with a message that says what the proxy did and never holds its password.

Every test runs on asyncio's loop and on uvloop (conftest.py).
"""

from __future__ import annotations

import asyncio
import logging
import ssl
from collections.abc import Callable
from urllib.parse import quote

import pytest
import trustme

from gateway.errors import ProxyRefused, RetryClass, TransportError, UpstreamTimeout
from gateway.upstream.proxy import MAX_ANSWER_BYTES, NoProxy, Proxy
from gateway.upstream.transport import HttpRequest, Transport
from tests.fixtures.connect_proxy import ESTABLISHED, ORIGIN_HOST, connect_proxy
from tests.fixtures.logs import rendered
from tests.fixtures.tcp import server_context
from tests.upstream.test_transport import LIMIT, OK, answering, opened, serve

# Only the proxy can resolve it (`.invalid` never resolves): a request that arrives proves the
# transport let the proxy reach CI rather than connecting itself.
CI_HOST = "bucket-1250000000.ci.ap-guangzhou.invalid"
USER = "egress-user"
PASSWORD = "pr0xy-pa55-c4n4ry"


def get(url: str, host: str = CI_HOST) -> HttpRequest:
    return HttpRequest("GET", url + "/jobs/j1?x=1", {"Host": host})


def named(url: str) -> str:
    """A loopback origin's URL by a name only the test proxy resolves: an answer proves the
    request went through the proxy, which alone could find it."""
    return url.replace("127.0.0.1", ORIGIN_HOST)


async def send(transport: Transport, url: str, *, timeout: float = 5.0) -> bytes:
    response = await transport.send(get(url), connect_timeout=timeout, total_timeout=timeout)
    return response.body


@pytest.fixture(scope="module")
def ca() -> trustme.CA:
    return trustme.CA()


def tls_pair(ca: trustme.CA) -> tuple[ssl.SSLContext, ssl.SSLContext]:
    """The origin's context (a certificate for CI_HOST only) and a client's that trusts it."""
    server = server_context(ca, CI_HOST)
    client = ssl.create_default_context()
    ca.configure_trust(client)
    return server, client


async def refusal(proxy: Proxy, url: str, *, timeout: float = 5.0) -> TransportError:
    async with opened(max_body_bytes=LIMIT, proxy=proxy) as transport:
        with pytest.raises(TransportError) as caught:
            await send(transport, url, timeout=timeout)
        assert transport.open_connections == 0
    return caught.value


# ---- through the tunnel ---------------------------------------------------------------------


async def test_https_goes_through_one_tunnel_verified_and_kept_alive(ca: trustme.CA) -> None:
    origin_tls, client_context = tls_pair(ca)
    async with serve(answering(OK), tls=origin_tls) as origin:
        port = origin.url.rpartition(":")[2]
        async with connect_proxy(credentials=(USER, PASSWORD), hosts={CI_HOST: "127.0.0.1"}) as p:
            proxy = Proxy.from_url(p.url_with(USER, PASSWORD))
            async with opened(
                max_body_bytes=LIMIT, ssl_context=client_context, proxy=proxy
            ) as transport:
                for _ in range(2):
                    assert await send(transport, f"https://{CI_HOST}:{port}") == b"ok"
    assert p.connects == [f"{CI_HOST}:{port}"]  # one tunnel, reused
    assert p.authorizations == [proxy.authorization]
    assert origin.connections == 1
    assert [request.split(b"\r\n")[:2] for request in origin.requests] == [
        [b"GET /jobs/j1?x=1 HTTP/1.1", f"Host: {CI_HOST}".encode()]
    ] * 2
    assert b"/jobs" not in p.upstream_bytes  # the proxy saw only TLS


async def test_the_certificate_is_checked_against_ci_through_the_tunnel(ca: trustme.CA) -> None:
    origin_tls, _ = tls_pair(ca)
    untrusting = ssl.create_default_context()  # the system's CAs: not trustme's
    async with serve(answering(OK), tls=origin_tls) as origin:
        port = origin.url.rpartition(":")[2]
        async with connect_proxy(hosts={CI_HOST: "127.0.0.1"}) as p:
            async with opened(
                max_body_bytes=LIMIT, ssl_context=untrusting, proxy=Proxy.from_url(p.url)
            ) as transport:
                with pytest.raises(TransportError) as caught:
                    await send(transport, f"https://{CI_HOST}:{port}")
                assert transport.open_connections == 0
    assert (str(caught.value), caught.value.sent) == (
        "cannot connect to CI: TLS handshake failed",
        False,
    )
    assert origin.requests == []


async def test_a_plain_origin_gets_the_request_byte_for_byte_through_a_tunnel() -> None:
    async with serve(answering(OK)) as origin, connect_proxy() as p:
        async with opened(max_body_bytes=LIMIT, proxy=Proxy.from_url(p.url)) as transport:
            for _ in range(2):
                assert await send(transport, named(origin.url)) == b"ok"
    port = origin.url.rpartition(":")[2]
    assert p.connects == [f"{ORIGIN_HOST}:{port}"]
    assert p.authorizations == [None]  # no credentials, no header
    expected = f"GET /jobs/j1?x=1 HTTP/1.1\r\nHost: {CI_HOST}\r\n\r\n".encode()
    assert origin.requests == [expected, expected]  # origin-form, as signed


@pytest.mark.parametrize(
    "interim",
    [
        b"HTTP/1.1 100 Continue\r\n\r\n",
        b"HTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\nHTTP/1.1 100 Continue\r\n\r\n",
    ],
    ids=["100", "103+100"],
)
async def test_interim_answers_before_the_200_are_read_past(interim: bytes) -> None:
    """RFC 9110 §15.2: a client reads past any 1xx before the final answer."""
    async with serve(answering(OK)) as origin, connect_proxy(interim=interim) as p:
        async with opened(max_body_bytes=LIMIT, proxy=Proxy.from_url(p.url)) as transport:
            assert await send(transport, named(origin.url)) == b"ok"
    assert len(p.connects) == 1


async def test_each_origin_has_its_own_tunnels_within_the_pool_bound() -> None:
    async with serve(answering(OK)) as first, serve(answering(OK)) as second:
        async with connect_proxy() as p:
            proxy = Proxy.from_url(p.url)
            async with opened(max_body_bytes=LIMIT, proxy=proxy, pool_size=1) as transport:
                for url in (first.url, second.url, first.url):
                    assert await send(transport, named(url)) == b"ok"
                    assert transport.open_connections == 1
    ports = [url.rpartition(":")[2] for url in (first.url, second.url, first.url)]
    # Never a tunnel to one origin used for another: a new CONNECT each time the origin changes
    # (the bound of 1 closes the idle tunnel of the other).
    assert p.connects == [f"{ORIGIN_HOST}:{port}" for port in ports]
    assert (first.connections, second.connections) == (2, 1)


def test_no_proxy_hosts_are_reached_directly() -> None:
    """On the wire a bypassed origin is dialled like a loopback one (the test below): here,
    that the decision asks `no_proxy` (its matching: the table at the end)."""
    proxy = Proxy.from_url("http://127.0.0.1:3128", no_proxy="example.com, 10.0.0.0/8")
    assert not proxy.applies_to("ci.example.com", 443)
    assert not proxy.applies_to("10.1.2.3", 443)
    assert proxy.applies_to("bucket-1250000000.ci.ap-guangzhou.myqcloud.com", 443)


async def test_loopback_goes_through_the_proxy_unless_no_proxy_lists_it() -> None:
    """As curl, requests and httpx decide: `127.0.0.1` is proxied like any host (a proxy on
    this host reaches it), and reached directly once NO_PROXY names it."""
    async with serve(answering(OK)) as origin, connect_proxy() as p:
        port = int(origin.url.rpartition(":")[2])
        async with opened(max_body_bytes=LIMIT, proxy=Proxy.from_url(p.url)) as transport:
            assert await send(transport, origin.url) == b"ok"
        assert p.connects == [f"127.0.0.1:{port}"]
        listed = Proxy.from_url(p.url, no_proxy="localhost,127.0.0.1")
        async with opened(max_body_bytes=LIMIT, proxy=listed) as transport:
            assert await send(transport, origin.url) == b"ok"
    assert p.connects == [f"127.0.0.1:{port}"] and origin.connections == 2


# ---- what a proxy can do wrong: all sent=False ------------------------------------------------


@pytest.mark.parametrize(
    ("answer", "message"),
    [
        (
            b"HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\n\r\n",
            "the proxy refused the tunnel to CI: 403 Forbidden",
        ),
        (
            b"HTTP/1.1 502 Bad Gateway\r\nContent-Length: 5\r\n\r\nnope!",
            "the proxy refused the tunnel to CI: 502 Bad Gateway",
        ),
        (b"HTTP/1.0 503\r\n\r\n", "the proxy refused the tunnel to CI: 503"),
        (b"SSH-2.0-OpenSSH_9.6\r\n\r\n", "the proxy's answer to CONNECT was not HTTP"),
        (b"HTTP/1.1 200 OK\r\n", "the proxy closed the connection before answering CONNECT"),
        (b"", "the proxy closed the connection before answering CONNECT"),
        (ESTABLISHED + b"surprise", "the proxy sent more than its answer to CONNECT"),
        (
            b"HTTP/1.1 200 OK\r\nX-Pad: " + b"a" * MAX_ANSWER_BYTES + b"\r\n\r\n",
            "the proxy's answer to CONNECT is too large",
        ),
        (
            b"HTTP/1.1 200 OK\r\n" + b"X: y\r\n" * 100_000,
            "the proxy's answer to CONNECT is too large",
        ),
        (
            b"HTTP/1.1 100 Continue\r\n\r\n" * (MAX_ANSWER_BYTES // 20) + ESTABLISHED,
            "the proxy's answer to CONNECT is too large",
        ),
        (
            b"HTTP/1.1 101 Switching Protocols\r\n\r\n",
            "the proxy refused the tunnel to CI: 101 Switching Protocols",
        ),
    ],
    ids=[
        "403",
        "502",
        "no-reason",
        "not-http",
        "cut",
        "closed",
        "extra",
        "huge",
        "endless",
        "endless-interim",
        "101",
    ],
)
async def test_a_proxy_that_does_not_open_the_tunnel_fails_sent_false(
    answer: bytes, message: str
) -> None:
    async with serve(answering(OK)) as origin, connect_proxy(answer=answer) as p:
        error = await refusal(Proxy.from_url(p.url), named(origin.url))
    assert (str(error), error.sent) == (message, False)
    assert origin.connections == 0


async def test_wrong_credentials_are_a_clear_refusal_that_never_shows_them() -> None:
    async with serve(answering(OK)) as origin, connect_proxy(credentials=(USER, "other")) as p:
        proxy = Proxy.from_url(p.url_with(USER, PASSWORD))
        with rendered(logging.Formatter("%(name)s %(message)s %(exc_info)s")) as logs:
            error = await refusal(proxy, named(origin.url))
    assert (str(error), error.sent) == (
        "the proxy refused the tunnel to CI: 407 Proxy Authentication Required",
        False,
    )
    assert error.metadata() == {"request_sent": "false", "proxy_status": "407"}
    assert isinstance(error, ProxyRefused) and error.retry is RetryClass.TERMINAL
    texts = [str(error), repr(error), repr(proxy), str(error.__cause__), logs.getvalue()]
    for secret in (PASSWORD, proxy.authorization):
        assert secret and not any(secret in text for text in texts)


async def test_a_reason_echoing_the_credentials_is_redacted() -> None:
    proxy = Proxy.from_url(f"http://{USER}:{PASSWORD}@127.0.0.1:1")
    echo = f"HTTP/1.1 407 bad password {PASSWORD} in {proxy.authorization}\r\n\r\n".encode()
    async with serve(answering(OK)) as origin, connect_proxy(answer=echo) as p:
        error = await refusal(Proxy.from_url(p.url_with(USER, PASSWORD)), named(origin.url))
    assert PASSWORD not in str(error) and "[REDACTED]" in str(error)


WIDE_PASSWORD = "pä55wörd-c4n4ry-ßecret"  # its UTF-8 bytes are not its Latin-1 reading


@pytest.mark.parametrize(
    ("password", "echo"),
    [
        # Past the reason's cut: the part kept must not be the password's first half.
        (PASSWORD, lambda proxy: "x" * 70 + PASSWORD),
        # The Authorization's token alone (base64 of user:password), without `Basic`.
        (PASSWORD, lambda proxy: "bad token " + proxy.authorization.split()[1]),
        # A non-ASCII password echoed as the UTF-8 bytes the proxy was sent.
        (WIDE_PASSWORD, lambda proxy: "bad password " + WIDE_PASSWORD),
    ],
    ids=["cut", "token", "utf-8"],
)
async def test_no_part_of_the_credentials_survives_in_a_reason(
    password: str, echo: Callable[[Proxy], str]
) -> None:
    proxy = Proxy.from_url(f"http://{USER}:{quote(password)}@127.0.0.1:1")
    answer = f"HTTP/1.1 407 {echo(proxy)}\r\n\r\n".encode()
    async with serve(answering(OK)) as origin, connect_proxy(answer=answer) as p:
        proxy = Proxy.from_url(p.url_with(USER, quote(password)), "")
        error = await refusal(proxy, named(origin.url))
    assert isinstance(error, ProxyRefused) and error.proxy_status == 407
    text = str(error)
    token = (proxy.authorization or "").split()[1]
    # No run of 6 characters of the password or of its token is left.
    for secret in (password, token):
        assert not any(secret[i : i + 6] in text for i in range(len(secret) - 5)), text


async def test_a_stalled_proxy_is_bounded_by_the_connect_time_out() -> None:
    loop = asyncio.get_running_loop()
    async with serve(answering(OK)) as origin, connect_proxy(stall=True) as p:
        async with opened(max_body_bytes=LIMIT, proxy=Proxy.from_url(p.url)) as transport:
            started = loop.time()
            with pytest.raises(UpstreamTimeout) as caught:
                await transport.send(get(named(origin.url)), connect_timeout=0.2, total_timeout=5)
            elapsed = loop.time() - started
            assert transport.open_connections == 0
    assert (str(caught.value), caught.value.sent) == (
        "timed out connecting to CI through the proxy",
        False,
    )
    assert p.connects and 0.1 < elapsed < 2.0  # uvloop's clock has millisecond steps


async def test_a_proxy_that_refuses_connections_is_sent_false() -> None:
    async with connect_proxy() as p:
        dead = Proxy.from_url(p.url)  # closed when the block ends: nothing listens there
    error = await refusal(dead, f"http://{ORIGIN_HOST}:9")
    assert error.sent is False
    assert str(error).startswith("cannot connect to CI through the proxy: ")


# ---- the proxy's URL and NO_PROXY ---------------------------------------------------------------


def test_a_proxy_url_is_parsed_and_its_credentials_never_shown() -> None:
    proxy = Proxy.from_url("http://us%40er:p%3Ass@proxy.internal:3128/")
    assert (proxy.host, proxy.port, proxy.address) == (
        "proxy.internal",
        3128,
        "proxy.internal:3128",
    )
    assert proxy.authorization == "Basic dXNAZXI6cDpzcw=="  # base64("us@er:p:ss")
    assert repr(proxy) == "Proxy(proxy.internal:3128, with credentials)"
    assert "p:ss" not in repr(proxy)
    assert proxy.secrets == (proxy.authorization, "dXNAZXI6cDpzcw==", "p:ss")
    assert Proxy.from_url("http://[::1]:8080").address == "[::1]:8080"
    assert Proxy.from_url("http://proxy").port == 80
    assert Proxy.from_url("http://proxy:3128").connect_request("ci.example", 443) == (
        b"CONNECT ci.example:443 HTTP/1.1\r\nHost: ci.example:443\r\n\r\n"
    )


@pytest.mark.parametrize(
    "url",
    [
        "https://u:secret@proxy:443",  # TLS to the proxy: not spoken
        "socks5://u:secret@proxy:1080",
        "http://u:secret@proxy:99999",
        "http://u:secret@proxy:0",  # no port to connect to (was taken as 80)
        "http://u:secret@proxy:3128/path",
        "http://u:secret@:3128",
        "u:secret@proxy:3128",
    ],
)
def test_a_proxy_url_the_transport_cannot_use_is_refused_without_showing_it(url: str) -> None:
    with pytest.raises(ValueError) as caught:
        Proxy.from_url(url)
    assert "secret" not in str(caught.value)


@pytest.mark.parametrize(
    ("no_proxy", "host", "port", "bypass"),
    [
        ("", "ci.example.com", 443, False),
        ("*", "anything", 443, True),
        (" *, other ", "anything", 443, True),
        ("example.com", "example.com", 443, True),
        ("example.com", "ci.example.com", 443, True),
        ("example.com", "CI.Example.COM.", 443, True),
        (".example.com", "example.com", 443, True),
        (".example.com", "a.b.example.com", 443, True),
        ("*.example.com", "a.example.com", 443, True),
        ("example.com", "badexample.com", 443, False),
        ("example.com", "example.com.evil", 443, False),
        ("myqcloud.com:443", "ci.myqcloud.com", 443, True),
        ("myqcloud.com:8443", "ci.myqcloud.com", 443, False),
        ("10.0.0.1", "10.0.0.1", 80, True),
        ("10.0.0.1", "10.0.0.2", 80, False),
        ("10.0.0.0/8", "10.20.30.40", 80, True),
        ("10.0.0.0/8", "11.0.0.1", 80, False),
        ("10.0.0.0/8", "ten.example", 80, False),  # names are not looked up
        ("::1", "::1", 80, True),
        ("[::1]:8080", "::1", 8080, True),
        ("[::1]:8080", "::1", 80, False),
        ("fd00::/8", "fd12::1", 80, True),
        ("[fd00::]/8", "fd12::1", 80, True),  # bracketed, as in a URL: the bits still count
        ("[fd00::]/8:443", "fd12::1", 80, False),
        ("localhost", "127.0.0.1", 80, False),  # NO_PROXY itself: loopback is not special
        ("", "localhost", 80, False),
        ("localhost,127.0.0.1", "localhost", 80, True),
    ],
)
def test_no_proxy_matches_as_curl_and_httpx_do(
    no_proxy: str, host: str, port: int, bypass: bool
) -> None:
    assert NoProxy.parse(no_proxy).bypasses(host, port) is bypass
