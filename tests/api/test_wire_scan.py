"""`wire_scan` counts a request's elements from its bytes exactly as the parsed message holds
them, so the bound it enforces before parsing is the bound on what parsing would build."""

from __future__ import annotations

from typing import cast

import pytest
from google.protobuf.descriptor import Descriptor
from google.protobuf.message import DecodeError, Message

from gateway._proto import media_pb2, service_pb2, workflows_pb2, xml_pb2
from gateway.api.wire_scan import MAX_DEPTH, Verdict, scan


def descriptor(message_type: type[Message] | Message) -> Descriptor:
    return cast(Descriptor, message_type.DESCRIPTOR)


def elements(message: Message) -> int:
    """The reference count, from the parsed message: each set scalar, string and message once,
    each list and map item once."""
    total = 0
    for field, value in message.ListFields():
        if field.message_type is not None and field.message_type.GetOptions().map_entry:
            total += len(value)
            for item in value.values():
                # an entry is a message: its key and value
                total += 2 if isinstance(item, str | int) else 2 + elements(item)
        elif field.message_type is not None:
            items = value if field.is_repeated else [value]
            total += len(items) + sum(elements(item) for item in items)
        else:
            total += len(value) if field.is_repeated else 1
    return total


def _workflow() -> workflows_pb2.CreateMediaWorkflowRequest:
    request = workflows_pb2.CreateMediaWorkflowRequest()
    topology = request.media_workflow.topology
    topology.nodes["Start"].type = "Start"
    topology.nodes["Start"].extra_nodes.add(name="A", text="b")
    topology.dependencies["Start"] = "End"
    return request


SAMPLES: dict[str, Message] = {
    "submit": service_pb2.SubmitMediaJobRequest(
        bucket="b-1",
        request=media_pb2.Request(
            input=media_pb2.Input(object="a.mp4"),
            tag="Transcode",
            operation=media_pb2.Operation(
                extra_nodes=[
                    xml_pb2.XmlNode(name="A", children=[xml_pb2.XmlNode(name="B", text="x")])
                ]
            ),
        ),
    ),
    "strings": service_pb2.DescribeMediaJobsRequest(job_ids=["j1", "", "j3"]),
    "packed": service_pb2.ListMediaJobsRequest(
        size=3,
        states=[
            media_pb2.JOB_STATE_SUBMITTED,
            media_pb2.JOB_STATE_RUNNING,
            media_pb2.JOB_STATE_SUCCESS,
            media_pb2.JOB_STATE_FAILED,
        ],
    ),
    "maps": _workflow(),
    "empty": service_pb2.ListMediaJobsRequest(),
}


@pytest.mark.parametrize("name", sorted(SAMPLES))
def test_the_scan_counts_what_parsing_builds(name: str) -> None:
    message = SAMPLES[name]
    data = message.SerializeToString()
    count = elements(type(message).FromString(data))
    assert scan(data, descriptor(message), count) is Verdict.FITS
    if count:
        assert scan(data, descriptor(message), count - 1) is Verdict.TOO_MANY


def varint(value: int) -> bytes:
    out = bytearray()
    while True:
        byte, value = value & 0x7F, value >> 7
        out.append(byte | (0x80 if value else 0))
        if not value:
            return bytes(out)


def test_a_list_of_millions_is_refused_after_the_budget_not_after_the_list() -> None:
    # `request.operation` (field 2 of `request`, field 3): a million empty operations.
    operations = b"\x12\x00" * 1_000_000
    data = b"\x1a" + varint(len(operations)) + operations
    assert scan(data, descriptor(service_pb2.SubmitMediaJobsRequest), 20_000) is Verdict.TOO_MANY
    assert scan(data, descriptor(service_pb2.SubmitMediaJobsRequest), 1_000_001) is Verdict.FITS


def test_no_request_holds_more_elements_than_bytes() -> None:
    """What lets `malformed.tolerant` skip the scan of requests no longer than its budget: the
    densest forms (a packed list of one-byte numbers, empty messages) take a byte an element."""
    operations = b"\x12\x00" * 5_000  # `request.operation`: 5,000 empty operations
    dense = {
        service_pb2.ListMediaJobsRequest: service_pb2.ListMediaJobsRequest(
            states=[media_pb2.JOB_STATE_SUBMITTED] * 5_000
        ).SerializeToString(),
        service_pb2.SubmitMediaJobsRequest: b"\x1a" + varint(len(operations)) + operations,
    }
    samples = {type(m): m.SerializeToString() for m in SAMPLES.values()}
    for message_type, data in [*samples.items(), *dense.items()]:
        assert scan(data, descriptor(message_type), len(data)) is Verdict.FITS
    packed = dense[service_pb2.ListMediaJobsRequest]
    assert scan(packed, descriptor(service_pb2.ListMediaJobsRequest), 4_999) is Verdict.TOO_MANY


def _nested(levels: int) -> bytes:
    data = b""
    for _ in range(levels):
        data = b"\x1a" + varint(len(data)) + data  # XmlNode.children
    return data


@pytest.mark.parametrize("levels", [MAX_DEPTH - 1, MAX_DEPTH, MAX_DEPTH + 1, MAX_DEPTH + 2])
def test_nesting_is_refused_exactly_where_the_parser_refuses_it(levels: int) -> None:
    data = _nested(levels)
    try:
        xml_pb2.XmlNode.FromString(data)
        parsed = True
    except DecodeError:
        parsed = False
    verdict = scan(data, descriptor(xml_pb2.XmlNode), 1_000)
    assert verdict is (Verdict.FITS if parsed else Verdict.CORRUPT)


@pytest.mark.parametrize(
    "data",
    [
        b"\xff\xff\xff\xff",  # a key whose varint never ends
        b"\x0a\x05ab",  # a string longer than what is left
        b"\x0b\x0c",  # a group (wire type 3): proto3 has none
        b"\x0f",  # wire type 7: undefined
        b"\x19\x01\x02",  # a fixed64 cut short
    ],
)
def test_bytes_that_are_no_proto3_message_are_corrupt(data: bytes) -> None:
    assert scan(data, descriptor(service_pb2.ListMediaJobsRequest), 1_000) is Verdict.CORRUPT


def test_fields_the_type_does_not_know_are_counted_and_skipped() -> None:
    known = service_pb2.ListMediaJobsRequest(size=3).SerializeToString()
    unknown = b"\xfa\x3e\x03abc" * 5 + b"\xf8\x3e\x01"  # fields 999 (string) and 999 (varint)
    request = descriptor(service_pb2.ListMediaJobsRequest)
    assert scan(known + unknown, request, 7) is Verdict.FITS
    assert scan(known + unknown, request, 6) is Verdict.TOO_MANY
