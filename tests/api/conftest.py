"""Fixtures for the operations tests: a gateway with its ops port, probes, and scrape helpers."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from dataclasses import replace
from typing import Any

import aiohttp
import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from prometheus_client.parser import text_string_to_metric_families

from gateway._proto import service_pb2_grpc
from gateway.access.interceptor import ClientAccess
from gateway.api.server import RunningGateway, start_gateway
from gateway.config.settings import Settings
from gateway.credentials import Credentials, StaticCredentialsProvider

try:
    import uvloop
except ImportError:  # Windows: the gateway runs on asyncio's loop there
    uvloop = None  # type: ignore[assignment]

WAIT_S = 10.0
# Tests of what rests on the event loop itself (when an abandoned stream handler is finalised)
# run on both loops the gateway runs on; the rest on asyncio's.
ON_EVERY_LOOP = frozenset({"test_stream_cuts.py"})

Start = Callable[..., Awaitable[RunningGateway]]


def pytest_asyncio_loop_factories(
    config: pytest.Config, item: pytest.Item
) -> Mapping[str, Callable[[], asyncio.AbstractEventLoop]]:
    factories: dict[str, Callable[[], asyncio.AbstractEventLoop]] = {
        "asyncio": asyncio.new_event_loop
    }
    if item.path.name in ON_EVERY_LOOP and uvloop is not None:
        factories["uvloop"] = uvloop.new_event_loop
    return factories


@pytest.fixture
async def ops_gateway(
    settings: Settings, credentials: Credentials
) -> AsyncIterator[RunningGateway]:
    running = await start_gateway(
        replace(settings, metrics_listen="127.0.0.1:0"), StaticCredentialsProvider(credentials)
    )
    try:
        yield running
    finally:
        await running.stop(grace_s=0)


@pytest.fixture
async def channel(ops_gateway: RunningGateway) -> AsyncIterator[grpc.aio.Channel]:
    async with grpc.aio.insecure_channel(ops_gateway.address) as channel:
        yield channel


@pytest.fixture
def api(channel: grpc.aio.Channel) -> service_pb2_grpc.MediaJobServiceAsyncStub:
    return service_pb2_grpc.MediaJobServiceStub(channel)


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=WAIT_S)) as session:
        yield session


async def get(http: aiohttp.ClientSession, url: str) -> tuple[int, str]:
    async with http.get(url) as response:
        return response.status, await response.text()


Labels = frozenset[tuple[str, str]]


async def scrape(
    http: aiohttp.ClientSession, gateway: RunningGateway
) -> dict[str, dict[Labels, float]]:
    """`/metrics` parsed: sample name -> {labels: value}; families without samples map to {}."""
    status, text = await get(http, f"http://{gateway.ops_address}/metrics")
    assert status == 200
    samples: dict[str, dict[Labels, float]] = {}
    for family in text_string_to_metric_families(text):
        samples.setdefault(family.name, {})
        for sample in family.samples:
            samples.setdefault(sample.name, {})[frozenset(sample.labels.items())] = sample.value
    return samples


def labels(**values: str) -> Labels:
    return frozenset(values.items())


async def health_status(channel: grpc.aio.Channel, service: str) -> int:
    stub = health_pb2_grpc.HealthStub(channel)
    reply = await stub.Check(health_pb2.HealthCheckRequest(service=service), timeout=WAIT_S)
    return int(reply.status)


async def next_status(call: Any) -> int:
    """The next status a health Watch (a `UnaryStreamCall`) reports; bounded wait."""
    reply = await asyncio.wait_for(call.read(), WAIT_S)
    assert isinstance(reply, health_pb2.HealthCheckResponse), reply  # not EOF
    return int(reply.status)


@pytest.fixture
async def bounded(settings: Settings, credentials: Credentials) -> AsyncIterator[Start]:
    """Start gateways whose `[server]` limits are the keyword arguments, on `base` settings
    (the suite's by default) with client access `access`; all are stopped at the end of the
    test."""
    started: list[RunningGateway] = []

    async def start(
        *, access: ClientAccess | None = None, base: Settings = settings, **limits: Any
    ) -> RunningGateway:
        gateway = await start_gateway(
            replace(base, server=replace(base.server, **limits)),
            StaticCredentialsProvider(credentials),
            access=access,
        )
        started.append(gateway)
        return gateway

    try:
        yield start
    finally:
        for gateway in started:
            await gateway.stop(grace_s=0)
