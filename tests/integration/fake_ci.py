"""A scripted HTTP peer for answers the emulator does not produce: every CI error code,
redirects, broken XML, oversize bodies, peers that never answer.

It stands in for CI only where the test is about what CI *sends back*; everything about what
the gateway sends is tested against the emulator, which verifies it the way CI does.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from html import escape

from aiohttp import web

from gateway.upstream import xml_codec
from tests.fixtures.servers import serve_app


@dataclass(frozen=True)
class Scripted:
    status: int = 200
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)
    hang: bool = False  # never answer (a slow or dead peer)
    # Hostile: each header of the request, as `{name}` and `{value}` of `echo_each`, is pasted
    # into the body and into the headers named in `echo_headers` (a middlebox echoing requests).
    echo_each: str = ""
    echo_headers: tuple[str, ...] = ()
    echo_only: tuple[str, ...] = ()  # echo only these request headers (default: all)


def error_body(code: str, message: str, request_id: str = "", trace_id: str = "") -> bytes:
    parts = [f"<Code>{code}</Code>", f"<Message>{message}</Message>"]
    if request_id:
        parts.append(f"<RequestId>{request_id}</RequestId>")
    if trace_id:
        parts.append(f"<TraceId>{trace_id}</TraceId>")
    return (
        "<?xml version='1.0' encoding='utf-8' ?>\n<Error>" + "".join(parts) + "</Error>"
    ).encode()


def many_elements_body(max_bytes: int = xml_codec.DEFAULT_MAX_BYTES) -> bytes:
    """A well-formed `<Response>` just under `max_bytes`, of far more elements than the codec
    accepts (`MAX_ELEMENTS`): parsed into a tree, ~40 MiB of libxml2 nodes."""
    element = b"<NextToken>x</NextToken>"
    count = (max_bytes - 64) // len(element)
    assert count > xml_codec.MAX_ELEMENTS
    return b"<Response>" + element * count + b"</Response>"


@dataclass
class FakeCI:
    script: list[Scripted]
    url: str = ""
    requests: list[web.Request] = field(default_factory=list)
    cancelled: asyncio.Event = field(default_factory=asyncio.Event)

    async def handle(self, request: web.Request) -> web.StreamResponse:
        await request.read()
        self.requests.append(request)
        step = self.script[min(len(self.requests), len(self.script)) - 1]
        if step.hang:
            try:
                await asyncio.Event().wait()  # until the client goes away
            except asyncio.CancelledError:
                self.cancelled.set()
                raise
        if step.echo_each or step.echo_headers:
            return echoed(request, step)
        return web.Response(status=step.status, body=step.body, headers=step.headers)


def echoed(request: web.Request, step: Scripted) -> web.Response:
    """`step`, with the request's headers pasted in: `step.body` is a template whose `{echo}`
    becomes `echo_each` once per header, and each of `echo_headers` carries them all."""
    only = {name.lower() for name in step.echo_only}
    pairs = [(k, v) for k, v in request.headers.items() if not only or k.lower() in only]
    each = [step.echo_each.format(name=escape(name), value=escape(value)) for name, value in pairs]
    body = step.body.replace(b"{echo}", "".join(each).encode())
    everything = "; ".join(f"{name}: {value}" for name, value in pairs)
    headers = {**step.headers, **dict.fromkeys(step.echo_headers, everything)}
    return web.Response(status=step.status, body=body, headers=headers)


@asynccontextmanager
async def fake_ci(*script: Scripted) -> AsyncIterator[FakeCI]:
    fake = FakeCI(list(script))
    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", fake.handle)
    # A hanging step must notice when the gateway gives up: handlers are cancelled then.
    async with serve_app(app, handler_cancellation=True) as fake.url:
        yield fake
