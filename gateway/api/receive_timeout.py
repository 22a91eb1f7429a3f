"""A bound on the time an API call's request may take to come (`server.request_receive_timeout_s`).

Why: the bounds on API calls and on the memory their requests hold count a call whose request is
still coming (`gateway.api.interceptors.InFlight`, `gateway.api.request_memory`), but do not end
it, and grpc waits for a request for as long as its client keeps the call open. A client (any
local process in the sidecar layout; any authenticated one in shared mode) that opened 128 calls
and never finished their requests (headers only, or all but the last byte) had the requests'
bound full, and every new call refused OVERLOADED, for as long as it kept them; 1,824 such calls
did the same to the arrival cap before that bound. Every RPC of the API has one request, which a
gRPC client sends with the call's headers, so waiting long for one serves only such clients.

How a call is ended once its time is up:

- `ReceiveDeadline` is one timer for every call still arriving: `InFlight` keeps those calls
  oldest first, each with the time it arrived, and arms the timer when a call arrives and none
  is armed. It fires at the oldest call's deadline, ends every call whose time is up, and is
  armed again for the next oldest, or not at all when no call is arriving. Nothing per call but
  the arrival's time: calls whose request comes with their headers (all real ones) have left
  long before their deadline, and under a steady load the timer fires about once a bound.
- The call's count (in flight, and its request memory) is given back at once, and its task is
  cancelled while it waits for its request; the wait answers the cancellation with
  DEADLINE_EXCEEDED (`RequestTimeout`), through the method's wrapped handler as a gate's
  refusal is (`gateway._chain.NotRead`): counted, logged, with its request id.
- That needs the request read by the gateway's own code (`read_own_request`). grpc.aio reads a
  unary request itself, before any handler runs, and a task cancelled in that read ends without
  a status: grpc keeps the call, and what it buffered for it, until the client goes (measured:
  no status within seconds, grpc's call task still waiting). So the API's methods are served as
  client streams that read their one request with `context.read()` (no async generator per
  call, as iterating the requests would make), where a cancellation can be answered. The
  method's own wrapped handler runs on the request as before, labelled by its own kind.
- A client that ends its side without a request: grpc's own unary read answered nothing and
  kept the call (measured); here INVALID_ARGUMENT (`MalformedRequest`), at once.
"""

from __future__ import annotations

import asyncio
import inspect
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import TYPE_CHECKING, Any

import grpc
from grpc.aio import EOF  # type: ignore[attr-defined]  # not in grpc-stubs

from gateway._chain import NotRead, Unread
from gateway.errors import GatewayError, MalformedRequest, RequestTimeout

if TYPE_CHECKING:  # grpc's RpcMethodHandler and ServicerContext are generic in its stubs only
    Handler = grpc.RpcMethodHandler[Any, Any]
    Context = grpc.aio.ServicerContext[Any, Any]

Behavior = Callable[..., Any]
# A call still arriving, as `InFlight` keeps it: what its request is counted for, and when it
# arrived (`time.monotonic`).
Arrival = tuple[int, float]


class ReceiveDeadline:
    """One timer that ends the calls in `arriving` (oldest first, as a dict keeps insertion
    order) `timeout_s` after their arrival: `expire(task)` takes each late one out of its
    owner's counts (and out of `arriving`), then its task, if not done, is cancelled where it
    waits for its request; armed by `arm` while any call is arriving, and by itself for the
    next oldest after each firing.

    The wait answers its cancellation by asking `taken_back`: the one place that tells this
    deadline's cancellation from any other and undoes it, for every reader (`read_own_request`
    for the API's calls, `gateway.api.ops_reads.OpsReads` for health and reflection)."""

    __slots__ = ("_arriving", "_cancelled", "_expire", "_timer", "armed", "timeout_s")

    def __init__(
        self,
        timeout_s: float,
        arriving: dict[asyncio.Task[Any], Arrival],
        expire: Callable[[asyncio.Task[Any]], None],
    ) -> None:
        self.timeout_s = timeout_s
        self._arriving = arriving
        self._expire = expire
        self._timer: asyncio.TimerHandle | None = None
        self.armed = False
        """Whether a timer is pending (checked by the arrival, which arms one when not)."""
        # The tasks this deadline cancelled, until their wait answers it (`taken_back`), each
        # with the refusal it ends with (None: the time-out's own, `RequestTimeout`).
        self._cancelled: dict[asyncio.Task[Any], GatewayError | None] = {}

    def arm(self) -> None:
        """A call arrived and no timer is pending: one, for the oldest call's deadline."""
        self._schedule(time.monotonic())

    def close(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self.armed = False

    def _schedule(self, now: float) -> None:
        for _, arrived in self._arriving.values():  # the oldest
            delay = max(0.0, arrived + self.timeout_s - now)
            self._timer = asyncio.get_running_loop().call_later(delay, self._fire)
            self.armed = True
            return
        self._timer = None
        self.armed = False

    def _fire(self) -> None:
        now = time.monotonic()
        due = now - self.timeout_s
        late = []
        for task, (_, arrived) in self._arriving.items():
            if arrived > due:
                break
            late.append(task)
        for task in late:
            self._expire(task)
            self.end(task, None)
        self._schedule(now)

    def end(self, task: asyncio.Task[Any], refusal: GatewayError | None) -> None:
        """`task`'s wait for its request ended now, to answer `refusal` (None: the time-out's,
        as `_fire` ends it; `OpsReads` also ends a read for a newer one so), the owner having
        already taken it out of its counts. Cancelled where it waits, which asks `taken_back`."""
        if not task.done():  # ended meanwhile: nothing waits to be ended
            self._cancelled[task] = refusal
            task.cancel()

    def taken_back(self, task: asyncio.Task[Any], after: str | None = None) -> NotRead | None:
        """Asked by `task`, whose wait for a request a cancellation has just ended: if this
        deadline cancelled it, that cancellation taken back (`uncancel`, once, for the one
        `cancel`: the call goes on, to send its status) and the stand-in for the request: the
        refusal `end` was given, else `RequestTimeout` (`after`: what the time ran from, when
        not the call's start); None for
        any other cancellation (its client, its deadline, the server's stop), which the wait
        lets through."""
        if task not in self._cancelled:
            return None
        refusal = self._cancelled.pop(task)
        task.uncancel()
        return NotRead(refusal or RequestTimeout(self.timeout_s, after=after))

    def forget(self, task: asyncio.Task[Any]) -> None:
        """`task`'s wait has ended without answering this deadline's cancellation (it ended
        otherwise first): nothing of it kept."""
        self._cancelled.pop(task, None)


def read_own_request(
    method: str,
    handler: Handler,
    deadline: ReceiveDeadline | None,
) -> Handler:
    """`handler` (one request) served as a client stream that reads its request itself, with
    the same deserializer and serializer: the request comes from `context.read()` (or, for a
    call a gate refused, the stand-in `gateway._chain.unread` gives), and `handler`'s behaviour
    runs on it. A read cancelled because the call's time ran out (`deadline`'s cancellation:
    `ReceiveDeadline.taken_back`) gets `RequestTimeout` as the stand-in for the request; a
    client that ends its side without one, `MalformedRequest`."""
    assert not handler.request_streaming
    name = method.rsplit("/", 1)[-1]

    def on_cancelled() -> NotRead | None:
        """The read was cancelled: the stand-in for a request whose time ran out, or None."""
        task = asyncio.current_task()
        if deadline is None or task is None:
            return None  # no time-out: its client, its deadline, or the server's stop
        return deadline.taken_back(task)

    async def request_of(requests: Any, context: Context) -> Any:
        if isinstance(requests, Unread):  # a gate refused the call: nothing is read
            return requests.stand_in
        try:
            request = await context.read()
        except asyncio.CancelledError:
            if (stand_in := on_cancelled()) is None:
                raise
            return stand_in
        if request is EOF:  # the client ended its side without a request
            return NotRead(MalformedRequest(name))
        return request

    deserializer, serializer = handler.request_deserializer, handler.response_serializer
    if not handler.response_streaming:
        unary: Behavior | None = handler.unary_unary
        assert unary is not None and inspect.iscoroutinefunction(unary)

        async def answer(requests: Any, context: Context) -> Any:
            # `request_of`, inline: a coroutine less on every call of the busiest methods.
            if isinstance(requests, Unread):
                return await unary(requests.stand_in, context)
            try:
                request = await context.read()
            except asyncio.CancelledError:
                request = on_cancelled()
                if request is None:
                    raise
            else:
                if request is EOF:
                    request = NotRead(MalformedRequest(name))
            return await unary(request, context)

        return grpc.stream_unary_rpc_method_handler(answer, deserializer, serializer)
    return streaming_after_read(handler, request_of)


RequestOf = Callable[[Any, "Context"], Awaitable[Any]]


def streaming_after_read(handler: Handler, request_of: RequestOf) -> Handler:
    """`handler` (one request, a stream of answers) served as a bidirectional stream whose one
    request `request_of(requests, context)` reads, then `handler`'s behaviour runs on it (an
    async generator, or a coroutine that writes with `context.write`)."""
    assert handler.unary_stream is not None
    return streaming_after(handler, request_of, grpc.stream_stream_rpc_method_handler)


def streaming_after(handler: Handler, first: RequestOf, make: Callable[..., Handler]) -> Handler:
    """`handler` (a stream of answers) whose behaviour runs on what `first(requests, context)`
    gives, served by `make` (grpc's constructor of the kind of handler to serve it as): one
    piece for the two shapes a streaming behaviour takes (an async generator, or a coroutine
    that writes with `context.write`)."""
    deserializer, serializer = handler.request_deserializer, handler.response_serializer
    streams: Behavior | None = handler.stream_stream or handler.unary_stream
    assert streams is not None
    if inspect.isasyncgenfunction(streams):

        async def answers(requests: Any, context: Context) -> AsyncIterator[Any]:
            async for message in streams(await first(requests, context), context):
                yield message

        return make(answers, deserializer, serializer)
    assert inspect.iscoroutinefunction(streams)  # writes with `context.write`

    async def writes(requests: Any, context: Context) -> None:
        await streams(await first(requests, context), context)

    return make(writes, deserializer, serializer)
