"""Fixtures for queues, templates and workflows end to end: the emulator, a real gateway in front
of it, and one stub per resource service on one channel (`Stubs`).

The gateway here is a platform team's: a sidecar whose access file allows every resource write
(`platform_access`), since a default sidecar refuses them (tests/resources/test_access.py)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass

import grpc
import pytest

from gateway._proto import (
    queues_pb2_grpc,
    service_pb2_grpc,
    templates_pb2_grpc,
    workflows_pb2_grpc,
)
from gateway.access.config_file import AccessConfig
from gateway.access.interceptor import ClientAccess
from gateway.api.server import RunningGateway, start_gateway
from gateway.config.settings import Settings
from gateway.credentials import Credentials, StaticCredentialsProvider


@dataclass
class Stubs:
    jobs: service_pb2_grpc.MediaJobServiceAsyncStub
    queues: queues_pb2_grpc.MediaQueueServiceAsyncStub
    templates: templates_pb2_grpc.MediaTemplateServiceAsyncStub
    workflows: workflows_pb2_grpc.MediaWorkflowServiceAsyncStub


def stubs_on(channel: grpc.aio.Channel) -> Stubs:
    return Stubs(
        service_pb2_grpc.MediaJobServiceStub(channel),
        queues_pb2_grpc.MediaQueueServiceStub(channel),
        templates_pb2_grpc.MediaTemplateServiceStub(channel),
        workflows_pb2_grpc.MediaWorkflowServiceStub(channel),
    )


def platform_access() -> ClientAccess:
    """Sidecar mode, with `sidecar_operations = ["*"]`: queues, templates, workflows writable."""
    return ClientAccess(AccessConfig(sidecar_operations=frozenset({"*"})))


@pytest.fixture
async def gateway(settings: Settings, credentials: Credentials) -> AsyncIterator[RunningGateway]:
    running = await start_gateway(
        settings, StaticCredentialsProvider(credentials), access=platform_access()
    )
    try:
        yield running
    finally:
        await running.stop(grace_s=0)


@pytest.fixture
async def stubs(gateway: RunningGateway) -> AsyncIterator[Stubs]:
    async with grpc.aio.insecure_channel(gateway.address) as channel:
        yield stubs_on(channel)
