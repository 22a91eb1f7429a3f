"""Protobuf <-> CI XML, driven by the message descriptors.

CI speaks XML whose node names are the proto field names in PascalCase (the rule is stated in
``media.proto``), so instead of hand-writing a parser per message this module walks the
descriptors, as botocore's ``parsers.py`` / ``serialize.py`` walk their service model::

    encode: message --> _encode_into --(per field kind)--> lxml tree --> bytes
    decode: bytes --> parse_document --> _check_bounds --> _decode_into --(per kind)--> message

What the rule cannot say is said by the ``(ci.media.v1.xml)`` field option (``xml.proto``),
read from the descriptor like everything else: an exact node name (``SDRtoHDR``, ``ProduceID``),
comma-joined lists (ids only), ``-`` meaning empty (CI's times), the ``repeated XmlNode`` field
that keeps unknown nodes, the field that receives an element's raw XML, and fields the gateway
derives itself (no node at all). Map fields are
elements whose children's names are the keys (workflow topologies), written in key order.

Each message type is analysed once into a ``_Table`` (cached by descriptor full name), so the hot
path is a dict lookup per XML node. Encoding is canonical (field-number order, proto3 defaults
omitted, like the Go SDK's ``omitempty``; kept unknown nodes last, in their order); decoding is
tolerant, because CI's real answers differ from its docs: any node order, case-insensitive names
(``QueueID``/``QueueId``), empty nodes as absent, a single node where a list is expected, enum
text it has never seen kept verbatim, pretty-printing's line breaks and indentation around a
value dropped (but a string's own spaces kept: `_string_value`). It is also lossless: a node no
field names, or one whose shape does not fit its field (text where children were expected), is
kept in the message's unknown-node field and written back on encode. The hardened parser below
is the one every XML parse in the gateway and the emulator goes through.
"""

from __future__ import annotations

import codecs
import dataclasses
import functools
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from enum import Enum
from typing import TYPE_CHECKING, Any, TypeVar, cast

from google.protobuf.descriptor import Descriptor, EnumDescriptor, FieldDescriptor
from google.protobuf.message import Message
from lxml import etree

from gateway._proto import xml_pb2

if TYPE_CHECKING:  # the stubs type descriptors reached through DESCRIPTOR as upb's classes too
    from google._upb import _message as _upb
    from google.protobuf.descriptor_pb2 import FieldOptions
    from google.protobuf.internal.extension_dict import _ExtensionFieldDescriptor

__all__ = [
    "DEFAULT_MAX_BYTES",
    "MAX_DEPTH",
    "MAX_ELEMENTS",
    "XML_DECLARATION",
    "WrongRoot",
    "XmlCodecError",
    "decode",
    "document_head",
    "encode",
    "enum_wire_name",
    "local_name",
    "parse_document",
    "typed_field_for",
    "unknown_nodes_field",
    "wire_name",
]

DEFAULT_MAX_BYTES = 4 * 1024 * 1024
"""Largest XML document accepted. CI's largest answers (100 JobsDetail with MediaInfo) are well
under 1 MiB; anything far bigger is a fault or an attack, not data."""

MAX_DEPTH = 64
"""Deepest element nesting accepted (root = 1). CI's deepest node (Response/JobsDetail/Operation/
MediaInfo/Stream/Video/Width) is at 7; lxml's own bound (256) is far above what we need."""

MAX_ELEMENTS = 100_000
"""Most elements accepted in one document; 100 full JobsDetail are about 10,000."""

XML_DECLARATION = b'<?xml version="1.0" encoding="utf-8"?>\n'
"""The prelude of every encoded body: byte for byte what the official Python SDK sends
(``xmltodict.unparse``), so CI sees nothing new; CI also accepts a body without one."""

_XML_SPACE = " \t\r\n"  # XML's whitespace only: U+3000 and friends are data, not pretty-printing.
# Bounded: int() of a huge digit string costs quadratic time (and Python refuses >4300 digits).
_INTEGER = re.compile(r"[+-]?[0-9]{1,32}")
_CAMEL_BOUNDARY = re.compile(r"(?<=[a-z0-9])(?=[A-Z])|(?<=[A-Z])(?=[A-Z][a-z])")
_TOO_DEEP = etree.XPath("boolean(" + "/".join(["*"] * MAX_DEPTH) + ")")
# `len(path)` of an element at MAX_DEPTH, whose element children would be too deep.
_LAST_LEVEL = MAX_DEPTH - 1
_COUNT_ELEMENTS = etree.XPath("count(descendant-or-self::*)")

M = TypeVar("M", bound=Message)


class XmlCodecError(ValueError):
    """The XML is malformed, unsafe, too large, or does not fit the expected message."""


class WrongRoot(XmlCodecError):
    """A well-formed document whose root is not the one expected (`root`: the one it has)."""

    def __init__(self, expected: str, root: str) -> None:
        super().__init__(f"expected root element <{expected}>, got <{root}>")
        self.root = root


def _make_parser(target: etree.ParserTarget | None = None) -> etree.XMLParser:
    # No entity expansion, no DTD, no network: an entity bomb or an external entity stays inert.
    return etree.XMLParser(
        target=target,
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
    _check_element_budget(data)
    try:
        root = etree.fromstring(data, parser=_PARSER)
    except etree.XMLSyntaxError as exc:
        raise XmlCodecError(f"malformed XML: {exc.msg}") from exc
    if root is None:
        raise XmlCodecError("XML document has no root element")
    docinfo = root.getroottree().docinfo
    # `doctype` (the whole `<!DOCTYPE ...>`, empty when absent) is missing from lxml-stubs.
    doctype: str = getattr(docinfo, "doctype", "")
    if docinfo.internalDTD is not None or doctype:
        raise XmlCodecError("XML documents with a DOCTYPE are refused")
    return root


# The byte-order marks a document may open with (XML 1.0 appendix F), and their encodings.
_BOMS = (
    (codecs.BOM_UTF8, "utf-8"),
    (codecs.BOM_UTF16_LE, "utf-16-le"),
    (codecs.BOM_UTF16_BE, "utf-16-be"),
)


def document_head(data: bytes, size: int = 1024) -> bytes:
    """The first `size` bytes of `data` as UTF-8, without the byte-order mark it may open with,
    for telling XML (or JSON) and its root from other bodies before any parse: the parser reads
    a UTF-8 BOM and UTF-16 as well as plain UTF-8, so a sniff of the raw bytes must too."""
    head = data[:size]
    for bom, encoding in _BOMS:
        if head.startswith(bom):
            return head[len(bom) :].decode(encoding, errors="ignore").encode()
    return head


class _OverBudget(Exception):
    """Raised by `_ElementCounter` to stop a parse (lxml re-raises it from `fromstring`)."""


class _ElementCounter:
    """A parser target that builds nothing and counts start tags, up to `MAX_ELEMENTS`."""

    __slots__ = ("count",)

    def __init__(self) -> None:
        self.count = 0

    def start(self, tag: str, attrib: Mapping[str, str]) -> None:
        self.count += 1
        if self.count > MAX_ELEMENTS:
            raise _OverBudget

    def close(self) -> int:
        return self.count


def _check_element_budget(data: bytes) -> None:
    """Refuse a document of more than `MAX_ELEMENTS` elements before any tree is built.

    Why before: a 4 MiB answer of 170,000 small elements is a ~40 MiB libxml2 tree, and a tree
    built only to be refused still costs its memory while the refusal is on its way out; with
    many such answers at once the process grows by that much per call, and the allocator does
    not hand it back. Every element starts with a `<`, so a document with no more `<` bytes
    than the budget (every real answer: one C scan, no parse) is within it in UTF-8 and UTF-16;
    any other is counted by a parse that builds nothing and stops at the budget. (An encoding
    that writes `<` otherwise still meets `_check_bounds` after parsing.) A document of no more
    bytes than the budget cannot hold more `<` than that either, so it skips the scan (~5 us
    for a list of 10 jobs, 21.7 KB).
    """
    if len(data) <= MAX_ELEMENTS or data.count(b"<") <= MAX_ELEMENTS:
        return
    try:
        # The stubs' ParserTarget lists every callback; lxml calls only those a target has, and
        # one that counts start tags needs no `data` call per text node.
        counter = cast("etree.ParserTarget", _ElementCounter())
        etree.fromstring(data, parser=_make_parser(counter))
    except _OverBudget:
        raise XmlCodecError(f"XML has more than {MAX_ELEMENTS} elements") from None
    except etree.XMLSyntaxError as exc:
        raise XmlCodecError(f"malformed XML: {exc.msg}") from exc


# --- the model: one table per message type, built once from its descriptor ----------------------


class _Kind(Enum):
    STRING = "string"
    INT = "int"
    BOOL = "bool"
    ENUM = "enum"
    MESSAGE = "message"
    MAP = "map"  # element-name-keyed: `<Nodes><Start>...</Start></Nodes>`
    NODES = "nodes"  # the unknown-node field: XmlNode trees


# Module-level aliases for the hot paths: reading `_Kind.X` goes through the Enum class each time
# (~140 ns in CPython 3.11), several times per XML node.
_STRING, _INT, _BOOL, _ENUM = _Kind.STRING, _Kind.INT, _Kind.BOOL, _Kind.ENUM
_MESSAGE, _MAP, _NODES = _Kind.MESSAGE, _Kind.MAP, _Kind.NODES

_INT_TYPES = (
    FieldDescriptor.TYPE_INT32,
    FieldDescriptor.TYPE_INT64,
    FieldDescriptor.TYPE_UINT32,
    FieldDescriptor.TYPE_UINT64,
    FieldDescriptor.TYPE_SINT32,
    FieldDescriptor.TYPE_SINT64,
    FieldDescriptor.TYPE_FIXED32,
    FieldDescriptor.TYPE_FIXED64,
    FieldDescriptor.TYPE_SFIXED32,
    FieldDescriptor.TYPE_SFIXED64,
)
_KINDS = {
    FieldDescriptor.TYPE_STRING: _Kind.STRING,
    FieldDescriptor.TYPE_BOOL: _Kind.BOOL,
    FieldDescriptor.TYPE_ENUM: _Kind.ENUM,
    FieldDescriptor.TYPE_MESSAGE: _Kind.MESSAGE,
    **dict.fromkeys(_INT_TYPES, _Kind.INT),
}
_BOOL_TEXT = {"true": True, "1": True, "false": False, "0": False}
_XML_NODE = xml_pb2.XmlNode.DESCRIPTOR.full_name


@dataclass(frozen=True, slots=True)
class _EnumNames:
    to_wire: Mapping[int, str]
    from_wire: Mapping[str, int]  # lower-cased keys: CI's casing is nothing to rely on


@dataclass(frozen=True, slots=True)
class _Field:
    name: str
    wire: str
    kind: _Kind
    repeated: bool
    enum: _EnumNames | None = None
    text_field: str | None = None  # enum `x`'s string twin `x_text`: CI's exact text
    split_commas: bool = False  # `(xml).comma_separated`
    dash_empty: bool = False  # `(xml).dash_is_empty`
    keep_empty: bool = False  # `(xml).keep_empty`: set but empty is still a node
    map_value: _Kind | None = None  # a map's value kind: STRING or MESSAGE
    # What decoding does with a node of this field, worked out once (see `_step`).
    step: int = 0


@dataclass(frozen=True, slots=True)
class _Table:
    fields: tuple[_Field, ...]  # field-number order: the order we encode in
    by_wire: Mapping[str, _Field]  # lower-cased wire name -> field
    unknown: str | None = None  # the `(xml).unknown_nodes` field, if the message has one
    raw: str | None = None  # the `(xml).raw_element` field, if the message has one
    # Raw tag as lxml reports it (namespace and case included) -> field, or `_SKIP` for a node
    # no field names: decoding then costs one dict lookup per node instead of a namespace split
    # and a lower(). Filled as tags are met, and bounded, since the tags come from untrusted XML.
    by_tag: dict[object, _Field] = dataclasses.field(default_factory=dict)
    # The same for the common leaf alone, a singular string (`_STEP_TEXT`): raw tag -> field
    # name, so that most nodes cost that one lookup and no read of the field's attributes.
    # A subset of `by_tag`'s keys, so bounded with it.
    texts: dict[object, str] = dataclasses.field(default_factory=dict)
    # And for a message field that is no map (`_STEP_NESTED`, `_MESSAGE`): raw tag -> field, so
    # that the walk descends into a nested message from its own loop, without `_decode_other`'s
    # call and its generic branches (~80 of the ~140 other nodes of a list of 10). A subset of
    # `by_tag`'s keys, so bounded with it.
    nested: dict[object, _Field] = dataclasses.field(default_factory=dict)
    # And for the other leaves (`_STEP_SCALAR`: numbers, booleans, enums, `-`-is-empty and
    # repeated strings; ~50 nodes of a list of 10): raw tag -> field, set by `_decode_scalar`
    # straight from the loop. A subset of `by_tag`'s keys too.
    scalars: dict[object, _Field] = dataclasses.field(default_factory=dict)
    # Encoding walks only the fields a message has set (`ListFields`), found here by name.
    by_name: Mapping[str, _Field] = dataclasses.field(default_factory=dict)
    # A text twin's name -> its enum's name: an enum left at 0 whose twin holds CI's text
    # still writes that text (`_scalar_text`), although only the twin is set.
    twins: Mapping[str, str] = dataclasses.field(default_factory=dict)


_SKIP = _Field(name="", wire="", kind=_Kind.STRING, repeated=False)
"""`_Table.by_tag`'s answer for a node that maps to no field."""

# Decoding steps (`_Field.step`), the branch each node takes, decided per field, not per node.
_STEP_SKIP, _STEP_NESTED, _STEP_TEXT, _STEP_SCALAR = 0, 1, 2, 3


def _step(kind: _Kind, repeated: bool, dash_empty: bool) -> int:
    if kind is _Kind.MESSAGE or kind is _Kind.MAP:
        return _STEP_NESTED
    if kind is _Kind.STRING and not repeated and not dash_empty:
        return _STEP_TEXT  # the common leaf: its text, set as it is
    return _STEP_SCALAR


_TAG_CACHE_MAX = 256
"""Most distinct raw tags remembered per message type; CI's largest type has ~40 fields."""

# Keyed by full name (descriptors are interned per pool); filled lazily, so a recursive message
# type needs no special case, and a race on first use only builds an equal table twice.
_TABLES: dict[str, _Table] = {}
# The same tables keyed by message class: the hot path's lookup, with no descriptor access.
_TABLES_BY_TYPE: dict[type[Message], _Table] = {}
_ENUMS: dict[str, _EnumNames] = {}
_NO_OPTIONS = xml_pb2.XmlField()
# protoc's stubs type an extension as a bare FieldDescriptor; this is what it is.
_XML_OPTION = cast("_ExtensionFieldDescriptor[FieldOptions, xml_pb2.XmlField]", xml_pb2.xml)


@functools.cache
def _pascal(snake: str) -> str:
    return "".join(part[:1].upper() + part[1:] for part in snake.split("_"))


def _options(field: FieldDescriptor | _upb.FieldDescriptor) -> xml_pb2.XmlField:
    """The field's `(ci.media.v1.xml)` option; all defaults when it has none."""
    if not field.has_options:
        return _NO_OPTIONS
    options = field.GetOptions()
    if not options.HasExtension(_XML_OPTION):
        return _NO_OPTIONS
    return options.Extensions[_XML_OPTION]


def wire_name(field: FieldDescriptor | _upb.FieldDescriptor) -> str:
    """The XML node name of `field`: its `(xml).name` option when set, else media.proto's rule
    (``has_b_frame`` -> ``HasBFrame``)."""
    return _options(field).name or _pascal(field.name)


def _enum_names(enum: EnumDescriptor | _upb.EnumDescriptor) -> _EnumNames:
    names = _ENUMS.get(enum.full_name)
    if names is None:
        # `JobState` -> `JOB_STATE_`: the style guide's value prefix, which CI's text lacks.
        prefix = _CAMEL_BOUNDARY.sub("_", enum.name).upper() + "_"
        to_wire: dict[int, str] = {}
        for value in enum.values:  # with allow_alias the first name of a number wins
            to_wire.setdefault(value.number, _pascal(value.name.removeprefix(prefix).lower()))
        from_wire = {text.lower(): number for number, text in to_wire.items()}
        names = _ENUMS[enum.full_name] = _EnumNames(to_wire, from_wire)
    return names


def enum_wire_name(enum: EnumDescriptor | _upb.EnumDescriptor, number: int) -> str:
    """CI's text for an enum value (``JOB_STATE_SUBMITTED`` -> ``Submitted``), public because the
    same text goes into query strings (``states=``, ``orderByTime=``)."""
    try:
        return _enum_names(enum).to_wire[number]
    except KeyError:
        raise XmlCodecError(f"{enum.full_name} has no value {number}") from None


def _text_twin(descriptor: Descriptor, field: FieldDescriptor) -> FieldDescriptor | None:
    twin = descriptor.fields_by_name.get(f"{field.name}_text")
    if field.type != FieldDescriptor.TYPE_ENUM or field.is_repeated or twin is None:
        return None
    return twin if twin.type == FieldDescriptor.TYPE_STRING and not twin.is_repeated else None


def _map_value_kind(fd: FieldDescriptor) -> _Kind | None:
    """STRING or MESSAGE for a map<string, ...> field, None for a field that is no map."""
    entry = fd.message_type
    if entry is None or not entry.GetOptions().map_entry:
        return None
    key, value = entry.fields_by_name["key"], entry.fields_by_name["value"]
    kind = _KINDS.get(value.type)
    if key.type != FieldDescriptor.TYPE_STRING or kind not in (_STRING, _MESSAGE):
        raise TypeError(f"{fd.full_name}: only map<string, string|message> has a CI XML mapping")
    return kind


def _special_field(fd: FieldDescriptor, option: str) -> str:
    """Check the field an `unknown_nodes` / `raw_element` option marks, and return its name."""
    if option == "unknown_nodes":
        node_type = fd.message_type
        fits = fd.is_repeated and node_type is not None and node_type.full_name == _XML_NODE
        shape = f"repeated {_XML_NODE}"
    else:
        fits = fd.type == FieldDescriptor.TYPE_STRING and not fd.is_repeated
        shape = "a singular string"
    if not fits:
        raise TypeError(f"{fd.full_name}: (xml).{option} needs {shape}")
    return fd.name


def _build_table(descriptor: Descriptor) -> _Table:
    twins = {t.name for f in descriptor.fields if (t := _text_twin(descriptor, f)) is not None}
    fields: list[_Field] = []
    unknown = raw = None
    for fd in sorted(descriptor.fields, key=lambda f: f.number):
        if fd.name in twins:
            continue  # `state_text` is no node of its own: it rides on `<State>`
        options = _options(fd)
        if options.unknown_nodes:
            if unknown is not None:
                raise TypeError(f"{descriptor.full_name}: two (xml).unknown_nodes fields")
            unknown = _special_field(fd, "unknown_nodes")
            continue
        if options.raw_element:
            raw = _special_field(fd, "raw_element")
            continue
        if options.derived:
            continue  # the gateway's own (`JobsDetail.outputs`): no node either way
        kind = _KINDS.get(fd.type)
        map_value = _map_value_kind(fd)
        if kind is None:
            raise TypeError(f"{fd.full_name}: no CI XML mapping for this field type")
        if options.comma_separated and (kind is not _STRING or not fd.is_repeated):
            raise TypeError(f"{fd.full_name}: (xml).comma_separated needs a repeated string")
        if options.keep_empty and (kind is not _MESSAGE or fd.is_repeated or map_value):
            raise TypeError(f"{fd.full_name}: (xml).keep_empty needs a singular message")
        twin = _text_twin(descriptor, fd)
        kind = _MAP if map_value is not None else kind
        repeated = fd.is_repeated and map_value is None
        fields.append(
            _Field(
                name=fd.name,
                wire=wire_name(fd),
                kind=kind,
                repeated=repeated,
                enum=_enum_names(fd.enum_type) if fd.enum_type is not None else None,
                text_field=twin.name if twin is not None else None,
                split_commas=options.comma_separated,
                dash_empty=options.dash_is_empty,
                keep_empty=options.keep_empty,
                map_value=map_value,
                step=_step(kind, repeated, options.dash_is_empty),
            )
        )
    by_wire = {f.wire.lower(): f for f in fields}
    if len(by_wire) != len(fields):
        raise TypeError(f"{descriptor.full_name}: two fields share a case-insensitive XML name")
    twin_of = {f.text_field: f.name for f in fields if f.text_field}
    by_name = {f.name: f for f in fields}
    return _Table(tuple(fields), by_wire, unknown, raw, by_name=by_name, twins=twin_of)


def _table(message: Message) -> _Table:
    table = _TABLES_BY_TYPE.get(type(message))
    if table is None:
        # The stubs type DESCRIPTOR as a union with upb's class; at runtime it *is* a Descriptor.
        descriptor = cast(Descriptor, message.DESCRIPTOR)
        table = _TABLES.get(descriptor.full_name)
        if table is None:
            table = _TABLES[descriptor.full_name] = _build_table(descriptor)
        _TABLES_BY_TYPE[type(message)] = table
    return table


def typed_field_for(message: Message, node: str) -> str | None:
    """The field of `message` that the node `node` decodes into (case-insensitive, as decoding
    matches), or None when the node would be kept as an unknown node."""
    field = _table(message).by_wire.get(node.lower())
    return field.name if field is not None else None


def unknown_nodes_field(message: Message) -> str | None:
    """The field of `message` that keeps unknown nodes (`(xml).unknown_nodes`), if any."""
    return _table(message).unknown


def _field_for_tag(table: _Table, tag: object) -> _Field:
    """The field a node's raw tag names (`_SKIP`: none), remembered in `table.by_tag`."""
    found = table.by_wire.get(local_name(tag).lower(), _SKIP) if isinstance(tag, str) else _SKIP
    if len(table.by_tag) < _TAG_CACHE_MAX:
        table.by_tag[tag] = found
        if found.step == _STEP_TEXT:
            table.texts[tag] = found.name
        elif found.kind is _MESSAGE:
            table.nested[tag] = found
        elif found.step == _STEP_SCALAR:
            table.scalars[tag] = found
    return found


# --- encode: canonical ---------------------------------------------------------------------------
#
# Written as text, not built as an lxml tree and serialized: byte for byte what lxml wrote
# (`tests/upstream/test_xml_encode_text.py` holds the tree-building encoder and compares the
# two), at a third of the cost. Each `SubElement` validated its tag by a bytes `in` test that
# formats and drops a TypeError inside CPython (~2,700 instructions an element). lxml is still
# the judge of what it refused: a name or a text the checks here cannot pass at a glance is
# handed to lxml (`_tag`, `_text`), which raises the ValueError it raised before.


def encode(message: Message, root: str = "Request") -> bytes:
    """Serialize `message` as CI XML under `root`; proto3 defaults are omitted, as the Go SDK's
    ``omitempty`` does (CI's defaults equal proto3's: JobLevel 0, empty strings). Kept unknown
    nodes follow the typed fields; a raw-XML field is never written."""
    out: list[str] = []
    try:
        tag = _tag(root)
        _encode_into(out, message)
    except XmlCodecError:
        raise
    except ValueError as exc:  # lxml refuses control characters in text, and odd names
        raise XmlCodecError(f"cannot encode {message.DESCRIPTOR.full_name}: {exc}") from exc
    xml = f"<{tag}>{''.join(out)}</{tag}>" if out else f"<{tag}/>"
    return XML_DECLARATION + xml.encode()


# Names lxml accepted, as written (bounded: map keys and unknown nodes' names come from callers).
_TAGS: dict[str, str] = {}
_PLAIN_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_.-]*")
# What lxml escapes in text with `encoding="UTF-8"`: every other character it accepts is
# written as it is (checked for every code point by the test above).
_ESCAPES = str.maketrans({"&": "&amp;", "<": "&lt;", ">": "&gt;", "\r": "&#13;"})
# Characters lxml refuses in text (XML 1.0's excluded ones, and lone surrogates).
_NOT_XML_TEXT = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")
_JUDGE = etree.Element("judge")  # what lxml is asked about a text it may refuse


def _tag(name: str) -> str:
    tag = _TAGS.get(name)
    if tag is None:
        tag = _new_tag(name)
    return tag


def _new_tag(name: str) -> str:
    """`name` as a tag, once lxml would have taken it (its own ValueError otherwise)."""
    if not _PLAIN_NAME.fullmatch(name):
        etree.Element(name)  # lxml's verdict on a name that is no plain ASCII XML name
        if "{" in name:
            # lxml took `{uri}name` as a namespace and wrote a prefix for it; CI has none,
            # and the API refuses such names before any body is written (`tree_checks`).
            raise XmlCodecError(f"node name {name!r} names an XML namespace")
    if len(_TAGS) < _TAG_CACHE_MAX:
        _TAGS[name] = name
    return name


def _text(text: str) -> str:
    """`text` as lxml wrote it in an element, or lxml's own ValueError for a text it refused."""
    if not (text.isascii() and text.isprintable()) and _NOT_XML_TEXT.search(text):
        _JUDGE.text = text  # raises as `element.text = text` did
    if "&" in text or "<" in text or ">" in text or "\r" in text:
        return text.translate(_ESCAPES)  # ~10,000 instructions for a 15-character key
    return text


def _encode_element(out: list[str], tag: str, message: Message) -> None:
    """`<tag>` holding `message`'s nodes; `<tag/>` when it has none."""
    at = len(out)
    out.append(f"<{tag}>")
    _encode_into(out, message)
    if len(out) == at + 1:
        out[at] = f"<{tag}/>"
    else:
        out.append(f"</{tag}>")


def _encode_into(out: list[str], message: Message) -> None:
    table = _table(message)
    # Only what is set: proto3 defaults are omitted anyway, and a request's `Operation` has a
    # field per job kind (dozens), of which one or two are set. `ListFields` is in field-number
    # order, the order we encode in.
    listed = message.ListFields()
    unknown = table.unknown
    nodes: Any = None
    if table.twins and _orphan_twin(table, listed):
        for field in table.fields:  # rare: an enum at 0 that still writes its twin's text
            if field.kind is _MESSAGE and not field.repeated and not message.HasField(field.name):
                continue
            _encode_field(out, message, field, getattr(message, field.name))
        if unknown is not None:
            nodes = getattr(message, unknown)
    else:
        by_name = table.by_name
        for descriptor, value in listed:
            named = by_name.get(descriptor.name)
            if named is not None:
                _encode_field(out, message, named, value)
            elif descriptor.name == unknown:
                # The kept nodes, listed only when there are some: no empty upb list is made
                # and iterated (~2,500 instructions a message). They follow the typed fields.
                nodes = value
            # else a twin, a raw or derived field
    if nodes:
        for node in nodes:
            _encode_node(out, node)


def _orphan_twin(table: _Table, listed: Sequence[tuple[Any, Any]]) -> bool:
    names = {descriptor.name for descriptor, _ in listed}
    return any(twin in names and enum not in names for twin, enum in table.twins.items())


def _encode_field(out: list[str], message: Message, field: _Field, value: Any) -> None:
    """One field's nodes; a singular message field is present (the caller checked)."""
    if field.kind is _MESSAGE:
        tag = _tag(field.wire)
        if field.repeated:
            for item in value:  # kept even when empty: the node count is information
                _encode_element(out, tag, item)
        else:
            at = len(out)
            out.append(f"<{tag}>")
            _encode_into(out, value)
            if len(out) > at + 1:
                out.append(f"</{tag}>")
            elif field.keep_empty:
                out[at] = f"<{tag}/>"
            else:
                del out[at]  # set but empty reads back as absent anyway
        return
    if field.kind is _MAP:
        if value:
            _encode_map(out, _tag(field.wire), field, value)
        return
    for item in value if field.repeated else (value,):
        text = _scalar_text(message, field, item)
        if text:
            tag = _tag(field.wire)
            out.append(f"<{tag}>{_text(text)}</{tag}>")


def _encode_map(out: list[str], tag: str, field: _Field, entries: Mapping[str, Any]) -> None:
    out.append(f"<{tag}>")
    # Sorted: the same map is the same bytes on every run (the Go SDK shipped this bug twice).
    for key in sorted(entries):
        child = _tag(key)
        if field.map_value is _MESSAGE:
            _encode_element(out, child, entries[key])
        elif entries[key]:
            out.append(f"<{child}>{_text(entries[key])}</{child}>")
        else:
            out.append(f"<{child}/>")
    out.append(f"</{tag}>")


def _encode_node(out: list[str], node: xml_pb2.XmlNode) -> None:
    tag = _tag(node.name)
    text = node.text
    inner = _text(text) if text else ""
    children = node.children
    if not children:
        out.append(f"<{tag}>{inner}</{tag}>" if inner else f"<{tag}/>")
        return
    out.append(f"<{tag}>{inner}")
    for child in children:
        _encode_node(out, child)
    out.append(f"</{tag}>")


def _scalar_text(message: Message, field: _Field, value: Any) -> str:
    if field.kind is _STRING:
        return str(value)
    if not value and not field.repeated:
        # Default: omitted, except that an enum CI answered with unknown text says it back.
        return getattr(message, field.text_field) if field.text_field else ""
    if field.kind is _BOOL:
        return "true" if value else "false"
    if field.enum is None:
        return str(value)
    try:
        return field.enum.to_wire[value]
    except KeyError:
        raise XmlCodecError(f"{field.wire}: enum value {value} has no CI text") from None


# --- decode: tolerant ----------------------------------------------------------------------------


def decode(
    data: bytes | etree._Element,
    message_type: type[M],
    *,
    root: str | None = "Response",
    max_bytes: int = DEFAULT_MAX_BYTES,
    keep_raw: bool = False,
) -> M:
    """Fill a new `message_type` from CI XML; the root's name must be `root` unless it is None.

    Tolerant by design (CI's answers drift from its docs): node order and name case are free,
    empty nodes are absent, one node where a list is expected is a one-element list. Lossless:
    nodes no field names are kept in the message's unknown-node field. With `keep_raw`, each
    message that has a raw-XML field gets its element's XML there. Anything unsafe, oversized
    or not fitting the fields is `XmlCodecError`.
    """
    # The depth bound: a document of a size every real answer has is checked by the walk
    # itself, level by level (`_deeper`), instead of by the `_TOO_DEEP` XPath before it (~40,000
    # instructions on a describe's answer, of which ~19,000 set-up); a subtree the walk does not
    # enter is checked by an XPath of its own (`_check_below`). Should the walk fail otherwise
    # (the root, a field), the XPath then decides whether the depth error comes first, as it did.
    deferred = False
    if isinstance(data, bytes):
        element = parse_document(data, max_bytes=max_bytes)
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
        _decode_into(message, element, (), keep_raw)
    except Exception as exc:
        if deferred and str(exc) != _DEPTH_ERROR and _TOO_DEEP(element) is True:
            raise _too_deep() from None
        raise
    return message


def local_name(tag: str) -> str:
    """A tag without its namespace (``{urn:x}JobId`` -> ``JobId``), as botocore's `_node_tag`:
    CI sends no namespaces, but a proxy or a future API version might."""
    return tag.rpartition("}")[2]


_MAX_UNCOUNTED_BYTES = 4 * MAX_ELEMENTS
"""Documents up to this size need no element count after parsing: the smallest element,
`<a/>`, is 4 characters, no encoding writes a character in less than a byte, and with no
DOCTYPE (refused) nothing expands, so they hold at most `MAX_ELEMENTS` elements. Every real CI
answer is this small, and the count was ~3% of decoding a list of 10 jobs."""


_FEW_BYTES = 1024
"""Largest document `_too_few_to_nest` looks at: a submit answer is ~500 bytes, and counting
costs ~6 instructions a byte."""


def _too_few_to_nest(data: bytes, root: etree._Element) -> bool:
    """Whether `data`, parsed into `root`, certainly holds no more than `MAX_DEPTH` elements, and
    so cannot nest deeper: then the depth check, an XPath whose set-up alone is ~19,000
    instructions (10% of decoding a submit answer), would find nothing.

    Every element opens with a `<`. In an ASCII document that libxml2 read as UTF-8, each
    character is one byte and each `<` the byte 0x3C, so no more 0x3C bytes than `MAX_DEPTH`
    means no more elements than that (a comment, PI or CDATA section may hold more `<`, never
    fewer; no entity adds elements, and a DOCTYPE is refused). Other encodings are left to the
    XPath: UTF-7, for one, writes `<` as `+ADw-`. Documents over `_FEW_BYTES` are not scanned:
    CI's longer answers (a describe, a list) hold more `<` than that, and counting them would
    cost more than the check it could save.
    """
    if len(data) > _FEW_BYTES or data.count(b"<") > MAX_DEPTH or not data.isascii():
        return False
    return str(root.getroottree().docinfo.encoding or "").upper() == "UTF-8"


def _check_bounds(
    element: etree._Element, *, count_elements: bool = True, check_depth: bool = True
) -> None:
    # lxml stops at depth 256; ours is tighter and also covers elements built by the caller.
    # Both checks run as XPath, inside libxml2, so they stay cheap next to the parse itself.
    if check_depth and _TOO_DEEP(element) is True:
        raise _too_deep()
    if not count_elements:
        return
    count = _COUNT_ELEMENTS(element)
    if isinstance(count, float) and count > MAX_ELEMENTS:
        raise XmlCodecError(f"XML has {int(count)} elements, more than {MAX_ELEMENTS}")


Path = tuple[object, ...]
"""The tags from the decoded root down to an element (not the root itself), joined into the
`A.B.C` of an error message only when an error is raised. Its length is the element's depth
less one (the root is at depth 1), which the walk's depth checks read."""


_DEPTH_ERROR = f"XML nested deeper than {MAX_DEPTH} elements"


def _too_deep() -> XmlCodecError:
    return XmlCodecError(_DEPTH_ERROR)


def _deeper(element: etree._Element) -> None:
    """`element` is at `MAX_DEPTH`: an element below it is one level too deep."""
    for child in element:
        if isinstance(child.tag, str):
            raise _too_deep()


@functools.cache
def _steps_below(levels: int) -> etree.XPath:
    return etree.XPath("boolean(" + "/".join(["*"] * levels) + ")")


def _check_below(element: etree._Element, depth: int) -> None:
    """The subtree of `element` (at `depth`), which the walk does not enter (its text is read,
    or it is skipped), holds no element deeper than `MAX_DEPTH`."""
    if _steps_below(MAX_DEPTH + 1 - depth)(element) is True:
        raise _too_deep()


def _where(path: Path, tag: object) -> str:
    return ".".join(local_name(str(part)) for part in (*path, tag))


def _decode_into(message: Message, element: etree._Element, path: Path, keep_raw: bool) -> None:
    # The hot path of every answer (a list of 10 jobs is ~750 nodes, 80% of them singular
    # strings): per node one lookup of its raw tag in `texts`, and for a singular string only
    # lxml's reads and one setter in this loop; a nested message or another leaf whose tag is
    # in `nested` or `scalars` is dispatched from here too. Every other node goes to
    # `_decode_other`, which hands a singular string whose tag `texts` could not hold back to
    # this loop, and takes the same steps for a nested message or a leaf, so the rules for each
    # kind of node are written once. No error path string is built unless raised.
    table = _TABLES_BY_TYPE.get(type(message))
    if table is None:
        table = _table(message)
    texts = table.texts
    nested = table.nested
    scalars = table.scalars
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
            # Nested messages and other leaves, found by their own tables: the same steps as
            # `_decode_other` takes for them, without its call and its generic branches. An
            # empty nested node, one holding only text, or a leaf holding children still takes
            # `_decode_other`'s rules.
            field = nested.get(tag)
            if field is not None:
                if len(child):
                    target = getattr(message, field.name)
                    _decode_into(
                        target.add() if field.repeated else target, child, (*path, tag), keep_raw
                    )
                    continue
            else:
                field = scalars.get(tag)
                if field is not None and not len(child):
                    text = child.text
                    if text is not None:
                        _decode_scalar(message, field, text, path, tag)
                    continue
            name = _decode_other(message, table, child, tag, path, keep_raw)
            if name is None:
                continue
        # A singular string: its text, set as it is.
        if len(child):
            if unknown is not None:  # children where text belongs
                _decode_node(getattr(message, unknown), child, len(path) + 2)
                continue
            _check_below(child, len(path) + 2)  # the text is read, the children are not
        text = child.text
        if not text:  # None, or "" (an empty CDATA section)
            continue
        value = text.strip(space)
        if value is not text:  # `strip` returns the very same str when there is nothing to strip
            if not value:
                continue
            value = _string_value(text, value)
        try:
            setattr(message, name, value)
        except ValueError as exc:
            raise XmlCodecError(f"{_where(path, tag)}: {value[:40]!r} does not fit: {exc}") from exc


def _decode_other(
    message: Message, table: _Table, child: etree._Element, tag: object, path: Path, keep_raw: bool
) -> str | None:
    """Decode a node of `table`'s message that `texts` does not name; return the field name
    instead when the node is a singular string's after all (`_decode_into` sets it)."""
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
                _decode_node(getattr(message, unknown), child, len(path) + 2)
            elif len(child):
                _check_below(child, len(path) + 2)  # skipped whole
        return None
    if step == _STEP_NESTED:
        if not len(child):
            # `<Subtitle/>`, `<Format></Format>`: nothing there. Text instead of children
            # does not fit the field: kept as an unknown node rather than lost.
            if unknown is not None and (child.text or "").strip(_XML_SPACE):
                _decode_node(getattr(message, unknown), child, len(path) + 2)
            elif field.keep_empty:
                getattr(message, field.name).SetInParent()  # `<Video/>`: a video stream
            return None
        target = getattr(message, field.name)
        if field.kind is _MAP:
            _decode_map(target, field, child, (*path, tag), keep_raw)
        else:
            _decode_into(target.add() if field.repeated else target, child, (*path, tag), keep_raw)
        return None
    if len(child):
        if unknown is not None:  # children where text belongs
            _decode_node(getattr(message, unknown), child, len(path) + 2)
            return None
        _check_below(child, len(path) + 2)  # the text is read, the children are not
    text = child.text
    if text is not None:
        _decode_scalar(message, field, text, path, tag)
    return None


def _string_value(text: str, stripped: str) -> str:
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


def _decode_node(nodes: Any, element: etree._Element, depth: int) -> None:
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
            _decode_node(node.children, child, depth + 1)


def _decode_map(
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
            _decode_into(entries[key], child, (*path, key), keep_raw)
        else:
            if len(child):
                _check_below(child, len(path) + 2)  # the text is read, the children are not
            entries[key] = (child.text or "").strip(_XML_SPACE)


def _decode_scalar(message: Message, field: _Field, raw: str, path: Path, tag: object) -> None:
    """Set a leaf of `_STEP_SCALAR` from its node's text `raw` (the node holds no children)."""
    text = raw.strip(_XML_SPACE)
    if not text:
        return
    value: Any
    kind = field.kind
    if kind is _STRING:
        if not field.repeated:  # a singular string that is not `_STEP_TEXT`: `dash_is_empty`
            if text == "-":
                return  # `<StartTime>-</StartTime>`: not reached yet
            if len(text) != len(raw):
                text = _string_value(raw, text)
            try:
                setattr(message, field.name, text)
            except ValueError as exc:
                raise XmlCodecError(
                    f"{_where(path, tag)}: {text[:40]!r} does not fit: {exc}"
                ) from exc
            return
        if len(text) != len(raw) and not field.split_commas:
            text = _string_value(raw, text)
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
