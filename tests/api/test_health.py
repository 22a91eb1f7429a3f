"""grpc.health.v1 and the HTTP probes: starting -> serving -> draining, and credentials."""

from __future__ import annotations

import asyncio
import logging
from dataclasses import replace
from typing import cast

import aiohttp
import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from gateway.api.health import (
    API_SERVICE,
    NOT_SERVING,
    OVERALL,
    SERVING,
    Readiness,
    ReadinessCheck,
    credentials_check,
)
from gateway.api.server import start_gateway
from gateway.config.settings import Settings
from gateway.credentials import (
    Credentials,
    CredentialsProvider,
    CredentialStatus,
)
from gateway.errors import NoCredentialsError
from tests.api.conftest import WAIT_S, get, health_status, next_status


class GatedCredentials:
    """Credentials that are unavailable (blocking or failing) until the test says otherwise."""

    name = "test-gated"

    def __init__(self, credentials: Credentials, *, block: bool) -> None:
        self._credentials = credentials
        self.block = block
        self.available = asyncio.Event()

    async def get(self) -> Credentials:
        if self.block:
            await self.available.wait()
        elif not self.available.is_set():
            raise NoCredentialsError("no credentials yet")
        return self._credentials

    def at_hand(self) -> Credentials | None:
        return None  # `get` may wait

    def statuses(self) -> list[CredentialStatus]:
        return [CredentialStatus(self.name, valid=self.available.is_set())]

    def for_bucket(self, bucket: str) -> GatedCredentials:
        return self

    async def renew(self, refused: Credentials) -> bool:
        return False

    def expires_at(self) -> float | None:
        return None

    async def start(self) -> None:
        return None

    async def close(self) -> None:
        return None


def as_provider(gated: GatedCredentials) -> CredentialsProvider:
    """Typed as the protocol, which mypy checks it satisfies."""
    return gated


async def test_starting_then_serving_then_draining(
    settings: Settings, credentials: Credentials
) -> None:
    provider = GatedCredentials(credentials, block=True)
    gateway = await start_gateway(settings, as_provider(provider))
    try:
        async with grpc.aio.insecure_channel(gateway.address) as channel:
            watch = health_pb2_grpc.HealthStub(channel).Watch(
                health_pb2.HealthCheckRequest(service=API_SERVICE)
            )
            # Starting: the first readiness check is still waiting for credentials.
            assert await next_status(watch) == NOT_SERVING
            assert await health_status(channel, OVERALL) == SERVING  # alive all the same
            provider.available.set()
            assert await next_status(watch) == SERVING
            assert await health_status(channel, API_SERVICE) == SERVING

            stopping = asyncio.create_task(gateway.stop(grace_s=30))
            assert await next_status(watch) == NOT_SERVING
            # The open Watch stream does not hold the drain for the 30 s grace: with no API call
            # in flight the server stops at once and ends the stream.
            await asyncio.wait_for(stopping, WAIT_S)
            final = await asyncio.wait_for(watch.code(), WAIT_S)
            assert final in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.CANCELLED)
    finally:
        await gateway.stop(grace_s=0)


async def test_health_list_names_every_service_and_logs_no_error(
    settings: Settings, credentials: Credentials, caplog: pytest.LogCaptureFixture
) -> None:
    """health v1's `List`, which anyone may call: grpc's servicer left it unimplemented, so
    each call was UNKNOWN and an ERROR with a traceback in the log."""
    caplog.set_level(logging.INFO)
    provider = GatedCredentials(credentials, block=True)
    gateway = await start_gateway(settings, as_provider(provider))
    try:
        async with grpc.aio.insecure_channel(gateway.address) as channel:
            stub = health_pb2_grpc.HealthStub(channel)
            listed = await stub.List(health_pb2.HealthListRequest(), timeout=WAIT_S)
            assert {name: reply.status for name, reply in listed.statuses.items()} == {
                OVERALL: SERVING,
                API_SERVICE: NOT_SERVING,  # still waiting for credentials
            }
            watch = stub.Watch(health_pb2.HealthCheckRequest(service=API_SERVICE))
            assert await next_status(watch) == NOT_SERVING
            provider.available.set()
            assert await next_status(watch) == SERVING
            listed = await stub.List(health_pb2.HealthListRequest(), timeout=WAIT_S)
            assert listed.statuses[API_SERVICE].status == SERVING
            watch.cancel()
    finally:
        await gateway.stop(grace_s=0)
    assert not [record for record in caplog.records if record.levelno >= logging.ERROR]


async def test_readiness_follows_credentials_and_http_probes_agree(
    settings: Settings, credentials: Credentials, http: aiohttp.ClientSession
) -> None:
    provider = GatedCredentials(credentials, block=False)
    gateway = await start_gateway(
        replace(settings, metrics_listen="127.0.0.1:0"), as_provider(provider)
    )
    ops = f"http://{gateway.ops_address}"
    try:
        async with grpc.aio.insecure_channel(gateway.address) as channel:
            watch = health_pb2_grpc.HealthStub(channel).Watch(
                health_pb2.HealthCheckRequest(service=API_SERVICE)
            )
            assert await next_status(watch) == NOT_SERVING
            await gateway.readiness.evaluate()  # the failing check has certainly run
            assert await get(http, ops + "/livez") == (200, "ok\n")
            status, body = await get(http, ops + "/readyz")
            assert status == 503 and "credentials:test-gated" in body

            provider.available.set()
            gateway.readiness.recheck()
            assert await next_status(watch) == SERVING
            assert await get(http, ops + "/readyz") == (200, "ok\n")

            provider.available.clear()
            gateway.readiness.recheck()
            assert await next_status(watch) == NOT_SERVING  # credentials lost: out of rotation

            await gateway.stop(grace_s=0)
    finally:
        await gateway.stop(grace_s=0)


async def test_draining_fails_both_http_probes(
    settings: Settings, credentials: Credentials, http: aiohttp.ClientSession
) -> None:
    provider = GatedCredentials(credentials, block=False)
    provider.available.set()
    gateway = await start_gateway(
        replace(settings, metrics_listen="127.0.0.1:0"), as_provider(provider)
    )
    ops = f"http://{gateway.ops_address}"
    try:
        assert await gateway.readiness.evaluate()
        assert (await get(http, ops + "/readyz"))[0] == 200
        await gateway.readiness.enter_graceful_shutdown()
        assert await get(http, ops + "/livez") == (503, "not alive: draining\n")
        assert await get(http, ops + "/readyz") == (503, "not ready: draining\n")
        # Draining is for good: a passing check cannot bring readiness back.
        assert not await gateway.readiness.evaluate()
        assert await get(http, ops + "/readyz") == (503, "not ready: draining\n")
    finally:
        await gateway.stop(grace_s=0)


async def test_readiness_covers_every_account_not_just_the_default(
    credentials: Credentials,
) -> None:
    class TwoAccounts:
        """The default account works; another bucket's account has no keys."""

        name = "two-accounts"

        async def get(self) -> Credentials:
            return credentials

        def statuses(self) -> list[CredentialStatus]:
            return [
                CredentialStatus("default", valid=True),
                CredentialStatus("directory:/secrets/other", valid=False),
            ]

    readiness = Readiness([credentials_check(cast("CredentialsProvider", TwoAccounts()))])
    assert await readiness.evaluate() is False
    assert readiness.failing == ("credentials:two-accounts",)


async def test_a_check_with_hysteresis_rides_out_a_blip_and_needs_a_streak_to_return() -> None:
    """A networked dependency (the shared submit store) that fails one probe must not take the
    replica out of rotation; two failures in a row do, and two passes in a row bring it back.
    The first probe decides at once, so a store that is down at start keeps the replica out."""
    outcomes: list[bool] = []  # True: the next probe passes

    async def probe() -> None:
        if not outcomes.pop(0):
            raise ConnectionError("store down")

    async def ready_after(*passes: bool) -> list[bool]:
        readiness_after = []
        for passed in passes:  # bounded: one probe each
            outcomes.append(passed)
            readiness_after.append(await readiness.evaluate())
        return readiness_after

    readiness = Readiness([ReadinessCheck("store", probe, fail_after=2, pass_after=2)])
    assert await ready_after(True, False, True, False) == [True, True, True, True]  # blips
    assert await ready_after(False) == [False]  # the second failure in a row
    assert readiness.failing == ("store",)
    assert await ready_after(True, False, True) == [False, False, False]  # no streak yet
    assert await ready_after(True) == [True]  # the second pass in a row

    readiness = Readiness([ReadinessCheck("store", probe, fail_after=2, pass_after=2)])
    assert await ready_after(False) == [False]  # down at start: out at once, no grace
    assert await ready_after(True, True) == [False, True]
