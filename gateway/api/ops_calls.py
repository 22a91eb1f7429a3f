"""A bound on the health and reflection calls in progress at once.

Health and reflection need no client credentials (Kubernetes' probes carry none), so on a shared
gateway they are what anyone who reaches the port may use, and both can stay open for as long as
the client likes: a health Watch until the client ends it (for a service nobody serves too, as
the health protocol requires), a reflection stream until the client closes its side, and any
call whose client sent its headers but not yet its request. Each costs grpc and Python state
(about 20 KiB measured, more for a reflection stream whose client does not read its answers),
and nothing else bounds their number: the API's admission and watcher caps count API calls
only, and HTTP/2 lets one connection open any number of streams.

`OpsCallLimit` counts them from the moment a call arrives, before its request is read (a
`gate`, see `gateway._chain`), until its task ends, and refuses one more beyond `limit` at once
with RESOURCE_EXHAUSTED (OVERLOADED, with RetryInfo), without reading its request: the API's
`servicer.Admission`, entered by the gate and left by the task's end. The API port
and the health port have one each (`gateway.api.server.OpsGuards`): kubelet's probes on the
health port must not be refused because strangers filled the API port's.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any

from gateway._chain import OPS_PREFIXES, Metadata, MethodInterceptor
from gateway.api.servicer import Admission
from gateway.errors import Overloaded

if TYPE_CHECKING:  # grpc's RpcMethodHandler is generic in its stubs only
    import grpc

    Handler = grpc.RpcMethodHandler[Any, Any]

WHAT = "health and reflection calls"


class OpsCallLimit(MethodInterceptor):
    def __init__(self, limit: int) -> None:
        self._calls = Admission(limit, WHAT)

    def wrap(self, method: str, handler: Handler) -> Handler:
        return handler  # all it does is per call, before the request: `gate`

    def gates(self, method: str) -> bool:
        return method.startswith(OPS_PREFIXES)

    def gate(self, method: str, metadata: Metadata) -> Exception | None:
        """Count a health or reflection call until its task ends; refuse it beyond the limit."""
        # The gate runs in the call's own task (grpc.aio resolves a call's handler there), and
        # that task ends with the call however it ends: answered, refused, cancelled, cut.
        task = asyncio.current_task()
        if task is None:
            return None
        try:
            self._calls.enter()
        except Overloaded as refused:
            return refused
        task.add_done_callback(self._leave)
        return None

    def _leave(self, task: asyncio.Task[Any]) -> None:
        self._calls.leave()
