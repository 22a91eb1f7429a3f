"""The callback port faces the Internet: a peer that sends its request a few bytes a minute
must not keep a socket (and a file descriptor of the gateway's) for long. Without a bound,
aiohttp waits an hour for a request's headers and as long as it takes for its body."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import cast

import pytest

from gateway.jobs.callbacks import CallbackReceiver
from gateway.jobs.fanout import LocalFanOut
from gateway.jobs.tracking import JobDescriber
from tests.conftest import BUCKET, REGION
from tests.fixtures.logs import refusing_malformed
from tests.jobs.helpers import TOKEN

BOUND_S = 0.5


@pytest.fixture
async def receiver() -> AsyncIterator[tuple[str, int]]:
    # Neither CI nor the fan-out is reached: the requests end before a body is parsed.
    server = CallbackReceiver(
        token=TOKEN,
        client=cast(JobDescriber, None),
        fanout=LocalFanOut(),
        idle_timeout_s=BOUND_S,
        body_timeout_s=BOUND_S,
    )
    base = await server.start("127.0.0.1:0")
    host, _, port = base.removeprefix("http://").rpartition(":")
    try:
        yield host, int(port)
    finally:
        await server.close()


async def _closed_within(reader: asyncio.StreamReader, seconds: float) -> bytes:
    """Everything the server sends until it closes; fails if it has not closed by then."""
    return await asyncio.wait_for(reader.read(), seconds)


async def test_a_request_whose_headers_never_end_is_cut_off(receiver: tuple[str, int]) -> None:
    reader, writer = await asyncio.open_connection(*receiver)
    writer.write(b"POST /ci-callback/x/y/z HTTP/1.1\r\nHost: a\r\n")  # and never the rest
    await writer.drain()
    try:
        assert await _closed_within(reader, 10 * BOUND_S) == b""
    finally:
        writer.close()


async def test_a_body_that_trickles_in_is_refused_408(receiver: tuple[str, int]) -> None:
    reader, writer = await asyncio.open_connection(*receiver)
    path = f"/ci-callback/{TOKEN}/{BUCKET}/{REGION}"
    writer.write(f"POST {path} HTTP/1.1\r\nHost: a\r\nContent-Length: 4096\r\n\r\n<Resp".encode())
    await writer.drain()
    try:
        answer = await _closed_within(reader, 10 * BOUND_S)
    finally:
        writer.close()
    assert answer.startswith(b"HTTP/1.1 408 ")


@pytest.mark.parametrize(
    "request_line",
    [
        "POST {path} HTTP/1.7",  # a version aiohttp's parser refuses
        "POST {path}\x01 HTTP/1.1",  # a control character in the path
    ],
    ids=["version", "path"],
)
async def test_a_request_aiohttp_cannot_parse_logs_neither_the_token_nor_a_traceback(
    receiver: tuple[str, int], request_line: str
) -> None:
    """aiohttp logs such a request at ERROR with its parser's exception, which quotes the
    request line, and so the path with the callback token (the access log is off for that
    reason). Anyone on the Internet can send one: one WARNING line, no token, no traceback."""
    path = f"/ci-callback/{TOKEN}/{BUCKET}/{REGION}"
    request = f"{request_line.format(path=path)}\r\nHost: a\r\n\r\n".encode("latin-1")
    answer, refused, logged = await refusing_malformed(*receiver, request, 10 * BOUND_S)
    assert answer.startswith(b"HTTP/1.0 400 ")
    assert refused["msg"].startswith("callback request refused (400)")
    assert TOKEN not in logged
