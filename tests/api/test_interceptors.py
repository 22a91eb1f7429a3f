"""`ObservabilityInterceptor` on its own, in a real grpc.aio server on loopback with trivial
handlers: the request id in the scope and the trailers, the access-log line and the metrics of
each ending (OK, an abort through `gateway.status`, a bug, a deadline, a cancellation, an abort
its client left before), and the in-flight count a drain waits for."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Iterable, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any, cast

import grpc
import pytest

from gateway import rpc_context
from gateway.api.interceptors import DEADLINE_SKEW_S, InFlight, ObservabilityInterceptor
from gateway.api.metrics import GatewayMetrics
from gateway.errors import ShuttingDown, UpstreamError
from gateway.logs import ACCESS_LOGGER
from gateway.status import abort
from tests.fixtures.logs import attached

WAIT_S = 10.0
SERVICE = "test.Probe"
HEALTH = "grpc.health.v1.Health"  # an ops service by name: DEBUG lines, not in flight
Context = grpc.aio.ServicerContext[Any, Any]


class AccessLines(logging.Handler):
    """The access log's structured fields, one dict per RPC, awaitable as they come."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.lines: list[dict[str, Any]] = []
        self._changed = asyncio.Event()

    def emit(self, record: logging.LogRecord) -> None:
        fields = dict(record.__dict__.get("fields", {}))
        self.lines.append({"level": record.levelname, "msg": record.getMessage(), **fields})
        self._changed.set()

    async def line(self, index: int) -> dict[str, Any]:
        """Line `index` (0-based), waiting for it: an error's line may follow its status."""
        async with asyncio.timeout(WAIT_S):
            while len(self.lines) <= index:  # bounded by the timeout
                self._changed.clear()
                await self._changed.wait()
        return self.lines[index]


@pytest.fixture
def access() -> Iterator[AccessLines]:
    with attached(AccessLines(), ACCESS_LOGGER) as lines:
        yield lines


@dataclass
class Served:
    channel: grpc.aio.Channel
    metrics: GatewayMetrics
    in_flight: InFlight
    # Set by the `Held` handler once it runs; released by the test.
    held: asyncio.Event
    release: asyncio.Event
    # Set by the `AnswersTheGone` handler when grpc cancels it for its client's leaving.
    gone: asyncio.Event

    def unary(self, method: str, service: str = SERVICE) -> Any:
        return self.channel.unary_unary(f"/{service}/{method}", None, None)

    def handled(self, method: str, kind: str = "unary") -> dict[str, float]:
        """`grpc_server_handled_total` of `method`, by code."""
        return {
            labels["grpc_code"]: value
            for labels, value in self.metrics.samples("grpc_server_handled_total")
            if labels["grpc_method"] == method and labels["grpc_type"] == kind
        }


def pairs(metadata: object) -> list[tuple[str, str | bytes]]:
    """Metadata as pairs (grpc's stubs type the items loosely)."""
    return list(cast("Iterable[tuple[str, str | bytes]]", metadata or ()))


@asynccontextmanager
async def serving() -> AsyncIterator[Served]:
    held, release, gone = asyncio.Event(), asyncio.Event(), asyncio.Event()

    async def ok(request: bytes, context: Context) -> bytes:
        # Replaces the trailing metadata wholesale, as the servicer does with x-ci-request-id.
        context.set_trailing_metadata((("x-handler", "kept"),))
        rpc_context.note_answer(ci_request_id="ci-ok-1")
        scope = rpc_context.current()
        assert scope is not None
        scope.attempts += 2  # what the CI client's telemetry counts
        return b"pong:" + scope.request_id.encode()

    async def fails(request: bytes, context: Context) -> bytes:
        await abort(
            context,
            UpstreamError(http_status=404, code="NoSuchKey", message="gone", request_id="ci-err"),
        )

    async def bug(request: bytes, context: Context) -> bytes:
        context.set_trailing_metadata((("x-handler", "kept"),))
        raise RuntimeError("a bug")

    async def held_call(request: bytes, context: Context) -> bytes:
        held.set()
        await release.wait()
        return b"released"

    async def answers_the_gone(request: bytes, context: Context) -> bytes:
        # Its answer decided as its client leaves (a watch the tracker ends for a shutdown as
        # its caller cancels): grpc's cancellation for the client comes first, the abort after.
        held.set()
        try:
            await release.wait()
        except asyncio.CancelledError:
            gone.set()
        await abort(context, ShuttingDown())

    async def stream(request: bytes, context: Context) -> AsyncIterator[bytes]:
        context.set_trailing_metadata((("x-handler", "kept"),))
        for message in (b"one", b"two"):
            yield message

    async def endless(request: bytes, context: Context) -> AsyncIterator[bytes]:
        # Never awaits: whenever the call ends, the generator is suspended at its `yield`
        # (bounded, though the caller cancels long before the end).
        for _ in range(10_000):
            yield b"x" * 65536

    async def check(request: bytes, context: Context) -> bytes:
        return b"SERVING"

    metrics, in_flight = GatewayMetrics(), InFlight()
    server = grpc.aio.server(interceptors=[ObservabilityInterceptor(metrics, in_flight)])
    unary = grpc.unary_unary_rpc_method_handler
    server.add_generic_rpc_handlers(
        (
            grpc.method_handlers_generic_handler(
                SERVICE,
                {
                    "Ok": unary(ok),
                    "Fails": unary(fails),
                    "Bug": unary(bug),
                    "Held": unary(held_call),
                    "AnswersTheGone": unary(answers_the_gone),
                    "Stream": grpc.unary_stream_rpc_method_handler(stream),
                    "Endless": grpc.unary_stream_rpc_method_handler(endless),
                },
            ),
            grpc.method_handlers_generic_handler(HEALTH, {"Check": unary(check)}),
        )
    )
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    try:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
            yield Served(channel, metrics, in_flight, held, release, gone)
    finally:
        release.set()
        await server.stop(None)


@pytest.fixture
async def served() -> AsyncIterator[Served]:
    async with serving() as running:
        yield running


async def test_ok_keeps_the_handlers_trailers_and_logs_what_the_scope_was_told(
    served: Served, access: AccessLines
) -> None:
    call = served.unary("Ok")(b"", metadata=(("x-request-id", "order-42"),), timeout=WAIT_S)
    assert await call == b"pong:order-42"  # the handler saw the caller's id in its scope
    trailing = pairs(await call.trailing_metadata())
    assert ("x-handler", "kept") in trailing and ("x-request-id", "order-42") in trailing
    line = await access.line(0)
    assert line["msg"] == "rpc" and line["level"] == "INFO"
    assert (line["grpc_method"], line["grpc_code"]) == (f"/{SERVICE}/Ok", "OK")
    assert (line["ci_request_id"], line["reason"], line["attempts"]) == ("ci-ok-1", None, 2)
    assert served.handled("Ok") == {"OK": 1.0}
    assert served.in_flight.count == 0


async def test_an_abort_is_logged_with_its_reason_and_keeps_the_request_id(
    served: Served, access: AccessLines
) -> None:
    call = served.unary("Fails")(b"", metadata=(("x-request-id", "err-1"),), timeout=WAIT_S)
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await call
    assert caught.value.code() == grpc.StatusCode.NOT_FOUND
    assert ("x-request-id", "err-1") in pairs(caught.value.trailing_metadata())
    line = await access.line(0)
    assert line["grpc_code"] == "NOT_FOUND"
    assert (line["reason"], line["ci_request_id"]) == ("UPSTREAM_NOT_FOUND", "ci-err")
    assert served.handled("Fails") == {"NOT_FOUND": 1.0}


async def test_a_bug_is_unknown_and_still_returns_the_request_id(
    served: Served, access: AccessLines
) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await served.unary("Bug")(b"", metadata=(("x-request-id", "bug-1"),), timeout=WAIT_S)
    assert caught.value.code() == grpc.StatusCode.UNKNOWN
    trailing = pairs(caught.value.trailing_metadata())
    assert ("x-request-id", "bug-1") in trailing and ("x-handler", "kept") in trailing
    line = await access.line(0)
    assert (line["grpc_code"], line["reason"]) == ("UNKNOWN", None)
    assert served.handled("Bug") == {"UNKNOWN": 1.0}


async def test_a_stream_gets_the_same_treatment(served: Served, access: AccessLines) -> None:
    call = served.channel.unary_stream(f"/{SERVICE}/Stream", None, None)(
        b"", metadata=(("x-request-id", "stream-1"),), timeout=WAIT_S
    )
    assert [message async for message in call] == [b"one", b"two"]
    trailing = pairs(await call.trailing_metadata())
    assert ("x-request-id", "stream-1") in trailing and ("x-handler", "kept") in trailing
    line = await access.line(0)
    assert (line["grpc_method"], line["grpc_code"]) == (f"/{SERVICE}/Stream", "OK")
    assert served.handled("Stream", kind="server_stream") == {"OK": 1.0}


async def test_a_stream_cancelled_while_grpc_sends_is_logged_cancelled_and_crashes_nothing(
    served: Served, access: AccessLines
) -> None:
    """The generator is left suspended at its `yield` when grpc gives up on the call, and the
    event loop closes it only later, after grpc has released the call: the access line must not
    read anything from the call then (its peer was read from freed memory: SIGSEGV, the whole
    gateway gone; a reflection stream any caller may open was enough), and the ending is the
    cancellation it was, not UNKNOWN."""
    rounds = 3
    for index in range(rounds):
        call = served.channel.unary_stream(f"/{SERVICE}/Endless", None, None)(b"", timeout=WAIT_S)
        assert await call.read() == b"x" * 65536
        call.cancel()
        line = await access.line(index)
        assert line["grpc_code"] == "CANCELLED"
        assert line["peer"].startswith("ipv4:127.0.0.1:")
    assert served.handled("Endless", kind="server_stream") == {"CANCELLED": float(rounds)}
    assert await served.in_flight.wait_idle(WAIT_S) is True
    assert (await served.unary("Ok")(b"", timeout=WAIT_S)).startswith(b"pong:")  # still serving


async def test_in_flight_counts_api_calls_until_they_end(served: Served) -> None:
    call = served.unary("Held")(b"", timeout=WAIT_S)
    async with asyncio.timeout(WAIT_S):
        await served.held.wait()
    assert served.in_flight.count == 1
    assert await served.in_flight.wait_idle(0) is False
    served.release.set()
    assert await call == b"released"
    assert await served.in_flight.wait_idle(WAIT_S) is True


async def test_a_drain_already_waiting_is_woken_when_the_last_call_ends(served: Served) -> None:
    """The drain's event exists only while it waits (no call pays for it otherwise): a wait
    begun with a call in progress, after an earlier wait timed out, ends as that call does."""
    call = served.unary("Held")(b"", timeout=WAIT_S)
    async with asyncio.timeout(WAIT_S):
        await served.held.wait()
    assert await served.in_flight.wait_idle(0) is False
    drain = asyncio.ensure_future(served.in_flight.wait_idle(WAIT_S))
    assert await served.unary("Ok")(b"", timeout=WAIT_S)  # another call in and out meanwhile
    assert not drain.done()
    served.release.set()
    assert await call == b"released"
    async with asyncio.timeout(WAIT_S):
        assert await drain is True
    assert served.in_flight.count == 0
    assert await served.in_flight.wait_idle(0) is True


@pytest.mark.parametrize(
    ("end", "code"),
    [
        ("deadline", "DEADLINE_EXCEEDED"),
        ("cancel", "CANCELLED"),
        # The client's own deadline timer fires first and cancels (its clock started before
        # the request left): the gateway, whose deadline is a few ms later, sees a cancel.
        ("cancel at the deadline", "DEADLINE_EXCEEDED"),
    ],
)
async def test_a_call_that_never_answers_is_logged_as_what_ended_it(
    served: Served, access: AccessLines, end: str, code: str
) -> None:
    timeout = WAIT_S if end == "cancel" else 0.5
    sent = asyncio.get_running_loop().time()
    call = served.unary("Held")(b"", timeout=timeout)
    async with asyncio.timeout(WAIT_S):
        await served.held.wait()
    if end == "cancel":
        call.cancel()
    elif end == "cancel at the deadline":
        early = DEADLINE_SKEW_S / 5  # well inside the skew, far from the gateway's deadline
        asyncio.get_running_loop().call_at(sent + timeout - early, call.cancel)
    with pytest.raises((grpc.aio.AioRpcError, asyncio.CancelledError)):
        await call
    line = await access.line(0)
    assert line["grpc_code"] == code
    assert served.handled("Held") == {code: 1.0}
    assert await served.in_flight.wait_idle(WAIT_S) is True


async def test_an_abort_whose_client_has_gone_is_logged_cancelled_not_unknown(
    served: Served, access: AccessLines
) -> None:
    """The status the gateway chose cannot be sent once its client has gone (grpc's batch
    fails): the call ended as a cancellation does, and its line keeps the reason the gateway
    was ending it with. It was UNKNOWN, a status nobody sent (a drain's watches whose clients
    left as the tracker ended them were counted so)."""
    call = served.unary("AnswersTheGone")(b"", timeout=WAIT_S)
    async with asyncio.timeout(WAIT_S):
        await served.held.wait()
    call.cancel()
    line = await access.line(0)
    assert served.gone.is_set()  # the abort came after grpc's cancellation for its client
    assert (line["grpc_code"], line["reason"]) == ("CANCELLED", "SHUTTING_DOWN")
    assert served.handled("AnswersTheGone") == {"CANCELLED": 1.0}
    assert await served.in_flight.wait_idle(WAIT_S) is True


async def test_ops_calls_log_at_debug_and_are_not_in_flight(
    served: Served, access: AccessLines
) -> None:
    call = served.unary("Check", service=HEALTH)(b"", timeout=WAIT_S)
    assert await call == b"SERVING"
    assert pairs(await call.trailing_metadata())[-1][0] == "x-request-id"  # a generated one
    line = await access.line(0)
    assert (line["level"], line["grpc_method"]) == ("DEBUG", f"/{HEALTH}/Check")
    assert served.in_flight.count == 0


async def test_an_unknown_method_is_left_to_grpc(served: Served, access: AccessLines) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await served.unary("Nope")(b"", timeout=WAIT_S)
    assert caught.value.code() == grpc.StatusCode.UNIMPLEMENTED
    assert access.lines == []  # no handler, no call of ours: nothing to log or count
