"""Turns a `GatewayError` into a rich gRPC status: the one servicer-side converter.

The status carries `google.rpc.ErrorInfo` (a stable `reason`, `domain`, and CI's `Code`,
`Message`, `RequestId`, `TraceId` and HTTP status as metadata), `google.rpc.RequestInfo` (CI's
RequestId, the handle Tencent support asks for) and, for invalid input, `google.rpc.BadRequest`
with one field violation per bad field. Clients in any language decode these with their standard
gRPC error-details helpers.

`abort` is also where the RPC's scope (`gateway.rpc_context`) learns the reason and CI's
RequestId of the failure, for the access log: the interceptor reads them there rather than
decoding the status this module just encoded. The scope's own trailing metadata (`x-request-id`)
rides along, since an abort replaces whatever trailing metadata was set before, and so does CI's
RequestId (`x-ci-request-id`), which a success carries there too.
"""

from __future__ import annotations

import contextlib
import inspect
from typing import Any, NoReturn

import grpc
from google.protobuf import any_pb2
from google.protobuf.message import Message
from google.rpc import error_details_pb2, status_pb2
from grpc_status import rpc_status

from gateway import rpc_context
from gateway.errors import (
    GatewayError,
    InvalidRequest,
    RetryBudgetExhausted,
    SubmitOutcomeUnknown,
    UpstreamError,
    UpstreamProtocolError,
    UpstreamUnreachable,
)
from gateway.scrub import redact

DOMAIN = "ci-gateway"
# What to suggest to a throttled caller when CI sent no Retry-After.
DEFAULT_THROTTLED_RETRY_S = 1.0
# What one status carries at most, so that its trailers stay within what clients accept: grpc's
# C core refuses received metadata beyond 16 KiB (and may beyond 8 KiB), Java's default is
# 8 KiB, and a refused status reaches the caller as RESOURCE_EXHAUSTED "Stream removed", saying
# nothing of what went wrong. The message travels twice (`grpc-message`, and base64 inside
# `grpc-status-details-bin`), and some of it is text the caller sent (a bucket name it is
# refused) or CI's. The violations are few already (`InvalidRequest.MAX_REPORTED`).
MAX_MESSAGE_CHARS = 1024
MAX_METADATA_CHARS = 512  # each ErrorInfo metadata value
# Each violation's field path (ours, but a map key in it is the caller's; 32 levels of unknown
# XML nodes are 400 characters) and its description (some quote the caller's value).
MAX_FIELD_CHARS = 512
MAX_DESCRIPTION_CHARS = 256


def _pack(message: Message) -> any_pb2.Any:
    packed = any_pb2.Any()
    packed.Pack(message)
    return packed


def ci_request_id_of(error: GatewayError) -> str:
    """CI's RequestId behind `error` if CI answered at all: the handle Tencent support asks for.
    The errors that wrap CI's last answer (a submit whose outcome is unknown, a spent retry
    budget, a watched job unread for too long) carry its RequestId too: they came from CI as
    much as the answer itself did."""
    if isinstance(error, UpstreamError | UpstreamProtocolError):
        return error.request_id
    if isinstance(error, SubmitOutcomeUnknown):
        return ci_request_id_of(error.cause)
    if isinstance(error, RetryBudgetExhausted | UpstreamUnreachable):
        return ci_request_id_of(error.last)
    return ""


def clip(text: str, limit: int) -> str:
    """`text`, cut to `limit` characters (the last one an ellipsis) when it is longer."""
    return text if len(text) <= limit else text[: limit - 1] + "\u2026"


def to_status(error: GatewayError) -> status_pb2.Status:
    """The rich status of `error`. Its message and every metadata value go through
    `scrub.redact` once more, whoever made the error: the last place text leaves by. Then each
    text is cut to its `MAX_*_CHARS` (after redaction: a secret cut short might no longer look
    like one)."""
    metadata = {**error.metadata(), **error.extra, "attempts": str(error.attempts)}
    details = [
        _pack(
            error_details_pb2.ErrorInfo(
                reason=error.reason.value,
                domain=DOMAIN,
                metadata={
                    key: clip(redact(value), MAX_METADATA_CHARS) for key, value in metadata.items()
                },
            )
        )
    ]
    request_id = clip(redact(ci_request_id_of(error)), MAX_METADATA_CHARS)
    if request_id:
        details.append(
            _pack(error_details_pb2.RequestInfo(request_id=request_id, serving_data="CI"))
        )
    if isinstance(error, InvalidRequest):
        details.append(
            _pack(
                error_details_pb2.BadRequest(
                    field_violations=[
                        error_details_pb2.BadRequest.FieldViolation(
                            field=clip(redact(v.field), MAX_FIELD_CHARS),
                            description=clip(redact(v.description), MAX_DESCRIPTION_CHARS),
                        )
                        for v in error.violations
                    ]
                )
            )
        )
    if error.status is grpc.StatusCode.RESOURCE_EXHAUSTED:
        delay = error.retry_after_s
        info = error_details_pb2.RetryInfo()
        info.retry_delay.FromNanoseconds(int((delay or DEFAULT_THROTTLED_RETRY_S) * 1e9))
        details.append(_pack(info))
    return status_pb2.Status(
        code=error.status.value[0],
        message=clip(redact(str(error)), MAX_MESSAGE_CHARS),
        details=details,
    )


# Frames of these may belong to a coroutine or generator that is only suspended (an error can
# travel between tasks, e.g. from the job poller to its watchers): clearing such a frame would
# close it. Only plain functions' frames are cleared; a function cannot be suspended.
_SUSPENDABLE = (
    inspect.CO_GENERATOR
    | inspect.CO_COROUTINE
    | inspect.CO_ASYNC_GENERATOR
    | inspect.CO_ITERABLE_COROUTINE
)


def release_frames(error: BaseException) -> None:
    """Drop the local variables of the finished function frames `error` and its causes passed
    through.

    Why: grpc.aio's abort leaves the error in a reference cycle (AbortError -> its traceback ->
    the handler's frames -> the error) that only the cyclic collector frees, and it runs by
    object count, blind to what the frames hold: CI's answer (up to `max_response_bytes`) in
    the client's `_parse`, a parsed tree. Each refused call kept its own until a collection,
    so a burst of hostile answers grew the process by their size. Nothing reads those locals
    once the error exists.
    """
    seen: set[int] = set()
    current: BaseException | None = error
    # Bounded: each exception of the chain once (a chain is finite; `seen` stops a loop), and
    # each traceback entry once (a traceback is a finite list).
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        entry = current.__traceback__
        while entry is not None:
            frame = entry.tb_frame
            if not frame.f_code.co_flags & _SUSPENDABLE:
                with contextlib.suppress(RuntimeError):  # still running: ours, up the stack
                    frame.clear()
            entry = entry.tb_next
        current = current.__cause__ or current.__context__


async def abort(context: grpc.aio.ServicerContext[Any, Any], error: GatewayError) -> NoReturn:
    """End the RPC with `error` as a rich status (grpc's `abort_with_status`, typed), and note
    its reason and CI's RequestId on the RPC's scope. CI's RequestId also rides in the
    `x-ci-request-id` trailer, as on a success, so a client finds it in one place either way.
    Trailers the handler set before failing (a submit's `x-ci-gateway-request-id`, the id to
    retry with) are kept: grpc's abort would otherwise replace them."""
    release_frames(error)
    ci_request_id = redact(ci_request_id_of(error))
    rpc_context.note_answer(reason=error.reason.value, ci_request_id=ci_request_id)
    rich = rpc_status.to_status(to_status(error))
    ours = ((rpc_context.CI_REQUEST_ID_METADATA, ci_request_id),) if ci_request_id else ()
    trailing = (*rich.trailing_metadata, *ours, *rpc_context.trailing_metadata())
    set_before = context.trailing_metadata()
    if set_before:
        names = {name for name, _ in trailing}
        trailing += tuple(pair for pair in set_before if pair[0] not in names)
    await context.abort(rich.code, rich.details, trailing)
    raise AssertionError("abort returned")  # pragma: no cover
