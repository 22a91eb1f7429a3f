"""`xml_codec.encode` writes text: byte for byte what the lxml tree it used to build wrote.

`_tree_encode` below is the encoder as it was (an lxml element per node, serialized by
`etree.tostring`), kept here as the reference. Every case compares the two: the same bytes, or
the same `XmlCodecError` text. The cases: every message CI's XML uses, drawn by hypothesis
(`test_xml_kinds`' strategies), with texts of any character and unknown nodes of any name; every
decoded answer, vector and mutation of `test_xml_decode_paths`; every code point in a text.
The one difference, by design: a node name lxml read as `{namespace}name` (and wrote with a
prefix and its declaration) is refused; the API refuses such names before any body is written.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import pytest
from google.protobuf.message import Message
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from lxml import etree

from gateway._proto import media_pb2, service_pb2, xml_pb2
from gateway.api import tree_checks
from gateway.upstream import xml_codec
from gateway.upstream.xml_codec import XmlCodecError
from tests.upstream import test_xml_decode_paths, test_xml_kinds, test_xml_options

# --- the reference: the tree-building encoder, as it was ---------------------------------------

_MESSAGE, _MAP = xml_codec._MESSAGE, xml_codec._MAP


def _tree_encode(message: Message, root: str = "Request") -> bytes:
    try:
        element = etree.Element(root)
        _tree_into(element, message)
    except XmlCodecError:
        raise
    except ValueError as exc:
        raise XmlCodecError(f"cannot encode {message.DESCRIPTOR.full_name}: {exc}") from exc
    return xml_codec.XML_DECLARATION + etree.tostring(element, encoding="UTF-8")


def _tree_into(parent: etree._Element, message: Message) -> None:
    table = xml_codec._table(message)
    listed = message.ListFields()
    if table.twins and xml_codec._orphan_twin(table, listed):
        for field in table.fields:
            if field.kind is _MESSAGE and not field.repeated and not message.HasField(field.name):
                continue
            _tree_field(parent, message, field, getattr(message, field.name))
    else:
        for descriptor, value in listed:
            named = table.by_name.get(descriptor.name)
            if named is not None:
                _tree_field(parent, message, named, value)
    if table.unknown is not None:
        nodes = getattr(message, table.unknown)
        if nodes:
            for node in nodes:
                _tree_node(parent, node)


def _tree_field(parent: etree._Element, message: Message, field: Any, value: Any) -> None:
    if field.kind is _MESSAGE:
        if field.repeated:
            for item in value:
                _tree_into(etree.SubElement(parent, field.wire), item)
        else:
            child = etree.SubElement(parent, field.wire)
            _tree_into(child, value)
            if len(child) == 0 and not field.keep_empty:
                parent.remove(child)
        return
    if field.kind is _MAP:
        if value:
            _tree_map(etree.SubElement(parent, field.wire), field, value)
        return
    for item in value if field.repeated else (value,):
        text = xml_codec._scalar_text(message, field, item)
        if text:
            etree.SubElement(parent, field.wire).text = text


def _tree_map(element: etree._Element, field: Any, entries: Mapping[str, Any]) -> None:
    for key in sorted(entries):
        child = etree.SubElement(element, key)
        if field.map_value is _MESSAGE:
            _tree_into(child, entries[key])
        elif entries[key]:
            child.text = entries[key]


def _tree_node(parent: etree._Element, node: xml_pb2.XmlNode) -> None:
    element = etree.SubElement(parent, node.name)
    if node.text:
        element.text = node.text
    for child in node.children:
        _tree_node(element, child)


# --- comparing -----------------------------------------------------------------------------


def _outcome(encoder: Any, message: Message, root: str) -> bytes | str:
    try:
        return bytes(encoder(message, root))
    except XmlCodecError as exc:
        return f"XmlCodecError: {exc}"


def _namespaced(message: Message) -> bool:
    """Whether any node name under `message` is `{...}...` (lxml's namespace notation)."""
    return "{" in repr(message)  # names and texts only: a false alarm just skips a case


def assert_same(message: Message, root: str = "Request") -> None:
    expected = _outcome(_tree_encode, message, root)
    found = _outcome(xml_codec.encode, message, root)
    if found != expected and _namespaced(message) and isinstance(found, str):
        assert "names an XML namespace" in found
        return
    assert found == expected


# Any character a proto string holds (no lone surrogate), with a bias to what XML escapes or
# refuses.
_ANY_TEXT = st.text(
    st.characters(codec="utf-8", exclude_categories=())
    | st.sampled_from("&<>\r\n\t\"'\x00\x0b\x7f\ufffe\uffff\U0001f600é"),
    max_size=10,
)
_ANY_NAME = st.text(
    st.characters(codec="utf-8") | st.sampled_from("{}:-._0aZ"), min_size=0, max_size=6
) | st.from_regex(r"[A-Za-z_][A-Za-z0-9_.-]{0,6}", fullmatch=True)
_ANY_NODES = st.recursive(
    st.builds(xml_pb2.XmlNode, name=_ANY_NAME, text=_ANY_TEXT),
    lambda children: st.builds(
        xml_pb2.XmlNode, name=_ANY_NAME, text=_ANY_TEXT, children=st.lists(children, max_size=3)
    ),
    max_leaves=5,
)
_SETTINGS = settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[
        HealthCheck.too_slow,
        HealthCheck.data_too_large,
        HealthCheck.filter_too_much,
    ],
)


@pytest.mark.parametrize("full_name", test_xml_kinds.XML_MESSAGES)
@settings(_SETTINGS, max_examples=15)
@given(data=st.data())
def test_any_message_encodes_as_the_tree_did(full_name: str, data: st.DataObject) -> None:
    message = data.draw(test_xml_kinds._messages(full_name, 2))
    assert_same(message)
    assert_same(message, root="Response")


@_SETTINGS
@given(
    object_key=_ANY_TEXT,
    user_data=_ANY_TEXT,
    nodes=st.lists(_ANY_NODES, max_size=3),
    empty_output=st.booleans(),
)
def test_any_text_and_node_name_encode_as_the_tree_did(
    object_key: str, user_data: str, nodes: list[xml_pb2.XmlNode], empty_output: bool
) -> None:
    request = media_pb2.Request(tag="Transcode", input=media_pb2.Input(object=object_key))
    request.operation.user_data = user_data
    request.operation.extra_nodes.extend(nodes)
    if empty_output:
        request.operation.output.SetInParent()  # set but empty: not written
    assert_same(request)


@_SETTINGS
@given(
    keys=st.lists(_ANY_NAME, max_size=4),
    values=st.lists(_ANY_TEXT, min_size=4, max_size=4),
)
def test_maps_encode_as_the_tree_did(keys: list[str], values: list[str]) -> None:
    # The codec's test-only shapes hold maps of strings and of messages keyed by element name.
    message = test_xml_options._type("Topology")()
    for key, value in zip(keys, values, strict=False):
        message.dependencies[key] = value  # type: ignore[attr-defined]
        node = message.nodes[key]  # type: ignore[attr-defined]
        node.type = value
    assert_same(message)


def test_every_decoded_case_encodes_as_the_tree_did() -> None:
    compared = 0
    for _, data, message_type, root in test_xml_decode_paths._cases():
        try:
            message = xml_codec.decode(data, message_type, root=root)
        except XmlCodecError:
            continue
        assert_same(message, root or "Request")
        compared += 1
    assert compared > 400


def _code_points() -> Sequence[int]:
    """The first 12,288 code points, those around every boundary lxml draws, then every 61st;
    no surrogate (a proto string cannot hold one)."""
    near = {*range(0x3000), *range(0xD700, 0xE100), *range(0xFF00, 0x10100)}
    return sorted(p for p in near | set(range(0, 0x110000, 61)) if not 0xD800 <= p <= 0xDFFF)


def test_every_code_point_in_a_text_encodes_as_the_tree_did() -> None:
    for point in _code_points():
        assert_same(media_pb2.Request(input=media_pb2.Input(object=f"a{chr(point)}b")))


def test_a_namespaced_node_name_is_refused_by_the_api_before_the_codec() -> None:
    request = media_pb2.Request(tag="Transcode", input=media_pb2.Input(object="a.mp4"))
    request.operation.extra_nodes.add(name="{urn:x}Zq", text="t")
    found: list[tuple[str, str]] = []
    tree_checks.check_tree(request, "request", lambda path, what: found.append((path, what)))
    assert [path for path, _ in found] == ["request.operation.extra_nodes[0].name"]
    with pytest.raises(XmlCodecError, match="names an XML namespace"):
        xml_codec.encode(request)


def test_the_submit_body_is_unchanged() -> None:
    request = media_pb2.Request(tag="MediaInfo", input=media_pb2.Input(object="input/a.mp4"))
    request.operation.user_data = "u&<>\r"
    body = xml_codec.encode(request)
    assert body == _tree_encode(request)
    assert body.endswith(
        b"<Request><Tag>MediaInfo</Tag><Input><Object>input/a.mp4</Object></Input>"
        b"<Operation><UserData>u&amp;&lt;&gt;&#13;</UserData></Operation></Request>"
    )
    empty = service_pb2.SubmitMediaJobResponse()
    assert xml_codec.encode(empty, "Response") == _tree_encode(empty, "Response")
