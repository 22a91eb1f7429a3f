"""The calls a shared gateway keeps open, and ending them when the client loses its access.

A watch (`WatchMediaJob`, `WatchWorkflowExecution`) or a wait (`WaitMediaJob`) is admitted once,
then lasts until its job or run ends: hours, for a long transcode. Checked only at admission,
it would outlive the client's removal from the access file, or the narrowing of what the
client may use. So each such call is registered here as an `OpenCall` holding what it was
admitted on: the credentials it presented (the token only as its SHA-256), its `RequestScope`,
and the job tags it has shown its client. When the access file's client entries change,
`OpenCalls.review` asks every open call again, as a new call would be asked:

* its credentials no longer name its client (removed, token or certificate name taken off):
  UNAUTHENTICATED (CLIENT_NOT_AUTHENTICATED);
* its client may no longer use its operation, bucket or region: PERMISSION_DENIED naming the
  rule, as `ClientPolicy.check` words it for a new call;
* its client may no longer see the tag of the job it shows: the not-found a new call would get
  (the job's tag is learnt from CI's answers: `show_job_tag`).

A call that fails ends at once with that status: `OpenCall.end` cuts short whatever the call is
waiting for (a cancel scope, `asyncio.timeout` rescheduled to now, armed only while the call
waits on its handler, never while gRPC writes a message), and the interceptor aborts the call
with it. A call whose access holds keeps running under its client's new policy. The work per
reload is one pass over the open calls, each a few dict lookups; their number is bounded by the
watcher caps (`tracking.max_watchers`), and the log has one line per client and reason, naming
the client, never its credentials.

The contextvars of the running call live here too: `current_client` (the client a call was
admitted as) and the `OpenCall` it runs as, if any.
"""

from __future__ import annotations

import asyncio
import contextvars
import logging
from collections import Counter
from types import TracebackType

from gateway.access.config_file import AccessConfig
from gateway.access.identity import Presented, resolve
from gateway.access.policy import ClientPolicy, RequestScope
from gateway.errors import AccessDenied, ClientNotAuthenticated, GatewayError
from gateway.logs import event

log = logging.getLogger(__name__)

_CLIENT: contextvars.ContextVar[ClientPolicy | None] = contextvars.ContextVar(
    "ci_gateway_client", default=None
)
_CALL: contextvars.ContextVar[OpenCall | None] = contextvars.ContextVar(
    "ci_gateway_open_call", default=None
)


def current_client() -> ClientPolicy | None:
    """The authenticated client of the RPC this code runs for (None in sidecar mode)."""
    return _CLIENT.get()


def current_call() -> OpenCall | None:
    """The open call (watch or wait) this code runs for, if any."""
    return _CALL.get()


def enter(client: ClientPolicy, call: OpenCall | None = None) -> None:
    """Make `client` (and `call`) the running RPC's. Each RPC runs in its own task (its own
    context), so this ends with the call."""
    _CLIENT.set(client)
    _CALL.set(call)


def show_job_tag(tag: str, hidden: GatewayError) -> None:
    """Raise `hidden` (the caller's not-found) unless the calling client may see jobs tagged
    `tag`. An open call remembers the tag, so that a reload taking it from its client ends the
    call with `hidden`. Nothing to check in sidecar mode (no client)."""
    call = _CALL.get()
    if call is not None:
        call.shown.setdefault(tag, hidden)
        client: ClientPolicy | None = call.client
    else:
        client = _CLIENT.get()
    if client is not None and not client.sees_tag(tag):
        raise hidden


class CallEnded(Exception):
    """An open call ended by `OpenCall.end`; `error` is the status to answer it with."""

    def __init__(self, error: GatewayError) -> None:
        super().__init__(error)
        self.error = error


class OpenCall:
    """One admitted watch or wait, with what it was admitted on."""

    def __init__(
        self, method: str, scope: RequestScope, credentials: Presented, client: ClientPolicy
    ) -> None:
        self.method = method
        self.scope = scope
        self.credentials = credentials
        self.client = client
        # Job tags shown to the client so far, each with the not-found that hides it.
        self.shown: dict[str, GatewayError] = {}
        self.ending: GatewayError | None = None
        self._armed: asyncio.Timeout | None = None

    def __repr__(self) -> str:
        return f"OpenCall({self.method!r}, client={self.client.name!r})"

    def readmit(self, config: AccessConfig) -> GatewayError | None:
        """Ask the call again under `config`, as a new call like it would be asked: the refusal,
        or None, and the call then goes on under its client's policy in `config` (a later tag
        check asks that one)."""
        try:
            client = resolve(config, self.credentials)
        except ClientNotAuthenticated as error:
            return error
        if client.name != self.client.name:
            # Its credentials now name another client: they are no longer this client's.
            return ClientNotAuthenticated(
                "the credentials this call was opened with no longer name its client; call again"
            )
        try:
            client.check(self.scope)
        except AccessDenied as error:
            return error
        for tag, hidden in self.shown.items():
            if not client.sees_tag(tag):
                return hidden
        self.client = client
        return None

    def end(self, error: GatewayError) -> None:
        """End the call with `error`: now if it is waiting, else before it waits again."""
        if self.ending is not None:
            return
        self.ending = error
        if self._armed is not None:
            self._armed.reschedule(asyncio.get_running_loop().time())

    def running(self) -> _Running:
        """`async with call.running():` around the waits `end` may cut short; raises
        `CallEnded` once the call is ended."""
        return _Running(self)


class _Running:
    """A cancel scope for one stretch of an open call (see `OpenCall.running`)."""

    def __init__(self, call: OpenCall) -> None:
        self._call = call
        self._timeout = asyncio.timeout(None)

    async def __aenter__(self) -> None:
        call = self._call
        if call.ending is not None:
            raise CallEnded(call.ending)
        await self._timeout.__aenter__()
        call._armed = self._timeout

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        call = self._call
        call._armed = None
        try:
            await self._timeout.__aexit__(exc_type, exc, traceback)
        except TimeoutError:
            # Raised by the scope itself only when `end` fired it: the call's own TimeoutErrors
            # pass through untouched. A cancellation of the RPC itself stays a cancellation.
            assert call.ending is not None
            raise CallEnded(call.ending) from None
        if exc_type is None and call.ending is not None:
            # Ended while its answer was being made (before the cut fired): not sent.
            raise CallEnded(call.ending)


class OpenCalls:
    """Every open call of a shared gateway (`ClientAccess` holds one)."""

    def __init__(self) -> None:
        self._calls: set[OpenCall] = set()

    def __len__(self) -> int:
        return len(self._calls)

    def add(self, call: OpenCall) -> None:
        self._calls.add(call)

    def discard(self, call: OpenCall) -> None:
        self._calls.discard(call)

    def review(self, config: AccessConfig) -> int:
        """End every open call `config` would refuse (see the module docstring); how many."""
        ended: Counter[tuple[str, str, str]] = Counter()
        for call in list(self._calls):
            error = call.readmit(config)
            if error is None:
                continue
            call.end(error)
            self._calls.discard(call)  # ended: a later reload has nothing more to do with it
            ended[(call.client.name, error.status.name, error.reason.value)] += 1
        for (client, status, reason), count in ended.items():
            event(log, logging.WARNING, "open calls ended: the client's access changed",
                  client=client, status=status, reason=reason, calls=count)  # fmt: skip
        return sum(ended.values())
