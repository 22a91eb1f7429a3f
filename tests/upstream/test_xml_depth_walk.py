"""The depth bound checked by the decode walk gives what the XPath before the walk gave.

`decode` of bytes now checks `MAX_DEPTH` level by level as it walks, with an XPath only for a
subtree it does not enter, and the whole-document XPath only once the walk has failed
otherwise. `decode` of an element built by the caller still runs the XPath before the walk:
the reference here. Every case compares the two: the same message, or the same error. The
cases nest elements to every depth around the bound under each kind of node the walk treats
apart (kept unknown nodes, nested messages, a recursive message, maps of strings and of
messages, text fields holding children, skipped nodes of a message that keeps none), with the
right root or another, and with a field error before or after the deep part.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from google.protobuf.message import Message

from gateway._proto import service_pb2
from gateway.upstream import xml_codec
from gateway.upstream.xml_codec import MAX_DEPTH, XmlCodecError, decode, parse_document
from tests.upstream import test_xml_options

LIST = service_pb2.ListMediaJobsResponse
BAD_LEVEL = "<JobsDetail><Operation><JobLevel>x</JobLevel></Operation></JobsDetail>"
BAD_FLAG = "<Flag>maybe</Flag>"

# (message type name or None for ListMediaJobsResponse, root, template); `{d}` is the deep part.
TEMPLATES: list[tuple[str | None, str, str]] = [
    (None, "Response", "<Response>{d}</Response>"),
    (None, "Response", f"<Response>{BAD_LEVEL}{{d}}</Response>"),
    (None, "Response", f"<Response>{{d}}{BAD_LEVEL}</Response>"),
    (
        None,
        "Response",
        "<Response><JobsDetail><Operation><MediaInfo><Format>{d}</Format>"
        "</MediaInfo></Operation></JobsDetail></Response>",
    ),
    (None, "Response", "<Response><JobsDetail><JobId>{d}</JobId></JobsDetail></Response>"),
    (
        None,
        "Response",
        "<Response><JobsDetail><Operation><JobLevel>{d}</JobLevel>"
        "</Operation></JobsDetail></Response>",
    ),
    (None, "Response", "<Response><NextToken>t{d}</NextToken></Response>"),
    ("Topology", "Request", "<Request><Nodes><K>{n}</K></Nodes></Request>"),
    ("Topology", "Request", f"<Request><Nodes><K>{BAD_FLAG}{{n}}</K></Nodes></Request>"),
    ("Topology", "Request", f"<Request><Nodes><K>{{n}}</K><J>{BAD_FLAG}</J></Nodes></Request>"),
    ("Topology", "Request", "<Request><Dependencies><K>v{d}</K></Dependencies></Request>"),
    ("Topology", "Request", "<Request><Nodes>{d}</Nodes></Request>"),
    ("Topology", "Request", "<Request><Nodes><K><Ids>a,b{d}</Ids></K></Nodes></Request>"),
    ("Plain", "R", "<R><Name>n{d}</Name></R>"),
    ("Plain", "R", "<R><Other>{d}</Other><Name>n</Name></R>"),
    ("Plain", "R", "<R>{d}</R>"),
]


def _deep(levels: int) -> str:
    return "<a>" * levels + "x" + "</a>" * levels


def _nexts(levels: int) -> str:
    return "<Next>" * levels + "<Type>t</Type>" + "</Next>" * levels


def _outcome(data: bytes | object, message_type: type[Message], root: str) -> tuple[str, bytes]:
    try:
        message = decode(data, message_type, root=root)  # type: ignore[arg-type]
    except XmlCodecError as exc:
        return type(exc).__name__, str(exc).encode()
    return "ok", message.SerializeToString(deterministic=True)


def _cases() -> Iterator[tuple[str, bytes, type[Message], str]]:
    for type_name, root, template in TEMPLATES:
        message_type = LIST if type_name is None else test_xml_options._type(type_name)
        for levels in range(MAX_DEPTH - 8, MAX_DEPTH + 4):
            body = template.replace("{d}", _deep(levels)).replace("{n}", _nexts(levels))
            for wanted in (root, "Other"):
                yield f"{template} at {levels}, root {wanted}", body.encode(), message_type, wanted


def test_the_walk_refuses_and_accepts_what_the_xpath_did() -> None:
    outcomes = {"ok": 0, "deep": 0, "other": 0}
    for name, data, message_type, root in _cases():
        found = _outcome(data, message_type, root)
        expected = _outcome(parse_document(data), message_type, root)
        assert found == expected, name
        if found[0] == "ok":
            outcomes["ok"] += 1
        elif b"deeper than" in found[1]:
            outcomes["deep"] += 1
        else:
            outcomes["other"] += 1
    # Every template met both sides of the bound, and other errors with the right root.
    assert min(outcomes.values()) > 40, outcomes


@pytest.mark.parametrize("levels", [MAX_DEPTH - 2, MAX_DEPTH - 1])
def test_the_deepest_accepted_nesting_decodes(levels: int) -> None:
    # The root, then `levels` unknown <a> levels: at MAX_DEPTH - 1 the innermost is at the bound.
    data = f"<Response>{_deep(levels)}</Response>".encode()
    assert decode(data, LIST).ByteSize() > 0
    with pytest.raises(XmlCodecError, match=f"deeper than {MAX_DEPTH}"):
        decode(f"<Response>{_deep(levels + 2)}</Response>".encode(), LIST)


def test_the_walk_checks_without_the_document_xpath(monkeypatch: pytest.MonkeyPatch) -> None:
    def never(element: object) -> object:
        raise AssertionError("the whole-document XPath ran for a walk that succeeded")

    monkeypatch.setattr(xml_codec, "_TOO_DEEP", never)
    data = f"<Response>{_deep(MAX_DEPTH - 2)}</Response>".encode()
    assert decode(data, LIST).ByteSize() > 0
    with pytest.raises(XmlCodecError, match=f"deeper than {MAX_DEPTH}"):
        decode(f"<Response>{_deep(MAX_DEPTH)}</Response>".encode(), LIST)
