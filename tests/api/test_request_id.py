"""The request id: taken from `x-request-id` or generated, returned in trailing metadata beside
the servicer's own trailing metadata (CI's RequestId, the rich error status)."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

import grpc
import pytest

from gateway._proto import media_pb2, service_pb2
from tests.conftest import SAMPLE_KEY
from tests.integration.helpers import rich_error

if TYPE_CHECKING:
    from gateway._proto.service_pb2_grpc import MediaJobServiceAsyncStub as Stub

GENERATED = re.compile(r"^[0-9a-f]{32}$")


def trailing(metadata: object) -> dict[str, list[str | bytes]]:
    pairs: dict[str, list[str | bytes]] = {}
    for key, value in metadata or ():  # type: ignore[attr-defined]
        pairs.setdefault(key, []).append(value)
    return pairs


async def test_a_given_request_id_comes_back_beside_cis_request_id(api: Stub) -> None:
    call = api.GetMediaInfo(
        service_pb2.GetMediaInfoRequest(object=SAMPLE_KEY),
        metadata=(("x-request-id", "order-42.retry-1"),),
        timeout=10,
    )
    await call
    metadata = trailing(await call.trailing_metadata())
    assert metadata["x-request-id"] == ["order-42.retry-1"]
    (ci_request_id,) = metadata["x-ci-request-id"]
    assert isinstance(ci_request_id, str) and ci_request_id


async def test_a_submit_keeps_all_three_ids(api: Stub) -> None:
    call = api.SubmitMediaJob(
        service_pb2.SubmitMediaJobRequest(
            request=media_pb2.Request(input=media_pb2.Input(object=SAMPLE_KEY))
        ),
        metadata=(("x-request-id", "trace-7"),),
        timeout=10,
    )
    await call
    metadata = trailing(await call.trailing_metadata())
    assert metadata["x-request-id"] == ["trace-7"]
    assert len(metadata["x-ci-request-id"]) == 1
    assert len(metadata["x-ci-gateway-request-id"]) == 1  # the servicer's idempotency key


@pytest.mark.parametrize("given", [None, "has spaces", "x" * 129, "<script>"])
async def test_a_missing_or_unsafe_request_id_is_replaced_by_a_generated_one(
    api: Stub, given: str | None
) -> None:
    metadata = () if given is None else (("x-request-id", given),)
    call = api.GetMediaInfo(
        service_pb2.GetMediaInfoRequest(object=SAMPLE_KEY), metadata=metadata, timeout=10
    )
    await call
    (request_id,) = trailing(await call.trailing_metadata())["x-request-id"]
    assert isinstance(request_id, str) and GENERATED.fullmatch(request_id)


async def test_an_error_keeps_the_request_id_and_the_rich_status(api: Stub) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await api.GetMediaInfo(
            service_pb2.GetMediaInfoRequest(object="input/none.mp4"),
            metadata=(("x-request-id", "err-1"),),
            timeout=10,
        )
    metadata = trailing(caught.value.trailing_metadata())
    assert metadata["x-request-id"] == ["err-1"]
    error = rich_error(caught.value)
    assert error.code == grpc.StatusCode.NOT_FOUND
    assert error.error_info is not None and error.error_info.reason == "UPSTREAM_NOT_FOUND"
    assert error.request_info is not None and error.request_info.request_id


async def test_a_validation_error_keeps_the_request_id(api: Stub) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await api.SubmitMediaJob(
            service_pb2.SubmitMediaJobRequest(), metadata=(("x-request-id", "bad-1"),), timeout=10
        )
    assert trailing(caught.value.trailing_metadata())["x-request-id"] == ["bad-1"]
    assert rich_error(caught.value).violations  # BadRequest survived too
