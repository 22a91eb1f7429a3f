"""Answers CI documents in more than one shape, read in each: the emulator answers one shape
(the one its own docstring cites); a scripted loopback peer (`fake_ci`) plays CI for the
others, and the gateway under test is real, called over a real gRPC channel.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import grpc

from gateway._proto import queues_pb2, templates_pb2
from gateway.api.server import start_gateway
from gateway.config.settings import Settings
from gateway.credentials import Credentials, StaticCredentialsProvider
from tests.conftest import BUCKET, REGION
from tests.integration.fake_ci import FakeCI, Scripted, fake_ci
from tests.resources.conftest import Stubs, platform_access, stubs_on

SECRET = Credentials("AKIDshapes000000000000000000000", "shapes-secret-key-never-shown")
QUEUE = (
    "<QueueList><QueueId>p4a17eeea29334bf499b7e20e2fbfd99d</QueueId><Name>queue-1</Name>"
    "<State>Active</State></QueueList>"
)


@asynccontextmanager
async def stubs_for(fake: FakeCI) -> AsyncIterator[Stubs]:
    settings = Settings(
        listen="127.0.0.1:0", default_bucket=BUCKET, default_region=REGION, endpoint_url=fake.url
    )
    gateway = await start_gateway(
        settings, StaticCredentialsProvider(SECRET), access=platform_access()
    )
    try:
        async with grpc.aio.insecure_channel(gateway.address) as channel:
            yield stubs_on(channel)
    finally:
        await gateway.stop(grace_s=0)


async def describe_unknown_ids(answer: bytes) -> queues_pb2.DescribeMediaQueuesResponse:
    async with fake_ci(Scripted(200, answer)) as fake, stubs_for(fake) as stubs:
        return await stubs.queues.DescribeMediaQueues(
            queues_pb2.DescribeMediaQueuesRequest(
                queue_ids=["p4a17eeea29334bf499b7e20e2fbfd99d", "A", "B"]
            ),
            timeout=10,
        )


async def test_unknown_queue_ids_as_repeated_text_are_named() -> None:
    # DescribeAiQueues' sample (the queue family's newer page) and the Go SDK's
    # `NonExistPIDs []string`: one text node per unknown id.
    reply = await describe_unknown_ids(
        b"<Response><RequestId>NjJm</RequestId>" + QUEUE.encode()
        + b"<NonExistPIDs>A</NonExistPIDs><NonExistPIDs>B</NonExistPIDs></Response>"
    )  # fmt: skip
    assert list(reply.non_exist_pids.queue_id) == ["A", "B"]
    assert [queue.queue_id for queue in reply.queue_list] == ["p4a17eeea29334bf499b7e20e2fbfd99d"]
    assert not [node for node in reply.extra_nodes if node.name == "NonExistPIDs"]


async def test_unknown_queue_ids_in_a_container_are_named() -> None:
    # DescribeMediaQueues' own sample: `<QueueID>` elements inside one `<NonExistPIDs>`.
    reply = await describe_unknown_ids(
        b"<Response><RequestId>NjJm</RequestId>" + QUEUE.encode()
        + b"<NonExistPIDs><QueueID>A</QueueID><QueueID>B</QueueID></NonExistPIDs></Response>"
    )  # fmt: skip
    assert list(reply.non_exist_pids.queue_id) == ["A", "B"]
    assert not reply.extra_nodes


async def test_unknown_template_ids_as_repeated_text_are_named() -> None:
    # The template pages print a container of `<TemplateId>` (the emulator's shape); the queue
    # family's other form, one text node per id, is read the same way.
    body = (
        b"<Response><RequestId>NjJm</RequestId><TotalCount>0</TotalCount>"
        b"<NonExistTIDs>B</NonExistTIDs><NonExistTIDs>C</NonExistTIDs></Response>"
    )
    async with fake_ci(Scripted(200, body)) as fake, stubs_for(fake) as stubs:
        reply = await stubs.templates.DescribeMediaTemplates(
            templates_pb2.DescribeMediaTemplatesRequest(template_ids=["B", "C"]), timeout=10
        )
    assert list(reply.non_exist_tids.template_id) == ["B", "C"]
    assert not reply.extra_nodes
