"""The decode walk's two paths for a node, against each other and against the results before them.

`xml_codec._decode_into` sets a singular string found by its raw tag in the table's bounded
`texts` cache in its own loop, and hands every other node to `_decode_other` (issue 16: most of
an answer's nodes are singular strings). Two checks that the split changed no decoded result:

- **Digests.** Every saved answer (`bench/answers/`: the emulator's submit, describe and list
  answers), every XML vector, and a few documents of the codec's test-only shapes (maps, a
  recursive message), each as it is and in `MUTATIONS` seeded mutations (nodes shuffled,
  repeated, emptied, renamed, re-cased, given children, text or whitespace where none was),
  decoded with and without `keep_raw`. What each decoded to (the message's deterministic bytes,
  or the error's class and the node path it names) must have the digest recorded in
  `decode_digests.json`, written by the walk before the split (a80e353). After an intended change
  of a decoding rule, `XML_DECODE_DIGESTS=write` records the new results (and the diff of that
  file shows how many cases changed).
- **Paths.** Any message of every XML type, encoded and mutated, decodes the same when the tag
  caches are full before the first node, so that every node takes `_decode_other`'s path, as it
  does in a document with more distinct tags than the caches hold (`_TAG_CACHE_MAX`).
"""

from __future__ import annotations

import contextlib
import copy
import hashlib
import json
import os
import random
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from unittest import mock

import pytest
from google.protobuf import descriptor_pool, message_factory
from google.protobuf.descriptor import Descriptor
from google.protobuf.message import Message
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from lxml import etree

from gateway._proto import service_pb2
from gateway.upstream import xml_codec
from tests.upstream import test_xml_kinds, test_xml_options

HERE = Path(__file__).parent
ANSWERS = HERE.parent.parent / "bench" / "answers"
VECTORS = HERE / "vectors" / "xml"
DIGESTS = HERE / "decode_digests.json"
MUTATIONS = 12

ANSWER_TYPES: dict[str, type[Message]] = {
    "submit": service_pb2.SubmitMediaJobResponse,
    "describe": service_pb2.DescribeMediaJobsResponse,
    "list": service_pb2.ListMediaJobsResponse,
}
# The codec's test-only shapes (test_xml_options.py): element-name-keyed maps of strings and of
# messages, a recursive message, comma lists, `-` as empty, a raw element, a derived field.
SHAPES: dict[str, tuple[str, bytes]] = {
    "shape_topology": (
        "Topology",
        b"<Request><Dependencies><Start>T1</Start><T1>End</T1></Dependencies><Nodes>"
        b"<T1><Type>Transcode</Type></T1><Start><Type>Start</Type><Next><Type>x</Type>"
        b"<Ids>a,b</Ids><When>-</When><Raw>r</Raw><Flag>true</Flag><Derived>d</Derived>"
        b"<snake_result>s</snake_result><Keys>k1</Keys><Keys>k2, k3</Keys><Next><Flag>0</Flag>"
        b"<When> w </When></Next></Next></Start></Nodes><Zz>q</Zz></Request>",
    ),
    "shape_node": (
        "Node",
        b"<R><Type>t</Type><Next><Type>n</Type><Next><Ids>,x,,y ,</Ids></Next></Next>"
        b"<Flag>1</Flag><When>-</When></R>",
    ),
    "shape_plain": ("Plain", b"<R><Name>n</Name><Other>o</Other></R>"),
}

# Texts a mutation gives a node: whitespace around and alone, `-`, comma lists, numbers at and
# past int32's ends, booleans, enum text in several casings, an unknown enum text.
TEXTS = [
    *("", " ", "\n  x \n", " x ", "  \t", "-", ",a,, b ,", ",", "a,b"),
    *("0", "1", "-5", "+7", "1.0", "99", "2147483647", "2147483648", "-2147483649"),
    *("true", "False", "Success", "success", "SUBMITTED", "weird"),
]


def _mutate(root: etree._Element, rng: random.Random, count: int) -> None:
    """Change `count` random nodes of `root`'s tree in place, in the ways answers drift."""
    for _ in range(count):
        element = rng.choice([e for e in root.iter() if isinstance(e.tag, str)])
        parent = element.getparent()
        name = etree.QName(element).localname
        where = rng.randrange(len(parent) + 1) if parent is not None else 0
        match rng.randrange(12):
            case 0:  # children in another order
                children = list(element)
                rng.shuffle(children)
                element[:] = children
            case 1 if parent is not None:  # the node twice: a list item more, or a merge
                parent.insert(where, copy.deepcopy(element))
            case 2:  # emptied
                element[:] = []
                element.text = None
            case 3:  # text where children were
                element[:] = []
                element.text = rng.choice(TEXTS)
            case 4:  # a child where text was
                etree.SubElement(
                    element, rng.choice(["Foo", "State", "JobId", "Video"])
                ).text = rng.choice(TEXTS)
            case 5 if parent is not None:  # renamed: case, namespace, unknown
                element.tag = rng.choice(
                    [name.upper(), name.lower(), "{urn:x}" + name, "Unknown" + name]
                )
            case 6 if not len(element):
                element.text = rng.choice(TEXTS)
            case 7 if parent is not None:  # a comment (the parser drops it; a built tree not)
                parent.insert(where, etree.Comment("c"))
            case 8 if parent is not None:  # an empty twin
                parent.insert(where, etree.Element(element.tag))
            case 9 if parent is not None and len(element):  # a twin holding part of it
                twin = copy.deepcopy(element)
                del twin[: rng.randrange(len(twin) + 1)]
                parent.insert(where, twin)
            case 10:
                element.text = (element.text or "") + rng.choice([" ", "\n", "  y"])
            case 11 if parent is not None:
                parent.insert(where, etree.ProcessingInstruction("pi", "x"))
            case _:
                pass


def _class(full_name: str) -> type[Message]:
    descriptor: Descriptor = descriptor_pool.Default().FindMessageTypeByName(full_name)
    return message_factory.GetMessageClass(descriptor)


def _documents() -> Iterator[tuple[str, bytes, type[Message], str | None]]:
    """(name, XML, message type, root) of every document the digests start from."""
    for name, message_type in ANSWER_TYPES.items():
        yield f"answer_{name}", (ANSWERS / f"{name}.xml").read_bytes(), message_type, "Response"
    for spec_path in sorted(VECTORS.glob("*/*.json")):
        spec = json.loads(spec_path.read_text("utf-8"))
        message_type = _class(spec.get("type", "ci.media.v1.DescribeMediaJobsResponse"))
        data = spec_path.with_suffix(".xml").read_bytes()
        root = spec.get("root", "Response")
        yield f"{spec_path.parent.name}_{spec_path.stem}", data, message_type, root
    for name, (type_name, data) in SHAPES.items():
        yield name, data, test_xml_options._type(type_name), None


def _cases() -> Iterator[tuple[str, bytes | etree._Element, type[Message], str | None]]:
    """Each document, its mutations as bytes, and the last mutation also as a built tree (which
    keeps comments and processing instructions the parser would drop)."""
    for name, data, message_type, root in _documents():
        yield name, data, message_type, root
        try:
            tree = etree.fromstring(data, etree.XMLParser(resolve_entities=False))
        except etree.XMLSyntaxError:
            continue  # a reject vector that is not XML at all: no tree to mutate
        for number in range(MUTATIONS):
            rng = random.Random(f"{name}~{number}")
            mutated = copy.deepcopy(tree)
            _mutate(mutated, rng, rng.randrange(1, 8))
            yield f"{name}~{number}", etree.tostring(mutated), message_type, root
        yield f"{name}~tree", mutated, message_type, root


def _outcome(
    data: bytes | etree._Element, message_type: type[Message], root: str | None, keep_raw: bool
) -> bytes:
    """What decoding gave: the message's deterministic bytes, or the error's class and the part
    of its text before the first `: ` (the node path, or what was wrong), which names no
    library's own wording."""
    try:
        message = xml_codec.decode(data, message_type, root=root, keep_raw=keep_raw)
    except xml_codec.XmlCodecError as exc:
        return f"{type(exc).__name__} {str(exc).split(': ')[0]}".encode()
    return message.SerializeToString(deterministic=True)


def _digest(data: bytes | etree._Element, message_type: type[Message], root: str | None) -> str:
    both = b"\0".join(_outcome(data, message_type, root, keep_raw) for keep_raw in (False, True))
    return hashlib.sha256(both).hexdigest()[:16]


def test_every_case_decodes_as_recorded() -> None:
    found = {name: _digest(data, kind, root) for name, data, kind, root in _cases()}
    if os.environ.get("XML_DECODE_DIGESTS") == "write":
        DIGESTS.write_text(json.dumps(found, indent=0, sort_keys=True) + "\n", "utf-8")
    recorded = json.loads(DIGESTS.read_text("utf-8"))
    changed = sorted(
        name for name in found.keys() | recorded.keys() if found.get(name) != recorded.get(name)
    )
    assert not changed, f"{len(changed)} of {len(found)} cases decode otherwise: {changed[:20]}"
    assert len(found) > 500  # the corpus is what it claims to be


def test_the_mutations_reach_every_kind_of_node() -> None:
    # The digests prove little if the mutations never produced the nodes the two paths treat
    # differently: count, over all cases, what decoding met.
    errors = messages = 0
    for _, data, message_type, root in _cases():
        outcome = _outcome(data, message_type, root, keep_raw=False)
        if outcome.startswith((b"XmlCodecError", b"WrongRoot")):
            errors += 1
        else:
            messages += 1
    assert errors > 50 and messages > 400


# --- paths --------------------------------------------------------------------------------------


@contextlib.contextmanager
def _general_path_only() -> Iterator[list[xml_codec._Table]]:
    """Fresh tables whose tag caches are full before decoding starts: no tag is ever cached, so
    every node goes through `_field_for_tag` and `_decode_other`. Yields the tables built."""
    built: list[xml_codec._Table] = []
    real = xml_codec._build_table

    def full(descriptor: Descriptor) -> xml_codec._Table:
        table = real(descriptor)
        table.by_tag.update((object(), xml_codec._SKIP) for _ in range(xml_codec._TAG_CACHE_MAX))
        built.append(table)
        return table

    with (
        mock.patch.object(xml_codec, "_TABLES", {}),
        mock.patch.object(xml_codec, "_TABLES_BY_TYPE", {}),
        mock.patch.object(xml_codec, "_build_table", full),
    ):
        yield built


def _both_paths(data: bytes, message_type: type[Message], root: str | None) -> None:
    fast = [_outcome(data, message_type, root, keep_raw) for keep_raw in (False, True)]
    with _general_path_only() as tables:
        general = [_outcome(data, message_type, root, keep_raw) for keep_raw in (False, True)]
    assert all(not table.texts for table in tables)  # no node took the fast path
    assert general == fast


def test_the_saved_answers_decode_the_same_on_both_paths() -> None:
    for _, data, message_type, root in _documents():
        _both_paths(data, message_type, root)


@pytest.mark.parametrize(
    "full_name", [n for n in test_xml_kinds.XML_MESSAGES if n != "ci.media.v1.XmlNode"]
)
@settings(max_examples=8, deadline=None, suppress_health_check=list(HealthCheck))
@given(data=st.data(), seed=st.integers(0, 2**32 - 1))
def test_any_message_mutated_decodes_the_same_on_both_paths(
    full_name: str, data: st.DataObject, seed: int
) -> None:
    message: Any = data.draw(test_xml_kinds._messages(full_name, 2))
    rng = random.Random(seed)
    tree = etree.fromstring(xml_codec.encode(message, root="R"))
    _mutate(tree, rng, rng.randrange(0, 8))
    _both_paths(etree.tostring(tree), type(message), None)
