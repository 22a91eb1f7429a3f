"""The codec's `(ci.media.v1.xml)` options and maps, each on a message made for it.

`protos/codec_test.proto` is compiled here (protoc from grpcio-tools, in process) and added to
the default descriptor pool, so these shapes are tested before an API message needs them:
element-name-keyed maps (workflow topologies), opt-in comma splitting, `-` as empty, the raw
element, derived fields, snake_case node names, and the refusal of options on fields that
cannot carry them.
"""

from __future__ import annotations

import functools
import tempfile
from importlib import resources
from pathlib import Path
from typing import Any

import pytest
from google.protobuf import descriptor_pb2, descriptor_pool, message_factory
from google.protobuf.message import Message
from hypothesis import given, settings
from hypothesis import strategies as st

from gateway._proto import xml_pb2
from gateway.upstream.xml_codec import XmlCodecError, decode, encode

HERE = Path(__file__).parent
PROTOS = HERE.parent.parent / "protos"
PACKAGE = "ci.codectest.v1"


@functools.cache
def _compiled() -> None:
    from grpc_tools import protoc

    with tempfile.TemporaryDirectory() as scratch:
        out = Path(scratch) / "set.pb"
        well_known = resources.files("grpc_tools") / "_proto"
        args = [
            "protoc",
            f"-I{HERE / 'protos'}",
            f"-I{PROTOS}",
            f"-I{well_known}",
            f"--descriptor_set_out={out}",
            "codec_test.proto",
        ]
        assert protoc.main(args) == 0
        files = descriptor_pb2.FileDescriptorSet.FromString(out.read_bytes())
    (file,) = files.file
    descriptor_pool.Default().AddSerializedFile(file.SerializeToString())


def _type(name: str) -> type[Message]:
    _compiled()
    descriptor = descriptor_pool.Default().FindMessageTypeByName(f"{PACKAGE}.{name}")
    return message_factory.GetMessageClass(descriptor)


def _new(type_name: str, /, **fields: Any) -> Any:
    return _type(type_name)(**fields)


# --- maps keyed by element name ------------------------------------------------------------


TOPOLOGY = (
    b"<Request><Dependencies><Start>Transcode_1581665960537</Start>"
    b"<Transcode_1581665960537>End</Transcode_1581665960537></Dependencies>"
    b"<Nodes><Transcode_1581665960537><Type>Transcode</Type></Transcode_1581665960537>"
    b"<Start><Type>Start</Type><Input><QueueId>p1</QueueId></Input></Start></Nodes></Request>"
)


def test_map_keys_are_element_names() -> None:
    topology: Any = decode(TOPOLOGY, _type("Topology"), root="Request")
    assert dict(topology.dependencies) == {
        "Start": "Transcode_1581665960537",
        "Transcode_1581665960537": "End",
    }
    assert topology.nodes["Start"].type == "Start"
    # Map values keep their own unknown nodes (a node's Input is not typed here).
    (kept,) = topology.nodes["Start"].extra_nodes
    assert kept.name == "Input" and kept.children[0].name == "QueueId"
    assert topology.nodes["Transcode_1581665960537"].type == "Transcode"


def test_maps_encode_in_key_order_whatever_the_insertion_order() -> None:
    first: Any = _new("Topology")
    second: Any = _new("Topology")
    for key in ("b", "a", "Start", "c_1"):
        first.dependencies[key] = f"next-{key}"
        first.nodes[key].type = key
    for key in ("c_1", "Start", "a", "b"):
        second.dependencies[key] = f"next-{key}"
        second.nodes[key].type = key
    assert encode(first) == encode(second)
    assert b"<Dependencies><Start>next-Start</Start><a>next-a</a><b>next-b</b>" in encode(first)


def test_a_map_entry_with_an_empty_value_is_kept() -> None:
    topology: Any = _new("Topology")
    topology.dependencies["Start"] = ""
    topology.nodes["End"].CopyFrom(_new("Node"))
    encoded = encode(topology)
    assert b"<Start/>" in encoded and b"<End/>" in encoded
    assert decode(encoded, _type("Topology"), root=None) == topology


def test_a_map_key_that_is_no_xml_name_is_refused() -> None:
    topology: Any = _new("Topology")
    topology.dependencies["not a name"] = "End"
    with pytest.raises(XmlCodecError, match="Topology"):
        encode(topology)


_KEYS = st.from_regex(r"[A-Za-z_][A-Za-z0-9_]{0,12}", fullmatch=True)
_VALUES = st.text(st.characters(codec="ascii", categories=["L", "N", "P"]), max_size=12)


@settings(max_examples=60, deadline=None)
@given(st.dictionaries(_KEYS, _VALUES, max_size=6), st.dictionaries(_KEYS, _VALUES, max_size=4))
def test_random_topologies_round_trip(deps: dict[str, str], types: dict[str, str]) -> None:
    topology: Any = _new("Topology")
    topology.dependencies.update(deps)
    for key, value in types.items():
        topology.nodes[key].type = value
    assert decode(encode(topology), _type("Topology"), root=None) == topology


# --- opt-in comma splitting, dash, snake_case names, bool ---------------------------------------


def test_commas_split_only_where_the_field_asks() -> None:
    data = b"<R><Ids>j1, j2,j3</Ids><Keys>out/a,b.mp4</Keys><Keys>c</Keys></R>"
    node: Any = decode(data, _type("Node"), root=None)
    assert list(node.ids) == ["j1", "j2", "j3"]
    assert list(node.keys) == ["out/a,b.mp4", "c"]  # object keys may contain commas


@pytest.mark.parametrize(("text", "expected"), [("-", ""), ("--", "--"), (" - ", ""), ("a-", "a-")])
def test_dash_reads_as_empty_where_the_field_asks(text: str, expected: str) -> None:
    data = f"<R><When>{text}</When><Type>{text}</Type></R>".encode()
    node: Any = decode(data, _type("Node"), root=None)
    assert node.when == expected
    assert node.type == text  # no option: `-` is data, and so are spaces on its line


def test_snake_case_node_name_from_the_option() -> None:
    node: Any = _new("Node", snake_result="x")
    assert b"<snake_result>x</snake_result>" in encode(node)
    back: Any = decode(b"<R><snake_result>y</snake_result></R>", _type("Node"), root=None)
    assert back.snake_result == "y"


@pytest.mark.parametrize(("text", "value"), [("true", True), ("FALSE", False), ("1", True)])
def test_bool_text(text: str, value: bool) -> None:
    node: Any = decode(f"<R><Flag>{text}</Flag></R>".encode(), _type("Node"), root=None)
    assert node.flag is value


def test_bool_text_that_is_no_bool_is_refused() -> None:
    with pytest.raises(XmlCodecError, match=r"Flag"):
        decode(b"<R><Flag>yes</Flag></R>", _type("Node"), root=None)


# --- raw element ----------------------------------------------------------------------------


def test_raw_element_is_filled_only_when_asked_and_never_encoded() -> None:
    data = b"<Topology><Nodes><Start><Type>Start</Type><New>n</New></Start></Nodes></Topology>"
    plain: Any = decode(data, _type("Topology"), root=None)
    assert plain.nodes["Start"].raw == ""
    raw: Any = decode(data, _type("Topology"), root=None, keep_raw=True)
    assert raw.nodes["Start"].raw == "<Start><Type>Start</Type><New>n</New></Start>"
    assert b"Raw" not in encode(raw) and encode(raw) == encode(plain)


# --- derived fields -------------------------------------------------------------------------


def test_a_derived_field_is_no_node_either_way() -> None:
    # The gateway fills it (JobsDetail.outputs): CI's XML can neither set it nor see it.
    node: Any = _new("Node", type="t", derived=["mine"])
    assert encode(node, root="R").endswith(b"<R><Type>t</Type></R>")
    back: Any = decode(b"<R><Derived>theirs</Derived></R>", _type("Node"), root=None)
    assert list(back.derived) == []
    assert [(n.name, n.text) for n in back.extra_nodes] == [("Derived", "theirs")]


# --- unknown nodes -------------------------------------------------------------------------


def test_without_an_unknown_field_unknown_nodes_are_skipped() -> None:
    data = b"<R><Name>n</Name><Other>o</Other></R>"
    assert decode(data, _type("Plain"), root=None) == _new("Plain", name="n")


def test_unknown_nodes_keep_order_depth_and_empty_nodes() -> None:
    data = (
        b"<R><Zeta>1</Zeta><Type>t</Type><Alpha><Deep><Deeper>x</Deeper></Deep><Empty/></Alpha>"
        b"<Zeta>2</Zeta></R>"
    )
    node: Any = decode(data, _type("Node"), root=None)
    assert [n.name for n in node.extra_nodes] == ["Zeta", "Alpha", "Zeta"]
    alpha = node.extra_nodes[1]
    assert alpha.children[0].children[0] == xml_pb2.XmlNode(name="Deeper", text="x")
    assert alpha.children[1] == xml_pb2.XmlNode(name="Empty")
    assert encode(node, root="R").endswith(
        b"<R><Type>t</Type><Zeta>1</Zeta><Alpha><Deep><Deeper>x</Deeper></Deep><Empty/></Alpha>"
        b"<Zeta>2</Zeta></R>"
    )


def test_shape_mismatches_are_kept_not_lost() -> None:
    # Text where a message belongs, children where text belongs: kept as unknown nodes.
    data = b"<R><Next>oops</Next><Type><Sub>1</Sub></Type></R>"
    node: Any = decode(data, _type("Node"), root=None)
    assert not node.HasField("next") and node.type == ""
    assert [(n.name, n.text, len(n.children)) for n in node.extra_nodes] == [
        ("Next", "oops", 0),
        ("Type", "", 1),
    ]
    assert decode(encode(node), _type("Node"), root=None) == node


def test_namespaced_unknown_nodes_keep_their_local_name() -> None:
    data = b'<R xmlns:x="urn:x"><x:Future>f</x:Future></R>'
    node: Any = decode(data, _type("Node"), root=None)
    (kept,) = node.extra_nodes
    assert kept == xml_pb2.XmlNode(name="Future", text="f")


def test_an_unknown_node_name_that_is_no_xml_name_cannot_be_encoded() -> None:
    node: Any = _new("Node", extra_nodes=[xml_pb2.XmlNode(name="1st")])
    with pytest.raises(XmlCodecError, match=r"ci\.codectest\.v1\.Node"):
        encode(node)


# --- options on fields that cannot carry them ----------------------------------------------


@pytest.mark.parametrize(
    ("name", "match"),
    [
        ("UnknownNotXmlNode", r"unknown_nodes needs repeated ci\.media\.v1\.XmlNode"),
        ("CommaOnSingular", "comma_separated needs a repeated string"),
        ("RawNotString", "raw_element needs a singular string"),
        ("KeepEmptyOnString", "keep_empty needs a singular message"),
        ("KeepEmptyOnList", "keep_empty needs a singular message"),
        ("MapOfInts", "only map<string, string|message>"),
        ("SameNodeTwice", "two fields share a case-insensitive XML name"),
    ],
)
def test_misplaced_options_fail_when_the_type_is_first_used(name: str, match: str) -> None:
    with pytest.raises(TypeError, match=match):
        encode(_new(name))
