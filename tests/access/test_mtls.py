"""Shared mode with mutual TLS: a client certificate from the trusted CA names the client; no
certificate, or one from another CA, does not even get a connection. Certificates are made at
test time (trustme); no key is committed."""

from __future__ import annotations

import secrets
from pathlib import Path

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from gateway._proto import service_pb2, service_pb2_grpc
from gateway.access.interceptor import ClientAccess
from gateway.api.server import RunningGateway
from tests.access.helpers import RecordingCredentials, sha256_hex
from tests.conftest import BUCKET
from tests.fixtures.accounts import Pki, Serve, secure_channel
from tests.integration.helpers import rich_error

LIST = service_pb2.ListMediaJobsRequest(size=1)
TOKEN = "tok-" + secrets.token_urlsafe(24)


def mtls_access(tmp_path: Path, pki: Pki) -> ClientAccess:
    path = tmp_path / "access.toml"
    path.write_text(
        f"""
mode = "shared"

[tls]
cert_file = "{pki.directory / "tls.crt"}"
key_file = "{pki.directory / "tls.key"}"
client_ca_file = "{pki.directory / "ca.crt"}"

[[clients]]
name = "transcoder"
certificate_names = ["transcoder.media.svc"]
buckets = ["{BUCKET}"]
operations = ["*"]

[[clients]]
name = "batch"
token_sha256 = ["{sha256_hex(TOKEN)}"]
buckets = ["{BUCKET}"]
operations = ["list"]
"""
    )
    return ClientAccess.from_file(path)


@pytest.fixture
async def gateway(tmp_path: Path, pki: Pki, serve: Serve) -> RunningGateway:
    return await serve(mtls_access(tmp_path, pki))


async def test_a_certificate_from_the_trusted_ca_naming_a_client_is_served(
    gateway: RunningGateway, pki: Pki, seen: RecordingCredentials
) -> None:
    async with secure_channel(gateway.address, pki.client("transcoder.media.svc")) as channel:
        stub = service_pb2_grpc.MediaJobServiceStub(channel)
        await stub.ListMediaJobs(LIST, timeout=10)
        await stub.GetMediaInfo(service_pb2.GetMediaInfoRequest(object="input/sample.mp4"))
    # The listing, the bucket's queue it names looked up first (`upstream.default_queue`), and
    # the probe.
    assert len(seen.seen) == 3


@pytest.mark.parametrize("who", ["no certificate", "another CA"])
async def test_no_certificate_or_one_from_another_ca_gets_no_connection(
    gateway: RunningGateway, pki: Pki, seen: RecordingCredentials, who: str
) -> None:
    credentials = (
        pki.anonymous()
        if who == "no certificate"
        else pki.client("transcoder.media.svc", ca=pki.other_ca)
    )
    async with secure_channel(gateway.address, credentials) as channel:
        stub = service_pb2_grpc.MediaJobServiceStub(channel)
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await stub.ListMediaJobs(LIST, timeout=10)
        # The TLS handshake fails: the call never reaches any handler.
        assert caught.value.code() is grpc.StatusCode.UNAVAILABLE
        health = health_pb2_grpc.HealthStub(channel)
        with pytest.raises(grpc.aio.AioRpcError):
            await health.Check(health_pb2.HealthCheckRequest(), timeout=10)
    assert seen.seen == []


async def test_a_valid_certificate_naming_no_client_is_unauthenticated_but_may_check_health(
    gateway: RunningGateway, pki: Pki, seen: RecordingCredentials
) -> None:
    async with secure_channel(gateway.address, pki.client("probe.monitoring.svc")) as channel:
        stub = service_pb2_grpc.MediaJobServiceStub(channel)
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await stub.ListMediaJobs(LIST, timeout=10)
        error = rich_error(caught.value)
        assert error.code is grpc.StatusCode.UNAUTHENTICATED
        assert error.error_info is not None
        assert error.error_info.reason == "CLIENT_NOT_AUTHENTICATED"
        assert "transcoder" not in str(error) and "batch" not in str(error)
        health = health_pb2_grpc.HealthStub(channel)
        answer = await health.Check(health_pb2.HealthCheckRequest(), timeout=10)
        assert answer.status == health_pb2.HealthCheckResponse.SERVING
    assert seen.seen == []


async def test_a_token_on_top_of_a_certificate_decides_who_is_calling(
    gateway: RunningGateway, pki: Pki
) -> None:
    async with secure_channel(gateway.address, pki.client("probe.monitoring.svc")) as channel:
        stub = service_pb2_grpc.MediaJobServiceStub(channel)
        token = (("authorization", f"Bearer {TOKEN}"),)
        await stub.ListMediaJobs(LIST, metadata=token, timeout=10)  # "batch" may list
        with pytest.raises(grpc.aio.AioRpcError) as caught:  # ... but not probe media
            await stub.GetMediaInfo(
                service_pb2.GetMediaInfoRequest(object="input/sample.mp4"), metadata=token
            )
        assert rich_error(caught.value).code is grpc.StatusCode.PERMISSION_DENIED
    async with secure_channel(gateway.address, pki.client("transcoder.media.svc")) as channel:
        stub = service_pb2_grpc.MediaJobServiceStub(channel)
        wrong = (("authorization", "Bearer not-a-token"),)
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await stub.ListMediaJobs(LIST, metadata=wrong, timeout=10)
        assert caught.value.code() is grpc.StatusCode.UNAUTHENTICATED


async def test_server_tls_with_tokens_and_no_client_certificates(
    tmp_path: Path, pki: Pki, serve: Serve
) -> None:
    path = tmp_path / "access.toml"
    path.write_text(
        f"""
mode = "shared"
[tls]
cert_file = "{pki.directory / "tls.crt"}"
key_file = "{pki.directory / "tls.key"}"
[[clients]]
name = "batch"
token_sha256 = ["{sha256_hex(TOKEN)}"]
buckets = ["*"]
operations = ["list"]
"""
    )
    gateway = await serve(ClientAccess.from_file(path))
    async with secure_channel(gateway.address, pki.anonymous()) as channel:
        stub = service_pb2_grpc.MediaJobServiceStub(channel)
        await stub.ListMediaJobs(LIST, metadata=(("authorization", f"Bearer {TOKEN}"),), timeout=10)
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await stub.ListMediaJobs(LIST, timeout=10)
        assert caught.value.code() is grpc.StatusCode.UNAUTHENTICATED
    async with grpc.aio.insecure_channel(gateway.address) as plaintext:
        stub = service_pb2_grpc.MediaJobServiceStub(plaintext)
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await stub.ListMediaJobs(
                LIST, metadata=(("authorization", f"Bearer {TOKEN}"),), timeout=10
            )
        assert caught.value.code() is grpc.StatusCode.UNAVAILABLE  # the port speaks TLS only
