"""Fixtures for job tracking: a real Redis server, gateways with tracking settings, a clock.

`redis_url` starts Debian's `redis-server` once per session on a free loopback port, without
persistence, and waits for it by reading its "Ready to accept connections" line and then
answering PING, both bounded in time; `redis_server` starts one of the test's own, which the
test may stop and start again (outages). `.ci/run` installs the package when it is missing.
"""

from __future__ import annotations

import contextlib
import selectors
import shutil
import socket
import subprocess
import time
from collections.abc import AsyncIterator, Iterator

import pytest
import redis.asyncio as aioredis

REDIS_START_TIMEOUT_S = 10.0
REDIS_START_ATTEMPTS = 3  # a free port picked here may be taken before redis binds it


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _wait_ready(process: subprocess.Popen[bytes]) -> bool:
    """True once redis logs readiness; False if it exits (or stays silent) first."""
    assert process.stdout is not None
    deadline = time.monotonic() + REDIS_START_TIMEOUT_S
    buffer = b""
    with selectors.DefaultSelector() as selector:
        selector.register(process.stdout, selectors.EVENT_READ)
        while (left := deadline - time.monotonic()) > 0:  # bounded by the deadline
            if not selector.select(timeout=left):
                return False
            chunk = process.stdout.read1(4096)  # type: ignore[attr-defined]
            if not chunk:
                return False  # exited
            buffer += chunk
            if b"Ready to accept connections" in buffer:
                return True
    return False


def _ping(port: int) -> bool:
    with socket.create_connection(("127.0.0.1", port), timeout=REDIS_START_TIMEOUT_S) as sock:
        sock.sendall(b"PING\r\n")
        return sock.recv(64).startswith(b"+PONG")


class RedisServer:
    """One `redis-server` on a loopback port, without persistence, that a test may stop and
    start again on the same port: an outage, then a restart that comes back empty."""

    def __init__(self, binary: str, port: int) -> None:
        self._binary = binary
        self.port = port
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> bool:
        """True once it answers PING; False (and nothing left running) if it did not start."""
        process = subprocess.Popen(
            [self._binary, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
             "--appendonly", "no", "--loglevel", "notice"],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
        )  # fmt: skip
        self._process = process
        if _wait_ready(process) and _ping(self.port):
            return True
        self.stop()
        return False

    def stop(self) -> None:
        process, self._process = self._process, None
        if process is None:
            return
        process.terminate()
        try:
            process.wait(timeout=REDIS_START_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=REDIS_START_TIMEOUT_S)
        if process.stdout is not None:
            process.stdout.close()


def start_redis_server() -> RedisServer:
    binary = shutil.which("redis-server")
    if binary is None:
        pytest.fail("redis-server is not installed (apt-get install redis-server; .ci/run does)")
    for _ in range(REDIS_START_ATTEMPTS):
        server = RedisServer(binary, free_port())
        if server.start():
            return server
    pytest.fail("redis-server did not start")


@pytest.fixture(scope="session")
def redis_url() -> Iterator[str]:
    server = start_redis_server()
    try:
        yield server.url
    finally:
        server.stop()


@pytest.fixture
def redis_server() -> Iterator[RedisServer]:
    """A Redis of the test's own, which it may stop and restart (the session's is shared)."""
    server = start_redis_server()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
async def redis_client(redis_url: str) -> AsyncIterator[aioredis.Redis]:
    """A client on a flushed database: no test sees another's keys."""
    client = aioredis.Redis.from_url(redis_url)
    await client.flushdb()
    try:
        yield client
    finally:
        with contextlib.suppress(Exception):
            await client.aclose()
