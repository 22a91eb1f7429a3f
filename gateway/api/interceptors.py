"""The server interceptor: request id, metrics, access log and drain accounting for every RPC.

`ObservabilityInterceptor` wraps each method's handler (unary or streaming, ours or the health
and reflection services) so that one place sees every call start and end:

- the request id: the caller's `x-request-id` when sane, else a generated one, kept in
  `gateway.rpc_context` for every log line of the call and returned in trailing metadata;
- `grpc_server_started_total` / `_handled_total` / `_handling_seconds`;
- one access-log line per RPC (INFO for the API, DEBUG for health checks and reflection, which
  probes call every few seconds);
- `InFlight`, the count of API calls in progress that a graceful shutdown waits for, from the
  call's arrival (its `gate`, before grpc reads its request) to its end, and the server-wide cap
  on them (`server.max_concurrent_rpcs`), enforced at that arrival; with it the memory their
  requests hold (`gateway.api.request_memory`), counted from the arrival and again once the
  request has come (the wrapped deserializer), before it is parsed; and the time that request
  may take to come (`server.request_receive_timeout_s`, `gateway.api.receive_timeout`), for
  which the API's methods read their request themselves;
- the end of a call the shutdown cuts (`InFlight.cut`): the gateway's own status, which says
  what the caller may do (`when_cut`), instead of grpc's bare "Cancelling all calls";
- the call's server span, when tracing is on (`gateway.tracing`; not for health and
  reflection, like the access log's DEBUG).

The wrapping depends on the method alone (`wrap`), so the server applies it once per method
(`gateway._chain`); everything about one call (its metadata, its scope) is read from the call.

What the call's answer said comes from the call's `RpcScope` (`gateway.rpc_context`), where
whoever answered recorded it: `gateway.status.abort` the reason and CI's RequestId of an error,
the servicer CI's RequestId of a success, the CI client's telemetry each upstream attempt. The
status code comes from grpc's own context. Nothing here decodes trailing metadata or a status.

The request id must come back whatever trailing metadata the handler set, and grpc's
`set_trailing_metadata` and `abort` *replace* what was set before. An abort through
`gateway.status` appends the scope's pair itself; for every other ending the interceptor appends
it to whatever the handler left, just before grpc sends the status.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import math
import sys
import time
from collections.abc import AsyncIterator, Callable
from json.encoder import encode_basestring_ascii as json_text
from typing import TYPE_CHECKING, Any, NoReturn

import grpc

from gateway import rpc_context, tracing
from gateway._chain import OPS_SERVICES, Metadata, MethodInterceptor, NotRead
from gateway.api.metrics import GatewayMetrics
from gateway.api.receive_timeout import Arrival, ReceiveDeadline, read_own_request
from gateway.api.request_memory import RequestMemory
from gateway.errors import GatewayError, Overloaded, ShuttingDown
from gateway.logs import ACCESS_LOGGER, PreparedLine, event
from gateway.scrub import may_hold_secrets
from gateway.status import abort

_MAX_LOGGED_AGENT = 200

access_log = logging.getLogger(ACCESS_LOGGER)

# What the cap on API calls in progress counts, as its refusal names it.
WHAT = "API calls in progress"

if TYPE_CHECKING:  # grpc's RpcMethodHandler and ServicerContext are generic in its stubs only
    Handler = grpc.RpcMethodHandler[Any, Any]
    Context = grpc.aio.ServicerContext[Any, Any]


def when_cut(answer: Callable[[int], GatewayError]) -> None:
    """Say what the current API call is to end with should the shutdown cut it (`InFlight.cut`)
    from now on, instead of `ShuttingDown`: for a call whose work may outlive it, what its
    caller must know (a submit CI may already be acting on: its request_id, to retry with).
    Asked, with the attempts the call made, once the handler has unwound from the cut. Kept on
    the call's scope; outside an RPC scope, a no-op (nobody cuts such a call)."""
    scope = rpc_context.current()
    if scope is not None:
        scope.on_cut = answer


class InFlight:
    """API calls in progress (health and reflection excluded): what a drain waits for, and the
    server-wide cap on them (`limit`, `server.max_concurrent_rpcs`).

    A call counts from its arrival, before grpc reads its request (`arrive`, from the
    interceptor's gate), not only from its handler's first line (`enter`): a unary call whose
    request is still on its way when a drain begins is in flight too, and the drain waits for
    it (for its grace at most) instead of ending at once and cutting it. Until its handler
    begins, the call is known by its task (grpc.aio resolves a call's handler in the call's own
    task, which ends with the call however it ends: served, refused, cancelled, cut).

    The same count is what the cap bounds: the one call beyond `limit` is refused at its arrival,
    before its request is read, so that calls whose request never comes (which no admission
    sees: the servicers count a call once its request is in) cannot pile up. The refusal is the
    gateway's own OVERLOADED with RetryInfo, as the admissions', not grpc.aio's bare
    RESOURCE_EXHAUSTED: grpc's own limiter (`maximum_concurrent_rpcs`) is not used, which also
    saves every call the done callback it adds to the call's task. A refused call counts while
    its refusal is answered (it passes every wrapper, `enter` to `leave`, as any call), so for
    that moment the count may pass `limit` by the refusals in progress.

    The calls whose handler runs are known by their tasks too, so that a drain whose grace ran
    out can end them itself (`cut`): each is cancelled, and the observability wrapper turns the
    cancellation into the gateway's own status while grpc's server still runs. A call still
    arriving is left to grpc's stop (or to its receive time-out, should that come first), which
    ends it UNAVAILABLE: its request never reached a handler, so nothing of it reached CI.

    The memory the calls' requests hold is counted with them (`requests`), each call's count
    kept beside its task: from its arrival (`arrive`), again once its request has come
    (`received`), given back when it ends.

    A call whose request has not come `receive_timeout_s` after its arrival is ended
    (`ReceiveDeadline`, one timer for all: `gateway.api.receive_timeout`): its count and its
    request memory given back at once, its task cancelled where it waits for its request
    (`read_own_request`), which answers DEADLINE_EXCEEDED, counted as a refusal
    is while it does."""

    def __init__(
        self,
        limit: int | None = None,
        requests: RequestMemory | None = None,
        receive_timeout_s: float | None = None,
    ) -> None:
        """`limit`: API calls in progress at once, beyond which a call is refused at its arrival;
        None, no cap (a drain's count only). `requests`: the bound on the memory their requests
        hold; None, not counted. `receive_timeout_s`: the time a call's request may take to
        come; None, no bound."""
        # Compared on every arrival: no cap is a bound never reached, not a test more per call.
        self._refuse_from = sys.maxsize if limit is None else limit
        self.requests = requests
        self._handling = 0
        # The calls still arriving (their handler not begun), oldest first, each with what its
        # request is counted for (`requests`; 0 when not counted) and when it arrived.
        self._arriving: dict[asyncio.Task[Any], Arrival] = {}
        self.deadline = (
            None
            if receive_timeout_s is None
            else ReceiveDeadline(receive_timeout_s, self._arriving, self._expire)
        )
        """The receive time-out's (None: no bound), whose cancellation of a call's wait for its
        request the wait tells from any other (`read_own_request`)."""
        # The tasks of the calls whose handler runs (`enter` to `leave`), with what their
        # requests are counted for, and those of them the shutdown has cut.
        self._handlers: dict[asyncio.Task[Any], int] = {}
        self._cut: set[asyncio.Task[Any]] = set()
        # Set once no call is in flight, for the drain waiting on it (`wait_idle`); made by that
        # wait and dropped once set, so that no call pays for an event nobody waits on.
        self._idle: asyncio.Event | None = None
        # One bound method for every call's task: added at its arrival, removed (found by
        # identity) when its handler begins, with no new bound method made for either.
        self._gone_callback = self._gone

    @property
    def count(self) -> int:
        return self._handling + len(self._arriving)

    @property
    def deadline_armed(self) -> bool:
        """Whether the receive time-out's timer is pending (only while calls are arriving)."""
        return self.deadline is not None and self.deadline.armed

    def arrive(self) -> Overloaded | None:
        """A call's headers are in, its request not read yet: in flight from now until its
        handler begins (`enter`), or until its task ends if it never does. Beyond the cap, the
        error to refuse it with instead (it is then not counted here: its refusal, answered
        through the handler, is)."""
        task = asyncio.current_task()
        if task is None:  # not grpc's call task (a handler driven by hand): counted by `enter`
            return None
        if self._handling + len(self._arriving) >= self._refuse_from:
            return Overloaded(WHAT, self._refuse_from)
        counted = 0
        requests = self.requests
        if requests is not None:
            arriving = requests.arrive()
            if arriving is None:
                return requests.refusal()
            counted = arriving
        self._arriving[task] = (counted, time.monotonic())
        deadline = self.deadline
        if deadline is not None and not deadline.armed:
            deadline.arm()
        task.add_done_callback(self._gone_callback)
        return None

    def received(self, size: int) -> Overloaded | None:
        """The current call's request of `size` bytes has come, not parsed yet: counted for it
        from now on (`RequestMemory.received`), or the error to refuse the call with instead of
        parsing it. A call not counted at its arrival (no bound, or no call's task) is not."""
        requests = self.requests
        task = asyncio.current_task()
        if requests is None or task is None:
            return None
        arrival = self._arriving.get(task)
        if arrival is None:
            return None
        held = requests.received(arrival[0], size)
        self._arriving[task] = (held or 0, arrival[1])
        return None if held is not None else requests.refusal()

    def enter(self) -> asyncio.Task[Any] | None:
        """A call's handler begins: counted as handled until `leave`. Returns the call's task
        (None outside one), which `leave` and `was_cut` take."""
        task = asyncio.current_task()
        if task is not None:
            arrival = self._arriving.pop(task, None)
            if arrival is not None:  # from now on counted as handled
                # Its end needs no callback any more (`leave` counts it out): one turn of the
                # event loop less per call (a callback per call measured: bench/README).
                task.remove_done_callback(self._gone_callback)
                self._handlers[task] = arrival[0]
            else:  # never counted on arrival; a count already kept for the task stays
                self._handlers.setdefault(task, 0)
        self._handling += 1
        return task

    def leave(self, task: asyncio.Task[Any] | None) -> None:
        """The call `enter` returned `task` for has ended. Its task, not the current one: a
        stream's generator may be closed later, from another task."""
        self._handling -= 1
        if task is not None:
            counted = self._handlers.pop(task, 0)
            if counted and self.requests is not None:
                self.requests.release(counted)
            if self._cut:
                self._cut.discard(task)
        if self._idle is not None:
            self._now_idle()

    def cut(self) -> list[asyncio.Task[Any]]:
        """End every call whose handler runs (a drain's grace has run out): cancel its task,
        which the observability wrapper answers with the gateway's own status (`was_cut`).
        Returns those tasks, each done once grpc is done with its call."""
        tasks = [task for task in self._handlers if not task.done()]
        for task in tasks:
            self._cut.add(task)
            task.cancel()
        return tasks

    def was_cut(self, task: asyncio.Task[Any] | None) -> bool:
        """Whether `cut` cancelled this call (not its client, nor grpc)."""
        return task is not None and task in self._cut

    def _gone(self, task: asyncio.Task[Any]) -> None:
        """A call's task ended: if its handler never began (its request never came, or it was
        cut while arriving), it leaves the count now."""
        arrival = self._arriving.pop(task, None)
        if arrival is not None:
            self._count_out(arrival[0])

    def _count_out(self, counted: int) -> None:
        """A call still arriving leaves the count, with what its request was counted for."""
        if counted and self.requests is not None:
            self.requests.release(counted)
        if self._idle is not None:
            self._now_idle()

    def _now_idle(self) -> None:
        """A call left while a drain waits (`wait_idle`): the drain woken if none is left."""
        idle = self._idle
        if idle is not None and self.count == 0:
            idle.set()
            self._idle = None

    def _expire(self, task: asyncio.Task[Any]) -> None:
        """The deadline's: `task`'s request has not come in time. Out of the count at once;
        the deadline then cancels it where it waits for its request (`read_own_request`)."""
        if task.done():  # ended meanwhile: its `_gone`, already due, counts it out
            return
        counted, _ = self._arriving.pop(task)
        task.remove_done_callback(self._gone_callback)
        self._count_out(counted)

    def close(self) -> None:
        """The server has stopped: no timer left behind."""
        if self.deadline is not None:
            self.deadline.close()

    async def wait_idle(self, timeout_s: float) -> bool:
        """True once no API call is in progress; False if `timeout_s` passed first."""
        if self.count == 0:
            return True
        idle = self._idle
        if idle is None:
            idle = self._idle = asyncio.Event()
        try:
            await asyncio.wait_for(idle.wait(), max(timeout_s, 0.0))
        except TimeoutError:
            return self.count == 0
        return True


def split_method(full_method: str) -> tuple[str, str]:
    """`/ci.media.v1.MediaJobService/SubmitMediaJob` -> (`ci.media.v1.MediaJobService`, ...)."""
    service, _, method = full_method.lstrip("/").rpartition("/")
    return service or "unknown", method


# The `grpc_type` label by (request streaming, response streaming).
STREAM_TYPES = {
    (False, False): "unary",
    (True, False): "client_stream",
    (False, True): "server_stream",
    (True, True): "bidi_stream",
}


def grpc_type(handler: grpc.RpcMethodHandler[Any, Any]) -> str:
    return STREAM_TYPES[bool(handler.request_streaming), bool(handler.response_streaming)]


def _call_metadata(metadata: Any) -> tuple[str | None, str | None]:
    """The call's `x-request-id` and `user-agent` (the first text value of each), in one pass
    over the metadata instead of one per key: every call reads both."""
    request_id: str | None = None
    user_agent: str | None = None
    for item in metadata or ():
        name, value = item[0], item[1]
        if not isinstance(value, str):
            continue
        if name == rpc_context.REQUEST_ID_METADATA:
            if request_id is None:
                request_id = value
        elif name == "user-agent" and user_agent is None:
            user_agent = value
    return request_id, user_agent


class _Method:
    """What every call of one method shares, worked out once when the method is wrapped: its
    names and its metric children (a `labels()` lookup validates and locks on every call)."""

    __slots__ = (
        "_handled",
        "_handled_ok",
        "_metrics",
        "access",
        "full_method",
        "handling",
        "labels",
        "level",
        "method_json",
        "ops",
        "started",
    )

    def __init__(self, metrics: GatewayMetrics, full_method: str, kind: str) -> None:
        self.full_method = full_method
        service, method = split_method(full_method)
        self.ops = service in OPS_SERVICES
        self.labels = (kind, service, method)
        self.level = logging.DEBUG if self.ops else logging.INFO
        # The access line's prepared form (`_Call._access_line`), unless the method's name is a
        # text the redaction must look at (no method of ours, but the name is the caller's).
        self.access = (
            None
            if may_hold_secrets(full_method)
            else PreparedLine(access_log, self.level, _ACCESS_MESSAGE)
        )
        self.method_json = json_text(full_method)
        self._metrics = metrics
        self.started = metrics.grpc_started.labels(*self.labels)
        self.handling = metrics.grpc_handling.labels(*self.labels)
        # By status code: at most the 17 grpc.StatusCode values.
        self._handled: dict[grpc.StatusCode, Any] = {}
        self._handled_ok: Any = None  # OK's, apart (`handled`)

    def handled(self, code: grpc.StatusCode) -> Any:
        if code is _OK:  # most calls: by identity, not by a hash of the enum (Python's, ~1.5k)
            child = self._handled_ok
            if child is None:
                child = self._handled_ok = self._handled_child(code)
            return child
        child = self._handled.get(code)
        if child is None:
            child = self._handled[code] = self._handled_child(code)
        return child

    def _handled_child(self, code: grpc.StatusCode) -> Any:
        return self._metrics.grpc_handled.labels(*self.labels, code.name)


_NO_IDS: dict[str, str] = {}

_ACCESS_MESSAGE = "rpc"
# Each status code's name as the access line's JSON writes it (a text the redaction looks at:
# none of the names holds a trigger word, and one that did would be left out, for `event`).
_CODE_JSON = {
    code: json_text(code.name) for code in grpc.StatusCode if not may_hold_secrets(code.name)
}
_OK = grpc.StatusCode.OK
_OK_JSON = _CODE_JSON[_OK]
# The codes `_Call._code` answers with itself, as module constants: on Python 3.11 a read of an
# enum member through its class (`grpc.StatusCode.OK`) takes the slower attribute path that
# `EnumType.__getattr__` sets up (~190 ns against ~40 for a plain class attribute), and every
# call that ends without a code set (each success: grpc.aio's `context.code()` is None) read one.
_UNKNOWN = grpc.StatusCode.UNKNOWN
_CANCELLED = grpc.StatusCode.CANCELLED
_DEADLINE_EXCEEDED = grpc.StatusCode.DEADLINE_EXCEEDED

DEADLINE_SKEW_S = 0.05
"""How near its deadline a cancelled call counts as having run out of time. The client's
deadline runs from before its request left, the gateway's (`grpc-timeout`) from when grpc read
it, so a client's own deadline reaches the gateway as a cancellation that much earlier: a few
ms on a loaded host (a watch in tests/api/test_stream_cuts.py ended 6 ms before the gateway's
deadline and was logged CANCELLED, about one run in six). A caller that really cancels within
this of its deadline is counted as the deadline it was about to meet."""


class _Call:
    """Book-keeping for one RPC, from the handler's first line to its status."""

    def __init__(self, interceptor: ObservabilityInterceptor, method: _Method, context: Context):
        self._ic = interceptor
        self._m = method
        # From the call itself, not from `HandlerCallDetails`: the method's wrapped handler is
        # built once (`ObservabilityInterceptor.wrap`), and the metadata is each call's own.
        metadata = self._metadata = context.invocation_metadata()
        request_id, user_agent = _call_metadata(metadata)
        self.scope = rpc_context.RpcScope(
            method=method.full_method, request_id=rpc_context.request_id_from(request_id)
        )
        self.user_agent = (user_agent or "")[:_MAX_LOGGED_AGENT]
        # Read while the call is certainly alive. A stream whose client went away while grpc
        # was sending leaves its generator suspended at a `yield`; the event loop closes it
        # later, after grpc has released the call, and reading the peer then reads freed
        # memory (the process dies of SIGSEGV).
        self._peer = context.peer()
        self._peer_identities = context.peer_identities()
        # The time the call had when it began: at its end a deadline is told from a cancel by
        # the time the call took, not by asking the context again, which may be read after
        # grpc released the call (a stream's generator closed late, as above). Read at the
        # end, a watch that ended 4 ms past its deadline was logged CANCELLED, about one run
        # of tests/api/test_stream_cuts.py's deadline case in twenty.
        self._allowed_s = context.time_remaining()
        self._started = 0.0
        self._token: Any = None
        self._trace: tracing.RpcTrace | None = None
        self._task: asyncio.Task[Any] | None = None

    def begin(self) -> None:
        self._started = time.monotonic()
        method = self._m
        method.started.inc()
        if not method.ops:
            self._task = self._ic.in_flight.enter()
            self._trace = tracing.start_rpc(
                method.full_method, self._metadata, self.scope.request_id
            )
        self._token = rpc_context.enter(self.scope)

    def finish(
        self, context: Context, error: BaseException | None, *, aborted: bool = False
    ) -> None:
        """Count and log the call's end. `aborted`: its status was set by an abort (`error`
        being grpc's AbortError says so too), whose code the context holds, even should the
        sending have failed."""
        seconds = time.monotonic() - self._started
        aborted = aborted or isinstance(error, grpc.aio.AbortError)
        if not aborted:
            self._keep_request_id(context)
        code = self._code(context, error, seconds, aborted=aborted)
        method = self._m
        method.handled(code).inc()
        method.handling.observe(seconds)
        if not method.ops:
            self._ic.in_flight.leave(self._task)
        trace = self._trace
        self.log_access(code, round(seconds * 1000, 1))
        if trace is not None:
            tracing.end_rpc(trace, code.value[0], code.name, self.scope)
        # The access line above still carries the request id; only then leave the scope.
        # Not contextlib.suppress: an object and two calls more, on every RPC.
        try:  # noqa: SIM105
            rpc_context.leave(self._token)
        except ValueError:  # a generator closed from another context
            pass

    def log_access(self, code: grpc.StatusCode, duration_ms: float) -> None:
        """The call's access line, by its prepared form (`_access_line`) when it can be."""
        peer_identities = self._peer_identities
        identities = (
            [i.decode(errors="replace") for i in peer_identities] if peer_identities else None
        )
        trace = self._trace
        # The prepared line has no keys for identities or trace ids: such lines go by `event`.
        if not identities and trace is None and self._access_line(code, duration_ms):
            return
        method = self._m
        scope = self.scope
        # Only when tracing is on: a line of a gateway without it keeps its keys.
        trace_ids = trace.log_ids() if trace is not None else _NO_IDS
        event(
            access_log,
            method.level,
            _ACCESS_MESSAGE,
            grpc_method=method.full_method,
            grpc_code=code.name,
            duration_ms=duration_ms,
            peer=self._peer,
            client_identity=identities or None,  # an empty list logs as null too
            client=scope.client or None,
            user_agent=self.user_agent or None,
            ci_request_id=scope.ci_request_id or None,
            reason=scope.reason or None,
            attempts=scope.attempts,
            **trace_ids,
        )

    def _access_line(self, code: grpc.StatusCode, duration_ms: float) -> bool:
        """Write the call's access line by its prepared form (`PreparedLine`): the bytes `event`
        writes for the same fields (with no identities and no trace ids), each key and constant
        written once, only the values encoded per line. False, nothing written, when the line
        must go through `event`: not `configure`'s sole JSON handler, a value that is neither a
        text nor what `event` writes as null, a text the redaction must look at."""
        access = self._m.access
        if access is None:
            return False
        lines = access.handler()
        code_json = _OK_JSON if code is _OK else _CODE_JSON.get(code)
        if lines is None or code_json is None:
            return False
        scope = self.scope
        peer, agent = self._peer, self.user_agent
        client, ci_id, reason = scope.client, scope.ci_request_id, scope.reason
        attempts = scope.attempts
        if type(attempts) is not int or type(duration_ms) is not float:
            return False
        if not math.isfinite(duration_ms):  # JSON's NaN and Infinity are `event`'s to write
            return False
        try:
            # As `event`'s fields: an empty text is null (`x or None`); a value of another type
            # makes `json_text` raise TypeError, and `event` writes it. The numbers as the
            # encoder writes an exact float or int: their `repr`.
            fields = (
                f',"grpc_method":{self._m.method_json},"grpc_code":{code_json}'
                f',"duration_ms":{duration_ms!r},"peer":{json_text(peer)}'
                f',"client_identity":null,"client":{json_text(client) if client else "null"}'
                f',"user_agent":{json_text(agent) if agent else "null"}'
                f',"ci_request_id":{json_text(ci_id) if ci_id else "null"}'
                f',"reason":{json_text(reason) if reason else "null"}'
                f',"attempts":{attempts!r}'
            )
            texts = "\n".join((peer, agent, client or "", ci_id or "", reason or ""))
        except TypeError:
            return False
        return access.write(lines, fields, texts)

    def was_cut(self, error: BaseException) -> bool:
        """Whether `error` is the shutdown's cut of this call (`InFlight.cut`)."""
        return isinstance(error, asyncio.CancelledError) and self._ic.in_flight.was_cut(self._task)

    async def end_cut(self, context: Context, cancelled: BaseException) -> NoReturn:
        """End a call the shutdown cut (`cancelled`, once its handler has unwound) with the
        gateway's own status: what the handler said it should be (`when_cut`), else
        `ShuttingDown`, each with the attempts the call made towards CI. grpc's own stop
        comes `CUT_MARGIN_S` later (`gateway.api.server`), so the server still sends it.

        The cancellation is taken back (`uncancel`) before the status is sent: the call goes
        on, to send it. Should the sending fail (grpc's stop came first after all, or the
        client left), the call still counts with the code it was ending with, and ends as
        cancelled."""
        assert self._task is not None  # `was_cut` holds
        self._task.uncancel()
        scope = self.scope
        named = scope.on_cut(scope.attempts) if scope.on_cut is not None else None
        error = named if isinstance(named, GatewayError) else ShuttingDown()
        error.attempts = scope.attempts
        try:
            await abort(context, error)
        except grpc.aio.AbortError as aborted:
            self.finish(context, aborted)
            raise
        except BaseException:
            self.finish(context, cancelled, aborted=True)
            raise cancelled from None

    def _keep_request_id(self, context: Context) -> None:
        """Append the scope's trailing metadata to what the handler set (it may have replaced
        everything); an abort has sent its status already, with the pair (`gateway.status`)."""
        pairs = tuple(context.trailing_metadata() or ())
        ours = self.scope.trailing_metadata()
        for pair in ours:
            if pair not in pairs:
                context.set_trailing_metadata(pairs + ours)
                return

    def _code(
        self, context: Context, error: BaseException | None, seconds: float, *, aborted: bool
    ) -> grpc.StatusCode:
        """`seconds`: how long the call ran, from `begin`."""
        if error is None or aborted:
            # grpc's context holds the code an abort (or `set_code`) set; none set means OK.
            code = context.code()
            if isinstance(code, grpc.StatusCode):
                return code
            return _OK if error is None else _UNKNOWN
        # GeneratorExit: grpc abandoned a stream's generator (the call was cancelled, or
        # ran out of time, while grpc was sending) and the event loop closed it afterwards.
        # grpc's InternalError: an operation on the call failed in grpc's core, most often an
        # abort whose status could not be sent (its batch failed: `ExecuteBatchError`) because
        # the call was over at grpc's end already: its client gone (a watch cancelled as the
        # tracker closed it for a shutdown), its deadline passed, or grpc's stop cut it. Not
        # UNKNOWN (grpc sends no such status for it, and the gateway chose the one it tried to
        # send): the call ended as a cancellation does. The line keeps the reason the abort
        # noted, which says what the gateway was ending the call with.
        if isinstance(error, asyncio.CancelledError | GeneratorExit | grpc.aio.InternalError):
            allowed = self._allowed_s
            expired = allowed is not None and seconds >= allowed - DEADLINE_SKEW_S
            return _DEADLINE_EXCEEDED if expired else _CANCELLED
        return _UNKNOWN


Behavior = Callable[..., Any]


class ObservabilityInterceptor(MethodInterceptor):
    """Wraps each method's handler once (`wrap`): in the gateway's server through
    `gateway._chain.PerMethodChain`, or per call as a plain grpc interceptor."""

    def __init__(self, metrics: GatewayMetrics, in_flight: InFlight) -> None:
        self.metrics = metrics
        self.in_flight = in_flight

    def gates(self, method: str) -> bool:
        """API calls count in flight from their arrival (`gate`), under the server-wide cap;
        health and reflection not (`gateway.api.ops_calls` bounds them)."""
        return split_method(method)[0] not in OPS_SERVICES

    def gate(self, method: str, metadata: Metadata) -> Exception | None:
        """Before grpc reads the call's request: in flight from now on, or refused (OVERLOADED)
        beyond the cap on API calls in progress. The outermost gate: a call beyond the cap is
        refused before any other gate looks at it."""
        return self.in_flight.arrive()

    def wrap(self, full_method: str, handler: Handler) -> Handler:
        """`handler` with every call counted, logged and scoped (None stays None: grpc answers
        UNIMPLEMENTED for an unknown method)."""
        if handler is None:
            return handler
        kind = grpc_type(handler)
        make = {
            "unary": grpc.unary_unary_rpc_method_handler,
            "client_stream": grpc.stream_unary_rpc_method_handler,
            "server_stream": grpc.unary_stream_rpc_method_handler,
            "bidi_stream": grpc.stream_stream_rpc_method_handler,
        }[kind]
        behavior: Behavior | None = {
            "unary": handler.unary_unary,
            "client_stream": handler.stream_unary,
            "server_stream": handler.unary_stream,
            "bidi_stream": handler.stream_stream,
        }[kind]
        assert behavior is not None, f"{full_method}: no {kind} behavior"
        method = _Method(self.metrics, full_method, kind)
        if handler.response_streaming:
            wrapped = self._wrap_streaming(behavior, method)
        else:
            wrapped = self._wrap_unary(behavior, method)
        deserializer = handler.request_deserializer
        gated = self.gates(full_method)
        if deserializer is not None and gated:
            deserializer = self._counted(deserializer)
        wrapped_handler = make(
            wrapped,
            request_deserializer=deserializer,
            response_serializer=handler.response_serializer,
        )
        if gated and not handler.request_streaming:
            # Its calls can be ended while their request is coming (`InFlight.deadline`).
            return read_own_request(full_method, wrapped_handler, self.in_flight.deadline)
        return wrapped_handler

    def _counted(self, deserializer: Callable[[bytes], Any]) -> Callable[[bytes], Any]:
        """`deserializer`, once the request's size is counted in the memory its call holds
        (`InFlight.received`): a request that does not fit is not parsed, and its call is
        refused by the innermost guard, with the `NotRead` stand-in a gate's refusal has."""
        received = self.in_flight.received

        def deserialize(data: bytes) -> Any:
            refusal = received(len(data))
            return deserializer(data) if refusal is None else NotRead(refusal)

        return deserialize

    def _wrap_unary(self, behavior: Behavior, method: _Method) -> Behavior:
        if inspect.iscoroutinefunction(behavior):
            # Known to answer with a coroutine: awaited without asking each call.
            async def coroutine_response(
                request: Any, context: grpc.aio.ServicerContext[Any, Any]
            ) -> Any:
                call = _Call(self, method, context)
                call.begin()
                try:
                    response = await behavior(request, context)
                except BaseException as error:
                    if call.was_cut(error):
                        await call.end_cut(context, error)
                    call.finish(context, error)
                    raise
                call.finish(context, None)
                return response

            return coroutine_response

        async def unary_response(request: Any, context: grpc.aio.ServicerContext[Any, Any]) -> Any:
            call = _Call(self, method, context)
            call.begin()
            try:
                response = behavior(request, context)
                if inspect.isawaitable(response):
                    response = await response
            except BaseException as error:
                if call.was_cut(error):
                    await call.end_cut(context, error)
                call.finish(context, error)
                raise
            call.finish(context, None)
            return response

        return unary_response

    def _wrap_streaming(self, behavior: Behavior, method: _Method) -> Behavior:
        if inspect.isasyncgenfunction(behavior):

            async def generator(
                request: Any, context: grpc.aio.ServicerContext[Any, Any]
            ) -> AsyncIterator[Any]:
                call = _Call(self, method, context)
                call.begin()
                try:
                    async for message in behavior(request, context):
                        yield message
                except BaseException as error:
                    if call.was_cut(error):
                        await call.end_cut(context, error)
                    call.finish(context, error)
                    raise
                call.finish(context, None)

            return generator

        # A handler that writes with `context.write` and returns None (grpc's health Watch).
        return self._wrap_unary(behavior, method)
