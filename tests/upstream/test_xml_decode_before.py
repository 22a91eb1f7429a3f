"""The decode walk against the walk before session 15 (issue 16), kept here as it was.

Session 15 cut the walk's per-node work for a list answer: nested messages, then the other
leaves (numbers, enums, `-`-is-empty strings), dispatched from the walk's own loop by tables of
their own instead of through `_decode_other`. Each such restructure must decode every document
exactly as before: the same message bytes, or the same error (class and whole text, node path
included). The reference is the walk of 2e96bd6, copied below unchanged but for its names
(`_old_...`); it shares the codec's tables, parser, bounds and the helpers no step changed.

Documents: any message of every XML type, encoded, then mutated the ways answers drift
(`test_xml_decode_paths._mutate`) and in hostile ways (nesting around `MAX_DEPTH` under any node,
text where children belong and children where text belongs, namespaces, re-cased and unknown
names, comments, processing instructions and entity references in a built tree), decoded from
bytes and as a built tree, with and without `keep_raw`; and every saved answer and vector.
"""

from __future__ import annotations

import copy
import random
from typing import Any

import pytest
from google.protobuf.message import Message
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from lxml import etree

from gateway.upstream import xml_codec
from gateway.upstream.xml_codec import (
    _BOOL,
    _BOOL_TEXT,
    _DEPTH_ERROR,
    _INT,
    _INTEGER,
    _LAST_LEVEL,
    _MAP,
    _MAX_UNCOUNTED_BYTES,
    _MESSAGE,
    _SKIP,
    _STEP_NESTED,
    _STEP_TEXT,
    _STRING,
    _TABLES_BY_TYPE,
    _TOO_DEEP,
    _XML_SPACE,
    MAX_DEPTH,
    M,
    Path,
    WrongRoot,
    XmlCodecError,
    _check_below,
    _check_bounds,
    _deeper,
    _Field,
    _field_for_tag,
    _Table,
    _table,
    _too_deep,
    _too_few_to_nest,
    _where,
    local_name,
    parse_document,
)
from tests.upstream import test_xml_decode_paths, test_xml_kinds

# --- the walk of 2e96bd6 --------------------------------------------------------------------


def _old_decode(
    data: bytes | etree._Element,
    message_type: type[M],
    *,
    root: str | None = "Response",
    keep_raw: bool = False,
) -> M:
    deferred = False
    if isinstance(data, bytes):
        element = parse_document(data)
        may_nest = not _too_few_to_nest(data, element)
        if len(data) > _MAX_UNCOUNTED_BYTES:
            _check_bounds(element, check_depth=may_nest)
        else:
            deferred = may_nest
    else:
        element = data
        _check_bounds(element)
    try:
        tag = local_name(element.tag)
        if root is not None and tag.lower() != root.lower():
            raise WrongRoot(root, tag)
        message = message_type()
        _old_decode_into(message, element, (), keep_raw)
    except Exception as exc:
        if deferred and str(exc) != _DEPTH_ERROR and _TOO_DEEP(element) is True:
            raise _too_deep() from None
        raise
    return message


def _old_decode_into(message: Message, element: etree._Element, path: Path, keep_raw: bool) -> None:
    # The hot path of every answer (a list of 10 jobs is ~750 nodes, 80% of them singular
    # strings): per node one lookup of its raw tag in `texts`, and for a singular string only
    # lxml's reads and one setter in this loop. Every other node goes to `_old_decode_other`, which
    # hands a singular string whose tag `texts` could not hold back to this loop, so the rules
    # for each kind of node are written once. No error path string is built unless raised.
    table = _TABLES_BY_TYPE.get(type(message))
    if table is None:
        table = _table(message)
    texts = table.texts
    unknown = table.unknown
    space = _XML_SPACE
    if len(path) >= _LAST_LEVEL:
        _deeper(element)
    if keep_raw and table.raw is not None:
        setattr(message, table.raw, etree.tostring(element, encoding="unicode", with_tail=False))
    for child in element:
        tag = child.tag
        name = texts.get(tag)
        if name is None:
            name = _old_decode_other(message, table, child, tag, path, keep_raw)
            if name is None:
                continue
        # A singular string: its text, set as it is.
        if len(child):
            if unknown is not None:  # children where text belongs
                _old_decode_node(getattr(message, unknown), child, len(path) + 2)
                continue
            _check_below(child, len(path) + 2)  # the text is read, the children are not
        text = child.text
        if not text:  # None, or "" (an empty CDATA section)
            continue
        value = text.strip(space)
        if value is not text:  # `strip` returns the very same str when there is nothing to strip
            if not value:
                continue
            value = _old_string_value(text, value)
        try:
            setattr(message, name, value)
        except ValueError as exc:
            raise XmlCodecError(f"{_where(path, tag)}: {value[:40]!r} does not fit: {exc}") from exc


def _old_decode_other(
    message: Message, table: _Table, child: etree._Element, tag: object, path: Path, keep_raw: bool
) -> str | None:
    """Decode a node of `table`'s message that `texts` does not name; return the field name
    instead when the node is a singular string's after all (`_old_decode_into` sets it)."""
    field = table.by_tag.get(tag)
    if field is None:
        field = _field_for_tag(table, tag)
    step = field.step
    if step == _STEP_TEXT:
        return field.name
    unknown = table.unknown
    if field is _SKIP:
        # A node newer than our protos (kept), or no element at all (an entity reference).
        if isinstance(tag, str):
            if unknown is not None:
                _old_decode_node(getattr(message, unknown), child, len(path) + 2)
            elif len(child):
                _check_below(child, len(path) + 2)  # skipped whole
        return None
    if step == _STEP_NESTED:
        if not len(child):
            # `<Subtitle/>`, `<Format></Format>`: nothing there. Text instead of children
            # does not fit the field: kept as an unknown node rather than lost.
            if unknown is not None and (child.text or "").strip(_XML_SPACE):
                _old_decode_node(getattr(message, unknown), child, len(path) + 2)
            elif field.keep_empty:
                getattr(message, field.name).SetInParent()  # `<Video/>`: a video stream
            return None
        target = getattr(message, field.name)
        if field.kind is _MAP:
            _old_decode_map(target, field, child, (*path, tag), keep_raw)
        else:
            _old_decode_into(
                target.add() if field.repeated else target, child, (*path, tag), keep_raw
            )
        return None
    if len(child):
        if unknown is not None:  # children where text belongs
            _old_decode_node(getattr(message, unknown), child, len(path) + 2)
            return None
        _check_below(child, len(path) + 2)  # the text is read, the children are not
    text = child.text
    if text is None:
        return None
    value = text.strip(_XML_SPACE)
    if not value:
        return None
    if field.kind is _STRING:
        if not field.repeated:  # a singular string that is not `_STEP_TEXT`: `dash_is_empty`
            if value == "-":
                return None  # `<StartTime>-</StartTime>`: not reached yet
            if len(value) != len(text):
                value = _old_string_value(text, value)
            try:
                setattr(message, field.name, value)
            except ValueError as exc:
                raise XmlCodecError(
                    f"{_where(path, tag)}: {value[:40]!r} does not fit: {exc}"
                ) from exc
            return None
        if len(value) != len(text) and not field.split_commas:
            value = _old_string_value(text, value)
    _old_decode_scalar(message, field, value, path, tag)
    return None


def _old_string_value(text: str, stripped: str) -> str:
    """A string node's value, given its text and that text `stripped` of XML whitespace.

    Whitespace around a value is a pretty-printer's layout when it holds a line break (the value
    on a line of its own, indented) or when it is all the text there is; spaces and tabs beside
    a value on its tags' line are part of it, as CI keeps them: a UserData or an object key may
    begin or end with a space (`snap/ ${Number}.jpg` writes `snap/ 0.jpg`). Numbers, booleans
    and enum text are read stripped whatever the whitespace.
    """
    lead = len(text) - len(text.lstrip(_XML_SPACE))
    head, tail = text[:lead], text[lead + len(stripped) :]
    if "\n" in head or "\r" in head:
        head = ""
    if "\n" in tail or "\r" in tail:
        tail = ""
    return head + stripped + tail


def _old_decode_node(nodes: Any, element: etree._Element, depth: int) -> None:
    """Keep `element` (at `depth`) whole as an XmlNode (name without namespace, trimmed text,
    children)."""
    node = nodes.add()
    node.name = local_name(element.tag)
    text = (element.text or "").strip(_XML_SPACE)
    if text:
        node.text = text
    if depth >= MAX_DEPTH:
        _deeper(element)
    for child in element:
        if isinstance(child.tag, str):
            _old_decode_node(node.children, child, depth + 1)


def _old_decode_map(
    entries: Any, field: _Field, element: etree._Element, path: Path, keep_raw: bool
) -> None:
    # `element` is at depth len(path) + 1 (`path` ends with its own tag).
    if len(path) >= _LAST_LEVEL:
        _deeper(element)
    for child in element:
        if not isinstance(child.tag, str):
            continue
        key = local_name(child.tag)
        if field.map_value is _MESSAGE:
            _old_decode_into(entries[key], child, (*path, key), keep_raw)
        else:
            if len(child):
                _check_below(child, len(path) + 2)  # the text is read, the children are not
            entries[key] = (child.text or "").strip(_XML_SPACE)


def _old_decode_scalar(message: Message, field: _Field, text: str, path: Path, tag: object) -> None:
    value: Any
    kind = field.kind
    if kind is _STRING:
        # Split only where the field says so (`(xml).comma_separated`): Go's single-job describe
        # types `NonExistJobIds` as one string, so a comma-joined value there is several ids
        # (ids never contain commas), while an object key may well contain one.
        if field.split_commas:
            value = [part for p in text.split(",") if (part := p.strip(_XML_SPACE))]
        else:
            value = text
    elif kind is _INT:
        if not _INTEGER.fullmatch(text):
            raise XmlCodecError(f"{_where(path, tag)}: {text[:40]!r} is not an integer")
        value = int(text)
    elif kind is _BOOL:
        value = _BOOL_TEXT.get(text.lower())
        if value is None:
            raise XmlCodecError(f"{_where(path, tag)}: {text[:40]!r} is not true or false")
    else:
        assert field.enum is not None
        if field.text_field:
            setattr(message, field.text_field, text)  # exact text, known value or not
        # Text the enum lacks becomes 0 (UNSPECIFIED): a new CI state must not fail a whole answer.
        value = field.enum.from_wire.get(text.lower(), 0)
    try:
        if not field.repeated:
            if value:  # a default (`<JobLevel>0</JobLevel>`) must not make its parent present
                setattr(message, field.name, value)
        else:  # comma-separated values are a list already
            getattr(message, field.name).extend(value if field.split_commas else (value,))
    except ValueError as exc:  # e.g. an integer outside int32
        raise XmlCodecError(f"{_where(path, tag)}: {text[:40]!r} does not fit: {exc}") from exc


# --- the comparison -------------------------------------------------------------------------


def _outcome(
    decoder: Any,
    data: bytes | etree._Element,
    message_type: type[Message],
    root: str | None,
    keep_raw: bool,
) -> tuple[str, bytes]:
    try:
        message = decoder(data, message_type, root=root, keep_raw=keep_raw)
    except XmlCodecError as exc:
        return type(exc).__name__, str(exc).encode()
    return "ok", message.SerializeToString(deterministic=True)


def _same(data: bytes | etree._Element, message_type: type[Message], root: str | None) -> str:
    """Decode `data` both ways (a built tree is copied for each: decoding must not change it,
    and a copy rules that out as a cause of a difference); return the new walk's outcome kind."""
    kind = ""
    for keep_raw in (False, True):
        new_data = copy.deepcopy(data) if isinstance(data, etree._Element) else data
        old_data = copy.deepcopy(data) if isinstance(data, etree._Element) else data
        new = _outcome(xml_codec.decode, new_data, message_type, root, keep_raw)
        old = _outcome(_old_decode, old_data, message_type, root, keep_raw)
        assert new == old, (keep_raw, data if isinstance(data, bytes) else etree.tostring(data))
        kind = new[0]
    return kind


def _deep(levels: int, rng: random.Random) -> etree._Element:
    """`levels` nested elements, named like fields or not, around the depth bound."""
    names = ["Next", "JobsDetail", "Operation", "a", "Video", "Stream", "{urn:x}Next"]
    top = current = etree.Element(rng.choice(names))
    for _ in range(levels - 1):
        current = etree.SubElement(current, rng.choice(names))
    current.text = rng.choice(["x", " ", "1"])
    return top


def _hostile(root: etree._Element, rng: random.Random, count: int) -> None:
    """Change `count` random nodes of `root`'s tree in ways no answer should take."""
    for _ in range(count):
        elements = [e for e in root.iter() if isinstance(e.tag, str)]
        element = rng.choice(elements)
        depth = sum(1 for _ in element.iterancestors()) + 1
        match rng.randrange(6):
            case 0:  # nesting that ends just below, at or just past the bound
                element.append(_deep(MAX_DEPTH - depth + rng.randrange(-2, 3), rng))
            case 1:  # an entity reference and a CDATA section among the children
                element.append(etree.Entity("amp"))
                element.append(etree.Element("Cdata"))
                element[-1].text = etree.CDATA(rng.choice(["", " x ", "\n"]))
            case 2:  # text and children at once
                element.text = rng.choice(["t", " \n ", "", "-"])
                etree.SubElement(element, rng.choice(["Foo", "JobId", "Operation"]))
            case 3:  # a name the tag caches have not seen, in many spellings
                element.tag = rng.choice(
                    [
                        "x" + str(rng.randrange(10_000)),
                        element.tag.upper()
                        if isinstance(element.tag, str) and "{" not in element.tag
                        else "Y",
                        "{urn:y}Z",
                    ]
                )
            case 4:  # the whole subtree copied under itself
                element.append(copy.deepcopy(element))
            case _:
                pass


def _documents(message: Message, seed: int) -> list[bytes | etree._Element]:
    rng = random.Random(seed)
    tree = etree.fromstring(xml_codec.encode(message, root="R"))
    test_xml_decode_paths._mutate(tree, rng, rng.randrange(0, 6))
    _hostile(tree, rng, rng.randrange(0, 4))
    return [etree.tostring(tree), tree]


@pytest.mark.parametrize(
    "full_name", [n for n in test_xml_kinds.XML_MESSAGES if n != "ci.media.v1.XmlNode"]
)
@settings(max_examples=10, deadline=None, suppress_health_check=list(HealthCheck))
@given(data=st.data(), seed=st.integers(0, 2**32 - 1))
def test_any_message_mutated_decodes_as_before(
    full_name: str, data: st.DataObject, seed: int
) -> None:
    message: Any = data.draw(test_xml_kinds._messages(full_name, 2))
    for document in _documents(message, seed):
        _same(document, type(message), None)


def test_every_saved_case_decodes_as_before() -> None:
    kinds: dict[str, int] = {}
    for _, data, message_type, root in test_xml_decode_paths._cases():
        kind = _same(data, message_type, root)
        kinds[kind] = kinds.get(kind, 0) + 1
    assert kinds.get("ok", 0) > 400 and kinds.get("XmlCodecError", 0) > 50
