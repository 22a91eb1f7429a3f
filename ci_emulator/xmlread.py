"""Reading request XML the way CI's binding does: one helper set for every parser.

Unknown child nodes are ignored; a node that may appear once but appears twice is refused
(the answer would depend on which one a server reads); text is stripped for enumerations and
numbers, kept verbatim for free text (object keys, UserData, watermark text).
"""

from __future__ import annotations

from lxml import etree

from ci_emulator.errors import invalid_argument


def children(element: etree._Element, name: str) -> list[etree._Element]:
    """Child elements called `name` in any namespace or none (lxml's `{*}` wildcard, which
    also skips comments), matched in C rather than by a Python loop over every child."""
    return list(element.iterchildren(f"{{*}}{name}"))


def child(element: etree._Element, name: str) -> etree._Element | None:
    found = children(element, name)
    if len(found) > 1:
        raise invalid_argument(f"<{name}> may appear only once")
    return found[0] if found else None


def text_of(element: etree._Element, name: str, *, strip: bool = True) -> str | None:
    """Text of a single child; None when absent or empty (CI treats both alike).

    Enumerations and ids are stripped (tolerating pretty-printed XML); free text such as
    UserData and object keys is kept exactly, since a space is a legal part of either.
    """
    node = child(element, name)
    if node is None:
        return None
    if len(node):
        raise invalid_argument(f"<{name}> must hold text, not elements")
    text = node.text or ""
    if strip:
        text = text.strip()
    return text or None
