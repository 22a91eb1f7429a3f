"""A `MediaTemplate` as the body of CI's create and update (`POST /template`, `PUT /template/<id>`).

CI answers with a template's parameters in one container per kind (`TransTpl`, `Snapshot`, ...),
which `MediaTemplate` mirrors field for field; CI's request body, though, puts some kinds'
parameters straight under `<Request>` (Transcode: `<Request><Tag/><Name/><Container/><Video/>`)
and wraps others in a node of their own (`<Request><Tag/><Name/><Snapshot>...</Snapshot>`). The
`(template_params)` option on each container field of templates.proto says which, so this module
is one generic step over the descriptors, and every node is still written by the XML codec:

    tag + name (+ untyped parameters)  --encode-->  <Request><Tag/><Name/>...</Request>
    the container, at the root          --encode-->  its children, appended after Name
    the container, wrapped              --          a field of the first part, encoded with it

Kinds `MediaTemplate` has no container for (`UNTYPED`: Tts, PicProcess, ...) are created with
their nodes in the request's `parameters`, and CI answers them in a container of the kind's
(`TtsTpl`, `PicProcess`, ...) that the codec keeps in the template's `extra_nodes`. Nothing is
lost on the way back either: a template sent as it was read has that container written where
CI's request wants the kind's parameters (`as_sent`), and every other unknown node of the
template where the codec writes a template's own nodes, under `<Request>` beside Tag and Name.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, cast

from google.protobuf.message import Message
from lxml import etree

from gateway._proto import templates_pb2, xml_pb2
from gateway.upstream import xml_codec

if TYPE_CHECKING:  # protoc's stubs type an extension as a bare FieldDescriptor
    from google.protobuf.descriptor_pb2 import FieldOptions
    from google.protobuf.internal.extension_dict import _ExtensionFieldDescriptor

_OPTION = cast(
    "_ExtensionFieldDescriptor[FieldOptions, templates_pb2.TemplateContainer]",
    templates_pb2.template_params,
)


@dataclass(frozen=True)
class Container:
    """One parameter container of `MediaTemplate`."""

    field: str  # the MediaTemplate field, e.g. `trans_tpl`
    tag: str  # the template kind it holds, e.g. `Transcode`
    at_request_root: bool


@dataclass(frozen=True)
class Untyped:
    """A kind `MediaTemplate` has no container for: its parameters travel as `XmlNode` trees."""

    tag: str
    answer: str
    """The node CI's answer holds the parameters in (`TtsTpl`): one of the template's
    `extra_nodes` when read back."""
    wrapper: str | None
    """The node CI's request holds them in; None: straight under `<Request>`."""


# Catalogue §2.2 and A.12: Tts's request puts Mode, Codec, ... at the root and its answer in
# `TtsTpl`; the others' answers name their container as the request's wrapper. HighSpeedHd's
# request puts Container, Video, ... at the root (CI's HighSpeedHd CreateMediaTemplate page,
# 460/84723); no source shows its answer's container: named as the kind's (UNCONFIRMED, as the
# emulator answers it).
UNTYPED: Mapping[str, Untyped] = {
    kind.tag: kind
    for kind in (
        Untyped("Tts", "TtsTpl", None),
        Untyped("HighSpeedHd", "HighSpeedHd", None),
        *(
            Untyped(tag, tag, tag)
            for tag in (
                "PicProcess",
                "SpeechRecognition",
                "NoiseReduction",
                "VideoTargetRec",
                "ImageOCR",
            )
        ),
    )
}
UNTYPED_BY_ANSWER: Mapping[str, Untyped] = {kind.answer: kind for kind in UNTYPED.values()}


@functools.cache
def containers() -> Mapping[str, Container]:
    """Every typed kind's container, by tag, as templates.proto's options declare them."""
    found: dict[str, Container] = {}
    for field in templates_pb2.MediaTemplate.DESCRIPTOR.fields:
        options = field.GetOptions()
        if field.has_options and options.HasExtension(_OPTION):
            declared = options.Extensions[_OPTION]
            found[declared.tag] = Container(field.name, declared.tag, declared.at_request_root)
    return found


def containers_set(template: templates_pb2.MediaTemplate) -> list[Container]:
    """The containers `template` fills (a valid create fills at most one)."""
    return [c for c in containers().values() if template.HasField(c.field)]


def as_sent(template: templates_pb2.MediaTemplate) -> list[xml_pb2.XmlNode]:
    """`template.extra_nodes` as CI's request wants them under `<Request>`: its untyped kind's
    answer container (a template read back) unwrapped, or renamed, to where the request holds
    the kind's parameters; every other node as it is."""
    kind = UNTYPED.get(template.tag)
    sent: list[xml_pb2.XmlNode] = []
    for node in template.extra_nodes:
        if kind is None or node.name != kind.answer:
            sent.append(node)
        elif kind.wrapper is None:
            sent.extend(node.children)
        else:
            sent.append(xml_pb2.XmlNode(name=kind.wrapper, text=node.text, children=node.children))
    return sent


def request_body(
    template: templates_pb2.MediaTemplate, parameters: Sequence[xml_pb2.XmlNode] = ()
) -> bytes:
    """CI's `<Request>` for `template`: its tag and name, then its kind's parameters where CI
    wants them (the one container it fills, else `parameters` or, as read back, its kind's
    container in `extra_nodes`), then its other unknown nodes. Output-only fields (id, times,
    category) are never sent."""
    head = templates_pb2.MediaTemplate(tag=template.tag, name=template.name)
    head.extra_nodes.extend(parameters)
    head.extra_nodes.extend(as_sent(template))
    parts: list[Message] = [head]
    for container in containers_set(template):
        params = getattr(template, container.field)
        if container.at_request_root:
            parts.append(params)
        else:
            getattr(head, container.field).CopyFrom(params)
    return _request(parts)


def _request(parts: Sequence[Message]) -> bytes:
    """One `<Request>` holding, in order, the children each part encodes to."""
    root = etree.Element("Request")
    for part in parts:
        root.extend(list(xml_codec.parse_document(xml_codec.encode(part, root="Request"))))
    return xml_codec.XML_DECLARATION + etree.tostring(root, encoding="UTF-8")
