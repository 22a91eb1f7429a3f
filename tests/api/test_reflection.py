"""Server reflection: `grpcurl list` / `describe` work without the proto files."""

from __future__ import annotations

import grpc
from google.protobuf import descriptor_pb2
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc

from gateway.api.health import API_SERVICE

Request = reflection_pb2.ServerReflectionRequest


async def ask(
    channel: grpc.aio.Channel, request: reflection_pb2.ServerReflectionRequest
) -> reflection_pb2.ServerReflectionResponse:
    stub = reflection_pb2_grpc.ServerReflectionStub(channel)
    call = stub.ServerReflectionInfo(iter([request]), timeout=10)
    replies = [reply async for reply in call]
    assert len(replies) == 1
    return replies[0]


async def test_reflection_lists_the_api_health_and_reflection(channel: grpc.aio.Channel) -> None:
    reply = await ask(channel, Request(list_services=""))
    names = {service.name for service in reply.list_services_response.service}
    assert names == {
        API_SERVICE,
        "grpc.health.v1.Health",
        "grpc.reflection.v1alpha.ServerReflection",
    }


async def test_reflection_describes_the_api_from_its_descriptors(channel: grpc.aio.Channel) -> None:
    reply = await ask(channel, Request(file_containing_symbol=API_SERVICE))
    files = [
        descriptor_pb2.FileDescriptorProto.FromString(raw)
        for raw in reply.file_descriptor_response.file_descriptor_proto
    ]
    by_name = {f.name: f for f in files}
    service = by_name["ci/media/v1/service.proto"].service[0]
    assert service.name == "MediaJobService"
    assert {"SubmitMediaJob", "DescribeMediaJobs", "GetMediaInfo"} <= {
        m.name for m in service.method
    }
    # The imported message file comes along, so a client can build every request type.
    assert "ci/media/v1/media.proto" in by_name
