"""What the gateway knows about the RPC being served, for whoever logs or counts inside it.

The server interceptor opens an `RpcScope` around each call and keeps it in a `ContextVar`, so code
deep inside the call (the CI client's telemetry, any log line) can tag itself with the call's
request id and count upstream attempts without every function passing the scope along. Tasks
started inside a call copy the context, and with it the same (mutable) scope.
"""

from __future__ import annotations

import contextvars
import re
import secrets
from dataclasses import dataclass

REQUEST_ID_METADATA = "x-request-id"
# A caller's id is echoed into logs and trailing metadata, so it must be short and inert:
# anything else is replaced by a generated id rather than trusted.
_VALID_REQUEST_ID = re.compile(r"^[A-Za-z0-9._~:/+=-]{1,128}$")


@dataclass
class RpcScope:
    method: str
    request_id: str
    # HTTP attempts towards CI made on behalf of this call (retries and reconciliation included).
    attempts: int = 0


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


def new_request_id() -> str:
    return secrets.token_hex(16)


def request_id_from(value: str | bytes | None) -> str:
    """The caller's `x-request-id` when it is a sane token, else a fresh one."""
    if isinstance(value, str) and _VALID_REQUEST_ID.fullmatch(value):
        return value
    return new_request_id()
