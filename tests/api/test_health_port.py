"""The plaintext health port (`health_listen`): grpc.health.v1 and nothing else.

It gives the API port's answers (one servicer behind both) from starting through serving to
draining, keeps answering NOT_SERVING while the API port already refuses new calls, and closes
only after the API server has stopped. It offers no API and no reflection, and in shared mode,
with TLS and bearer tokens on the API port, it is still plaintext and needs no credentials:
what kubelet's gRPC probe can use.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import socket
from collections.abc import AsyncIterator, Awaitable, Iterator
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path
from typing import Any

import grpc
import pytest
import trustme
from aiohttp import web
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc

from ci_emulator.hosts import Target
from ci_emulator.server import RunningEmulator
from gateway._proto import service_pb2, service_pb2_grpc
from gateway.access.interceptor import ClientAccess
from gateway.api.health import API_SERVICE, NOT_SERVING, OVERALL, SERVING, Readiness
from gateway.api.server import (
    HEALTH_IDLE_S,
    HealthPort,
    OpsGuards,
    RunningGateway,
    _health_server,
    health_server_options,
    start_gateway,
)
from gateway.cli import _settings_from, build_parser
from gateway.config.load import load_settings
from gateway.config.settings import ServerLimits, Settings
from gateway.credentials import Credentials, StaticCredentialsProvider
from tests.api.conftest import WAIT_S, health_status, next_status
from tests.api.test_connection_bounds import channel as own_channel
from tests.api.test_connection_bounds import check as check_on
from tests.api.test_connection_bounds import silent_connection_closed
from tests.api.test_connection_bounds import watch as watch_on
from tests.api.test_health import GatedCredentials, as_provider
from tests.conftest import BUCKET, SAMPLE_KEY
from tests.fixtures.logs import attached
from tests.fixtures.raw_h2 import RawClient

LOOPBACK = "127.0.0.1:0"
TOKEN = "health-port-test-token-0123456789"


class GatedProvider(GatedCredentials):
    """Unavailable until the test says so; then signs API calls too (one account)."""

    def for_bucket(self, bucket: str) -> GatedProvider:
        return self


def watch(channel: grpc.aio.Channel, service: str = API_SERVICE) -> Any:
    """A health Watch (a `UnaryStreamCall`) on `channel`."""
    return health_pb2_grpc.HealthStub(channel).Watch(health_pb2.HealthCheckRequest(service=service))


async def until_serving(channel: grpc.aio.Channel) -> None:
    """Readiness' first check runs in the background; follow a Watch until it passes."""
    call = watch(channel)
    while await next_status(call) != SERVING:  # bounded: each read waits at most WAIT_S
        pass
    call.cancel()


async def refused(call: Awaitable[object]) -> grpc.StatusCode:
    """The status code of a call that must fail."""
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await call
    return caught.value.code()


@contextmanager
def log_event(logger_name: str, message: str) -> Iterator[asyncio.Event]:
    """An event set when `logger_name` logs `message` (the gateway logs from the loop thread)."""
    seen = asyncio.Event()

    class Handler(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            if record.getMessage() == message:
                seen.set()

    with attached(Handler(), logger_name, logging.INFO):
        yield seen


@pytest.fixture
async def health_gateway(
    settings: Settings, credentials: Credentials
) -> AsyncIterator[RunningGateway]:
    running = await start_gateway(
        replace(settings, health_listen=LOOPBACK), StaticCredentialsProvider(credentials)
    )
    try:
        yield running
    finally:
        await running.stop(grace_s=0)


async def test_health_port_answers_like_the_api_port_from_start_to_drain(
    settings: Settings, credentials: Credentials, emulator: RunningEmulator
) -> None:
    provider = GatedProvider(credentials, block=True)
    gateway = await start_gateway(replace(settings, health_listen=LOOPBACK), as_provider(provider))
    assert gateway.health_address is not None and gateway.health_address != gateway.address
    arrived, release = asyncio.Event(), asyncio.Event()

    async def hold(request: web.Request, target: Target) -> web.StreamResponse | None:
        arrived.set()
        await release.wait()
        return None

    emulator.state.request_hooks.append(hold)
    try:
        async with (
            grpc.aio.insecure_channel(gateway.address) as api_port,
            grpc.aio.insecure_channel(gateway.health_address) as health_port,
        ):
            watches = [watch(api_port), watch(health_port)]
            # Starting: the first readiness check still waits for credentials; alive already.
            assert [await next_status(w) for w in watches] == [NOT_SERVING, NOT_SERVING]
            for channel in (api_port, health_port):
                assert await health_status(channel, OVERALL) == SERVING
                assert await health_status(channel, API_SERVICE) == NOT_SERVING

            provider.available.set()  # serving
            assert [await next_status(w) for w in watches] == [SERVING, SERVING]
            for channel in (api_port, health_port):
                assert await health_status(channel, OVERALL) == SERVING
                assert await health_status(channel, API_SERVICE) == SERVING

            # Draining, with one API call held in flight so that the drain lasts.
            stub = service_pb2_grpc.MediaJobServiceStub(api_port)
            held = asyncio.ensure_future(
                stub.GetMediaInfo(service_pb2.GetMediaInfoRequest(object=SAMPLE_KEY), timeout=60)
            )
            await asyncio.wait_for(arrived.wait(), WAIT_S)
            with log_event("gateway.api.server", "refusing new RPCs") as refusing:
                stopping = asyncio.create_task(gateway.stop(grace_s=30))
                assert [await next_status(w) for w in watches] == [NOT_SERVING, NOT_SERVING]
                await asyncio.wait_for(refusing.wait(), WAIT_S)
            # The API port takes no new call now; the health port still answers, NOT_SERVING.
            async with grpc.aio.insecure_channel(gateway.address) as late:
                late_check = health_pb2_grpc.HealthStub(late).Check(
                    health_pb2.HealthCheckRequest(service=OVERALL), timeout=WAIT_S
                )
                assert await refused(late_check) == grpc.StatusCode.UNAVAILABLE
            assert await health_status(health_port, OVERALL) == NOT_SERVING
            assert await health_status(health_port, API_SERVICE) == NOT_SERVING
            assert not held.done() and not stopping.done()

            release.set()
            assert (await asyncio.wait_for(held, WAIT_S)).media_info.format.num_stream
            await asyncio.wait_for(stopping, WAIT_S)
            # Stopped after the API server: closed now, its Watch ended.
            final = await asyncio.wait_for(watches[1].code(), WAIT_S)
            assert final in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.CANCELLED)
            check = health_pb2_grpc.HealthStub(health_port).Check(
                health_pb2.HealthCheckRequest(service=OVERALL), timeout=WAIT_S
            )
            assert await refused(check) == grpc.StatusCode.UNAVAILABLE
    finally:
        release.set()
        await gateway.stop(grace_s=0)


async def test_health_port_serves_nothing_but_health(
    health_gateway: RunningGateway, emulator: RunningEmulator
) -> None:
    assert health_gateway.health_address is not None
    async with grpc.aio.insecure_channel(health_gateway.health_address) as channel:
        await until_serving(channel)
        api = service_pb2_grpc.MediaJobServiceStub(channel)
        listing = api.ListMediaJobs(service_pb2.ListMediaJobsRequest(size=1), timeout=WAIT_S)
        assert await refused(listing) == grpc.StatusCode.UNIMPLEMENTED
        info = api.GetMediaInfo(service_pb2.GetMediaInfoRequest(object=SAMPLE_KEY), timeout=5)
        assert await refused(info) == grpc.StatusCode.UNIMPLEMENTED
        # No reflection either: the port does not even say what it serves.
        stream = reflection_pb2_grpc.ServerReflectionStub(channel).ServerReflectionInfo(
            iter([reflection_pb2.ServerReflectionRequest(list_services="")]), timeout=WAIT_S
        )
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            async for _ in stream:
                pass
        assert caught.value.code() == grpc.StatusCode.UNIMPLEMENTED
    assert sum(emulator.state.operations.values()) == 0  # nothing reached CI


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> tuple[trustme.CA, Path]:
    directory = tmp_path_factory.mktemp("health-pki")
    ca = trustme.CA()
    server = ca.issue_cert("localhost", "127.0.0.1")
    server.private_key_pem.write_to_path(directory / "tls.key")
    for blob in server.cert_chain_pems:
        blob.write_to_path(directory / "tls.crt", append=True)
    return ca, directory


def tls_channel(address: str, ca: trustme.CA) -> grpc.aio.Channel:
    return grpc.aio.secure_channel(
        address,
        grpc.ssl_channel_credentials(root_certificates=ca.cert_pem.bytes()),
        options=[("grpc.ssl_target_name_override", "localhost")],
    )


async def test_shared_mode_health_port_is_plaintext_and_needs_no_credentials(
    settings: Settings,
    credentials: Credentials,
    pki: tuple[trustme.CA, Path],
    tmp_path: Path,
) -> None:
    ca, directory = pki
    access_file = tmp_path / "access.toml"
    access_file.write_text(
        f"""mode = "shared"

[tls]
cert_file = "{directory / "tls.crt"}"
key_file = "{directory / "tls.key"}"

[[clients]]
name = "alpha"
token_sha256 = ["{hashlib.sha256(TOKEN.encode()).hexdigest()}"]
buckets = ["{BUCKET}"]
operations = ["*"]
"""
    )
    gateway = await start_gateway(
        replace(settings, health_listen=LOOPBACK),
        StaticCredentialsProvider(credentials),
        access=ClientAccess.from_file(access_file),
    )
    assert gateway.health_address is not None
    listing = service_pb2.ListMediaJobsRequest(size=1)
    try:
        # The health port: plaintext, no token, the same answers.
        async with grpc.aio.insecure_channel(gateway.health_address) as plain:
            await until_serving(plain)
            assert await health_status(plain, OVERALL) == SERVING
            api = service_pb2_grpc.MediaJobServiceStub(plain)
            # Not UNAUTHENTICATED: there is no API here to authenticate for.
            call = api.ListMediaJobs(listing, timeout=WAIT_S)
            assert await refused(call) == grpc.StatusCode.UNIMPLEMENTED
        # The API port: TLS only, and a token for the API.
        async with grpc.aio.insecure_channel(gateway.address) as plain_api:
            check = health_pb2_grpc.HealthStub(plain_api).Check(
                health_pb2.HealthCheckRequest(service=OVERALL), timeout=WAIT_S
            )
            assert await refused(check) == grpc.StatusCode.UNAVAILABLE
        async with tls_channel(gateway.address, ca) as secure:
            assert await health_status(secure, API_SERVICE) == SERVING
            api = service_pb2_grpc.MediaJobServiceStub(secure)
            call = api.ListMediaJobs(listing, timeout=WAIT_S)
            assert await refused(call) == grpc.StatusCode.UNAUTHENTICATED
            bearer = (("authorization", f"Bearer {TOKEN}"),)
            await api.ListMediaJobs(listing, metadata=bearer, timeout=WAIT_S)
    finally:
        await gateway.stop(grace_s=0)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


async def test_taken_ports_fail_loudly_and_leave_nothing_bound(
    health_gateway: RunningGateway, settings: Settings, credentials: Credentials
) -> None:
    keys = StaticCredentialsProvider(credentials)
    assert health_gateway.health_address is not None
    with pytest.raises(OSError, match=r"cannot listen on .*\(health_listen\)"):
        await start_gateway(replace(settings, health_listen=health_gateway.health_address), keys)
    # The API port taken: the health port, bound first, is released again.
    spare = f"127.0.0.1:{free_port()}"
    with pytest.raises(OSError, match="cannot listen"):
        await start_gateway(
            replace(settings, listen=health_gateway.address, health_listen=spare), keys
        )
    again = await start_gateway(replace(settings, health_listen=spare), keys)
    try:
        assert again.health_address == spare
    finally:
        await again.stop(grace_s=0)


def test_health_listen_from_flag_environment_and_file(tmp_path: Path) -> None:
    assert Settings().health_listen == ""  # off unless asked for
    args = build_parser().parse_args(["serve", "--health-listen", "0.0.0.0:8081"])
    assert _settings_from(args).health_listen == "0.0.0.0:8081"
    from_env = load_settings(environ={"CI_GATEWAY_HEALTH_LISTEN": "[::]:8081"})
    assert from_env.health_listen == "[::]:8081"
    path = tmp_path / "gateway.toml"
    path.write_text('health_listen = "8081"')
    with pytest.raises(ValueError, match="health_listen"):
        load_settings(config_file=path)


@pytest.fixture
async def quick_idle_health_port() -> AsyncIterator[HealthPort]:
    """The health port alone, as `start_gateway` builds it, but reaping idle connections after
    half a second instead of `HEALTH_IDLE_S`."""
    readiness = Readiness()
    await readiness.prepare()
    guards = OpsGuards.from_settings(ServerLimits())
    port = _health_server(readiness, LOOPBACK, guards, idle_s=0.5)
    await port.server.start()
    try:
        yield port
    finally:
        await port.server.stop(None)


async def test_the_health_port_closes_connections_that_make_no_call(
    quick_idle_health_port: HealthPort,
) -> None:
    """A stranger's connection that never made a call was kept for ever, and a socket that
    never sent a byte for grpc's 120 s handshake time-out: no cap on connections holds them
    back here (kubelet dials anew for each probe, so a cap would lock it out), time does."""
    address = quick_idle_health_port.address
    async with own_channel(address) as watching, own_channel(address) as done:
        held = watch_on(watching)
        assert (await next_status(held)) == NOT_SERVING  # readiness still preparing
        assert await check_on(done) == NOT_SERVING
        # A connection that has sent nothing but its preface, and one that sent nothing at all,
        # are closed after the idle time.
        idle = await asyncio.to_thread(RawClient, address)
        try:
            assert await asyncio.to_thread(idle.closed)
        finally:
            idle.close()
        assert 0.4 < await asyncio.to_thread(silent_connection_closed, address) < WAIT_S
        # So is the one whose probe was answered; a new probe connects again.
        async with asyncio.timeout(WAIT_S):
            await done.wait_for_state_change(grpc.ChannelConnectivity.READY)
        assert await check_on(done) == NOT_SERVING
        # A connection with a call in progress is kept.
        assert watching.get_state() is grpc.ChannelConnectivity.READY
        assert not held.done()
        held.cancel()


def test_the_health_port_reaps_idle_connections_and_caps_none() -> None:
    options = dict(health_server_options())
    assert options["grpc.max_connection_idle_ms"] == int(HEALTH_IDLE_S * 1000)
    assert options["grpc.server_handshake_timeout_ms"] == int(HEALTH_IDLE_S * 1000)
    assert HEALTH_IDLE_S <= 10  # kubelet's probes close their connection within seconds
    assert "grpc.max_allowed_incoming_connections" not in options
    # A vanished peer's Watch does not hold its place for grpc's default two hours.
    assert options["grpc.keepalive_time_ms"] <= 60_000
    assert options["grpc.keepalive_timeout_ms"] <= 20_000
