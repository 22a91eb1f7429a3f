"""Fixtures for queues, templates and workflows end to end: the emulator, a real gateway in front
of it, and one stub per resource service on one channel (`Stubs`)."""

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
from gateway.api.server import RunningGateway


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


@pytest.fixture
async def stubs(gateway: RunningGateway) -> AsyncIterator[Stubs]:
    async with grpc.aio.insecure_channel(gateway.address) as channel:
        yield stubs_on(channel)
