"""Server reflection in both protocol versions: `grpc.reflection.v1` and `grpc.reflection.v1alpha`.

Current tools (grpcurl 1.9+, Postman, grpcui) ask for `grpc.reflection.v1.ServerReflection`
first; older ones know only v1alpha. grpcio-reflection ships only v1alpha, but the two protocols
are wire-identical: the same messages, field numbers and RPC, under another package name. So v1
is served here by the very v1alpha servicer, its request and response bytes unchanged, under v1's
method path.

For a client to *describe* the v1 service (and so for `grpcurl list` to show both), its file
must be in the descriptor pool reflection answers from. It is derived from v1alpha's
`FileDescriptorProto` with the package renamed (type references included) and v1's file name and
options, and added to the default pool once per process.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import grpc
from google.protobuf import descriptor_pb2, descriptor_pool
from grpc_reflection.v1alpha import reflection, reflection_pb2

V1ALPHA_PACKAGE = "grpc.reflection.v1alpha"
V1_PACKAGE = "grpc.reflection.v1"
V1_FILE = "grpc/reflection/v1/reflection.proto"
V1ALPHA_SERVICE: str = reflection.SERVICE_NAME
V1_SERVICE = f"{V1_PACKAGE}.ServerReflection"
METHOD = "ServerReflectionInfo"


def _v1_options() -> descriptor_pb2.FileOptions:
    """The options of the canonical v1 file, so code generated from reflection lands in v1's
    packages rather than the deprecated v1alpha ones."""
    return descriptor_pb2.FileOptions(
        go_package="google.golang.org/grpc/reflection/grpc_reflection_v1",
        java_multiple_files=True,
        java_package="io.grpc.reflection.v1",
        java_outer_classname="ServerReflectionProto",
    )


def _renamed(type_name: str) -> str:
    prefix = f".{V1ALPHA_PACKAGE}."
    if not type_name.startswith(prefix):
        return type_name
    return f".{V1_PACKAGE}.{type_name[len(prefix) :]}"


def _rename_messages(messages: Iterable[descriptor_pb2.DescriptorProto]) -> None:
    for message in messages:
        for field in message.field:
            if field.HasField("type_name"):  # scalars have none, and must not get an empty one
                field.type_name = _renamed(field.type_name)
        _rename_messages(message.nested_type)


def v1_file_descriptor() -> descriptor_pb2.FileDescriptorProto:
    """v1's `FileDescriptorProto`, derived from the v1alpha one grpcio-reflection ships."""
    proto = descriptor_pb2.FileDescriptorProto()
    reflection_pb2.DESCRIPTOR.CopyToProto(proto)
    proto.name, proto.package = V1_FILE, V1_PACKAGE
    proto.options.CopyFrom(_v1_options())
    _rename_messages(proto.message_type)
    for service in proto.service:
        for method in service.method:
            method.input_type = _renamed(method.input_type)
            method.output_type = _renamed(method.output_type)
    return proto


def register_v1_descriptor(pool: descriptor_pool.DescriptorPool | None = None) -> None:
    """Add v1's file to `pool` (the default pool) unless something already did: every gateway
    started in one process (tests start many) shares the pool, and a future grpcio-reflection
    that ships v1 would have added the real file."""
    pool = pool or descriptor_pool.Default()
    try:
        pool.FindServiceByName(V1_SERVICE)
    except KeyError:
        pool.AddSerializedFile(v1_file_descriptor().SerializeToString())


def enable_reflection(server: grpc.aio.Server, service_names: Iterable[str]) -> None:
    """Serve reflection (v1 and v1alpha) on `server`, listing `service_names` and both
    reflection services."""
    register_v1_descriptor()
    # grpc-stubs does not declare `aio`, grpcio-reflection's asyncio servicer.
    servicer = reflection.aio.ReflectionServicer(  # type: ignore[attr-defined]
        (*service_names, V1_SERVICE, V1ALPHA_SERVICE)
    )
    handler: grpc.RpcMethodHandler[Any, Any] = grpc.stream_stream_rpc_method_handler(
        servicer.ServerReflectionInfo,
        request_deserializer=reflection_pb2.ServerReflectionRequest.FromString,
        response_serializer=reflection_pb2.ServerReflectionResponse.SerializeToString,
    )
    server.add_generic_rpc_handlers(
        (
            grpc.method_handlers_generic_handler(V1ALPHA_SERVICE, {METHOD: handler}),
            grpc.method_handlers_generic_handler(V1_SERVICE, {METHOD: handler}),
        )
    )
