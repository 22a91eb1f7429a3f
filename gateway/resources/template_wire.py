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


def request_body(
    template: templates_pb2.MediaTemplate, parameters: Sequence[xml_pb2.XmlNode] = ()
) -> bytes:
    """CI's `<Request>` for `template`: its tag and name, then its kind's parameters where CI
    wants them (the one container it fills, else `parameters` for a kind without one).
    Output-only fields (id, times, category) are never sent."""
    head = templates_pb2.MediaTemplate(tag=template.tag, name=template.name)
    head.extra_nodes.extend(parameters)
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
