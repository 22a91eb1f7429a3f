"""What every unary handler of the gateway's servicers takes around its own steps.

`MediaJobService` and the queue, template and workflow servicers each validate an RPC, make one
CI call (or a few) and answer; around that they share the same policy, written here once:

* admission: beyond a bound of RPCs in flight, refuse at once (RESOURCE_EXHAUSTED + RetryInfo)
  rather than queue, so a burst cannot pile up work the callers will have given up on;
* the deadline towards CI: the caller's, capped by `timeouts.rpc_deadline_s`;
* the answer's trailers: CI's RequestId (what CI support asks for), also noted for the log;
* `GatewayError` as a rich status. An `AbortError` (a status already sent) and a cancellation
  pass through untouched. Any other exception is the gateway's bug: the caller gets INTERNAL
  with reason INTERNAL and a fixed message, never the exception's own text (it may quote
  anything, CI's answer or a setting), and the log gets its class and traceback (scrubbed by
  the log formatters like every line).
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import grpc
from google.protobuf.message import Message

from gateway import rpc_context
from gateway.config.settings import Settings
from gateway.errors import GatewayError, Overloaded
from gateway.status import abort
from gateway.upstream.client import Reply
from gateway.upstream.retry import Deadline

log = logging.getLogger(__name__)

Req = TypeVar("Req")
Resp = TypeVar("Resp", bound=Message)
CI_REQUEST_ID_METADATA = rpc_context.CI_REQUEST_ID_METADATA


def peer_address(peer: str) -> str:
    """A gRPC peer without its source port (`ipv4:10.0.0.7`): one client opening several
    connections (or one channel per call) is still one, for the per-client bounds
    (`gateway.api.service.default_client_identity`, the health and reflection places of
    `gateway.api.ops_calls` and `gateway.api.ops_reads`)."""
    host, sep, port = peer.rpartition(":")
    return host if sep and port.isdigit() else peer


class Admission:
    """At most `limit` RPCs at once; beyond it RESOURCE_EXHAUSTED (+ RetryInfo). One instance
    may bound several servicers together."""

    def __init__(self, limit: int, what: str = "RPCs in flight") -> None:
        self.limit = limit
        self.in_flight = 0
        self._what = what

    def enter(self) -> None:
        """Count one more RPC, or refuse it; the caller must `leave` once it ends. A pair of
        calls (`rpc` wraps them in try/finally) rather than a context manager: every RPC
        passes here, and a generator-based one costs a few µs."""
        if self.in_flight >= self.limit:
            raise Overloaded(self._what, self.limit)
        self.in_flight += 1

    def leave(self) -> None:
        self.in_flight -= 1


class Servicer:
    """A servicer's settings and admission, and the deadline and reply steps of its handlers."""

    def __init__(self, settings: Settings, admission: Admission) -> None:
        self._settings = settings
        self._admission = admission

    def _deadline(self, context: grpc.aio.ServicerContext[Any, Any]) -> Deadline:
        ceiling = self._settings.timeouts.rpc_deadline_s
        remaining = context.time_remaining()
        return Deadline(ceiling if remaining is None else min(remaining, ceiling))

    @staticmethod
    def _reply(
        reply: Reply[Resp],
        context: grpc.aio.ServicerContext[Any, Any],
        *metadata: tuple[str, str],
    ) -> Resp:
        """The answer, with `metadata` and CI's RequestId in the trailers."""
        trailers = list(metadata)
        if reply.request_id:
            trailers.append((CI_REQUEST_ID_METADATA, reply.request_id))
            rpc_context.note_answer(ci_request_id=reply.request_id)
        if trailers:
            context.set_trailing_metadata(tuple(trailers))
        return reply.message


S = TypeVar("S", bound=Servicer)
Handler = Callable[[S, Req, grpc.aio.ServicerContext[Req, Resp]], Awaitable[Resp]]


def rpc(handler: Handler[S, Req, Resp]) -> Handler[S, Req, Resp]:
    """Admission, and any `GatewayError` as a rich status, around a unary handler."""
    return _handled(handler, admitted=True)


def waiting_rpc(handler: Handler[S, Req, Resp]) -> Handler[S, Req, Resp]:
    """`rpc` without admission, for a unary call that mostly waits (WaitMediaJob): it holds its
    place until its job ends or its deadline comes, so admitted, a few thousand waits would take
    every place and refuse the submits and cancels the bound is there to let through. The
    watcher caps (`tracking.max_watchers`, per client too) bound such calls instead, as they
    bound the watch streams."""
    return _handled(handler, admitted=False)


def _handled(handler: Handler[S, Req, Resp], *, admitted: bool) -> Handler[S, Req, Resp]:
    @functools.wraps(handler)
    async def wrapper(self: S, request: Req, context: grpc.aio.ServicerContext[Req, Resp]) -> Resp:
        admission = self._admission if admitted else None
        try:
            if admission is None:
                return await handler(self, request, context)
            admission.enter()
            try:
                return await handler(self, request, context)
            finally:
                admission.leave()
        except GatewayError as error:
            log.info("%s failed: %s %s", handler.__name__, error.status.name, error.reason.value)
            await abort(context, error)
        except grpc.aio.AbortError:
            raise
        except Exception:
            log.exception("%s failed unexpectedly", handler.__name__)
            await abort(context, GatewayError(UNEXPECTED))

    return wrapper


# What a caller sees of a gateway bug: enough to report it (with the call's x-request-id).
UNEXPECTED = "internal error in the gateway; its log has the details under this call's request id"
