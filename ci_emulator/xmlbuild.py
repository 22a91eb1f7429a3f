"""CI's XML answers, built with lxml from plain ordered data.

Independent of `gateway.upstream.xml_codec`'s Protobuf mapping on purpose: the emulator states CI's
wire form directly (node names, node order, empty-node spellings), so a bug in the gateway's
codec cannot be hidden by the emulator sharing it.

The data form is a list of `(name, value)` pairs, so order is explicit and names may repeat:

* `str` -> `<Name>text</Name>` (`""` -> `<Name></Name>`, CI's spelling of an empty StartTime);
* `None` -> `<Name/>` (CI's spelling of an empty `Message` or `Subtitle`);
* a nested list of pairs -> a container element.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import TypeAlias

from lxml import etree

# Characters XML 1.0 cannot carry. They can reach an answer only through echoed client input
# (an object key in a message); they become U+FFFD instead of crashing the serializer.
_NOT_XML_CHAR = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")

XmlValue: TypeAlias = "str | Fields | None"
Fields: TypeAlias = "list[tuple[str, XmlValue]]"

ERROR_DECLARATION = b"<?xml version='1.0' encoding='utf-8' ?>\n"
"""Verbatim from CI's documented error body (single quotes, a space before `?>`)."""


def build_element(name: str, value: XmlValue) -> etree._Element:
    element = etree.Element(name)
    if isinstance(value, list):
        for child_name, child_value in value:
            element.append(build_element(child_name, child_value))
    elif value is not None:
        element.text = _NOT_XML_CHAR.sub("\ufffd", value)
    return element


def render_response(fields: Fields) -> bytes:
    """A success body: `<Response>...</Response>`, compact, as CI's samples are on the wire.

    Written out directly rather than through an lxml tree: every answer passes here, and
    building then serialising a tree was a fifth of a submit's cost. The output is byte for
    byte what lxml writes for the same data (`build_element`; a property test holds them equal):
    the same escapes (`&`, `<`, `>`, and CR as `&#13;`) and the same empty-node spellings.
    Names are the emulator's own constants, never client input, so they need no escaping.
    """
    out: list[str] = []
    _write("Response", fields, out)
    return "".join(out).encode()


_TEXT_ESCAPES = str.maketrans({"&": "&amp;", "<": "&lt;", ">": "&gt;", "\r": "&#13;"})


def _write(name: str, value: XmlValue, out: list[str]) -> None:
    if value is None or (isinstance(value, list) and not value):
        out.append(f"<{name}/>")
    elif isinstance(value, str):
        text = _NOT_XML_CHAR.sub("\ufffd", value).translate(_TEXT_ESCAPES)
        out.append(f"<{name}>{text}</{name}>")
    else:
        out.append(f"<{name}>")
        for child_name, child_value in value:
            _write(child_name, child_value, out)
        out.append(f"</{name}>")


def render_error(fields: Fields) -> bytes:
    """CI's error body: the declaration, then one tab-indented child per line."""
    root = etree.Element("Error")
    root.text = "\n\t"
    for index, (name, value) in enumerate(fields):
        child = build_element(name, value)
        child.tail = "\n\t" if index < len(fields) - 1 else "\n"
        root.append(child)
    return ERROR_DECLARATION + etree.tostring(root, encoding="utf-8")


def media_info_fields(info: Mapping[str, object]) -> Fields:
    """Turn a probe's nested mapping into fields, keeping the probe's node order.

    A list value repeats its node (several `Video` streams); an empty list still yields one empty
    node, because CI always shows `<Subtitle/>` even when a file has no subtitles.
    """
    fields: Fields = []
    for name, value in info.items():
        if isinstance(value, Mapping):
            fields.append((name, media_info_fields(value)))
        elif isinstance(value, str):
            fields.append((name, value))
        elif isinstance(value, Sequence):
            if not value:
                fields.append((name, None))
            for item in value:
                fields.append((name, _item_value(item)))
        elif value is None:
            fields.append((name, None))
        else:
            fields.append((name, str(value)))
    return fields


def _item_value(item: object) -> XmlValue:
    if isinstance(item, Mapping):
        return media_info_fields(item)
    if item is None:
        return None
    return str(item)


def element_fields(element: etree._Element) -> Fields:
    """A request element's children as fields, for echoing `Operation` back as CI does.

    Text is kept as sent (an object key may end in a space); comments are skipped; an element
    with neither text nor children is the empty node.
    """
    fields: Fields = []
    for node in element.iterchildren("{*}*"):
        name = etree.QName(node).localname
        if len(node):
            fields.append((name, element_fields(node)))
        else:
            fields.append((name, node.text or None))
    return fields
