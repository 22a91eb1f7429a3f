"""Reading rich gRPC errors in tests."""

from __future__ import annotations

from dataclasses import dataclass, field

import grpc
import pytest
from google.rpc import error_details_pb2
from grpc_status import rpc_status


@dataclass
class RichError:
    code: grpc.StatusCode
    message: str
    error_info: error_details_pb2.ErrorInfo | None = None
    request_info: error_details_pb2.RequestInfo | None = None
    retry_info: error_details_pb2.RetryInfo | None = None
    violations: dict[str, str] = field(default_factory=dict)


def rich_error(error: grpc.aio.AioRpcError) -> RichError:
    result = RichError(error.code(), error.details() or "")
    status = rpc_status.from_call(error)  # type: ignore[arg-type]
    if status is None:
        return result
    for detail in status.details:
        if detail.Is(error_details_pb2.ErrorInfo.DESCRIPTOR):
            result.error_info = error_details_pb2.ErrorInfo()
            detail.Unpack(result.error_info)
        elif detail.Is(error_details_pb2.RequestInfo.DESCRIPTOR):
            result.request_info = error_details_pb2.RequestInfo()
            detail.Unpack(result.request_info)
        elif detail.Is(error_details_pb2.RetryInfo.DESCRIPTOR):
            result.retry_info = error_details_pb2.RetryInfo()
            detail.Unpack(result.retry_info)
        elif detail.Is(error_details_pb2.BadRequest.DESCRIPTOR):
            bad = error_details_pb2.BadRequest()
            detail.Unpack(bad)
            result.violations = {v.field: v.description for v in bad.field_violations}
    return result


async def refused(call: grpc.aio.UnaryUnaryCall) -> RichError:  # type: ignore[type-arg]
    """The rich error of a call that must fail INVALID_ARGUMENT (the caller's own mistake)."""
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await call
    error = rich_error(caught.value)
    assert error.code == grpc.StatusCode.INVALID_ARGUMENT, error
    return error
