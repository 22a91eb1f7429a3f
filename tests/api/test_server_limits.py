"""gRPC server limits: configurable from file, environment and flags, and enforced."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import replace

import grpc
import pytest
from aiohttp import web

from ci_emulator.hosts import Target
from ci_emulator.server import RunningEmulator
from gateway._proto import service_pb2, service_pb2_grpc
from gateway.api.server import RunningGateway, server_options, start_gateway
from gateway.cli import _settings_from, build_parser
from gateway.config.load import load_settings
from gateway.config.settings import ServerLimits, Settings
from gateway.credentials import Credentials, StaticCredentialsProvider
from tests.conftest import SAMPLE_KEY
from tests.integration.helpers import rich_error

WAIT_S = 10.0


async def started(settings: Settings, credentials: Credentials) -> RunningGateway:
    return await start_gateway(settings, StaticCredentialsProvider(credentials))


@pytest.fixture
async def limited(settings: Settings, credentials: Credentials) -> AsyncIterator[RunningGateway]:
    limits = ServerLimits(max_request_bytes=64 * 1024, max_concurrent_rpcs=1)
    gateway = await started(replace(settings, server=limits), credentials)
    try:
        yield gateway
    finally:
        await gateway.stop(grace_s=0)


async def test_an_oversized_request_is_refused_before_the_handler(
    limited: RunningGateway, emulator: RunningEmulator
) -> None:
    async with grpc.aio.insecure_channel(limited.address) as channel:
        stub = service_pb2_grpc.MediaJobServiceStub(channel)
        request = service_pb2.DescribeMediaJobsRequest(job_ids=["j" * 1000] * 70)
        assert request.ByteSize() > 64 * 1024
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await stub.DescribeMediaJobs(request, timeout=WAIT_S)
        assert caught.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
        # grpc's own refusal, which names the limit
        assert f"vs. {64 * 1024})" in str(caught.value.details())
    assert sum(emulator.state.operations.values()) == 0  # CI never saw it


async def test_rpcs_beyond_max_concurrent_rpcs_are_refused(
    limited: RunningGateway, emulator: RunningEmulator
) -> None:
    arrived, release = asyncio.Event(), asyncio.Event()

    async def hold(request: web.Request, target: Target) -> web.StreamResponse | None:
        arrived.set()
        await release.wait()
        return None

    emulator.state.request_hooks.append(hold)
    async with grpc.aio.insecure_channel(limited.address) as channel:
        stub = service_pb2_grpc.MediaJobServiceStub(channel)
        first = asyncio.ensure_future(
            stub.GetMediaInfo(service_pb2.GetMediaInfoRequest(object=SAMPLE_KEY), timeout=WAIT_S)
        )
        await asyncio.wait_for(arrived.wait(), WAIT_S)
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await stub.GetMediaInfo(
                service_pb2.GetMediaInfoRequest(object=SAMPLE_KEY), timeout=WAIT_S
            )
        refused = rich_error(caught.value)
        assert refused.code == grpc.StatusCode.RESOURCE_EXHAUSTED
        # The gateway's own refusal, as its admission's: a reason and when to retry.
        assert refused.error_info is not None
        assert refused.error_info.reason == "OVERLOADED"
        assert refused.error_info.metadata["limit"] == "1"
        assert refused.retry_info is not None
        assert refused.retry_info.retry_delay.ToNanoseconds() > 0
        release.set()
        assert (await first).media_info.format.num_stream


async def test_a_taken_port_fails_loudly_instead_of_sharing_it(
    settings: Settings, credentials: Credentials
) -> None:
    first = await started(settings, credentials)
    try:
        with pytest.raises(OSError, match="cannot listen"):
            await started(replace(settings, listen=first.address), credentials)
    finally:
        await first.stop(grace_s=0)


def test_limits_come_from_flags_environment_and_file(tmp_path: pytest.TempPathFactory) -> None:
    args = build_parser().parse_args(
        [
            "serve",
            "--max-message-bytes", "1048576",
            "--max-request-bytes", "65536",
            "--max-request-memory-mb", "24",
            "--keepalive-time-s", "30",
            "--keepalive-timeout-s", "5",
            "--max-connection-age-s", "120",
            "--max-connection-age-grace-s", "15",
            "--max-connections", "300",
            "--max-streams-per-connection", "64",
            "--max-connection-idle-s", "30",
            "--shutdown-grace-s", "12.5",
            "--metrics-listen", "0.0.0.0:9090",
            "--log-format", "text",
        ]
    )  # fmt: skip
    settings = _settings_from(args)
    assert settings.server == ServerLimits(
        max_message_bytes=1048576,
        max_request_bytes=65536,
        max_request_memory_mb=24,
        keepalive_time_s=30.0,
        keepalive_timeout_s=5.0,
        max_connection_age_s=120.0,
        max_connection_age_grace_s=15.0,
        max_connections=300,
        max_streams_per_connection=64,
        max_connection_idle_s=30.0,
    )
    assert (settings.shutdown_grace_s, settings.log_format) == (12.5, "text")
    options = dict(server_options(settings.server))
    assert options["grpc.max_receive_message_length"] == 65536
    assert options["grpc.max_send_message_length"] == 1048576
    assert options["grpc.keepalive_time_ms"] == 30_000
    assert options["grpc.keepalive_timeout_ms"] == 5_000
    assert options["grpc.max_connection_age_ms"] == 120_000
    assert options["grpc.max_connection_age_grace_ms"] == 15_000
    assert options["grpc.so_reuseport"] == 0
    assert options["grpc.max_allowed_incoming_connections"] == 300
    assert options["grpc.max_concurrent_streams"] == 64
    assert options["grpc.max_connection_idle_ms"] == 30_000
    # The handshake time-out follows a shorter idle bound, never a longer one.
    assert options["grpc.server_handshake_timeout_ms"] == 30_000
    long_idle = dict(server_options(ServerLimits(max_connection_idle_s=600)))
    assert long_idle["grpc.server_handshake_timeout_ms"] == 120_000

    from_env = load_settings(environ={"CI_GATEWAY_SERVER_MAX_CONCURRENT_RPCS": "500"})
    assert from_env.server.max_concurrent_rpcs == 500
    never = dict(
        server_options(
            ServerLimits(
                max_connection_age_s=0,
                max_connections=0,
                max_streams_per_connection=0,
                max_connection_idle_s=0,
            )
        )
    )
    for unbounded in (
        "grpc.max_connection_age_ms",
        "grpc.max_allowed_incoming_connections",
        "grpc.max_concurrent_streams",
        "grpc.max_connection_idle_ms",
        "grpc.server_handshake_timeout_ms",
    ):
        assert unbounded not in never


@pytest.mark.parametrize(
    ("text", "named"),
    [
        ("[server]\nmax_message_bytes = 10", "server.max_message_bytes"),
        ("[server]\nmax_request_bytes = 10", "server.max_request_bytes"),
        # A request of 1 MiB counts for 40 once it has come: it could never be taken.
        ("[server]\nmax_request_bytes = 1048576", "server.max_request_memory_mb"),
        ("[server]\nmax_request_memory_mb = 0", "server.max_request_memory_mb"),
        ("[server]\nkeepalive_time_s = 0", "server.keepalive_time_s"),
        ("[server]\nmax_concurrent_rpcs = -1", "server.max_concurrent_rpcs"),
        ("[server]\nmax_connections = -1", "server.max_connections"),
        ("[server]\nmax_streams_per_connection = -5", "server.max_streams_per_connection"),
        ("[server]\nmax_connection_idle_s = -0.5", "server.max_connection_idle_s"),
        ("[server]\nmax_age = 1", "server.max_age"),
        ('log_format = "xml"', "log_format"),
        ('metrics_listen = "9090"', "metrics_listen"),
        ("shutdown_grace_s = -1", "shutdown_grace_s"),
    ],
)
def test_bad_limits_are_named(tmp_path: object, text: str, named: str) -> None:
    from pathlib import Path

    path = Path(str(tmp_path)) / "gateway.toml"
    path.write_text(text)
    with pytest.raises(ValueError, match=named.replace(".", r"\.")):
        load_settings(config_file=path)
