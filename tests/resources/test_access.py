"""Who may touch queues, templates and workflows: an operation per RPC (read or write, by
resource), groups that grant both, and a sidecar that refuses writes unless told otherwise."""

from __future__ import annotations

import tomllib
from pathlib import Path

import grpc
import pytest

from gateway._proto import (
    job_kinds_pb2,
    queues_pb2,
    templates_pb2,
    workflows_pb2,
)
from gateway.access.config_file import build_access
from gateway.access.interceptor import ClientAccess
from gateway.access.policy import METHOD_OPERATIONS, operation_of
from gateway.api.server import RESOURCE_SERVICES
from tests.access.helpers import sha256_hex
from tests.conftest import BUCKET
from tests.fixtures.accounts import OTHER_BUCKET, Serve
from tests.integration.helpers import rich_error
from tests.resources.conftest import Stubs, stubs_on

SNAPSHOT = templates_pb2.MediaTemplate(
    name="thumbs", snapshot=job_kinds_pb2.Snapshot(mode="Interval")
)


def test_every_resource_rpc_names_a_read_or_a_write() -> None:
    for service in RESOURCE_SERVICES:
        for method in service.methods:
            path = f"/{service.full_name}/{method.name}"
            assert path in METHOD_OPERATIONS, path
            resource = service.name.removeprefix("Media").removesuffix("Service").lower() + "s"
            assert operation_of(path) in (f"{resource}_read", f"{resource}_write"), path


async def refused(call: object) -> str:
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await call  # type: ignore[misc]
    error = rich_error(caught.value)
    assert error.code is grpc.StatusCode.PERMISSION_DENIED
    assert error.error_info is not None and error.error_info.reason == "OPERATION_NOT_ALLOWED"
    return str(error.error_info.metadata["operation"])


async def test_a_default_sidecar_reads_but_does_not_change_shared_resources(
    serve: Serve,
) -> None:
    gateway = await serve()  # sidecar mode, no access file
    async with grpc.aio.insecure_channel(gateway.address) as channel:
        stubs = stubs_on(channel)
        queues = await stubs.queues.DescribeMediaQueues(queues_pb2.DescribeMediaQueuesRequest())
        await stubs.templates.DescribeMediaTemplates(templates_pb2.DescribeMediaTemplatesRequest())
        await stubs.workflows.DescribeMediaWorkflows(workflows_pb2.DescribeMediaWorkflowsRequest())
        queue = queues_pb2.MediaQueue(
            queue_id=queues.queue_list[0].queue_id, state=queues_pb2.QUEUE_STATE_PAUSED
        )
        assert (
            await refused(
                stubs.queues.UpdateMediaQueue(queues_pb2.UpdateMediaQueueRequest(queue=queue))
            )
            == "queues_write"
        )
        create = templates_pb2.CreateMediaTemplateRequest(template=SNAPSHOT)
        assert await refused(stubs.templates.CreateMediaTemplate(create)) == "templates_write"
        trigger = workflows_pb2.TriggerMediaWorkflowRequest(workflow_id="w1", object="a.mp4")
        assert await refused(stubs.workflows.TriggerMediaWorkflow(trigger)) == "workflows_write"


async def test_a_sidecar_allows_the_writes_its_access_file_names(
    serve: Serve, tmp_path: Path
) -> None:
    path = tmp_path / "access.toml"
    path.write_text('mode = "sidecar"\nsidecar_operations = ["templates"]\n')
    gateway = await serve(ClientAccess.from_file(path))
    async with grpc.aio.insecure_channel(gateway.address) as channel:
        stubs = stubs_on(channel)
        created = await stubs.templates.CreateMediaTemplate(
            templates_pb2.CreateMediaTemplateRequest(template=SNAPSHOT)
        )
        assert created.template.template_id
        delete = workflows_pb2.DeleteMediaWorkflowRequest(workflow_id="w1")
        assert await refused(stubs.workflows.DeleteMediaWorkflow(delete)) == "workflows_write"


async def test_shared_clients_get_what_their_operations_name(serve: Serve, tmp_path: Path) -> None:
    tokens = {"reader": "tok-reader-0123456789", "platform": "tok-platform-0123456789"}
    path = tmp_path / "access.toml"
    path.write_text(
        f"""
mode = "shared"

[[clients]]
name = "reader"
token_sha256 = ["{sha256_hex(tokens["reader"])}"]
buckets = ["{BUCKET}"]
operations = ["templates_read", "queues_read"]

[[clients]]
name = "platform"
token_sha256 = ["{sha256_hex(tokens["platform"])}"]
buckets = ["{BUCKET}"]
operations = ["templates", "queues", "workflows"]
"""
    )
    gateway = await serve(ClientAccess.from_file(path), insecure=True)

    def metadata(name: str) -> tuple[tuple[str, str], ...]:
        return (("authorization", f"Bearer {tokens[name]}"),)

    create = templates_pb2.CreateMediaTemplateRequest(template=SNAPSHOT)
    describe = templates_pb2.DescribeMediaTemplatesRequest()
    async with grpc.aio.insecure_channel(gateway.address) as channel:
        stubs: Stubs = stubs_on(channel)
        await stubs.templates.DescribeMediaTemplates(describe, metadata=metadata("reader"))
        assert (
            await refused(stubs.templates.CreateMediaTemplate(create, metadata=metadata("reader")))
            == "templates_write"
        )
        created = await stubs.templates.CreateMediaTemplate(create, metadata=metadata("platform"))
        assert created.template.template_id
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await stubs.templates.DescribeMediaTemplates(
                templates_pb2.DescribeMediaTemplatesRequest(bucket=OTHER_BUCKET),
                metadata=metadata("platform"),
            )
        assert rich_error(caught.value).error_info.reason == "BUCKET_NOT_ALLOWED"  # type: ignore[union-attr]


@pytest.mark.parametrize(
    ("text", "why"),
    [
        ('mode = "sidecar"\nsidecar_operations = ["submit"]\n', "not one of"),
        ('mode = "sidecar"\nsidecar_operations = []\n', "non-empty"),
        (
            'mode = "shared"\nsidecar_operations = ["*"]\n'
            '[[clients]]\nname = "a"\ntoken_sha256 = ["' + "0" * 64 + '"]\n'
            'buckets = ["*"]\noperations = ["*"]\n',
            "only in mode sidecar",
        ),
    ],
)
def test_sidecar_operations_are_checked(text: str, why: str) -> None:
    with pytest.raises(ValueError, match=why):
        build_access(tomllib.loads(text))


def test_a_group_grants_its_read_and_its_write() -> None:
    config = build_access(
        tomllib.loads(
            'mode = "shared"\n[[clients]]\nname = "a"\ntoken_sha256 = ["' + "0" * 64 + '"]\n'
            'buckets = ["*"]\noperations = ["workflows", "queues_read"]\n'
        )
    )
    (client,) = config.clients
    assert {"workflows_read", "workflows_write", "queues_read"} <= client.operations
    assert "queues_write" not in client.operations
