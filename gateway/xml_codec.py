"""Protobuf <-> CI XML, driven by the message descriptors.

(Being written: the descriptor-driven encode/decode lands next. The hardened parser below is
the one every XML parse in the gateway and the emulator goes through.)
"""

from __future__ import annotations

from lxml import etree

DEFAULT_MAX_BYTES = 4 * 1024 * 1024
"""Largest XML document accepted. CI's largest answers (100 JobsDetail with MediaInfo) are well
under 1 MiB; anything far bigger is a fault or an attack, not data."""


class XmlCodecError(ValueError):
    """The XML is malformed, unsafe, too large, or does not fit the expected message."""


def _make_parser() -> etree.XMLParser:
    # No entity expansion, no DTD, no network: an entity bomb or an external entity stays inert.
    return etree.XMLParser(
        resolve_entities=False,
        no_network=True,
        load_dtd=False,
        dtd_validation=False,
        huge_tree=False,
        remove_comments=True,
        remove_pis=True,
    )


_PARSER = _make_parser()


def parse_document(data: bytes, *, max_bytes: int = DEFAULT_MAX_BYTES) -> etree._Element:
    """Parse untrusted XML safely and return its root element; `XmlCodecError` on any fault."""
    if len(data) > max_bytes:
        raise XmlCodecError(f"XML document of {len(data)} bytes exceeds the {max_bytes}-byte limit")
    if not data.strip():
        raise XmlCodecError("XML document is empty")
    try:
        root = etree.fromstring(data, parser=_PARSER)
    except etree.XMLSyntaxError as exc:
        raise XmlCodecError(f"malformed XML: {exc.msg}") from exc
    if root is None:
        raise XmlCodecError("XML document has no root element")
    if root.getroottree().docinfo.internalDTD is not None or root.getroottree().docinfo.doctype:
        raise XmlCodecError("XML documents with a DOCTYPE are refused")
    return root
