"""Fixtures for credential custody and client access: an emulator with two buckets that records
which SecretIds it was shown, certificates made at test time (no key is ever committed), and a
factory for gateways with a given access configuration."""

from __future__ import annotations

import json
import shutil
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import grpc
import pytest
import trustme
from aiohttp import web

from ci_emulator.config import BucketConfig, EmulatorConfig
from ci_emulator.server import RunningEmulator, start_emulator
from gateway.access.interceptor import ClientAccess
from gateway.api.server import RunningGateway, start_gateway
from gateway.config.settings import Settings
from gateway.credentials import Credentials, CredentialsProvider, StaticCredentialsProvider
from tests.auth.helpers import RecordingCredentials, canary_credentials
from tests.conftest import BUCKET, REGION, SAMPLE_KEY

OTHER_BUCKET = "otherbucket-1250000000"
ROLE = "qcs::cam::uin/100000000002:roleName/ci-gateway"


@pytest.fixture
def upstream_keys() -> Credentials:
    return canary_credentials("main")


@pytest.fixture
def seen(upstream_keys: Credentials) -> RecordingCredentials:
    return RecordingCredentials(upstream_keys)


@pytest.fixture
def other_bucket_dir(tmp_path: Path, bucket_dir: Path) -> Path:
    root = tmp_path / "other-bucket"
    (root / "input").mkdir(parents=True)
    shutil.copyfile(bucket_dir / SAMPLE_KEY, root / SAMPLE_KEY)
    return root


@pytest.fixture
async def emulator2(
    bucket_dir: Path, other_bucket_dir: Path, seen: RecordingCredentials
) -> AsyncIterator[RunningEmulator]:
    """Two buckets; `seen` is its credential table, so tests can add keys and read who called."""
    running = await start_emulator(
        EmulatorConfig(
            buckets=(
                BucketConfig(BUCKET, REGION, bucket_dir),
                BucketConfig(OTHER_BUCKET, REGION, other_bucket_dir),
            ),
            credentials=seen,
        )
    )
    try:
        yield running
    finally:
        await running.close()


@pytest.fixture
def settings2(emulator2: RunningEmulator) -> Settings:
    return Settings(
        listen="127.0.0.1:0",
        default_bucket=BUCKET,
        default_region=REGION,
        endpoint_url=emulator2.url,
    )


Serve = Callable[..., Awaitable[RunningGateway]]


@pytest.fixture
async def serve(settings2: Settings, upstream_keys: Credentials) -> AsyncIterator[Serve]:
    """Start gateways in front of `emulator2`; all are stopped at the end of the test."""
    started: list[RunningGateway] = []

    async def start(
        access: ClientAccess | None = None,
        credentials: CredentialsProvider | None = None,
        **kwargs: object,
    ) -> RunningGateway:
        gateway = await start_gateway(
            settings2,
            credentials or StaticCredentialsProvider(upstream_keys),
            access=access,
            **kwargs,  # type: ignore[arg-type]
        )
        started.append(gateway)
        return gateway

    try:
        yield start
    finally:
        for gateway in started:
            await gateway.stop(grace_s=0)


@dataclass
class Pki:
    """A CA the gateway trusts for clients, its server certificate, and a CA it does not."""

    ca: trustme.CA
    server: trustme.LeafCert
    other_ca: trustme.CA
    directory: Path

    def client(self, name: str, *, ca: trustme.CA | None = None) -> grpc.ChannelCredentials:
        leaf = (ca or self.ca).issue_cert(name, common_name=name)
        return grpc.ssl_channel_credentials(
            root_certificates=self.ca.cert_pem.bytes(),
            private_key=leaf.private_key_pem.bytes(),
            certificate_chain=b"".join(blob.bytes() for blob in leaf.cert_chain_pems),
        )

    def anonymous(self) -> grpc.ChannelCredentials:
        """Trusts the server, presents no certificate."""
        return grpc.ssl_channel_credentials(root_certificates=self.ca.cert_pem.bytes())


@pytest.fixture(scope="session")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    directory = tmp_path_factory.mktemp("pki")
    ca = trustme.CA()
    server = ca.issue_cert("localhost", "127.0.0.1")
    server.private_key_pem.write_to_path(directory / "tls.key")
    for blob in server.cert_chain_pems:
        blob.write_to_path(directory / "tls.crt", append=True)
    ca.cert_pem.write_to_path(directory / "ca.crt")
    return Pki(ca, server, trustme.CA(), directory)


def secure_channel(address: str, credentials: grpc.ChannelCredentials) -> grpc.aio.Channel:
    # The server certificate names localhost; the gateway is reached by its loopback address.
    return grpc.aio.secure_channel(
        address, credentials, options=[("grpc.ssl_target_name_override", "localhost")]
    )


@dataclass
class StsEndpoint:
    """A loopback stand-in for sts.tencentcloudapi.com: answers AssumeRole like STS does (API
    3.0 JSON), registers what it issues with the emulator, and keeps every request it got."""

    registry: RecordingCredentials | None = None
    url_host: str = ""
    requests: list[dict[str, Any]] = field(default_factory=list)
    issued: list[Credentials] = field(default_factory=list)
    error: tuple[str, str] | None = None  # (Code, Message)

    async def handle(self, request: web.Request) -> web.Response:
        body = await request.json()
        self.requests.append({"headers": dict(request.headers), "body": body})
        answer: dict[str, Any] = {"RequestId": f"req-{len(self.requests)}"}
        if self.error is not None:
            answer["Error"] = {"Code": self.error[0], "Message": self.error[1]}
        else:
            expires = int(time.time()) + 7200
            fresh = canary_credentials(f"sts{len(self.issued)}", token=True, expires_at=expires)
            self.issued.append(fresh)
            if self.registry is not None:
                self.registry.add(fresh)
            answer |= {
                "Credentials": {
                    "Token": fresh.token,
                    "TmpSecretId": fresh.secret_id,
                    "TmpSecretKey": fresh.secret_key,
                },
                "ExpiredTime": expires,
                "Expiration": "2026-01-01T02:00:00Z",
            }
        return web.Response(
            body=json.dumps({"Response": answer}), headers={"Content-Type": "application/json"}
        )


@pytest.fixture
async def sts(
    seen: RecordingCredentials, monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[StsEndpoint]:
    for name in ("HTTP_PROXY", "http_proxy", "HTTPS_PROXY", "https_proxy", "ALL_PROXY"):
        monkeypatch.delenv(name, raising=False)  # the SDK would send loopback calls to a proxy
    endpoint = StsEndpoint(registry=seen)
    app = web.Application()
    app.router.add_post("/", endpoint.handle)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    endpoint.url_host = f"127.0.0.1:{runner.addresses[0][1]}"
    try:
        yield endpoint
    finally:
        await runner.cleanup()
