"""What the gateway knows about the RPC being served, for whoever logs or counts inside it.

The server interceptor opens an `RpcScope` around each call and keeps it in a `ContextVar`, so code
deep inside the call (the CI client's telemetry, any log line) can tag itself with the call's
request id and count upstream attempts without every function passing the scope along. Tasks
started inside a call copy the context, and with it the same (mutable) scope.

Facts about the call's answer flow one way, into the scope: whoever produces the answer records
what it said (`gateway.status.abort` the error's reason and CI's RequestId, the servicer CI's
RequestId of a success, the telemetry each attempt), and the interceptor reads the scope when the
call ends. Nothing decodes the answer again to learn what it said.
"""

from __future__ import annotations

import contextvars
import os
import re
from collections.abc import Callable
from dataclasses import dataclass

REQUEST_ID_METADATA = "x-request-id"
# CI's RequestId of the call's last answer from CI (success or failure): the handle Tencent
# support asks for.
CI_REQUEST_ID_METADATA = "x-ci-request-id"
# A caller's id is echoed into logs and trailing metadata, so it must be short and inert:
# anything else is replaced by a generated id rather than trusted.
_VALID_REQUEST_ID = re.compile(r"^[A-Za-z0-9._~:/+=-]{1,128}$")

Metadata = tuple[tuple[str, str], ...]


@dataclass
class RpcScope:
    method: str
    request_id: str
    # HTTP attempts towards CI made on behalf of this call (retries and reconciliation included).
    attempts: int = 0
    # The `ErrorInfo.reason` the call failed with; empty while it has not failed on purpose.
    reason: str = ""
    # CI's RequestId of the answer the call passed on (success or error), if CI sent one.
    ci_request_id: str = ""
    # The access file's client the call was made as (shared mode: its token or certificate
    # named it), admitted or refused; empty in sidecar mode and before the check.
    client: str = ""
    # What the call ends with should the shutdown cut it, given its attempts: the error its
    # handler named (`gateway.api.interceptors.when_cut`), or None for the default.
    on_cut: Callable[[int], Exception] | None = None

    def trailing_metadata(self) -> Metadata:
        """What every answer of the call carries besides whatever its handler sets."""
        return ((REQUEST_ID_METADATA, self.request_id),)


_CURRENT: contextvars.ContextVar[RpcScope | None] = contextvars.ContextVar(
    "ci_gateway_rpc_scope", default=None
)


def current() -> RpcScope | None:
    """The scope of the RPC this code runs for, or None outside any RPC."""
    return _CURRENT.get()


def enter(scope: RpcScope) -> contextvars.Token[RpcScope | None]:
    return _CURRENT.set(scope)


def leave(token: contextvars.Token[RpcScope | None]) -> None:
    _CURRENT.reset(token)


def note_answer(*, reason: str = "", ci_request_id: str = "") -> None:
    """Record what the call's answer says, for the interceptor's access log. A no-op outside an
    RPC scope (a servicer served without the interceptor, as some tests do): nobody will log."""
    scope = _CURRENT.get()
    if scope is None:
        return
    if reason:
        scope.reason = reason
    if ci_request_id:
        scope.ci_request_id = ci_request_id


def trailing_metadata() -> Metadata:
    """The current scope's own trailing metadata (empty outside an RPC scope), for code that
    replaces the call's trailing metadata wholesale, as an abort does."""
    scope = _CURRENT.get()
    return scope.trailing_metadata() if scope is not None else ()


def new_request_id() -> str:
    return os.urandom(16).hex()  # `secrets.token_hex(16)`, without its two calls on the way


def request_id_from(value: str | bytes | None) -> str:
    """The caller's `x-request-id` when it is a sane token, else a fresh one."""
    if isinstance(value, str) and _VALID_REQUEST_ID.fullmatch(value):
        return value
    return new_request_id()
