"""Issue 16: client CPU per HTTP request, the gateway's own transport vs aiohttp's client.

    python -m bench.transport [--calls 2000] [--reps 5] [--concurrency 64] [--loop uvloop]

A peer in a child process (raw asyncio, a fixed CI-like XML answer with CI's headers, keep-alive)
answers; this process sends signed-like requests (`POST /jobs` with Host, Content-Type,
Content-Length, Content-MD5, Authorization and a 400-byte body) through each transport, one at a
time and `--concurrency` at once, and reads its own `time.process_time()` around each batch.
The two implementations alternate within every repetition (which goes first alternates too), so
drift of a shared machine falls on both; each figure is the median of the repetitions [min-max].

`AiohttpTransport` below is the transport as it was before this change (one aiohttp
`ClientSession`, same options), kept here only to be measured against.

For figures a loaded machine cannot move, count instructions instead (the peer is a child,
which valgrind does not follow):

    valgrind --tool=callgrind --callgrind-out-file=/dev/null \\
        python -m bench.transport --impl new --calls 1200 --reps 1 --concurrency 1
    # and --calls 200; (difference of the two "Collected" totals) / 1000 = instructions per call
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import hashlib
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Coroutine, Iterator
from typing import Any, Protocol

import aiohttp
from multidict import CIMultiDictProxy
from yarl import URL

from bench.common import CI_HOST, signed
from gateway.errors import TransportError
from gateway.upstream.transport import HttpRequest, Transport

BODY = b"<Request><Tag>MediaInfo</Tag><Input><Object>input/bench.mp4</Object></Input>" + (
    b"<Operation><UserData>" + b"u" * 280 + b"</UserData></Operation></Request>"
)
ANSWER_BODY = (
    b"<Response><JobsDetail><Code>Success</Code><Message/><JobId>j"
    + b"0" * 32
    + b"</JobId><State>Submitted</State><CreationTime>2026-01-01T00:00:00+0800</CreationTime>"
    b"<QueueId>p" + b"1" * 32 + b"</QueueId><Tag>MediaInfo</Tag><Input><Object>input/bench.mp4"
    b"</Object></Input></JobsDetail></Response>"
)
ANSWER = (
    b"HTTP/1.1 200 OK\r\nContent-Type: application/xml\r\n"
    b"Content-Length: " + str(len(ANSWER_BODY)).encode() + b"\r\n"
    b"Connection: keep-alive\r\nDate: Sun, 06 Dec 2026 06:00:00 GMT\r\nServer: tencent-ci\r\n"
    b"x-ci-request-id: NjRhYmNkZWYxMjM0NTY3ODkwYWJjZGVm\r\n\r\n" + ANSWER_BODY
)


class _Sender(Protocol):
    async def send(
        self, request: HttpRequest, *, connect_timeout: float, total_timeout: float
    ) -> object: ...

    async def close(self) -> None: ...


class AiohttpTransport:
    """The transport before issue 16's change, for comparison only (its error mapping left
    out: no errors happen here)."""

    def __init__(self, *, max_body_bytes: int, pool_size: int = 100) -> None:
        self._max_body_bytes = max_body_bytes
        self._session = aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(limit=pool_size, ttl_dns_cache=60),
            cookie_jar=aiohttp.DummyCookieJar(),
            auto_decompress=True,
            skip_auto_headers=("User-Agent", "Content-Type"),
        )

    async def close(self) -> None:
        await self._session.close()

    async def send(
        self, request: HttpRequest, *, connect_timeout: float, total_timeout: float
    ) -> tuple[int, CIMultiDictProxy[str], bytes]:
        timeout = aiohttp.ClientTimeout(
            total=total_timeout, sock_connect=min(connect_timeout, total_timeout)
        )
        async with self._session.request(
            request.method,
            URL(request.url, encoded=True),
            headers=dict(request.headers),
            data=request.body,
            timeout=timeout,
            allow_redirects=False,
        ) as response:
            chunks = []
            size = 0
            while chunk := await response.content.read(64 * 1024):
                size += len(chunk)
                if size > self._max_body_bytes:
                    raise TransportError("too large", sent=True)
                chunks.append(chunk)
            return response.status, response.headers, b"".join(chunks)


IMPLEMENTATIONS: dict[str, Callable[[], _Sender]] = {
    "new": lambda: Transport(max_body_bytes=1 << 20),
    "aiohttp": lambda: AiohttpTransport(max_body_bytes=1 << 20),
}


# ---- the peer ---------------------------------------------------------------------------------


class _Peer(asyncio.Protocol):
    """Answers every complete request (head + Content-Length body) with ANSWER."""

    def __init__(self) -> None:
        self._buffer = b""
        self._transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        buffer = self._buffer + data
        answers = 0
        for _ in range(buffer.count(b"\r\n\r\n")):  # at most one request per blank line
            end = buffer.find(b"\r\n\r\n")
            if end < 0:
                break
            head = buffer[:end].lower()
            at = head.find(b"content-length:")
            length = int(head[at + 15 : head.find(b"\r\n", at)].strip() or 0) if at >= 0 else 0
            if len(buffer) < end + 4 + length:
                break
            buffer = buffer[end + 4 + length :]
            answers += 1
        self._buffer = buffer
        if answers and self._transport is not None:
            self._transport.write(ANSWER * answers)


async def _serve() -> None:
    loop = asyncio.get_running_loop()
    server = await loop.create_server(_Peer, "127.0.0.1", 0)
    print(server.sockets[0].getsockname()[1], flush=True)
    await loop.run_in_executor(None, sys.stdin.read)  # until the parent closes our stdin
    server.close()


@contextlib.contextmanager
def _peer() -> Iterator[str]:
    process = subprocess.Popen(
        [sys.executable, "-m", "bench.transport", "--serve"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
    )
    try:
        assert process.stdout is not None
        port = int(process.stdout.readline())
        yield f"http://127.0.0.1:{port}"
    finally:
        assert process.stdin is not None
        process.stdin.close()
        process.wait(10)


# ---- the client -------------------------------------------------------------------------------


def _request(url: str) -> HttpRequest:
    headers = {
        "Host": CI_HOST,
        "Content-Type": "application/xml",
        "Content-Length": str(len(BODY)),
        "Content-MD5": base64.b64encode(hashlib.md5(BODY).digest()).decode(),  # noqa: S324
    }
    return HttpRequest("POST", url + "/jobs", signed(headers), BODY)


async def _batch(sender: _Sender, request: HttpRequest, calls: int, concurrency: int) -> float:
    """CPU µs per call for `calls` requests, `concurrency` at a time."""

    async def worker(count: int) -> None:
        for _ in range(count):
            await sender.send(request, connect_timeout=5, total_timeout=10)

    started = time.process_time()
    await asyncio.gather(*(worker(calls // concurrency) for _ in range(concurrency)))
    return (time.process_time() - started) / (calls // concurrency * concurrency) * 1e6


async def _measure(
    names: list[str], calls: int, reps: int, concurrency: int
) -> dict[tuple[str, int], list[float]]:
    results: dict[tuple[str, int], list[float]] = {}
    with _peer() as url:
        request = _request(url)
        senders = {name: IMPLEMENTATIONS[name]() for name in names}
        try:
            for sender in senders.values():  # warm: connections, caches
                await _batch(sender, request, max(concurrency, 200), concurrency)
            for rep in range(reps):
                order = names if rep % 2 == 0 else names[::-1]
                for level in sorted({1, concurrency}):
                    for name in order:
                        figure = await _batch(senders[name], request, calls, level)
                        results.setdefault((name, level), []).append(figure)
        finally:
            for sender in senders.values():
                await sender.close()
    return results


Results = dict[tuple[str, int], list[float]]


def _run(main: Coroutine[Any, Any, Results], loop: str) -> Results:
    if loop == "uvloop":
        import uvloop

        results: Results = uvloop.run(main)
        return results
    return asyncio.run(main)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.transport", description=__doc__)
    parser.add_argument("--calls", type=int, default=2000, help="requests per batch")
    parser.add_argument("--reps", type=int, default=5)
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--loop", choices=("uvloop", "asyncio"), default="uvloop")
    parser.add_argument("--impl", choices=("both", *IMPLEMENTATIONS), default="both")
    parser.add_argument("--serve", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.serve:
        asyncio.run(_serve())
        return
    names = list(IMPLEMENTATIONS) if args.impl == "both" else [args.impl]
    coroutine = _measure(names, args.calls, args.reps, args.concurrency)
    results = _run(coroutine, args.loop)
    print(f"client CPU µs per request ({args.loop}, {args.calls} calls x {args.reps} reps)")
    for (name, level), figures in sorted(results.items(), key=lambda item: item[0][::-1]):
        print(
            f"  {name:8} concurrency {level:3}: {statistics.median(figures):7.1f}"
            f"  [{min(figures):.1f}-{max(figures):.1f}]"
        )


if __name__ == "__main__":
    main()
