"""Any request a client can send, to every RPC of the four services: a real gateway in front of
the emulator, over a loopback channel, fed by hypothesis (tests/api/hostile_requests.py).

Per RPC, requests built from the descriptors with hostile values (control characters, NUL,
U+FFFE, kilobytes of text, negative and out-of-range numbers, enum numbers no enum has, names no
XML allows, map keys such as `<` or `1abc`), valid requests with a few fields at any depth set
to such values, and valid requests carrying unknown nodes of any XML-legal text. Whatever
comes, the answer is one of:

* OK, or what CI's own answer maps to (NOT_FOUND, FAILED_PRECONDITION, ...; an InvalidArgument
  of CI's never about the body's form: a node twice, elements where text belongs);
* INVALID_ARGUMENT with a field violation for each fault, each naming a field the request has
  (its path resolves in the request: indices in range, map keys present), or for bytes no
  request can be, MALFORMED_REQUEST;

never INTERNAL or UNKNOWN; no error carries a secret; every body CI is sent is well-formed XML
under `<Request>`; and the gateway answers a plain call afterwards. Each hypothesis run is
bounded in examples, each call in time: the file takes well under a minute.
"""

from __future__ import annotations

import itertools
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass

import grpc
import pytest
from google.protobuf.message import Message
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ci_emulator.server import RunningEmulator
from gateway._proto import queues_pb2, service_pb2, templates_pb2, workflows_pb2, xml_pb2
from gateway.api.server import start_gateway
from gateway.config.settings import Settings
from gateway.credentials import Credentials, StaticCredentialsProvider
from tests.api.hostile_requests import (
    CALL_S,
    SEED_TEMPLATE_NAMES,
    Ids,
    Judge,
    any_request,
    rpcs,
    transcode,
    workflow,
)
from tests.conftest import BUCKET
from tests.resources.conftest import Stubs, platform_access, stubs_on

W, T, Q = workflows_pb2, templates_pb2, queues_pb2
RPC_NAMES = sorted(rpcs(Ids()))
FRESH = itertools.count()


def test_every_rpc_of_the_four_services_is_probed() -> None:
    methods = {
        method.name
        for module in (service_pb2, queues_pb2, templates_pb2, workflows_pb2)
        for service in module.DESCRIPTOR.services_by_name.values()
        for method in service.methods
    }
    assert set(RPC_NAMES) == methods


@dataclass
class Target:
    stubs: Stubs
    channel: grpc.aio.Channel
    judge: Judge
    ids: Ids

    async def send(self, rpc: str, request: Message) -> None:
        """Call `rpc` with `request` and hold the answer to the rules."""
        call = rpcs(self.ids)[rpc][0]
        try:
            await call(self.stubs, request)
        except grpc.aio.AioRpcError as error:
            self.judge.answer(request, error)
        else:
            self.judge.answer(request, None)


@pytest.fixture
async def target(
    settings: Settings, credentials: Credentials, emulator: RunningEmulator
) -> AsyncIterator[Target]:
    """A platform team's gateway (every resource write allowed) in front of the emulator, which
    keeps every body it is sent; a template and a workflow for requests to name. Afterwards the
    gateway must still answer a plain call."""
    gateway = await start_gateway(
        settings, StaticCredentialsProvider(credentials), access=platform_access()
    )
    emulator.state.bodies = []
    judge = Judge(emulator, (credentials.secret_id, credentials.secret_key))
    try:
        options = [("grpc.max_send_message_length", 8 * 1024 * 1024)]
        async with grpc.aio.insecure_channel(gateway.address, options=options) as channel:
            stubs = stubs_on(channel)
            queue = emulator.state.default_queue[BUCKET]
            template = await stubs.templates.CreateMediaTemplate(
                T.CreateMediaTemplateRequest(template=transcode()), timeout=CALL_S
            )
            created = await stubs.workflows.CreateMediaWorkflow(
                W.CreateMediaWorkflowRequest(
                    media_workflow=workflow(queue, template.template.template_id)
                ),
                timeout=CALL_S,
            )
            ids = Ids(queue, template.template.template_id, created.media_workflow.workflow_id)
            yield Target(stubs, channel, judge, ids)
            reply = await stubs.queues.DescribeMediaQueues(
                Q.DescribeMediaQueuesRequest(), timeout=CALL_S
            )
            assert [q.queue_id for q in reply.queue_list] == [queue]
    finally:
        await gateway.stop(grace_s=0)


@pytest.mark.parametrize("rpc", RPC_NAMES)
@settings(
    max_examples=40,
    deadline=None,
    # One gateway for every example: what one request does, the next one meets.
    suppress_health_check=[
        HealthCheck.function_scoped_fixture,
        HealthCheck.too_slow,
        HealthCheck.data_too_large,
    ],
)
@given(data=st.data())
async def test_any_request_is_answered_by_the_rules(
    target: Target, rpc: str, data: st.DataObject
) -> None:
    request = data.draw(any_request(rpcs(target.ids)[rpc][1]), label="request")
    if (
        isinstance(request, T.CreateMediaTemplateRequest)
        and request.template.name in SEED_TEMPLATE_NAMES
    ):
        # A name of its own: CI refuses a second template of a kind by the same name.
        request.template.name += f"-{next(FRESH)}"
    await target.send(rpc, request)


@pytest.mark.parametrize("rpc", RPC_NAMES)
async def test_an_empty_request_is_answered_by_the_rules(target: Target, rpc: str) -> None:
    seed = rpcs(target.ids)[rpc][1][0]
    await target.send(rpc, type(seed)())


BAD_NAMES = ("<", "1abc", "", " ", ":", "a:b", "a b", "\x00", "\ufffe", "é", "N" * 129)


def _keyed(names: tuple[str, ...], *, as_dependency: bool) -> W.CreateMediaWorkflowRequest:
    """The fixture's workflow with a MediaInfo node under each name, or an edge from it."""
    request = W.CreateMediaWorkflowRequest(media_workflow=workflow("p1", "t1"))
    topology = request.media_workflow.topology
    for name in names:
        if as_dependency:
            topology.dependencies[name] = "End"
        else:
            topology.nodes[name].type = "MediaInfo"
    return request


async def test_map_keys_no_xml_name_allows_are_refused_naming_each(target: Target) -> None:
    for as_dependency in (False, True):
        request = _keyed(BAD_NAMES, as_dependency=as_dependency)
        request.media_workflow.topology.nodes["Start"].input.queue_id = target.ids.queue
        await target.send("CreateMediaWorkflow", request)
    assert target.judge.outcomes == {"INVALID_ARGUMENT/INVALID_REQUEST": 2}


def _nodes(count: int) -> list[xml_pb2.XmlNode]:
    return [xml_pb2.XmlNode(name=f"Zq{index}", text="v") for index in range(count)]


async def test_thousands_of_entries_are_judged_not_choked_on(target: Target) -> None:
    """Repeated fields and maps of thousands of entries (below the gateway's bounds on a
    request's elements and on its size, so validation sees them)."""
    many = [f"p{index:032x}" for index in range(3000)]  # 105,000 bytes a request
    await target.send("DescribeMediaQueues", Q.DescribeMediaQueuesRequest(queue_ids=many))
    await target.send("DescribeMediaTemplates", T.DescribeMediaTemplatesRequest(template_ids=many))
    await target.send("DescribeMediaWorkflows", W.DescribeMediaWorkflowsRequest(workflow_ids=many))
    await target.send("DescribeMediaJobs", service_pb2.DescribeMediaJobsRequest(job_ids=many))
    queue = Q.MediaQueue(queue_id=target.ids.queue, name="q")
    queue.notify_config.extra_nodes.extend(_nodes(5000))
    await target.send("UpdateMediaQueue", Q.UpdateMediaQueueRequest(queue=queue))
    flow = workflow(target.ids.queue, target.ids.template)
    fan = [f"Fan_{index}" for index in range(2000)]  # 7 elements each: within the bound
    for name in fan:
        flow.topology.nodes[name].type = "MediaInfo"
        flow.topology.dependencies[name] = "End"
    flow.topology.dependencies["Transcode_1"] = ",".join(fan)
    await target.send("CreateMediaWorkflow", W.CreateMediaWorkflowRequest(media_workflow=flow))
    assert target.judge.outcomes.keys() <= {"OK", "INVALID_ARGUMENT/INVALID_REQUEST"}


def _field(number: int, payload: bytes) -> bytes:
    """One length-delimited field on the wire."""
    return _varint(number << 3 | 2) + _varint(len(payload)) + payload


def _varint(value: int) -> bytes:
    out = bytearray()
    while value > 0x7F:
        out.append(value & 0x7F | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def _deep_node(levels: int) -> bytes:
    """An XmlNode `levels` children deep, written by hand: no Protobuf library nests so far."""
    node = _field(1, b"N")
    for _ in range(levels):
        node = _field(1, b"N") + _field(3, node)
    return node


# Where each service's request holds unknown nodes, as wire bytes around one node.
DEEP_PLACES: dict[str, Callable[[bytes], bytes]] = {
    "/ci.media.v1.MediaJobService/SubmitMediaJob": lambda node: _field(
        3, _field(2, _field(1, b"input/sample.mp4")) + _field(3, _field(1000, node))
    ),
    "/ci.media.v1.MediaQueueService/UpdateMediaQueue": lambda node: _field(
        3, _field(1, b"p1") + _field(5, _field(1000, node))
    ),
    "/ci.media.v1.MediaTemplateService/CreateMediaTemplate": lambda node: (
        _field(3, _field(2, b"Tts") + _field(3, b"deep")) + _field(4, node)
    ),
    "/ci.media.v1.MediaWorkflowService/CreateMediaWorkflow": lambda node: _field(
        3, _field(1, b"deep") + _field(1000, node)
    ),
}


@pytest.mark.parametrize("levels", [40, 150, 5000])
async def test_unknown_nodes_nested_thousands_deep_are_refused(target: Target, levels: int) -> None:
    """Within Protobuf's own nesting bound (100), validation names the node too deep; beyond
    it, the bytes are no request (MALFORMED_REQUEST). Never INTERNAL, whichever service."""
    for method, wrap in DEEP_PLACES.items():
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await target.channel.unary_unary(method, None, None)(
                wrap(_deep_node(levels)), timeout=CALL_S
            )
        request_type = {
            "SubmitMediaJob": service_pb2.SubmitMediaJobRequest,
            "UpdateMediaQueue": Q.UpdateMediaQueueRequest,
            "CreateMediaTemplate": T.CreateMediaTemplateRequest,
            "CreateMediaWorkflow": W.CreateMediaWorkflowRequest,
        }[method.rsplit("/", 1)[1]]
        request = request_type()
        if levels < 50:  # one Protobuf reads: the violations' paths resolve in it
            request.ParseFromString(wrap(_deep_node(levels)))
        target.judge.answer(request, caught.value)
    expected = "INVALID_REQUEST" if levels < 50 else "MALFORMED_REQUEST"
    assert target.judge.outcomes == {f"INVALID_ARGUMENT/{expected}": len(DEEP_PLACES)}
