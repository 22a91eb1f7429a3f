"""Checks that walk a whole request tree, whatever the job kind: text XML can carry, and
well-formed unknown nodes.

Typed kinds add dozens of string fields, and untyped kinds arrive as `XmlNode` trees; rather
than a rule per field, one walk over the descriptors visits every set field. What it refuses is
what the XML codec could not encode (control characters, names that are no XML names) or would
encode ambiguously (an unknown node spelled like a typed field would decode into that field,
so it must be set there). Paths are the RPC's own (`request.operation.extra_nodes[0].name`).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence

from google.protobuf.descriptor import FieldDescriptor
from google.protobuf.message import Message

from gateway._proto import xml_pb2
from gateway.upstream import xml_codec

__all__ = ["MAX_EXTRA_DEPTH", "MAX_EXTRA_NODES", "check_nodes", "check_tree", "new_budget"]

MAX_EXTRA_NODES = 2000
"""Most unknown nodes in one request: far above any job kind's parameters, and a bound on the
XML a single RPC can make the gateway build."""

MAX_EXTRA_DEPTH = 32
"""Deepest unknown-node nesting: the codec refuses answers deeper than MAX_DEPTH (64) in all,
and a request's unknown nodes start a few levels down."""

# XML 1.0 names as CI uses them: ASCII letters, digits, `_`, `-`, `.`; no namespace prefix.
_XML_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_.-]{0,127}$")
# Characters XML 1.0 cannot carry (lxml refuses them): C0 controls but tab, LF and CR; U+FFFE/F.
_NOT_XML_TEXT = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")

Report = Callable[[str, str], None]


def new_budget() -> list[int]:
    """MAX_EXTRA_NODES for one request, to share between the `check_tree` calls over its parts
    (a template's `parameters`, a workflow's nodes): a budget per part would let a request of
    many parts hold many times the bound."""
    return [MAX_EXTRA_NODES]


def check_tree(
    message: Message, path: str, report: Report, budget: list[int] | None = None
) -> None:
    """Report (path, description) for every string XML cannot carry and every malformed or
    ambiguous unknown node under `message`, at most MAX_EXTRA_NODES nodes in all (in all the
    trees checked with the same `budget`, when one is given)."""
    _walk(message, path, report, new_budget() if budget is None else budget)


def check_nodes(
    parent: Message,
    nodes: Sequence[xml_pb2.XmlNode],
    path: str,
    report: Report,
    budget: list[int],
) -> None:
    """The same for unknown nodes an RPC carries beside the message they are written into (a
    template's `parameters` become its `extra_nodes`): each at `path[i]`, held to the names of
    `parent`'s typed fields as its own unknown nodes are."""
    for index, node in enumerate(nodes):
        _node(parent, node, f"{path}[{index}]", 1, report, budget)


# What the walk does with a set field (`_plan`).
_SKIP, _NODES, _MESSAGE, _MESSAGES, _TEXT, _TEXTS = range(6)
_PLANS: dict[FieldDescriptor, tuple[str, int]] = {}


def _plan(message: Message, field: FieldDescriptor) -> tuple[str, int]:
    """The name of `message`'s field `field` and what the walk does with it, read from the
    descriptors once: every request walks the same few fields, and each read of a
    descriptor's attribute is a call into protobuf. One entry per field of the API's
    messages at most (a field belongs to one message type)."""
    plan = _PLANS.get(field)
    if plan is None:
        plan = _PLANS[field] = (field.name, _action(message, field))
    return plan


def _action(message: Message, field: FieldDescriptor) -> int:
    if field.name == xml_codec.unknown_nodes_field(message):
        return _NODES
    if field.message_type is not None:
        if field.message_type.GetOptions().map_entry:
            return _SKIP  # no request message has a map yet; workflows will check their own
        return _MESSAGES if field.is_repeated else _MESSAGE
    if field.type == FieldDescriptor.TYPE_STRING:
        return _TEXTS if field.is_repeated else _TEXT
    return _SKIP


def _walk(message: Message, path: str, report: Report, budget: list[int]) -> None:
    # Per set field: its plan by one dict lookup (a call to `_plan` only the first time), and a
    # string's path written only when it is refused. Most of a request is strings of printable
    # ASCII, which the `_not_xml_text` test passes by its first two checks, here without a
    # call per string: a call and a path each cost about as much as the whole check. Repeated
    # fields are read as lists by one slice: a loop over the field itself ends in an IndexError
    # formatted and dropped inside protobuf (~1,500 instructions a loop; `_node`'s too).
    for field, value in message.ListFields():
        plan = _PLANS.get(field)
        name, action = _plan(message, field) if plan is None else plan
        if action == _TEXT:
            if not (value.isascii() and value.isprintable()) and _not_xml_text(value):
                report(f"{path}.{name}", "must not contain control characters")
        elif action == _MESSAGE:
            _walk(value, f"{path}.{name}", report, budget)
        elif action == _SKIP:
            continue
        elif action == _NODES:
            where = f"{path}.{name}"
            for index, node in enumerate(value[:]):
                _node(message, node, f"{where}[{index}]", 1, report, budget)
        elif action == _MESSAGES:
            where = f"{path}.{name}"
            for index, item in enumerate(value[:]):
                _walk(item, f"{where}[{index}]", report, budget)
        else:
            for index, item in enumerate(value[:]):
                if _not_xml_text(item):
                    report(f"{path}.{name}[{index}]", "must not contain control characters")


def _not_xml_text(text: str) -> bool:
    """Whether `text` holds a character XML cannot carry. Printable ASCII holds none (the
    common case, two checks in C), anything else is searched."""
    if text.isascii() and text.isprintable():
        return False
    return _NOT_XML_TEXT.search(text) is not None


def _node(
    parent: Message | None,
    node: xml_pb2.XmlNode,
    path: str,
    depth: int,
    report: Report,
    budget: list[int],
) -> None:
    budget[0] -= 1
    if budget[0] < 0:
        if budget[0] == -1:
            report(path, f"more than {MAX_EXTRA_NODES} unknown nodes in one request")
        return
    if depth > MAX_EXTRA_DEPTH:
        report(path, f"unknown nodes nested deeper than {MAX_EXTRA_DEPTH}")
        return
    if not _XML_NAME.fullmatch(node.name):
        report(f"{path}.name", "must be an XML element name (letters, digits, _ - .)")
    elif parent is not None and (typed := xml_codec.typed_field_for(parent, node.name)):
        report(f"{path}.name", f"<{node.name}> is the typed field {typed!r}: set that instead")
    if _not_xml_text(node.text):
        report(f"{path}.text", "must not contain control characters")
    for index, child in enumerate(node.children[:]):
        _node(None, child, f"{path}.children[{index}]", depth + 1, report, budget)
