"""What tests/api/test_any_request.py sends and how it judges the answers: hypothesis strategies
for any request of any RPC, the valid requests they start from, and the rules every answer
meets.

The strategies work from the descriptors, so a field added to a proto is probed the day it is
added: `hostile` sets any fields to hostile values, `mutated` sets a few fields of a valid
request (at any depth), `decorated` adds unknown nodes of any XML-legal text to a valid request.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TypeAlias, TypeVar, cast

import grpc
from google.protobuf import duration_pb2
from google.protobuf.descriptor import FieldDescriptor
from google.protobuf.message import Message
from hypothesis import strategies as st
from lxml import etree

from ci_emulator.server import RunningEmulator
from gateway._proto import job_kinds_pb2 as kinds
from gateway._proto import (
    media_pb2,
    queues_pb2,
    service_pb2,
    templates_pb2,
    workflows_pb2,
    xml_pb2,
)
from gateway.config.settings import ServerLimits
from tests.conftest import BUCKET, REGION, SAMPLE_KEY
from tests.integration.helpers import RichError, rich_error
from tests.resources.conftest import Stubs

if TYPE_CHECKING:  # descriptors reached through DESCRIPTOR are typed as upb's too
    from google._upb import _message as _upb

W, T, Q, S = workflows_pb2, templates_pb2, queues_pb2, service_pb2
M = TypeVar("M", bound=Message)
Field: TypeAlias = "FieldDescriptor | _upb.FieldDescriptor"
CALL_S = 10.0
JOB_ID = "j" + "0" * 32
RUN_ID = "i" + "0" * 32
XML_NODE = xml_pb2.XmlNode.DESCRIPTOR.full_name

# --- values ----------------------------------------------------------------------------------

MAX_REQUEST_BYTES = ServerLimits().max_request_bytes
HOSTILE_TEXT = (
    *("", "a", "\x00", "a\x01b", "\x7f", "\x1b[31m", "\ufffe", "\uffff", "\ufdd0"),
    *("\U0001f600", "\u202e", "上传", "<", "&amp;", "]]>", "<a/>", "\r\n", " ", "\t"),
    *(",", " , ", "..", ".", "/", "a//b", "../x", "1abc", "xml", ":", "a:b", "a b", "Name", "Tag"),
    *("Start", "End", "Start,End", "a,,b", "-", "\u00b2", "\u0663", "%00", "http://[::1"),
    *("http://h:99999/x", "${Number}", "1" * 5000, "x" * 70_000),
)
VALID_TEXT = (
    *("MediaInfo", "Transcode", "Snapshot", "Tts", "Url", "On", "Off", "TDMQ", "Kafka", "XML"),
    *("Text", "Image", "V1", "mp4", "10", "2001-01-01T00:00:00+0800", "0001-01-01T00:00:00+0800"),
    *(SAMPLE_KEY, "output/x.mp4", BUCKET, REGION, JOB_ID, "http://127.0.0.1:9/cb"),
)
TEXT = st.one_of(st.sampled_from(HOSTILE_TEXT), st.sampled_from(VALID_TEXT), st.text(max_size=12))
NAMES = st.one_of(
    st.sampled_from(HOSTILE_TEXT), st.from_regex(r"[A-Za-z_][A-Za-z0-9_.-]{0,8}", fullmatch=True)
)
INT32 = st.one_of(
    st.sampled_from([0, 1, 2, 3, 4, -1, 99, 100, 101, 2**31 - 1, -(2**31)]),
    st.integers(-(2**31), 2**31 - 1),
)
INT64 = st.one_of(
    st.sampled_from([0, 1, -1, 2**63 - 1, -(2**63)]), st.integers(-(2**63), 2**63 - 1)
)
# Text XML can carry, any of it (markup characters, line breaks, any plane), and names no typed
# field has (`Zq...`): what a request may hold beside its typed fields and still reach CI.
XML_TEXT = st.text(
    st.characters(
        codec="utf-8",
        exclude_categories=["Cs"],
        exclude_characters="\ufffe\uffff" + "".join(map(chr, (*range(9), 11, 12, *range(14, 32)))),
    ),
    max_size=30,
)
_FOREIGN_NAME = st.from_regex(r"Zq[A-Za-z0-9_.-]{0,6}", fullmatch=True)
FOREIGN_NODES = st.recursive(
    st.builds(xml_pb2.XmlNode, name=_FOREIGN_NAME, text=XML_TEXT),
    lambda children: st.builds(
        xml_pb2.XmlNode, name=_FOREIGN_NAME, children=st.lists(children, min_size=1, max_size=3)
    ),
    max_leaves=6,
)


def xml_nodes(depth: int) -> st.SearchStrategy[xml_pb2.XmlNode]:
    """Unknown nodes of any name and text, `depth` levels of children at most."""
    leaf = st.builds(xml_pb2.XmlNode, name=NAMES, text=TEXT)
    if depth == 0:
        return leaf
    children = st.lists(xml_nodes(depth - 1), max_size=2)
    return st.one_of(leaf, st.builds(xml_pb2.XmlNode, name=NAMES, text=TEXT, children=children))


def _scalar(fd: Field) -> st.SearchStrategy[Any]:
    if fd.type == FieldDescriptor.TYPE_STRING:
        return TEXT
    if fd.type == FieldDescriptor.TYPE_BOOL:
        return st.booleans()
    if fd.type in (FieldDescriptor.TYPE_INT64, FieldDescriptor.TYPE_SINT64):
        return INT64
    return INT32  # int32, and enums: open enums take any int32, known or not


# --- strategies ------------------------------------------------------------------------------


def _set_hostile(draw: st.DrawFn, message: Message, fd: Field, depth: int) -> None:
    """Give `message`'s field `fd` a hostile value (one more item for a list or a map)."""
    value = getattr(message, fd.name)
    entry = fd.message_type
    if entry is not None and entry.GetOptions().map_entry:
        key = draw(NAMES)
        if entry.fields_by_name["value"].message_type is None:
            value[key] = draw(TEXT)
        else:
            value[key].CopyFrom(draw(hostile(type(value[key]), depth - 1)))
    elif entry is not None and entry.full_name == XML_NODE:
        value.extend(draw(st.lists(xml_nodes(2), min_size=1, max_size=2)))
    elif entry is not None:
        item = value.add() if fd.is_repeated else value
        item.CopyFrom(draw(hostile(type(item), depth - 1)))
    elif fd.is_repeated:
        value.extend(draw(st.lists(_scalar(fd), min_size=1, max_size=3)))
    else:
        setattr(message, fd.name, draw(_scalar(fd)))


def _parameter_types() -> Iterator[type[Message]]:
    for module in (media_pb2, templates_pb2, workflows_pb2, queues_pb2, service_pb2):
        for name in module.DESCRIPTOR.message_types_by_name:
            yield getattr(module, name)


# Every message a request carries a tree of parameters in, in a stable order: what the
# differential tests of the request walks (validation's, the access policy's) draw from.
MESSAGE_TYPES: list[type[Message]] = sorted(
    _parameter_types(), key=lambda t: t.DESCRIPTOR.full_name
)


def type_id(message_type: type[Message]) -> str:
    """A parametrized test's id for `message_type`."""
    return str(message_type.DESCRIPTOR.full_name)


@st.composite
def hostile(draw: st.DrawFn, message_type: type[M], depth: int = 3) -> M:
    """A `message_type` with any of its fields set, each to a hostile value."""
    message = message_type()
    for fd in message_type.DESCRIPTOR.fields:
        if fd.message_type is not None and depth <= 0:
            continue
        if draw(st.integers(0, 2)) == 0:  # a third of the fields: enough to reach the leaves
            _set_hostile(draw, message, fd, depth)
    return message


@st.composite
def mutated(draw: st.DrawFn, seed: M) -> M:
    """`seed` (a valid request) with one to three of its leaves set to hostile values: any
    scalar, list, map or unknown-node field at any depth (in list items and map values too),
    or a whole message field it leaves unset."""
    message = type(seed)()
    message.CopyFrom(seed)
    for _ in range(draw(st.integers(1, 3))):
        holder, fd = draw(st.sampled_from(_leaves(message, 6)))
        _set_hostile(draw, holder, fd, 2)
    return message


def _leaves(message: Message, depth: int) -> list[tuple[Message, Field]]:
    """Where a mutation may strike in `message`, in field order (so draws shrink well)."""
    found: list[tuple[Message, Field]] = []
    for fd in message.DESCRIPTOR.fields:
        inner = _inner(message, fd) if depth > 0 else []
        if not inner or fd.is_repeated:  # a scalar, an unset message; a list or a map grows
            found.append((message, fd))
        for item in inner:
            found.extend(_leaves(item, depth - 1))
    return found


def _inner(message: Message, fd: Field) -> list[Message]:
    """The messages `fd` holds in `message` that a mutation may go down into."""
    entry = fd.message_type
    if entry is None or entry.full_name == XML_NODE:
        return []
    value = getattr(message, fd.name)
    if entry.GetOptions().map_entry:
        is_message = entry.fields_by_name["value"].message_type is not None
        return [value[key] for key in sorted(value)] if is_message else []
    if fd.is_repeated:
        return list(value)
    return [value] if message.HasField(fd.name) else []


@st.composite
def decorated(draw: st.DrawFn, seed: M) -> M:
    """`seed` with unknown nodes of any XML-legal text added to messages anywhere in it: valid
    requests that reach CI with what a typed field never holds (`<`, `]]>`, CR, U+10FFFD)."""
    message = type(seed)()
    message.CopyFrom(seed)
    holders = [m for m in messages_in(message) if "extra_nodes" in m.DESCRIPTOR.fields_by_name]
    for holder in draw(st.lists(st.sampled_from(holders), min_size=1, max_size=3)):
        cast(Any, holder).extra_nodes.extend(draw(st.lists(FOREIGN_NODES, min_size=1, max_size=2)))
    return message


def messages_in(message: Message) -> Iterator[Message]:
    """`message` and every message set in it, map values included, but no XmlNode."""
    if message.DESCRIPTOR.full_name == XML_NODE:
        return
    yield message
    for fd, value in message.ListFields():
        entry = fd.message_type
        if entry is None:
            continue
        if entry.GetOptions().map_entry:
            is_message = entry.fields_by_name["value"].message_type is not None
            items = list(value.values()) if is_message else []
        else:
            items = list(value) if fd.is_repeated else [value]
        for item in items:
            yield from messages_in(item)


def any_request(seeds: list[Message]) -> st.SearchStrategy[Message]:
    """Any request of the seeds' type: hostile, or a seed mutated or decorated."""
    decorable = [
        seed
        for seed in seeds
        if any("extra_nodes" in m.DESCRIPTOR.fields_by_name for m in messages_in(seed))
    ]
    return st.one_of(
        hostile(type(seeds[0])),
        *(mutated(seed) for seed in seeds),
        *(decorated(seed) for seed in decorable),
    )


# --- the RPCs --------------------------------------------------------------------------------

Call = Callable[[Stubs, Message], Awaitable[None]]
Rpc = tuple[Call, list[Message]]


def _method(service: str, seed: Message) -> Any:
    """The stub's method for `seed`'s RPC (`SubmitMediaJobRequest` -> `SubmitMediaJob`)."""
    return lambda stubs: getattr(
        getattr(stubs, service), type(seed).DESCRIPTOR.name.removesuffix("Request")
    )


def _unary(service: str, *seeds: Message) -> Rpc:
    method = _method(service, seeds[0])

    async def call(stubs: Stubs, request: Message) -> None:
        await method(stubs)(request, timeout=CALL_S)

    return call, list(seeds)


def _stream(service: str, *seeds: Message) -> Rpc:
    """A watch: its first answer (then cancelled) or its error."""
    method = _method(service, seeds[0])

    async def call(stubs: Stubs, request: Message) -> None:
        stream = method(stubs)(request, timeout=CALL_S)
        try:
            async for _ in stream:
                break
        finally:
            stream.cancel()

    return call, list(seeds)


def workflow(queue_id: str, template_id: str) -> W.MediaWorkflow:
    """Start -> MediaInfo -> Transcode (by template) -> End."""
    topology = W.WorkflowTopology(
        dependencies={"Start": "MediaInfo_1", "MediaInfo_1": "Transcode_1", "Transcode_1": "End"}
    )
    topology.nodes["Start"].CopyFrom(
        W.WorkflowNode(
            type="Start", input=W.WorkflowNodeInput(queue_id=queue_id, object_prefix="input/")
        )
    )
    topology.nodes["MediaInfo_1"].CopyFrom(W.WorkflowNode(type="MediaInfo"))
    topology.nodes["Transcode_1"].CopyFrom(
        W.WorkflowNode(
            type="Transcode",
            operation=W.WorkflowNodeOperation(
                template_id=template_id,
                output=kinds.Output(region=REGION, bucket=BUCKET, object="output/${Number}.mp4"),
            ),
        )
    )
    return W.MediaWorkflow(name="probe", topology=topology)


def transcode() -> T.MediaTemplate:
    return T.MediaTemplate(
        name="mp4",
        trans_tpl=kinds.Transcode(
            container=kinds.Container(format="mp4"),
            video=kinds.TranscodeVideo(codec="H.264", width="1280"),
        ),
    )


# Template names of the seeds: a create that keeps one gets a name of its own (`fresh_name`).
SEED_TEMPLATE_NAMES = frozenset({"mp4", "voice"})


@dataclass(frozen=True)
class Ids:
    """What the emulator has, for requests to name: its queue, a Transcode template, and a
    workflow running it."""

    queue: str = "p" + "0" * 32
    template: str = "t" + "0" * 32
    workflow: str = "w" + "0" * 32


def rpcs(ids: Ids) -> dict[str, Rpc]:
    """Every RPC of the four services: how to call it, and the valid requests it starts from."""
    sample = media_pb2.Input(object=SAMPLE_KEY)
    submit = media_pb2.Request(tag="MediaInfo", input=sample)
    snapshot = media_pb2.Operation(
        tag="Snapshot",
        snapshot=kinds.Snapshot(mode="Interval", count="2"),
        output=kinds.Output(region=REGION, bucket=BUCKET, object="snap/${Number}.jpg"),
        remove_watermark=kinds.RemoveWatermark(dx="1", dy="1", width="10", height="10"),
    )
    multi = media_pb2.MultiOperationRequest(
        input=sample,
        operation=[media_pb2.Operation(tag="MediaInfo"), snapshot],
    )
    listing = S.ListMediaJobsRequest(
        queue_id=ids.queue,
        states=[media_pb2.JOB_STATE_SUCCESS],
        size=10,
        start_creation_time="2001-01-01T00:00:00+0800",
    )
    wait = S.WaitMediaJobRequest(job_id=JOB_ID, timeout=duration_pb2.Duration(seconds=1, nanos=5))
    notify = Q.QueueNotifyConfig(
        url="http://127.0.0.1:9/cb", event="TaskFinish", type="Url", state="On"
    )
    queue = Q.MediaQueue(
        queue_id=ids.queue, name="default", state=Q.QUEUE_STATE_ACTIVE, notify_config=notify
    )
    tts = T.CreateMediaTemplateRequest(
        template=T.MediaTemplate(tag="Tts", name="voice"),
        parameters=[xml_pb2.XmlNode(name="Codec", text="mp3")],
    )
    flow = workflow(ids.queue, ids.template)
    executions = W.ListWorkflowExecutionsRequest(
        workflow_id=ids.workflow, states=[media_pb2.JOB_STATE_RUNNING], size=5
    )
    return {
        "SubmitMediaJob": _unary("jobs", S.SubmitMediaJobRequest(request=submit)),
        "SubmitMediaJobs": _unary("jobs", S.SubmitMediaJobsRequest(request=multi)),
        "DescribeMediaJobs": _unary("jobs", S.DescribeMediaJobsRequest(job_ids=[JOB_ID])),
        "ListMediaJobs": _unary("jobs", listing),
        "CancelMediaJob": _unary("jobs", S.CancelMediaJobRequest(job_id=JOB_ID)),
        "GenerateMediaInfo": _unary("jobs", S.GenerateMediaInfoRequest(input=sample)),
        "GetMediaInfo": _unary("jobs", S.GetMediaInfoRequest(object=SAMPLE_KEY)),
        "WatchMediaJob": _stream("jobs", S.WatchMediaJobRequest(job_id=JOB_ID)),
        "WaitMediaJob": _unary("jobs", wait),
        "DescribeMediaQueues": _unary(
            "queues", Q.DescribeMediaQueuesRequest(queue_ids=[ids.queue], page_size=10)
        ),
        "UpdateMediaQueue": _unary("queues", Q.UpdateMediaQueueRequest(queue=queue)),
        "CreateMediaTemplate": _unary(
            "templates", T.CreateMediaTemplateRequest(template=transcode()), tts
        ),
        "UpdateMediaTemplate": _unary(
            "templates",
            T.UpdateMediaTemplateRequest(template_id=ids.template, template=transcode()),
        ),
        "DescribeMediaTemplates": _unary(
            "templates", T.DescribeMediaTemplatesRequest(tag="Transcode", name="mp4")
        ),
        "DeleteMediaTemplate": _unary(
            "templates", T.DeleteMediaTemplateRequest(template_id=ids.template)
        ),
        "CreateMediaWorkflow": _unary(
            "workflows", W.CreateMediaWorkflowRequest(media_workflow=flow)
        ),
        "UpdateMediaWorkflow": _unary(
            "workflows",
            W.UpdateMediaWorkflowRequest(workflow_id=ids.workflow, media_workflow=flow),
        ),
        "DescribeMediaWorkflows": _unary(
            "workflows", W.DescribeMediaWorkflowsRequest(workflow_ids=[ids.workflow], name="probe")
        ),
        "DeleteMediaWorkflow": _unary(
            "workflows", W.DeleteMediaWorkflowRequest(workflow_id=ids.workflow)
        ),
        "ActivateMediaWorkflow": _unary(
            "workflows", W.ActivateMediaWorkflowRequest(workflow_id=ids.workflow)
        ),
        "PauseMediaWorkflow": _unary(
            "workflows", W.PauseMediaWorkflowRequest(workflow_id=ids.workflow)
        ),
        "TriggerMediaWorkflow": _unary(
            "workflows",
            W.TriggerMediaWorkflowRequest(workflow_id=ids.workflow, object=SAMPLE_KEY, name="r"),
        ),
        "ListWorkflowExecutions": _unary("workflows", executions),
        "DescribeWorkflowExecution": _unary(
            "workflows", W.DescribeWorkflowExecutionRequest(run_id=RUN_ID)
        ),
        "WatchWorkflowExecution": _stream(
            "workflows", W.WatchWorkflowExecutionRequest(run_id=RUN_ID)
        ),
    }


# --- judging the answers ---------------------------------------------------------------------

# Codes CI's answers map to (gateway.errors.CI_ERRORS) that a caller's request may earn: an id CI
# does not know, a paused queue, a full one. INTERNAL and UNKNOWN are the gateway's bugs (or a
# body CI could not read); UNAVAILABLE or DEADLINE_EXCEEDED, a gateway or CI that stopped
# answering.
UPSTREAM_CODES = frozenset(
    {
        grpc.StatusCode.NOT_FOUND,
        grpc.StatusCode.FAILED_PRECONDITION,
        grpc.StatusCode.RESOURCE_EXHAUSTED,
        grpc.StatusCode.UNIMPLEMENTED,
    }
)
# CI's InvalidArgument about a body's form: a node twice where CI reads one, elements where it
# reads text, a node name it cannot take. The gateway builds every body, so any of these is a
# body it should never have sent (the caller could have been told which field, before CI was
# asked). CI's other refusals are about what CI alone knows or judges (an id it lacks, a name it
# has, a graph it cannot run, a value of a media parameter): the caller's, through CI.
CI_REFUSED_THE_FORM = re.compile(
    r"may appear only once|must hold text, not elements|is repeated or not a node name"
    r"|needs exactly one|give the queue id once|not valid XML"
)
_SEGMENT = re.compile(r"([a-z_0-9]+)(?:\[(\d+)\]|\[('(?:[^'\\]|\\.)*'|\"(?:[^\"\\]|\\.)*\")\])?")


def _segments(path: str) -> Iterator[str]:
    """`a.b['x.y'].c` -> `a`, `b['x.y']`, `c`: a dot inside a quoted map key does not split."""
    start, quote, escaped = 0, "", False
    for index, char in enumerate(path):
        if escaped:
            escaped = False
        elif quote:
            escaped = char == "\\"
            quote = "" if char == quote else quote
        elif char in "'\"":
            quote = char
        elif char == ".":
            yield path[start:index]
            start = index + 1
    yield path[start:]


def unresolved(request: Message, path: str) -> str | None:
    """Why `path` names no field of `request` (None: it does): every name a field of the message
    it is read in, every index in range, every map key present."""
    node: Any = request
    for segment in _segments(path):
        found = _SEGMENT.fullmatch(segment)
        if found is None:
            return f"{segment!r} is no path segment"
        name, index, key = found.groups()
        if not isinstance(node, Message) or name not in node.DESCRIPTOR.fields_by_name:
            return f"{name!r} is no field there"
        node = getattr(node, name)
        if index is not None:
            if int(index) >= len(node):
                return f"{segment!r}: index out of range"
            node = node[int(index)]
        elif key is not None:
            if ast.literal_eval(key) not in node:
                return f"{segment!r}: no such key"
            node = node[ast.literal_eval(key)]
    return None


@dataclass
class Judge:
    """Holds every answer, and every body CI was sent, to the rules of test_any_request."""

    emulator: RunningEmulator
    secrets: tuple[str, ...]
    outcomes: dict[str, int] = field(default_factory=dict)

    def answer(self, request: Message, error: grpc.aio.AioRpcError | None) -> None:
        self._bodies()
        rich = rich_error(error) if error is not None else None
        reason = rich.error_info.reason if rich is not None and rich.error_info else ""
        label = f"{rich.code.name}/{reason}" if rich is not None else "OK"
        self.outcomes[label] = self.outcomes.get(label, 0) + 1
        if error is None or rich is None:
            return
        said = f"{rich.message} {error.trailing_metadata()} {rich}"
        assert not [s for s in self.secrets if s in said], "a secret in an error"
        if request.ByteSize() > MAX_REQUEST_BYTES:  # a few of the longest texts: grpc's refusal
            assert rich.code is grpc.StatusCode.RESOURCE_EXHAUSTED, label
            assert f"larger than max ({request.ByteSize()} vs. {MAX_REQUEST_BYTES})" in rich.message
        elif rich.code is grpc.StatusCode.INVALID_ARGUMENT:
            _invalid_argument(request, rich, reason)
        elif isinstance(request, S.WaitMediaJobRequest) and reason == "DEADLINE_EXCEEDED":
            # A wait of (almost) no `timeout` ends before CI's first answer: what was asked.
            assert request.timeout.ToNanoseconds() < CALL_S * 1e9, request
        else:
            assert rich.code in UPSTREAM_CODES, (label, rich.message, request)
            assert reason.startswith(("UPSTREAM_", "QUEUE_")), (label, rich.message)

    def _bodies(self) -> None:
        """Every body CI was sent since the last look is well-formed XML under `<Request>`."""
        bodies = self.emulator.state.bodies
        assert bodies is not None
        strict = etree.XMLParser(recover=False, resolve_entities=False, no_network=True)
        for method, path, body in bodies:
            root = etree.fromstring(body, strict)
            assert root.tag == "Request", (method, path, body[:200])
        bodies.clear()


def _invalid_argument(request: Message, rich: RichError, reason: str) -> None:
    if reason == "INVALID_REQUEST":
        assert rich.violations, rich
        for path, why in rich.violations.items():
            assert why, rich
            assert unresolved(request, path) is None, (path, unresolved(request, path))
    elif reason == "UPSTREAM_REJECTED":
        assert not CI_REFUSED_THE_FORM.search(rich.message), rich.message
    else:
        # More than a request may hold, or a request_id sent again with another request.
        assert reason in ("MALFORMED_REQUEST", "REQUEST_ID_REUSED"), rich
