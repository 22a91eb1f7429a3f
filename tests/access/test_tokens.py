"""Shared mode with bearer tokens: missing, wrong and right tokens; health stays open; the token
list is re-read when the access file changes."""

from __future__ import annotations

import logging
import secrets
from collections.abc import AsyncIterator
from pathlib import Path

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from gateway._proto import service_pb2, service_pb2_grpc
from gateway.access.interceptor import ClientAccess
from gateway.api.server import RunningGateway
from gateway.logs import ACCESS_LOGGER
from tests.access.helpers import (
    FakeSleep,
    RecordingCredentials,
    bearer,
    log_text,
    token_access_file,
)
from tests.api.test_interceptors import AccessLines
from tests.fixtures.accounts import Serve
from tests.fixtures.logs import attached
from tests.integration.helpers import rich_error

TOKEN = "tok-" + secrets.token_urlsafe(24)
OTHER_TOKEN = "tok-" + secrets.token_urlsafe(24)


@pytest.fixture
async def gateway(tmp_path: Path, serve: Serve) -> RunningGateway:
    path = token_access_file(tmp_path / "access.toml", ("alpha-team", TOKEN))
    return await serve(ClientAccess.from_file(path))


@pytest.fixture
async def stub(gateway: RunningGateway) -> AsyncIterator[service_pb2_grpc.MediaJobServiceAsyncStub]:
    async with grpc.aio.insecure_channel(gateway.address) as channel:
        yield service_pb2_grpc.MediaJobServiceStub(channel)


LIST = service_pb2.ListMediaJobsRequest(size=1)


@pytest.mark.parametrize(
    ("metadata", "message"),
    [
        # The whole hint arrives: the scrubber must find nothing to blank in it.
        ((), "'authorization' with the value 'Bearer <token>'"),
        (bearer("tok-" + secrets.token_urlsafe(24)), "the bearer token is not valid"),
        (bearer(""), "the bearer token is not valid"),
        ((("authorization", f"Basic {TOKEN}"),), "must be 'Bearer <token>'"),
    ],
    ids=["missing", "wrong", "empty", "not-bearer"],
)
async def test_calls_without_a_valid_token_are_unauthenticated_and_never_reach_ci(
    stub: service_pb2_grpc.MediaJobServiceAsyncStub,
    seen: RecordingCredentials,
    metadata: tuple[tuple[str, str], ...],
    message: str,
) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await stub.ListMediaJobs(LIST, metadata=metadata, timeout=10)
    error = rich_error(caught.value)
    assert error.code is grpc.StatusCode.UNAUTHENTICATED
    assert message in error.message
    assert error.error_info is not None
    assert error.error_info.reason == "CLIENT_NOT_AUTHENTICATED"
    assert error.error_info.domain == "ci-gateway"
    assert "alpha-team" not in str(error)  # no client is named to a stranger
    assert seen.seen == []


async def test_the_right_token_is_served(
    stub: service_pb2_grpc.MediaJobServiceAsyncStub, seen: RecordingCredentials
) -> None:
    answer = await stub.ListMediaJobs(LIST, metadata=bearer(TOKEN), timeout=10)
    assert list(answer.jobs_detail) == []
    assert len(seen.seen) == 2  # the listing, and the look-up of the queue it names
    # Any letter case of the scheme, as RFC 7235 allows.
    await stub.ListMediaJobs(LIST, metadata=(("authorization", f"bEaReR {TOKEN}"),), timeout=10)


async def test_health_and_reflection_need_no_credentials(gateway: RunningGateway) -> None:
    from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc

    async with grpc.aio.insecure_channel(gateway.address) as channel:
        health = health_pb2_grpc.HealthStub(channel)
        answer = await health.Check(health_pb2.HealthCheckRequest(service=""), timeout=10)
        assert answer.status == health_pb2.HealthCheckResponse.SERVING
        reflection = reflection_pb2_grpc.ServerReflectionStub(channel)
        request = reflection_pb2.ServerReflectionRequest(list_services="")
        async for reply in reflection.ServerReflectionInfo(iter([request]), timeout=10):
            names = {s.name for s in reply.list_services_response.service}
            assert "ci.media.v1.MediaJobService" in names
            break


async def test_tokens_are_reloaded_when_the_access_file_changes(
    tmp_path: Path, serve: Serve, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    sleep = FakeSleep()
    path = token_access_file(tmp_path / "access.toml", ("alpha-team", TOKEN))
    gateway = await serve(ClientAccess.from_file(path, sleep=sleep))
    # The gateway watches the file in the background, every reload_interval_s.
    assert await sleep.next_delay() == 5
    async with grpc.aio.insecure_channel(gateway.address) as channel:
        stub = service_pb2_grpc.MediaJobServiceStub(channel)
        await stub.ListMediaJobs(LIST, metadata=bearer(TOKEN), timeout=10)

        token_access_file(path, ("beta-team", OTHER_TOKEN))  # alpha's token revoked, beta's added
        # RPCs never look at the file themselves: nothing changes until the watcher checks.
        with pytest.raises(grpc.aio.AioRpcError):
            await stub.ListMediaJobs(LIST, metadata=bearer(OTHER_TOKEN), timeout=10)
        sleep.release()  # one interval passes: the watcher re-reads the file ...
        assert await sleep.next_delay() == 5  # ... and has gone back to sleep
        await stub.ListMediaJobs(LIST, metadata=bearer(OTHER_TOKEN), timeout=10)
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await stub.ListMediaJobs(LIST, metadata=bearer(TOKEN), timeout=10)
        assert caught.value.code() is grpc.StatusCode.UNAUTHENTICATED

        path.write_text("mode = 'shared'\n[[clients]]\nname = 'broken'\n")  # unusable
        sleep.release()
        assert await sleep.next_delay() == 5
        await stub.ListMediaJobs(LIST, metadata=bearer(OTHER_TOKEN), timeout=10)  # kept
    assert "access file reloaded" in caplog.text
    assert "keeping the previous one" in caplog.text
    logged = log_text(caplog)
    assert TOKEN not in logged and OTHER_TOKEN not in logged


async def test_the_watcher_stops_with_the_gateway(tmp_path: Path, serve: Serve) -> None:
    sleep = FakeSleep()
    access = ClientAccess.from_file(
        token_access_file(tmp_path / "access.toml", ("alpha-team", TOKEN)), sleep=sleep
    )
    gateway = await serve(access)
    await sleep.next_delay()
    await gateway.stop(grace_s=0)
    assert not access.watching


async def test_the_access_line_names_the_client_a_token_made_the_call_as(
    stub: service_pb2_grpc.MediaJobServiceAsyncStub,
) -> None:
    """`client_identity` holds certificate names only: a bearer token's client is `client`."""
    with attached(AccessLines(), ACCESS_LOGGER, logging.INFO) as access:
        await stub.ListMediaJobs(LIST, metadata=bearer(TOKEN), timeout=10)
        with pytest.raises(grpc.aio.AioRpcError):
            await stub.ListMediaJobs(LIST, metadata=bearer(OTHER_TOKEN), timeout=10)
        await access.line(2)  # two access lines and the refusal's own (a logger below)
    served, refused = (line for line in access.lines if line["msg"] == "rpc")
    assert (served["grpc_code"], served["client"], served["client_identity"]) == (
        "OK",
        "alpha-team",
        None,
    )
    assert (refused["grpc_code"], refused["client"]) == ("UNAUTHENTICATED", None)
