"""Turns a `GatewayError` into a rich gRPC status: the one servicer-side converter.

The status carries `google.rpc.ErrorInfo` (a stable `reason`, `domain`, and CI's `Code`,
`Message`, `RequestId`, `TraceId` and HTTP status as metadata), `google.rpc.RequestInfo` (CI's
RequestId, the handle Tencent support asks for) and, for invalid input, `google.rpc.BadRequest`
with one field violation per bad field. Clients in any language decode these with their standard
gRPC error-details helpers.
"""

from __future__ import annotations

from typing import Any, NoReturn

import grpc
from google.protobuf import any_pb2
from google.protobuf.message import Message
from google.rpc import error_details_pb2, status_pb2
from grpc_status import rpc_status

from gateway.errors import (
    GatewayError,
    InvalidRequest,
    UpstreamError,
    UpstreamProtocolError,
)

DOMAIN = "ci-gateway"
# What to suggest to a throttled caller when CI sent no Retry-After.
DEFAULT_THROTTLED_RETRY_S = 1.0


def _pack(message: Message) -> any_pb2.Any:
    packed = any_pb2.Any()
    packed.Pack(message)
    return packed


def to_status(error: GatewayError) -> status_pb2.Status:
    details = [
        _pack(
            error_details_pb2.ErrorInfo(
                reason=error.reason.value,
                domain=DOMAIN,
                metadata={**error.metadata(), **error.extra, "attempts": str(error.attempts)},
            )
        )
    ]
    request_id = ""
    if isinstance(error, UpstreamError | UpstreamProtocolError):
        request_id = error.request_id
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
                            field=v.field, description=v.description
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
    return status_pb2.Status(code=error.status.value[0], message=str(error), details=details)


async def abort(context: grpc.aio.ServicerContext[Any, Any], error: GatewayError) -> NoReturn:
    """End the RPC with `error` as a rich status (grpc's `abort_with_status`, typed)."""
    rich = rpc_status.to_status(to_status(error))
    await context.abort(rich.code, rich.details, rich.trailing_metadata)
    raise AssertionError("abort returned")  # pragma: no cover
