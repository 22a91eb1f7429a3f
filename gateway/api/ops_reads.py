"""Health and reflection calls read their requests themselves: each read bounded in time, and
in number where grpc may buffer a large request for it.

Why: anyone who reaches a port may call health and reflection (no client credentials), and grpc
buffers a call's request, as its bytes come, before any of the gateway's code sees it, up to
the port's receive limit, for as long as the client keeps the call open. The API's own bounds on
that (`server.max_request_memory_mb`, `server.request_receive_timeout_s`) count API calls only,
and `gateway.api.ops_calls` counts these calls, not what they buffer. Measured on a `serve`
process: 180 Watch streams on the API port (the stream places of `server.max_ops_calls`), each
sending all but the last byte of a 128 KiB request, held RSS +27 MiB, 180 reflection streams
+24 MiB, 180 Watches on the health port (then 64 KiB) +16 MiB; none was ever ended.

How (`OpsReads`, one per port, `gateway.api.server.OpsGuards`):

- Every health and reflection method is served as a stream that reads its requests with
  `context.read()` (`wrap`, outermost, so the observability wrapper inside still counts a Check
  as `unary`), as the API's methods are (`gateway.api.receive_timeout`): grpc reads nothing of a
  stream's request until asked, and a read can be ended with a status. A unary method's one
  request is read before its handler runs; a reflection stream's requests, each as the servicer
  asks for the next.
- Each read has `timeout_s` (`server.request_receive_timeout_s`): one `ReceiveDeadline` for
  every read in progress on the port ends the late ones DEADLINE_EXCEEDED (`RequestTimeout`),
  through the method's wrapped handler (`gateway._chain.NotRead`), as a refusal is. For a
  reflection stream that is the wait for its next request: a tool that keeps its stream open
  while it does something else (grpcurl, during the call it made) has it ended, and its
  reflection client opens a new one when it next asks (grpcurl's sends a request again, once,
  on a new stream when the server has closed the one it had).
- Where one read may buffer more than a call's HTTP/2 window (8 KiB,
  `gateway.api.server.REQUEST_WINDOW_OPTIONS`), on the API port (`server.max_request_bytes`
  for every method), reads at once are bounded (`places`: `READ_MEMORY` worth of the largest
  request, 8 at the defaults). Streams may not take the last quarter of the places, which only
  Checks (and health's `List`) may use, as in `gateway.api.ops_calls`: a stranger holding
  reflection streams must not get a load balancer's Checks refused. A real client's request
  comes with its headers, so its read takes a moment and its place is free again.
- A read beyond them is not refused: it ends another (`_make_room`), the oldest read of the
  peer (address, without the port) that would hold the most, which gets RESOURCE_EXHAUSTED
  (OVERLOADED, with RetryInfo) instead. Refusing the newer read let one client that kept the
  places full, with streams that never send a request or wait for a next one, opened again as
  soon as the time-out ended them (and a place was free again), have every other client's
  reflection refused for as long as it liked, and on the API port, where the places are few,
  its stalled Checks the load balancer's too. Now a peer holding places loses them to any other
  peer's newer read first, so one peer never keeps a place another needs; and among one peer's
  reads (every client's, behind one NAT, proxy or in the sidecar layout) the one that has waited
  longest goes, which is one that stalls: a real read is over in a moment. What remains: a
  client whose peer holds most places (or all of them, as one sidecar) can end a real read by
  bringing `places` newer ones within that moment, again and again, which is a flood of calls,
  bounded as calls are (`server.max_ops_calls`, the connections'); by stalling it gains nothing.
- On the health port grpc refuses a request larger than `OPS_MAX_REQUEST_BYTES` (4 KiB) from
  its length prefix, before buffering it (`gateway.api.server.health_server_options`), so a read
  there holds no more than the window: the reads are timed, not counted, and nothing a
  stranger holds can get kubelet's Check refused for want of a place to read.
"""

from __future__ import annotations

import asyncio
import inspect
import time
from collections import Counter
from collections.abc import AsyncIterator, Callable
from typing import TYPE_CHECKING, Any

import grpc
from grpc.aio import EOF  # type: ignore[attr-defined]  # not in grpc-stubs

from gateway._chain import OPS_PREFIXES, MethodInterceptor, NotRead, Unread
from gateway.api.ops_calls import UNARY
from gateway.api.receive_timeout import Arrival, ReceiveDeadline, streaming_after_read
from gateway.api.servicer import peer_address
from gateway.errors import MalformedRequest, Overloaded

if TYPE_CHECKING:  # grpc's RpcMethodHandler and ServicerContext are generic in its stubs only
    Handler = grpc.RpcMethodHandler[Any, Any]
    Context = grpc.aio.ServicerContext[Any, Any]

Behavior = Callable[..., Any]

READ_MEMORY = 2**20
"""What the health and reflection reads of one port may buffer at once, counted at the port's
receive limit each: 8 reads of the API's 128 KiB (a real client's read takes a moment)."""
WHAT = "health and reflection requests being read"
ENDED = f"{WHAT} (this one, the oldest of the peer holding the most, ended for a newer one)"
AFTER_ANSWER = "the stream's last answer"


def read_places(read_bytes: int) -> int:
    """Reads at once within `READ_MEMORY`, `read_bytes` each: at least one."""
    return max(1, READ_MEMORY // read_bytes)


def check_reserve(places: int) -> int:
    """Of `places`, those streams may not take (a quarter, at least one), kept for Checks; none
    of a single place, which streams need too."""
    return max(1, places // 4) if places > 1 else 0


class OpsReads(MethodInterceptor):
    def __init__(self, timeout_s: float, places: int | None = None) -> None:
        """`timeout_s`: the time each read may take. `places`: reads at once (None: not
        counted, where a read buffers no more than the window)."""
        self.places = places
        self._stream_places = 0 if places is None else places - check_reserve(places)
        # The reads in progress, oldest first, each with when it began (the count unused); and
        # where places are counted, the places they hold, each with its peer and whether it is a
        # stream's (`_take_place`), and how many are.
        self._reading: dict[asyncio.Task[Any], Arrival] = {}
        self._places: dict[asyncio.Task[Any], tuple[str, bool]] = {}
        self._stream_reads = 0
        self._deadline = ReceiveDeadline(timeout_s, self._reading, self._expire)

    @property
    def reading(self) -> int:
        """Reads in progress."""
        return len(self._reading)

    def held(self) -> Counter[str]:
        """Places held, by peer address (none where places are not counted)."""
        return Counter(peer for peer, _ in self._places.values())

    @property
    def deadline_armed(self) -> bool:
        return self._deadline.armed

    def close(self) -> None:
        """The port's server has stopped: no timer left behind."""
        self._deadline.close()

    def wrap(self, method: str, handler: Handler) -> Handler:
        if handler is None or not method.startswith(OPS_PREFIXES):
            return handler
        stream = method not in UNARY
        if handler.request_streaming:
            return self._reading_each(handler, stream)
        return self._reading_one(method, handler, stream)

    async def read(self, context: Context, stream: bool, after: str | None = None) -> Any:
        """The call's next request (`stream`: a stream's, not a Check's): a message, EOF, or
        the `NotRead` stand-in for a read ended by the time-out or for a newer one."""
        task = asyncio.current_task()
        assert task is not None  # grpc runs every call's handler in a task of its own
        if self.places is not None:
            self._take_place(task, peer_address(context.peer()), stream)
        self._reading[task] = (0, time.monotonic())
        if not self._deadline.armed:
            self._deadline.arm()
        try:
            return await context.read()
        except asyncio.CancelledError:
            if (stand_in := self._deadline.taken_back(task, after)) is None:
                raise  # its client, its deadline, the server's stop, a newer Check
            return stand_in
        finally:
            self._reading.pop(task, None)
            self._give_place(task)
            self._deadline.forget(task)

    def _take_place(self, task: asyncio.Task[Any], peer: str, stream: bool) -> None:
        """A place for `task`'s read, from `peer`: a free one, else one another read gives up
        (`_make_room`), a stream's if streams hold all theirs. Streams hold at most theirs, and
        all reads at most `places`: each taken place is one given back when they are full."""
        assert self.places is not None
        if stream and self._stream_reads >= self._stream_places:
            self._make_room(peer, streams_only=True)
        elif len(self._places) >= self.places:
            self._make_room(peer, streams_only=False)
        self._places[task] = (peer, stream)
        self._stream_reads += stream

    def _give_place(self, task: asyncio.Task[Any]) -> None:
        held = self._places.pop(task, None)
        if held is not None:
            self._stream_reads -= held[1]

    def _make_room(self, newcomer: str, *, streams_only: bool) -> None:
        """End one read (a stream's, `streams_only`) for a newer one of `newcomer`'s: the oldest
        of the peer that would hold the most of them, the newer one counted (the module's
        docstring). There always is one: those places are full, and a peer holding none of
        them cannot hold the most alone."""
        assert self.places is not None
        reads = [
            (task, peer)
            for task, (peer, stream) in self._places.items()
            if stream or not streams_only
        ]
        held = Counter(peer for _, peer in reads)
        held[newcomer] += 1
        most = max(held.values())
        for task, peer in reads:  # oldest first
            if held[peer] == most:
                self._end(task, Overloaded(ENDED, self.places))
                return

    def _expire(self, task: asyncio.Task[Any]) -> None:
        """The deadline's: `task`'s read has taken its time, and is no longer counted. The
        deadline then cancels it where it waits, which answers (`read`)."""
        del self._reading[task]
        self._give_place(task)

    def _end(self, task: asyncio.Task[Any], refusal: Overloaded) -> None:
        """`task`'s read gives its place back now, and is cancelled where it waits by the
        deadline (`ReceiveDeadline.end`), which then answers with `refusal`, in `read`."""
        self._expire(task)
        self._deadline.end(task, refusal)

    def _reading_one(self, method: str, handler: Handler, stream: bool) -> Handler:
        """`handler` (one request) served as a client stream that reads its request itself,
        then runs `handler`'s behaviour on it (or on a refused call's stand-in)."""
        name = method.rsplit("/", 1)[-1]

        async def request_of(requests: Any, context: Context) -> Any:
            if isinstance(requests, Unread):  # a gate refused the call: nothing is read
                return requests.stand_in
            request = await self.read(context, stream)
            return NotRead(MalformedRequest(name)) if request is EOF else request

        deserializer, serializer = handler.request_deserializer, handler.response_serializer
        if not handler.response_streaming:
            unary: Behavior | None = handler.unary_unary
            assert unary is not None

            async def answer(requests: Any, context: Context) -> Any:
                response = unary(await request_of(requests, context), context)
                return await response if inspect.isawaitable(response) else response

            return grpc.stream_unary_rpc_method_handler(answer, deserializer, serializer)
        return streaming_after_read(handler, request_of)

    def _reading_each(self, handler: Handler, stream: bool) -> Handler:
        """`handler` (a client stream) given its requests as it reads them itself, each read
        timed and counted; the first one is timed from the call's start, the rest from the
        answer before."""

        async def requests_of(context: Context) -> AsyncIterator[Any]:
            after: str | None = None
            while True:
                request = await self.read(context, stream, after)
                if request is EOF:  # the client has ended its side
                    return
                yield request
                if isinstance(request, NotRead):
                    return  # refused: the guard inside ends the call
                after = AFTER_ANSWER

        def own(requests: Any, context: Context) -> Any:
            return requests if isinstance(requests, Unread) else requests_of(context)

        serializer = handler.response_serializer
        if handler.response_streaming:
            streams: Behavior | None = handler.stream_stream
            assert streams is not None and inspect.isasyncgenfunction(streams)

            async def answers(requests: Any, context: Context) -> AsyncIterator[Any]:
                async for message in streams(own(requests, context), context):
                    yield message

            return grpc.stream_stream_rpc_method_handler(
                answers, handler.request_deserializer, serializer
            )
        unary: Behavior | None = handler.stream_unary
        assert unary is not None

        async def answer(requests: Any, context: Context) -> Any:
            response = unary(own(requests, context), context)
            return await response if inspect.isawaitable(response) else response

        deserializer = handler.request_deserializer
        return grpc.stream_unary_rpc_method_handler(answer, deserializer, serializer)
