"""Server reflection: `grpcurl list` / `describe` work without the proto files, in both protocol
versions (v1alpha, and v1, which current grpcurl, Postman and grpcui ask for first)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import grpc
import pytest
from google.protobuf import descriptor_pb2, descriptor_pool, message_factory, text_format
from google.protobuf.message import Message
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc

from gateway.access.interceptor import ClientAccess
from gateway.api.health import API_SERVICE
from gateway.api.reflection import v1_file_descriptor
from tests.access.helpers import token_access_file
from tests.fixtures.accounts import Serve

Request = reflection_pb2.ServerReflectionRequest
SERVICES = {
    API_SERVICE,
    "ci.media.v1.MediaQueueService",
    "ci.media.v1.MediaTemplateService",
    "ci.media.v1.MediaWorkflowService",
    "grpc.health.v1.Health",
    "grpc.reflection.v1alpha.ServerReflection",
    "grpc.reflection.v1.ServerReflection",
}
V1_METHOD = "/grpc.reflection.v1.ServerReflection/ServerReflectionInfo"


async def ask(
    channel: grpc.aio.Channel, request: reflection_pb2.ServerReflectionRequest
) -> reflection_pb2.ServerReflectionResponse:
    stub = reflection_pb2_grpc.ServerReflectionStub(channel)
    call = stub.ServerReflectionInfo(iter([request]), timeout=10)
    replies = [reply async for reply in call]
    assert len(replies) == 1
    return replies[0]


def file_descriptors(raw: Any) -> dict[str, descriptor_pb2.FileDescriptorProto]:
    files = [descriptor_pb2.FileDescriptorProto.FromString(blob) for blob in raw]
    return {f.name: f for f in files}


async def test_reflection_lists_the_api_health_and_reflection(channel: grpc.aio.Channel) -> None:
    reply = await ask(channel, Request(list_services=""))
    assert {service.name for service in reply.list_services_response.service} == SERVICES


async def test_reflection_describes_the_api_from_its_descriptors(channel: grpc.aio.Channel) -> None:
    reply = await ask(channel, Request(file_containing_symbol=API_SERVICE))
    by_name = file_descriptors(reply.file_descriptor_response.file_descriptor_proto)
    service = by_name["ci/media/v1/service.proto"].service[0]
    assert service.name == "MediaJobService"
    assert {"SubmitMediaJob", "DescribeMediaJobs", "GetMediaInfo"} <= {
        m.name for m in service.method
    }
    # The imported message file comes along, so a client can build every request type.
    assert "ci/media/v1/media.proto" in by_name


class V1Client:
    """A client that speaks only `grpc.reflection.v1`: its message classes come from a private
    descriptor pool holding v1's file alone (nothing of v1alpha), so every byte it sends and
    reads is v1 by construction."""

    def __init__(self, channel: grpc.aio.Channel) -> None:
        pool = descriptor_pool.DescriptorPool()
        pool.AddSerializedFile(v1_file_descriptor().SerializeToString())
        self.request: Callable[..., Message] = message_factory.GetMessageClass(
            pool.FindMessageTypeByName("grpc.reflection.v1.ServerReflectionRequest")
        )
        self.response = message_factory.GetMessageClass(
            pool.FindMessageTypeByName("grpc.reflection.v1.ServerReflectionResponse")
        )
        self._call = channel.stream_stream(
            V1_METHOD,
            request_serializer=lambda message: message.SerializeToString(),
            response_deserializer=self.response.FromString,
        )

    async def ask(self, **fields: Any) -> Any:
        call = self._call(iter([self.request(**fields)]), timeout=10)
        replies = [reply async for reply in call]
        assert len(replies) == 1
        return replies[0]


def test_the_v1_file_is_v1alpha_renamed_and_nothing_else() -> None:
    v1 = v1_file_descriptor()
    v1alpha = descriptor_pb2.FileDescriptorProto()
    reflection_pb2.DESCRIPTOR.CopyToProto(v1alpha)
    assert (v1.name, v1.package) == ("grpc/reflection/v1/reflection.proto", "grpc.reflection.v1")
    assert v1.options.java_package == "io.grpc.reflection.v1" and not v1.options.deprecated
    assert "v1alpha" not in str(v1)
    # Same messages, fields, numbers and types: wire-identical.
    text = str(v1alpha).replace("grpc.reflection.v1alpha", "grpc.reflection.v1")
    renamed = text_format.Parse(text, descriptor_pb2.FileDescriptorProto())
    assert list(renamed.message_type) == list(v1.message_type)
    assert list(renamed.service) == list(v1.service)


async def test_a_v1_client_lists_both_reflection_services(channel: grpc.aio.Channel) -> None:
    reply = await V1Client(channel).ask(list_services="")
    assert {service.name for service in reply.list_services_response.service} == SERVICES


async def test_a_v1_client_describes_the_api(channel: grpc.aio.Channel) -> None:
    reply = await V1Client(channel).ask(file_containing_symbol=API_SERVICE)
    assert reply.original_request.file_containing_symbol == API_SERVICE
    by_name = file_descriptors(reply.file_descriptor_response.file_descriptor_proto)
    (service,) = by_name["ci/media/v1/service.proto"].service
    assert service.name == "MediaJobService"
    assert "ci/media/v1/media.proto" in by_name


@pytest.mark.parametrize("version", ["v1", "v1alpha"])
async def test_both_versions_describe_the_v1_reflection_service(
    channel: grpc.aio.Channel, version: str
) -> None:
    symbol = "grpc.reflection.v1.ServerReflection"
    if version == "v1":
        reply: Any = await V1Client(channel).ask(file_containing_symbol=symbol)
    else:
        reply = await ask(channel, Request(file_containing_symbol=symbol))
    (described,) = file_descriptors(reply.file_descriptor_response.file_descriptor_proto).values()
    assert described == v1_file_descriptor()
    assert [m.name for m in described.service[0].method] == ["ServerReflectionInfo"]


async def test_an_unknown_symbol_is_a_v1_not_found_error(channel: grpc.aio.Channel) -> None:
    reply = await V1Client(channel).ask(file_containing_symbol="no.such.Service")
    assert reply.error_response.error_code == grpc.StatusCode.NOT_FOUND.value[0]


async def test_v1_needs_no_client_credentials_in_shared_mode(tmp_path: Path, serve: Serve) -> None:
    path = token_access_file(tmp_path / "access.toml", ("alpha-team", "tok-" + "x" * 32))
    gateway = await serve(ClientAccess.from_file(path))
    async with grpc.aio.insecure_channel(gateway.address) as channel:
        reply = await V1Client(channel).ask(list_services="")
    assert {service.name for service in reply.list_services_response.service} == SERVICES
