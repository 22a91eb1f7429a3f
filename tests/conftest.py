"""Shared fixtures: a real emulator on loopback, a real gateway in front of it, a real channel.

Everything runs in the test's own event loop on 127.0.0.1 with OS-chosen ports, so tests are
independent and parallel-safe. Credentials are random per test: nothing secret is in the repo.
"""

from __future__ import annotations

import secrets
import shutil
from collections.abc import AsyncIterator
from pathlib import Path

import grpc
import pytest

from ci_emulator.config import BucketConfig, EmulatorConfig
from ci_emulator.samples import make_h264_aac_mp4
from ci_emulator.server import RunningEmulator, start_emulator
from gateway._proto import service_pb2_grpc
from gateway.api.server import RunningGateway, start_gateway
from gateway.config.settings import Settings
from gateway.credentials import Credentials, StaticCredentialsProvider

# Fixtures several test packages share (a second account and emulator, `ci-gateway serve`-like
# gateways with recorded credentials, PKI, STS), kept as plugins so any package can use them.
pytest_plugins = ["tests.fixtures.accounts"]

BUCKET = "examplebucket-1250000000"
REGION = "ap-guangzhou"
SAMPLE_KEY = "input/sample.mp4"
SAMPLE_SECONDS = 2.0
SAMPLE_WIDTH = 320
SAMPLE_HEIGHT = 240


@pytest.fixture(scope="session")
def sample_video(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One generated H.264/AAC MP4 per session (generation costs ~0.5 s)."""
    path = tmp_path_factory.mktemp("media") / "sample.mp4"
    return make_h264_aac_mp4(path, seconds=SAMPLE_SECONDS, width=SAMPLE_WIDTH, height=SAMPLE_HEIGHT)


@pytest.fixture
def bucket_dir(tmp_path: Path, sample_video: Path) -> Path:
    root = tmp_path / "bucket"
    (root / "input").mkdir(parents=True)
    shutil.copyfile(sample_video, root / SAMPLE_KEY)
    (root / "input" / "notes.txt").write_text("not a video\n")
    return root


@pytest.fixture
def credentials() -> Credentials:
    return Credentials("AKID" + secrets.token_hex(16), "SK-" + secrets.token_urlsafe(24))


@pytest.fixture
async def emulator(bucket_dir: Path, credentials: Credentials) -> AsyncIterator[RunningEmulator]:
    running = await start_emulator(
        EmulatorConfig(
            buckets=(BucketConfig(BUCKET, REGION, bucket_dir),),
            credentials={credentials.secret_id: credentials.secret_key},
        )
    )
    try:
        yield running
    finally:
        await running.close()


@pytest.fixture
def settings(emulator: RunningEmulator) -> Settings:
    return Settings(
        listen="127.0.0.1:0",
        default_bucket=BUCKET,
        default_region=REGION,
        endpoint_url=emulator.url,
    )


@pytest.fixture
async def gateway(settings: Settings, credentials: Credentials) -> AsyncIterator[RunningGateway]:
    running = await start_gateway(settings, StaticCredentialsProvider(credentials))
    try:
        yield running
    finally:
        await running.stop(grace_s=0)


@pytest.fixture
async def stub(gateway: RunningGateway) -> AsyncIterator[service_pb2_grpc.MediaJobServiceAsyncStub]:
    async with grpc.aio.insecure_channel(gateway.address) as channel:
        yield service_pb2_grpc.MediaJobServiceStub(channel)
