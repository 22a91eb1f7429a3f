"""Tests for `gateway.upstream.xml_codec`, driven by vectors as botocore's protocol tests are.

``vectors/xml/`` holds three kinds of case, each an ``.xml`` file with a ``.json`` beside it
naming its ``source`` (mostly CI's documented samples, see /work/shared/ci-api-notes.md):

- ``decode/``: the XML must decode into ``type`` (under ``root``) equal to ``expected``;
- ``encode/``: ``message`` must encode to the XML, byte for byte (``compare: exact``) or node by
  node (``compare: structural``, for documented bodies whose node order and defaults differ),
  and read back as ``message`` (or ``decodes_to``);
- ``reject/``: decoding must raise `XmlCodecError` matching ``match``.

Messages in the JSON use protobuf's JSON mapping. Set ``XML_VECTOR=<case>`` to run one case.
"""

from __future__ import annotations

import json
import os
import random
from pathlib import Path
from typing import Any, TypeVar

import pytest
from google.protobuf import descriptor_pool, json_format, message_factory
from google.protobuf.descriptor import FieldDescriptor
from google.protobuf.message import Message
from hypothesis import given, settings
from hypothesis import strategies as st
from lxml import etree

from gateway._proto import media_pb2, service_pb2
from gateway.upstream import xml_codec
from gateway.upstream.xml_codec import (
    DEFAULT_MAX_BYTES,
    MAX_DEPTH,
    MAX_ELEMENTS,
    XML_DECLARATION,
    XmlCodecError,
    decode,
    encode,
    enum_wire_name,
    local_name,
    parse_document,
    wire_name,
)

VECTORS = Path(__file__).parent / "vectors" / "xml"
M = TypeVar("M", bound=Message)


def _cases(kind: str) -> list[Any]:
    only = os.environ.get("XML_VECTOR")
    return [
        pytest.param(path.stem, json.loads(path.read_text("utf-8")), id=path.stem)
        for path in sorted((VECTORS / kind).glob("*.json"))
        if only is None or only == path.stem
    ]


def _message_class(full_name: str) -> type[Message]:
    descriptor = descriptor_pool.Default().FindMessageTypeByName(full_name)
    return message_factory.GetMessageClass(descriptor)


def _message(full_name: str, fields: dict[str, Any]) -> Message:
    return json_format.ParseDict(fields, _message_class(full_name)())


def _normalized(full_name: str, fields: dict[str, Any]) -> dict[str, Any]:
    message = _message(full_name, fields)
    return json_format.MessageToDict(message, preserving_proto_field_name=True)


def _xml(kind: str, case: str) -> bytes:
    return (VECTORS / kind / f"{case}.xml").read_bytes()


def _structure(element: etree._Element) -> tuple[Any, ...]:
    """A node's name, trimmed text and children, children sorted: XML order carries no meaning
    for CI, and indentation is layout."""
    children = sorted(_structure(child) for child in element)
    return (element.tag, (element.text or "").strip(), tuple(children))


# --- vectors ------------------------------------------------------------------------------------


@pytest.mark.parametrize(("case", "spec"), _cases("decode"))
def test_decode_vector(case: str, spec: dict[str, Any]) -> None:
    message_type = _message_class(spec["type"])
    decoded = decode(_xml("decode", case), message_type, root=spec["root"])
    as_dict = json_format.MessageToDict(decoded, preserving_proto_field_name=True)
    assert as_dict == _normalized(spec["type"], spec["expected"])  # readable diff first
    assert decoded == _message(spec["type"], spec["expected"])


@pytest.mark.parametrize(("case", "spec"), _cases("encode"))
def test_encode_vector(case: str, spec: dict[str, Any]) -> None:
    message = _message(spec["type"], spec["message"])
    encoded = encode(message, root=spec["root"])
    expected = _xml("encode", case)
    if spec["compare"] == "exact":
        assert encoded == expected.removesuffix(b"\n")
    else:
        documented = parse_document(expected)
        for path in spec.get("omitted_defaults", []):
            node = documented.find(path)
            parent = None if node is None else node.getparent()
            assert node is not None and parent is not None, f"{path} is not in the document"
            parent.remove(node)
        assert _structure(parse_document(encoded)) == _structure(documented)
    # What we write reads back as what we wrote (or as `decodes_to`, when CI's text is canonical).
    expected_back = _message(spec["type"], spec.get("decodes_to", spec["message"]))
    assert decode(encoded, type(message), root=spec["root"]) == expected_back


@pytest.mark.timeout(10)
@pytest.mark.parametrize(("case", "spec"), _cases("reject"))
def test_reject_vector(case: str, spec: dict[str, Any]) -> None:
    message_type = _message_class(spec.get("type", "ci.media.v1.DescribeMediaJobsResponse"))
    with pytest.raises(XmlCodecError, match=spec["match"]):
        decode(_xml("reject", case), message_type, root=spec.get("root", "Response"))


def test_every_vector_is_paired() -> None:
    # A lone .xml or .json would silently test nothing.
    files = {path.relative_to(VECTORS) for path in VECTORS.rglob("*.*")}
    lonely = {
        f for f in files if f.with_suffix(".json" if f.suffix == ".xml" else ".xml") not in files
    }
    assert not lonely


# --- the documented samples, field by field -----------------------------------------------------


def test_callback_sample_concrete_values() -> None:
    response = decode(
        _xml("decode", "callback_mediainfo_success"), service_pb2.DescribeMediaJobsResponse
    )
    (job,) = response.jobs_detail
    assert job.state == media_pb2.JOB_STATE_SUCCESS
    assert job.state_text == "Success"
    assert job.message == ""  # <Message/>
    assert job.input.bucket_id == "test-123456789"
    assert job.operation.user_data == "This is my MediaInfo job."
    assert job.operation.job_level == 0
    info = job.operation.media_info
    assert info.format.bitrate == "834.736000"
    (video,) = info.stream.video
    assert (video.width, video.height, video.has_b_frame) == ("544", "960", "0")
    assert video.bitrate == "763.774000"
    (audio,) = info.stream.audio
    assert (audio.codec_name, audio.channel_layout, audio.sample_rate) == ("aac", "stereo", "44100")
    assert list(info.stream.subtitle) == []  # <Subtitle/>


def test_callback_sample_fits_every_response_type() -> None:
    data = _xml("decode", "callback_mediainfo_success")
    submitted = decode(data, service_pb2.SubmitMediaJobResponse)
    listed = decode(data, service_pb2.ListMediaJobsResponse)
    assert submitted.jobs_detail == listed.jobs_detail[0]
    assert submitted.jobs_detail.operation.media_info.stream.video[0].codec_name == "h264"


def test_submit_sample_concrete_values() -> None:
    response = decode(
        _xml("decode", "submit_response_transcode"), service_pb2.SubmitMediaJobResponse
    )
    job = response.jobs_detail
    assert (job.state, job.state_text) == (media_pb2.JOB_STATE_SUBMITTED, "Submitted")
    assert (job.start_time, job.end_time) == ("", "")
    assert not job.HasField("operation")  # the doc elides it as "…"


def test_describe_sample_concrete_values() -> None:
    response = decode(
        _xml("decode", "describe_with_missing_ids"), service_pb2.DescribeMediaJobsResponse
    )
    assert [job.state for job in response.jobs_detail] == [
        media_pb2.JOB_STATE_RUNNING,
        media_pb2.JOB_STATE_FAILED,
    ]
    assert response.jobs_detail[1].code == "ResourceDownloadFailed"
    assert response.jobs_detail[0].operation.job_level == 2
    assert len(response.non_exist_job_ids) == 3


def test_list_sample_concrete_values() -> None:
    response = decode(_xml("decode", "list_with_next_token"), service_pb2.ListMediaJobsResponse)
    assert response.next_token == "37f84c3ac3f1a3dc2e6c3d7f2bb6f2b8"
    assert [job.job_id[:3] for job in response.jobs_detail] == ["j11", "j22"]


# --- tolerance ----------------------------------------------------------------------------------


def _shuffled(element: etree._Element, rng: random.Random) -> etree._Element:
    """A copy with siblings randomly interleaved, except that same-named siblings keep their
    order: that order is a list's order (Video 0 before Video 1), the rest carries no meaning."""
    queues: dict[str, list[etree._Element]] = {}
    for child in element:
        queues.setdefault(child.tag, []).append(child)
    copy = etree.Element(element.tag)
    copy.text = element.text
    while queues:
        tag = rng.choice(list(queues))
        copy.append(_shuffled(queues[tag].pop(0), rng))
        if not queues[tag]:
            del queues[tag]
    return copy


@pytest.mark.parametrize("seed", range(5))
def test_node_order_does_not_matter(seed: int) -> None:
    original = parse_document(_xml("decode", "mediainfo_sync_two_streams_each"))
    callback = parse_document(_xml("decode", "callback_mediainfo_success"))
    rng = random.Random(seed)
    for document, message_type in (
        (original, service_pb2.MediaInfoResponse),
        (callback, service_pb2.DescribeMediaJobsResponse),
    ):
        shuffled = etree.tostring(_shuffled(document, rng))
        assert decode(shuffled, message_type) == decode(document, message_type)


def test_unknown_state_round_trips_as_its_own_text() -> None:
    data = _xml("decode", "unknown_state_queued")
    response = decode(data, service_pb2.SubmitMediaJobResponse)
    assert response.jobs_detail.state == media_pb2.JOB_STATE_UNSPECIFIED
    assert response.jobs_detail.state_text == "Queued"
    encoded = encode(response, root="Response")
    assert b"<State>Queued</State>" in encoded
    assert b"StateText" not in encoded
    assert decode(encoded, service_pb2.SubmitMediaJobResponse) == response


def test_single_element_where_a_list_is_expected() -> None:
    data = (
        b"<Response><JobsDetail><JobId>j1</JobId></JobsDetail>"
        b"<NonExistJobIds>j2</NonExistJobIds></Response>"
    )
    response = decode(data, service_pb2.DescribeMediaJobsResponse)
    assert [job.job_id for job in response.jobs_detail] == ["j1"]
    assert list(response.non_exist_job_ids) == ["j2"]


def test_comma_joined_ids_split_only_for_repeated_strings() -> None:
    data = (
        b"<Response><NonExistJobIds> a, b ,c </NonExistJobIds><NextToken>x,y</NextToken></Response>"
    )
    assert list(decode(data, service_pb2.DescribeMediaJobsResponse).non_exist_job_ids) == [
        "a",
        "b",
        "c",
    ]
    assert decode(data, service_pb2.ListMediaJobsResponse).next_token == "x,y"


def test_root_check_is_optional_and_case_insensitive() -> None:
    data = b"<Whatever><NextToken>t</NextToken></Whatever>"
    assert decode(data, service_pb2.ListMediaJobsResponse, root=None).next_token == "t"
    assert decode(data, service_pb2.ListMediaJobsResponse, root="WHATEVER").next_token == "t"


def test_decode_accepts_a_parsed_element() -> None:
    element = parse_document(_xml("decode", "request_body"))
    request = decode(element, media_pb2.Request, root="Request")
    assert request.queue_id == "p2242ab62c7c94486915508540933a2c6"


@pytest.mark.parametrize(
    ("tag", "expected"), [("{urn:x}JobId", "JobId"), ("JobId", "JobId"), ("{}Code", "Code")]
)
def test_local_name(tag: str, expected: str) -> None:
    assert local_name(tag) == expected


def test_a_repeated_singular_node_keeps_the_last_value() -> None:
    data = b"<Response><NextToken>first</NextToken><NextToken>last</NextToken></Response>"
    assert decode(data, service_pb2.ListMediaJobsResponse).next_token == "last"


# --- round trips --------------------------------------------------------------------------------


def _populated(message: M, seed: str) -> M:
    """Set every scalar of `message` to a distinct non-default value, walking its descriptor, so
    a field the codec forgot cannot hide."""
    for field in message.DESCRIPTOR.fields:
        if field.name == "raw_xml":
            continue  # never a node: decoding fills it only when asked
        if field.type == FieldDescriptor.TYPE_STRING and not field.is_repeated:
            setattr(message, field.name, f"{seed}.{wire_name(field)} <&>")
        elif field.type == FieldDescriptor.TYPE_INT32:
            setattr(message, field.name, field.number)
    return message


def test_fully_populated_request_round_trips() -> None:
    request = _populated(media_pb2.Request(), "r")
    request.input.CopyFrom(_populated(media_pb2.Input(), "in"))
    request.operation.CopyFrom(_populated(media_pb2.Operation(), "op"))
    request.call_back_mq_config.CopyFrom(_populated(media_pb2.CallBackMqConfig(), "mq"))
    assert decode(encode(request), media_pb2.Request, root="Request") == request


def test_jobs_detail_with_rich_media_info_round_trips() -> None:
    stream = media_pb2.Stream(
        video=[_populated(media_pb2.Video(), f"v{i}") for i in range(2)],
        audio=[_populated(media_pb2.Audio(), f"a{i}") for i in range(2)],
        subtitle=[_populated(media_pb2.Subtitle(), "s0")],
    )
    info = media_pb2.MediaInfo(format=_populated(media_pb2.Format(), "f"), stream=stream)
    job = _populated(media_pb2.JobsDetail(), "j")
    job.state = media_pb2.JOB_STATE_FAILED
    job.state_text = "Failed"  # what decoding CI's text sets beside a known state
    job.input.CopyFrom(_populated(media_pb2.Input(), "in"))
    job.operation.CopyFrom(_populated(media_pb2.Operation(), "op"))
    job.operation.media_info.CopyFrom(info)
    response = service_pb2.DescribeMediaJobsResponse(
        jobs_detail=[job], non_exist_job_ids=["x", "y"]
    )
    encoded = encode(response, root="Response")
    assert encoded.count(b"<Video>") == 2 and encoded.count(b"<Audio>") == 2
    assert decode(encoded, service_pb2.DescribeMediaJobsResponse) == response


def _xml_char(c: str) -> bool:
    # XML 1.0 `Char`, minus the C0/C1 controls other than tab, LF and CR.
    return (
        c in "\t\n\r"
        or ("\x20" <= c <= "\ud7ff" and not "\x7f" <= c <= "\x9f")
        or ("\ue000" <= c <= "\ufffd")
        or c >= "\U00010000"
    )


def _survives_layout(text: str) -> bool:
    # Around a string, whitespace holding a line break is layout (pretty-printing), and so is
    # whitespace that is all there is; spaces and tabs beside a value on its line are data.
    value = text.strip(" \t\r\n")
    if not value:
        return not text
    head, tail = text.partition(value)[::2]
    return not any(c in "\r\n" for c in head + tail)


_TEXT = st.text(
    st.characters(codec="utf-8").filter(_xml_char) | st.sampled_from("<>&\"' \t,;]]>"),
    max_size=30,
).filter(_survives_layout)


def _optional(strategy: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    # An empty sub-message reads back as absent, so only non-empty ones are ever set.
    return strategy.map(lambda message: message if message.ByteSize() else None)


def _request_kwargs(**fields: Any) -> dict[str, Any]:
    return {name: value for name, value in fields.items() if value is not None}


_REQUESTS = st.builds(
    _request_kwargs,
    tag=_TEXT,
    input=_optional(st.builds(media_pb2.Input, object=_TEXT, bucket_id=_TEXT, region=_TEXT)),
    operation=_optional(
        st.builds(
            media_pb2.Operation,
            user_data=_TEXT,
            job_level=st.integers(min_value=-(2**31), max_value=2**31 - 1),
        )
    ),
    queue_id=_TEXT,
    call_back_format=_TEXT,
    call_back_type=_TEXT,
    call_back=_TEXT,
    call_back_mq_config=_optional(
        st.builds(media_pb2.CallBackMqConfig, mq_region=_TEXT, mq_mode=_TEXT, mq_name=_TEXT)
    ),
).map(lambda kwargs: media_pb2.Request(**kwargs))


@settings(max_examples=100, deadline=None)
@given(_REQUESTS)
def test_random_requests_round_trip(request: media_pb2.Request) -> None:
    encoded = encode(request)
    assert encoded.startswith(XML_DECLARATION)
    assert decode(encoded, media_pb2.Request, root="Request") == request


# --- naming -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("message_type", "field", "expected"),
    [
        (media_pb2.Operation, "user_data", "UserData"),
        (media_pb2.Request, "call_back_mq_config", "CallBackMqConfig"),
        (media_pb2.Video, "has_b_frame", "HasBFrame"),
        (service_pb2.DescribeMediaJobsResponse, "non_exist_job_ids", "NonExistJobIds"),
        (media_pb2.Request, "queue_id", "QueueId"),
    ],
)
def test_wire_name(message_type: type[Message], field: str, expected: str) -> None:
    assert wire_name(message_type.DESCRIPTOR.fields_by_name[field]) == expected


@pytest.mark.parametrize(
    ("enum", "number", "expected"),
    [
        (media_pb2.JobState.DESCRIPTOR, media_pb2.JOB_STATE_SUBMITTED, "Submitted"),
        (media_pb2.JobState.DESCRIPTOR, media_pb2.JOB_STATE_CANCEL, "Cancel"),
        (service_pb2.OrderByTime.DESCRIPTOR, service_pb2.ORDER_BY_TIME_DESC, "Desc"),
        (service_pb2.OrderByTime.DESCRIPTOR, service_pb2.ORDER_BY_TIME_ASC, "Asc"),
    ],
)
def test_enum_wire_name(enum: Any, number: int, expected: str) -> None:
    assert enum_wire_name(enum, number) == expected


def test_every_message_of_the_api_has_a_mapping() -> None:
    # Encoding a default instance builds the message's table and fails on an unmappable field.
    for module in (media_pb2, service_pb2):
        for name in module.DESCRIPTOR.message_types_by_name:
            message_type = _message_class(f"ci.media.v1.{name}")
            assert decode(encode(message_type()), message_type, root=None) == message_type()


def test_repeated_enums_encode_one_node_each() -> None:
    request = service_pb2.ListMediaJobsRequest(
        states=[media_pb2.JOB_STATE_SUCCESS, media_pb2.JOB_STATE_FAILED],
        order_by_time=service_pb2.ORDER_BY_TIME_ASC,
    )
    encoded = encode(request)
    assert (
        b"<States>Success</States><States>Failed</States><OrderByTime>Asc</OrderByTime>" in encoded
    )
    assert decode(encoded, service_pb2.ListMediaJobsRequest, root="Request") == request


# --- safety -------------------------------------------------------------------------------------


def test_encode_refuses_text_xml_cannot_carry() -> None:
    with pytest.raises(XmlCodecError, match=r"ci\.media\.v1\.Request"):
        encode(media_pb2.Request(operation=media_pb2.Operation(user_data="nul\x00byte")))


def test_encode_refuses_an_enum_number_without_text() -> None:
    with pytest.raises(XmlCodecError, match="State"):
        encode(media_pb2.JobsDetail(state=99))  # type: ignore[arg-type]


@pytest.mark.timeout(10)
def test_external_entity_never_reads_the_file(tmp_path: Path) -> None:
    secret = tmp_path / "secret.txt"
    secret.write_text("TOP-SECRET-CONTENT")
    data = (
        f'<?xml version="1.0"?><!DOCTYPE r [<!ENTITY x SYSTEM "{secret.as_uri()}">]>'
        "<Response><NextToken>&x;</NextToken></Response>"
    ).encode()
    with pytest.raises(XmlCodecError) as caught:
        decode(data, service_pb2.ListMediaJobsResponse)
    assert "TOP-SECRET" not in str(caught.value)


def test_oversize_document_is_refused_before_parsing() -> None:
    padding = b"<NextToken>" + b"a" * 100 + b"</NextToken>"
    data = b"<Response>" + padding * 10 + b"</Response>"
    with pytest.raises(XmlCodecError, match="exceeds"):
        decode(data, service_pb2.ListMediaJobsResponse, max_bytes=len(data) - 1)
    assert decode(data, service_pb2.ListMediaJobsResponse, max_bytes=len(data)).next_token
    oversize = b"<Response>" + b" " * DEFAULT_MAX_BYTES + b"</Response>"
    with pytest.raises(XmlCodecError, match="exceeds"):
        decode(oversize, service_pb2.ListMediaJobsResponse)


@pytest.mark.timeout(10)
@pytest.mark.parametrize("depth", [MAX_DEPTH + 1, 300, 100_000])
def test_deeply_nested_document_is_refused(depth: int) -> None:
    data = b"<Response>" + b"<a>" * (depth - 1) + b"</a>" * (depth - 1) + b"</Response>"
    with pytest.raises(XmlCodecError, match=r"deep|depth"):
        decode(data, service_pb2.ListMediaJobsResponse)


def test_deep_nesting_behind_few_lt_bytes_is_refused() -> None:
    # The depth check is skipped for an ASCII document read as UTF-8 with no more `<` bytes
    # than MAX_DEPTH (it cannot hold more elements); in UTF-7, ASCII too, `<` may be written
    # `+ADw-`, so this document nests MAX_DEPTH + 10 elements behind a single `<` byte.
    body = "<Response>" + "<a>" * (MAX_DEPTH + 10) + "</a>" * (MAX_DEPTH + 10) + "</Response>"
    data = b'<?xml version="1.0" encoding="UTF-7"?>' + body.encode().replace(b"<", b"+ADw-")
    assert data.count(b"<") == 1 and data.isascii()
    with pytest.raises(XmlCodecError, match=f"deeper than {MAX_DEPTH}"):
        decode(data, service_pb2.ListMediaJobsResponse)


def test_the_depth_xpath_runs_only_for_a_built_element_or_a_failed_walk(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A document of every real answer's size is held to the depth bound by the walk itself (a
    subtree it does not enter by an XPath of its own); the whole-document XPath runs for an
    element built by the caller, and for a document that may nest too deep once its walk has
    failed otherwise (the depth error then comes first, as it did). A small UTF-8 document with
    no more `<` than MAX_DEPTH cannot nest too deep: not even then."""
    checked: list[object] = []
    real = xml_codec._TOO_DEEP

    def spy(element: etree._Element) -> object:
        checked.append(element)
        return real(element)

    monkeypatch.setattr(xml_codec, "_TOO_DEEP", spy)
    few = b"<Response>" + b"<x/>" * (MAX_DEPTH - 3) + b"<NextToken>t</NextToken></Response>"
    assert few.count(b"<") == MAX_DEPTH + 1  # `</NextToken>` and `</Response>` count too
    fewer = few.replace(b"<x/>", b"", 1)
    declared = b'<?xml version="1.0" encoding="ISO-8859-1"?>' + fewer.replace(b"<x/>", b"", 1)
    assert declared.count(b"<") == MAX_DEPTH and declared.isascii()
    for data in (few, fewer, fewer.decode().encode("utf-16"), declared):
        assert decode(data, service_pb2.ListMediaJobsResponse).next_token == "t"
    assert not checked
    assert decode(parse_document(fewer), service_pb2.ListMediaJobsResponse).next_token == "t"
    assert len(checked) == 1
    with pytest.raises(xml_codec.WrongRoot):
        decode(few, service_pb2.ListMediaJobsResponse, root="Other")
    assert len(checked) == 2
    with pytest.raises(xml_codec.WrongRoot):
        decode(fewer, service_pb2.ListMediaJobsResponse, root="Other")
    assert len(checked) == 2  # 64 `<` cannot open 65 elements


def test_nesting_up_to_the_bound_is_accepted() -> None:
    inner = MAX_DEPTH - 2  # root and NextToken's sibling chain stay within MAX_DEPTH
    data = (
        b"<Response><x>"
        + b"<a>" * inner
        + b"</a>" * inner
        + b"</x><NextToken>t</NextToken></Response>"
    )
    assert decode(data, service_pb2.ListMediaJobsResponse).next_token == "t"


def test_huge_integer_text_is_refused_cheaply() -> None:
    data = b"<Response><JobsDetail><Operation><JobLevel>" + b"9" * 5000 + b"</JobLevel>"
    with pytest.raises(XmlCodecError, match=r"JobsDetail\.Operation\.JobLevel"):
        decode(data + b"</Operation></JobsDetail></Response>", service_pb2.SubmitMediaJobResponse)


@pytest.mark.timeout(10)
def test_too_many_elements_are_refused() -> None:
    data = b"<Response>" + b"<x/>" * MAX_ELEMENTS + b"</Response>"
    with pytest.raises(XmlCodecError, match="elements"):
        decode(data, service_pb2.ListMediaJobsResponse)


def test_the_element_budget_counts_elements_not_angle_brackets() -> None:
    """More `<` than the budget sends a document through the counting parse; text and CDATA
    full of `<` are no elements, so it is within the budget and decodes."""
    token = "<" * (MAX_ELEMENTS + 10)
    data = f"<Response><NextToken><![CDATA[{token}]]></NextToken></Response>".encode()
    assert decode(data, service_pb2.ListMediaJobsResponse).next_token == token


def test_the_element_budget_is_exact_and_applies_to_every_parse() -> None:
    at_budget = b"<Response>" + b"<x/>" * (MAX_ELEMENTS - 1) + b"</Response>"
    assert parse_document(at_budget).tag == "Response"
    with pytest.raises(XmlCodecError, match=f"more than {MAX_ELEMENTS} elements"):
        parse_document(at_budget.replace(b"<x/>", b"<x/><x/>", 1))


def test_a_malformed_document_over_the_bracket_count_is_malformed() -> None:
    with pytest.raises(XmlCodecError, match="malformed XML"):
        parse_document(b"<Response>" + b"<x>" * 10 + b"</y>" + b"<x/>" * MAX_ELEMENTS)


def test_the_element_count_runs_where_the_size_does_not_bound_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Up to 4 bytes per `MAX_ELEMENTS` a document cannot hold too many elements, so only a
    bigger one, or an element built by the caller, is counted after parsing."""
    counted: list[object] = []
    real = xml_codec._COUNT_ELEMENTS

    def spy(element: etree._Element) -> object:
        counted.append(element)
        return real(element)

    monkeypatch.setattr(xml_codec, "_COUNT_ELEMENTS", spy)
    small = b"<Response><NextToken>t</NextToken></Response>"
    assert decode(small, service_pb2.ListMediaJobsResponse).next_token == "t"
    assert counted == []
    padding = b" " * xml_codec._MAX_UNCOUNTED_BYTES
    big = b"<Response><NextToken>t</NextToken>" + padding + b"</Response>"
    assert decode(big, service_pb2.ListMediaJobsResponse).next_token == "t"
    assert len(counted) == 1
    built = etree.Element("Response")
    for _ in range(xml_codec.MAX_ELEMENTS):
        etree.SubElement(built, "x")
    with pytest.raises(XmlCodecError, match=f"100001 elements, more than {xml_codec.MAX_ELEMENTS}"):
        decode(built, service_pb2.ListMediaJobsResponse)
    assert len(counted) == 2
