"""A bound on the health and reflection calls in progress at once that strangers cannot use to
get kubelet's probes refused.

Health and reflection need no client credentials (Kubernetes' probes carry none), so on a shared
gateway they are what anyone who reaches the port may use, and both can stay open for as long as
the client likes: a health Watch until the client ends it (for a service nobody serves too, as
the health protocol requires), a reflection stream until the client closes its side, and any
call whose client sent its headers but not yet its request. Each costs grpc and Python state
(about 20 KiB measured, more for a reflection stream whose client does not read its answers),
and nothing else bounds their number: the API's admission and watcher caps count API calls
only, and HTTP/2 lets one connection open any number of streams.

`OpsCallLimit` counts them from the moment a call arrives, before its request is read (a
`gate`, see `gateway._chain`), until its task ends. The API port and the health port have one
each (`gateway.api.server.OpsGuards`): kubelet's probes on the health port must not be refused
because strangers filled the API port's.

Its `limit` (`server.max_ops_calls`) is split in two, because one shared count let anyone who
reaches the health port (any pod of the cluster, in the sidecar layout) open `limit` Watch
streams and keep them, after which kubelet's `Check` was refused, liveness failed and kubelet
restarted a healthy pod, again and again:

- streams (Watch, reflection: whatever may stay open once its request is in) get
  `limit - check_places(limit)` places; the one beyond is refused at once with
  RESOURCE_EXHAUSTED (OVERLOADED, with RetryInfo), without reading its request (the API's
  `servicer.Admission`, entered by the gate and left by the task's end);
- unary calls (`Check`, and health's `List`), answered as soon as their request is read, get
  the other `check_places(limit)`, which no stream can take. Not simply left uncounted: a Check
  whose request never comes is as long-lived as a Watch, and unbounded, it would be the flood.
  On the health port (`evicts`) a Check is not refused for want of a place either: one
  beyond them ends the oldest Check still waiting for its request (RESOURCE_EXHAUSTED to that
  one) and takes its place. Kubelet's probe sends its request with its headers, so it waits
  for one event-loop turn or two; a stranger would have to bring `check_places` Checks within
  that moment to end it, where filling the places with Checks that never send their request
  (the old way to lock kubelet out) now just ends them one by one. Only when every place is
  held by a Check whose request is in (being answered: microseconds, unless its client stopped
  reading its answers) is the one beyond refused, as on the API port, where nothing is ended:
  no probe asks there, and ending a waiting call needs the call served as a client stream
  (`_reading_its_request`), which the API port's metrics would then label `client_stream`.

The stream places are shared between peers: one peer address (`peer_address`, without its
source port: a client's connections are one) takes a place only while fewer than the places no
peer holds are its own (`may_hold_another`), so alone it holds half of them at most, and it
never holds more than it leaves to everyone else. Before, one peer's Watches (their requests
sent, as a real Watch's are) held every stream place for as long as it kept them, and every
other client's reflection and Watches were refused at the gate. Ending its oldest stream for a
newcomer, as `gateway.api.ops_reads` does with stalled reads, would be wrong here: a real
Watch is long-lived, and ended, its client opens it again. A per-peer cap would bound what one
sidecar's clients may hold even with no one else there; this bound lets one peer hold half, a
second half the rest, and a client from an address holding none takes a place while any is
free. A stream is counted as its peer's once its handler runs (`_claiming`: a reflection stream
before its first request, a Watch once its request is read) and refused then, RESOURCE_EXHAUSTED
(OVERLOADED, RetryInfo, its `limit` what that peer holds); until then it holds a place of the
gate's count only. What remains: every client behind one address (a NAT, a proxy, the sidecar
layout's localhost) is one peer, and shares half the places; a client with many addresses (an
IPv6 range) takes half the rest with each, so about log2(places) of them hold every place; and
Watches that never send their request hold gate places unattributed until the receive time-out
ends them (on the API port fewer, as their reads are counted: `gateway.api.ops_reads`).

A stream whose client stops reading its answers (a reflection stream; a Watch only with a
window of nothing, its answers being a few bytes) holds its place, and the one answer grpc
cannot write, until its connection ends: on the API port by its age (`server.max_connection_age_s`
and its grace: 370 s by default, never with 0; tests/api/test_ops_stalled_writes.py), as every
long-lived stream of the gateway (WatchMediaJob's too: none has a write time-out of its own),
or sooner by keepalive where the client does not read its socket at all. There is no time-out
on the write here on purpose: a stalled stream holds no more place than a live Watch, which
may stay open for ever and is its peer's as much (the share above bounds both), and ending a
stream whose answer waits would end a slow client's too.

What a call's request may buffer, and how long it may take to come, are bounded apart, on both
ports (`gateway.api.ops_reads`): a call whose request has not come within
`server.request_receive_timeout_s` is ended, and gives its place back.
"""

from __future__ import annotations

import asyncio
import inspect
from collections import Counter
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import grpc
from grpc_health.v1 import health_pb2

from gateway._chain import OPS_PREFIXES, Metadata, MethodInterceptor, NotRead, Unread
from gateway.api.receive_timeout import streaming_after
from gateway.api.servicer import Admission, peer_address
from gateway.errors import MalformedRequest, Overloaded
from gateway.status import abort

if TYPE_CHECKING:  # grpc's RpcMethodHandler and ServicerContext are generic in its stubs only
    Handler = grpc.RpcMethodHandler[Any, Any]
    Context = grpc.aio.ServicerContext[Any, Any]

Behavior = Callable[..., Any]

STREAMS = "health watches and reflection streams"
OWN_STREAMS = f"{STREAMS} of one peer address (fewer than the places still free)"
CHECKS = "health checks"
WAITING = "health checks waiting for their request"
# The health methods answered at once (`Check`, `List`): unary both ways. Reflection has none.
UNARY: frozenset[str] = frozenset(
    f"/{service.full_name}/{method.name}"
    for service in health_pb2.DESCRIPTOR.services_by_name.values()
    for method in service.methods
    if not method.client_streaming and not method.server_streaming
)


def check_places(limit: int) -> int:
    """Of `limit` places, those kept for unary calls (Check): a tenth, at least one. Kubelet
    asks at most three at once (startup, liveness, readiness); the rest are what a stranger
    must beat within a probe's moment of waiting (the module's docstring)."""
    return max(1, limit // 10)


def stream_places(limit: int) -> int:
    """Of `limit` places, those for streams (Watch, reflection): the rest, at least one."""
    return max(1, limit - check_places(limit))


def may_hold_another(held: int, free: int) -> bool:
    """Whether a peer holding `held` stream places may take one of the `free` ones: while fewer
    than those are its own (the module's docstring)."""
    return held < free


class _Check:
    """A unary call in progress: whether its request is in yet, whether its task waits for it
    in `_reading_its_request` now, and whether a newer Check ended it."""

    __slots__ = ("answering", "evicted", "reading")

    def __init__(self) -> None:
        self.answering = False
        self.reading = False
        self.evicted = False


class _Checks:
    """The unary calls in progress, by task, oldest first, at most `places` of them; and those
    ended by a newer one, until their task ends (they answer at once, without their place)."""

    def __init__(self, places: int, *, evicts: bool) -> None:
        self.places = places
        self.evicts = evicts
        self._calls: dict[asyncio.Task[Any], _Check] = {}  # insertion order: arrival order
        self._ended: dict[asyncio.Task[Any], _Check] = {}

    def enter(self, task: asyncio.Task[Any]) -> Overloaded | None:
        if len(self._calls) >= self.places and not self._evict_oldest_waiting():
            return Overloaded(CHECKS, self.places)
        self._calls[task] = _Check()
        task.add_done_callback(self._leave)
        return None

    def get(self, task: asyncio.Task[Any]) -> _Check | None:
        return self._calls.get(task) or self._ended.get(task)

    def _evict_oldest_waiting(self) -> bool:
        """End the oldest Check whose request is not in yet, from its arrival on: one that has
        not reached `_reading_its_request` is told so there, at once; one waiting in it is
        cancelled, which it answers (cancelled anywhere else, its task would leave grpc holding
        the call). False when every Check has its request (being answered)."""
        if not self.evicts:
            return False
        # At most `places` to look at (a tenth of `max_ops_calls`), only once they are all taken.
        for task, check in self._calls.items():
            if not check.answering:
                del self._calls[task]  # its place is free from now on
                self._ended[task] = check
                check.evicted = True
                if check.reading:
                    task.cancel()
                return True
        return False

    def _leave(self, task: asyncio.Task[Any]) -> None:
        if self._calls.pop(task, None) is None:
            self._ended.pop(task, None)


class OpsCallLimit(MethodInterceptor):
    def __init__(self, limit: int, *, evicts: bool = False) -> None:
        """`limit`: health and reflection calls in progress at once, split between streams and
        unary calls (`check_places`). `evicts`: a Check beyond its places ends the oldest one
        still waiting for its request instead of being refused (the health port's)."""
        self._streams = Admission(stream_places(limit), STREAMS)
        self._checks = _Checks(check_places(limit), evicts=evicts)
        # The streams counted, each with its peer's address once its handler has run (`_claim`),
        # and the places each peer holds so.
        self._holders: dict[asyncio.Task[Any], str | None] = {}
        self._held: Counter[str] = Counter()
        self._claimed = 0  # their sum

    def held(self) -> Counter[str]:
        """Stream places held, by peer address (those whose handler has not run yet apart)."""
        return +self._held

    def wrap(self, method: str, handler: Handler) -> Handler:
        # All else it does is per call, before the request: `gate`.
        if handler is None or not method.startswith(OPS_PREFIXES):
            return handler
        if method not in UNARY:
            return _claiming(handler, self._claim)
        if not self._checks.evicts:
            return handler
        return _reading_its_request(handler, method, self._checks)

    def gates(self, method: str) -> bool:
        return method.startswith(OPS_PREFIXES)

    def gate(self, method: str, metadata: Metadata) -> Exception | None:
        """Count a health or reflection call until its task ends; refuse a stream beyond the
        streams' places, and a Check beyond the Checks' when none can give way."""
        # The gate runs in the call's own task (grpc.aio resolves a call's handler there), and
        # that task ends with the call however it ends: answered, refused, cancelled, cut.
        task = asyncio.current_task()
        if task is None:
            return None
        if method in UNARY:
            return self._checks.enter(task)
        try:
            self._streams.enter()
        except Overloaded as refused:
            return refused
        self._holders[task] = None
        task.add_done_callback(self._leave)
        return None

    def _claim(self, context: Context) -> Overloaded | None:
        """The stream's place, counted from now on as its peer's; or the refusal of a peer that
        would hold more than it leaves free (`may_hold_another`)."""
        task = asyncio.current_task()
        if task is None or task not in self._holders:
            return None  # not counted by the gate (no task: nothing to count by)
        peer = peer_address(context.peer())
        held = self._held[peer]
        if not may_hold_another(held, self._streams.limit - self._claimed):
            return Overloaded(OWN_STREAMS, held)
        self._holders[task] = peer
        self._held[peer] += 1
        self._claimed += 1
        return None

    def _leave(self, task: asyncio.Task[Any]) -> None:
        self._streams.leave()
        peer = self._holders.pop(task, None)
        if peer is not None:
            self._claimed -= 1
            self._held[peer] -= 1
            if not self._held[peer]:
                del self._held[peer]


Claim = Callable[["Context"], Overloaded | None]


def _claiming(handler: Handler, claim: Claim) -> Handler:
    """`handler` (a stream: Watch, reflection) that first `claim`s its place for its peer, and
    is refused when it may not, before it answers anything; a call already refused (its request
    a `NotRead` stand-in) is let through to the guard that answers it."""

    async def claimed(requests: Any, context: Context) -> Any:
        if not isinstance(requests, NotRead | Unread) and (refusal := claim(context)) is not None:
            await abort(context, refusal)
        return requests

    make = (
        grpc.stream_stream_rpc_method_handler
        if handler.request_streaming
        else grpc.unary_stream_rpc_method_handler
    )
    return streaming_after(handler, claimed, make)


def _reading_its_request(handler: Handler, method: str, checks: _Checks) -> Handler:
    """`handler` (unary) served as a client stream whose one request it reads itself, so that
    while it waits for that request the call can be ended with a status: a unary call waits in
    grpc's own read, which a cancelled task leaves behind holding the call (no status is sent,
    grpc keeps it until the client goes). Served with the same deserializer (the malformed guard's
    tolerant one), so a bad request is refused as before; a refused call's stand-in request
    (`gateway._chain.unread`) comes through as any request."""
    unary: Behavior | None = handler.unary_unary
    assert unary is not None
    name = method.rsplit("/", 1)[-1]

    async def answer(requests: Any, context: Context) -> Any:
        task = asyncio.current_task()
        check = checks.get(task) if task is not None else None
        # Not counted: a refused call's stand-in (a Check ended by a newer one is still known).
        if task is None or check is None:
            request = await anext(requests, None)
        else:
            request = await _read(requests, context, check, task, checks.places)
        if request is None:  # the client ended its side without sending one
            await abort(context, MalformedRequest(name))
        response = unary(request, context)
        return await response if inspect.isawaitable(response) else response

    return grpc.stream_unary_rpc_method_handler(
        answer, handler.request_deserializer, handler.response_serializer
    )


async def _read(
    requests: Any, context: Context, check: _Check, task: asyncio.Task[Any], places: int
) -> Any:
    """The call's one request (None if its client sent none), unless a newer Check ends the call
    first (`_Checks._evict_oldest_waiting`): then RESOURCE_EXHAUSTED, at once."""
    if check.evicted:  # before it even got here
        await abort(context, Overloaded(WAITING, places))
    check.reading = True
    try:
        request = await anext(requests, None)
    except asyncio.CancelledError:
        if not check.evicted:
            raise  # its client, or the server's stop
        task.uncancel()  # goes on, to send its status
        await abort(context, Overloaded(WAITING, places))
    finally:
        check.reading = False
    check.answering = True
    return request
