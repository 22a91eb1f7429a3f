"""`tree_checks.check_tree` against a straightforward walk that reads every rule from the
descriptors on each field, as the module was first written: same reports, same order, on any
request any RPC accepts (hypothesis: hostile fields at any depth, unknown nodes anywhere).

The module's walk looks each field's plan up in a cache and writes a string's path only when it
refuses the string (session 14, to cut its instructions per call); this keeps it to the rules.
"""

from __future__ import annotations

import re

import pytest
from google.protobuf.descriptor import FieldDescriptor
from google.protobuf.message import Message
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gateway._proto import media_pb2, xml_pb2
from gateway.api import tree_checks
from gateway.upstream import xml_codec
from tests.api.hostile_requests import MESSAGE_TYPES, decorated, hostile, type_id

NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_.-]{0,127}")
NOT_XML = frozenset(chr(c) for c in (*range(9), 11, 12, *range(14, 32), 0xFFFE, 0xFFFF))
Found = list[tuple[str, str]]


def reference(message: Message, path: str) -> Found:
    found: Found = []
    _walk(message, path, found, [tree_checks.MAX_EXTRA_NODES])
    return found


def _walk(message: Message, path: str, found: Found, budget: list[int]) -> None:
    for field, value in message.ListFields():
        where = f"{path}.{field.name}"
        if field.name == xml_codec.unknown_nodes_field(message):
            for index, node in enumerate(value):
                _node(message, node, f"{where}[{index}]", 1, found, budget)
        elif field.message_type is not None:
            if field.message_type.GetOptions().map_entry:
                continue
            items = list(value) if field.is_repeated else [value]
            for index, item in enumerate(items):
                _walk(item, f"{where}[{index}]" if field.is_repeated else where, found, budget)
        elif field.type == FieldDescriptor.TYPE_STRING:
            texts = list(value) if field.is_repeated else [value]
            for index, text in enumerate(texts):
                if NOT_XML.intersection(text):
                    at = f"{where}[{index}]" if field.is_repeated else where
                    found.append((at, "must not contain control characters"))


def _node(
    parent: Message | None,
    node: xml_pb2.XmlNode,
    path: str,
    depth: int,
    found: Found,
    budget: list[int],
) -> None:
    budget[0] -= 1
    if budget[0] < 0:
        if budget[0] == -1:
            found.append(
                (path, f"more than {tree_checks.MAX_EXTRA_NODES} unknown nodes in one request")
            )
        return
    if depth > tree_checks.MAX_EXTRA_DEPTH:
        found.append((path, f"unknown nodes nested deeper than {tree_checks.MAX_EXTRA_DEPTH}"))
        return
    typed = xml_codec.typed_field_for(parent, node.name) if parent is not None else None
    if not NAME.fullmatch(node.name):
        found.append((f"{path}.name", "must be an XML element name (letters, digits, _ - .)"))
    elif typed:
        found.append(
            (f"{path}.name", f"<{node.name}> is the typed field {typed!r}: set that instead")
        )
    if NOT_XML.intersection(node.text):
        found.append((f"{path}.text", "must not contain control characters"))
    for index, child in enumerate(node.children):
        _node(None, child, f"{path}.children[{index}]", depth + 1, found, budget)


def _checked(message: Message) -> Found:
    found: Found = []
    tree_checks.check_tree(message, "request", lambda path, why: found.append((path, why)))
    return found


@pytest.mark.parametrize("message_type", MESSAGE_TYPES, ids=type_id)
@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_the_walk_reports_what_the_rules_say_in_their_order(
    message_type: type[Message], data: st.DataObject
) -> None:
    message = data.draw(hostile(message_type))
    if "extra_nodes" in message.DESCRIPTOR.fields_by_name and data.draw(st.booleans()):
        message = data.draw(decorated(message))
    assert _checked(message) == reference(message, "request")


def test_a_valid_submit_gets_no_report_and_a_bad_one_its_paths() -> None:
    """The reference itself judged on a known case, so the comparison above compares rules."""
    good = media_pb2.Request(tag="MediaInfo", input=media_pb2.Input(object="in/a.mp4"))
    assert _checked(good) == reference(good, "request") == []
    bad = media_pb2.Request(tag="a\x01", input=media_pb2.Input(object="in/\x00.mp4"))
    bad.operation.watermark_template_id.extend(["ok", "\ufffe"])
    assert _checked(bad) == [
        ("request.tag", "must not contain control characters"),
        ("request.input.object", "must not contain control characters"),
        ("request.operation.watermark_template_id[1]", "must not contain control characters"),
    ]
