"""A Redis outage under a shared submit store: submits fail with a reason of their own, and
readiness takes the replica out of rotation and brings it back by itself.

The Redis is the test's own (`redis_server`), stopped and started again on its port; readiness
runs its checks every 50 ms, and the test follows the health service's Watch stream, so every
wait is for a reported change, never for a fixed time.
"""

from __future__ import annotations

import asyncio
from dataclasses import replace
from typing import Any

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from ci_emulator.server import RunningEmulator
from gateway._proto import service_pb2_grpc
from gateway.api.health import API_SERVICE, NOT_SERVING, SERVING
from gateway.api.server import start_gateway
from gateway.config.settings import Settings, Shared
from gateway.credentials import Credentials, StaticCredentialsProvider
from gateway.jobs.runtime import STORE_TIMEOUT_S
from tests.api.conftest import next_status
from tests.fixtures.tcp import stream_server
from tests.integration.helpers import rich_error
from tests.jobs.conftest import RedisServer
from tests.jobs.helpers import submit

READINESS_INTERVAL_S = 0.05
MAX_UPDATES = 50  # bounds a wait for one status: each update is a change the servicer sent


async def until(watch: Any, wanted: int) -> None:
    """Read the health Watch until it reports `wanted` (bounded by updates, each by time)."""
    for _ in range(MAX_UPDATES):
        if await next_status(watch) == wanted:
            return
    raise AssertionError(f"health never reported {wanted}")


async def test_a_redis_outage_fails_submits_clearly_and_readiness_follows_it(
    settings: Settings,
    credentials: Credentials,
    emulator: RunningEmulator,
    redis_server: RedisServer,
) -> None:
    emulator.state.pause_scheduling()
    shared = replace(settings, shared=Shared(redis_url=redis_server.url, submit_store="redis"))
    running = await start_gateway(
        shared,
        StaticCredentialsProvider(credentials),
        readiness_interval_s=READINESS_INTERVAL_S,
    )
    try:
        async with grpc.aio.insecure_channel(running.address) as channel:
            stub = service_pb2_grpc.MediaJobServiceStub(channel)
            watch = health_pb2_grpc.HealthStub(channel).Watch(
                health_pb2.HealthCheckRequest(service=API_SERVICE)
            )
            await until(watch, SERVING)
            await submit(stub, request_id="before-the-outage")

            redis_server.stop()
            try:
                await submit(stub, request_id="during-the-outage")
                raise AssertionError("a submit succeeded without its store")
            except grpc.aio.AioRpcError as failed:
                error = rich_error(failed)
            assert error.code is grpc.StatusCode.UNAVAILABLE
            assert error.error_info is not None
            assert error.error_info.reason == "SUBMIT_STORE_UNAVAILABLE"  # not CI's fault
            assert error.error_info.metadata["dependency"] == "redis"
            assert error.error_info.metadata["request_id"] == "during-the-outage"

            await until(watch, NOT_SERVING)  # out of rotation: it can serve no submit
            assert running.readiness.failing == ("submit-store:redis",)

            assert redis_server.start()  # back, and empty
            await until(watch, SERVING)  # back in rotation by itself
            job = await submit(stub, request_id="after-the-outage")
    finally:
        await running.stop(grace_s=0)
    assert job.job_id in emulator.state.jobs
    assert emulator.state.jobs_created == 2  # the failed submit never reached CI


async def test_a_redis_that_stops_answering_fails_a_submit_in_bounded_time(
    settings: Settings, credentials: Credentials, emulator: RunningEmulator
) -> None:
    """A Redis that accepts connections but never answers (a hung process, a dropped route
    behind a proxy) fails the submit with SUBMIT_STORE_UNAVAILABLE after the store's own
    time-out, long before the caller's 10 s deadline, and nothing reaches CI."""

    async def hold(_: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        pass  # read nothing, answer nothing: the connection stays open until silent.close()

    async with stream_server(hold) as silent:
        shared = replace(
            settings,
            shared=Shared(redis_url=f"redis://127.0.0.1:{silent.port}/0", submit_store="redis"),
        )
        running = await start_gateway(shared, StaticCredentialsProvider(credentials))
        try:
            async with grpc.aio.insecure_channel(running.address) as channel:
                stub = service_pb2_grpc.MediaJobServiceStub(channel)
                loop = asyncio.get_running_loop()
                started = loop.time()
                try:
                    await submit(stub, request_id="into-the-silence")
                    raise AssertionError("a submit succeeded without its store")
                except grpc.aio.AioRpcError as failed:
                    error = rich_error(failed)
                assert loop.time() - started < STORE_TIMEOUT_S * 3  # the store's bound, not 10 s
                assert error.code is grpc.StatusCode.UNAVAILABLE
                assert error.error_info is not None
                assert error.error_info.reason == "SUBMIT_STORE_UNAVAILABLE"
                assert silent.accepted  # the gateway did reach the silent "Redis"
                assert emulator.state.jobs_created == 0
        finally:
            # The silent end goes first: the gateway's Redis connections then see their peer
            # gone and close at once, whatever they were waiting for. Its close() also ends a
            # connection accepted in its last moment (a readiness probe's reconnect after its
            # own time-out, which lands with the submit's) that no handler has seen yet.
            async with asyncio.timeout(30):
                await silent.close()
                await running.stop()
