"""Shared fixtures: a real emulator on loopback, a real gateway in front of it, a real channel.

Everything runs in the test's own event loop on 127.0.0.1 with OS-chosen ports, so tests are
independent and parallel-safe. Credentials are random per test: nothing secret is in the repo.
"""

from __future__ import annotations

import logging
import secrets
import shutil
from collections.abc import AsyncIterator, Iterator, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import grpc
import pytest

from ci_emulator.config import BucketConfig, Credential, EmulatorConfig
from ci_emulator.samples import make_h264_aac_mp4
from ci_emulator.server import RunningEmulator
from gateway._proto import service_pb2_grpc
from gateway.api.server import RunningGateway, start_gateway
from gateway.config.settings import Settings
from gateway.credentials import Credentials, StaticCredentialsProvider
from gateway.upstream.client import CiClient
from gateway.upstream.transport import Transport

if TYPE_CHECKING:  # imported by pytest as a plugin below; importing it here first would stop
    # pytest from rewriting its asserts
    from tests.fixtures.servers import StartEmulator

# Fixtures several test packages share, kept as plugins so any package can use them: more
# emulators and aiohttp apps on loopback (servers), `ci-gateway serve` as a child process
# (serve_process), and a second account with recorded credentials, PKI and STS (accounts).
pytest_plugins = [
    "tests.fixtures.servers",
    "tests.fixtures.serve_process",
    "tests.fixtures.accounts",
]

BUCKET = "examplebucket-1250000000"
REGION = "ap-guangzhou"
SAMPLE_KEY = "input/sample.mp4"
SAMPLE_SECONDS = 2.0
SAMPLE_WIDTH = 320
SAMPLE_HEIGHT = 240


@pytest.fixture(autouse=True)
def no_proxy_variables(monkeypatch: pytest.MonkeyPatch) -> None:
    """The machine's proxy variables, should it have any, reach no test: the gateway honours
    them (`upstream.proxy_from_env`), and every test's CI is on loopback. Proxy tests set their
    own."""
    for name in ("https_proxy", "http_proxy", "no_proxy"):
        monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv(name.upper(), raising=False)


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


def one_bucket_config(
    bucket_dir: Path, credentials: Mapping[str, str | Credential], **options: Any
) -> EmulatorConfig:
    """The emulator most tests need: the default bucket over `bucket_dir`, these keys."""
    return EmulatorConfig(
        buckets=(BucketConfig(BUCKET, REGION, bucket_dir),), credentials=credentials, **options
    )


def settings_for(emulator: RunningEmulator, **options: Any) -> Settings:
    """Gateway settings for the default bucket, served by `emulator`, listening on loopback."""
    return Settings(
        listen="127.0.0.1:0",
        default_bucket=BUCKET,
        default_region=REGION,
        endpoint_url=emulator.url,
        **options,
    )


def ci_client(settings: Settings, credentials: Credentials, **options: Any) -> CiClient:
    """A `CiClient` to what `settings` names, with these static keys and a transport bounded as
    `start_gateway`'s is; `options` are CiClient's others (telemetry, budgets, clock, ...)."""
    return CiClient(
        settings=settings,
        credentials=StaticCredentialsProvider(credentials),
        transport=Transport(max_body_bytes=settings.max_response_bytes),
        **options,
    )


@pytest.fixture
async def emulator(
    emulators: StartEmulator, bucket_dir: Path, credentials: Credentials
) -> RunningEmulator:
    return await emulators(
        one_bucket_config(bucket_dir, {credentials.secret_id: credentials.secret_key})
    )


@pytest.fixture
def settings(emulator: RunningEmulator) -> Settings:
    return settings_for(emulator)


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


@pytest.fixture
def logging_restored() -> Iterator[None]:
    """For tests of `gateway.logs.configure`, which sets process-wide logging state (the root's
    level and handlers, logging's caller/thread/process look-ups): the other tests get theirs
    back."""
    root = logging.getLogger()
    saved = (root.level, list(root.handlers), logging._srcfile, logging.logThreads)
    saved_processes = (logging.logProcesses, logging.logMultiprocessing)
    yield
    root.setLevel(saved[0])
    root.handlers[:] = saved[1]
    logging._srcfile, logging.logThreads = saved[2], saved[3]
    logging.logProcesses, logging.logMultiprocessing = saved_processes
