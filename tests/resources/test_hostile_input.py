"""Hostile input to the resource services, end to end: a real gateway in front of the emulator.

Every string the gateway writes into a body is XML, and XML cannot carry every string a proto
can (C0 controls, U+FFFE/U+FFFF); every unknown node counts against one request's bound. A
request that breaks either must be the caller's INVALID_ARGUMENT naming the field, refused
before CI is asked: never INTERNAL, never a body the gateway cannot build.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest

from ci_emulator.server import RunningEmulator
from gateway._proto import job_kinds_pb2 as kinds
from gateway._proto import queues_pb2, templates_pb2, workflows_pb2, xml_pb2
from gateway.api.tree_checks import MAX_EXTRA_DEPTH, MAX_EXTRA_NODES
from gateway.model import GATEWAY_CALLBACK
from gateway.resources import template_wire
from gateway.status import MAX_FIELD_CHARS
from tests.conftest import SAMPLE_KEY
from tests.integration.helpers import refused
from tests.resources.conftest import Stubs

W = workflows_pb2
T = templates_pb2
QUEUE_ID = "p" + "0" * 32
WORKFLOW_ID = "w" + "0" * 32


def workflow(name: str = "probe") -> W.MediaWorkflow:
    """Start -> MediaInfo -> End, valid in every respect the tests below do not break."""
    topology = W.WorkflowTopology(dependencies={"Start": "MediaInfo_1", "MediaInfo_1": "End"})
    topology.nodes["Start"].CopyFrom(
        W.WorkflowNode(
            type="Start", input=W.WorkflowNodeInput(queue_id=QUEUE_ID, object_prefix="input/")
        )
    )
    topology.nodes["MediaInfo_1"].CopyFrom(W.WorkflowNode(type="MediaInfo"))
    return W.MediaWorkflow(name=name, topology=topology)


def _bad_name() -> W.MediaWorkflow:
    return workflow("a\x00b")


def _non_character_name() -> W.MediaWorkflow:
    return workflow("a\ufffeb")


def _bad_extra_node() -> W.MediaWorkflow:
    bad = workflow()
    bad.extra_nodes.append(xml_pb2.XmlNode(name="not a name", text="x"))
    return bad


def _bad_topology_text() -> W.MediaWorkflow:
    bad = workflow()
    bad.topology.extra_nodes.append(xml_pb2.XmlNode(name="Note", text="\x01"))
    return bad


def _job_node(operation: W.WorkflowNodeOperation) -> W.MediaWorkflow:
    """The workflow with its job node a Transcode node running `operation`."""
    bad = workflow()
    bad.topology.nodes["MediaInfo_1"].CopyFrom(
        W.WorkflowNode(type="Transcode", operation=operation)
    )
    return bad


def _bad_operation_text() -> W.MediaWorkflow:
    return _job_node(W.WorkflowNodeOperation(template_id="t\x01"))


def _bad_operation_node() -> W.MediaWorkflow:
    return _job_node(W.WorkflowNodeOperation(extra_nodes=[xml_pb2.XmlNode(name="a b")]))


JOB_NODE = "media_workflow.topology.nodes['MediaInfo_1'].operation"


@pytest.mark.parametrize(
    ("build", "field"),
    [
        # These two were INTERNAL too: whether a job node's operation holds anything was found
        # by encoding it, before any check of what it holds.
        (_bad_operation_text, f"{JOB_NODE}.template_id"),
        (_bad_operation_node, f"{JOB_NODE}.extra_nodes[0].name"),
        (_bad_name, "media_workflow.name"),
        (_non_character_name, "media_workflow.name"),
        (_bad_extra_node, "media_workflow.extra_nodes[0].name"),
        (_bad_topology_text, "media_workflow.topology.extra_nodes[0].text"),
    ],
)
async def test_a_workflow_body_xml_cannot_carry_is_refused_naming_the_field(
    stubs: Stubs, emulator: RunningEmulator, build: Callable[[], W.MediaWorkflow], field: str
) -> None:
    """These were INTERNAL: the name and the unknown nodes of a workflow reached the XML codec
    unchecked, which then failed to build the body."""
    seen = emulator.state.requests_seen
    created = await refused(
        stubs.workflows.CreateMediaWorkflow(
            W.CreateMediaWorkflowRequest(media_workflow=build()), timeout=10
        )
    )
    updated = await refused(
        stubs.workflows.UpdateMediaWorkflow(
            W.UpdateMediaWorkflowRequest(workflow_id=WORKFLOW_ID, media_workflow=build()),
            timeout=10,
        )
    )
    assert set(created.violations) == {field}
    assert set(updated.violations) == {field}
    assert emulator.state.requests_seen == seen


async def test_template_parameters_share_one_request_bound_on_unknown_nodes(
    stubs: Stubs, emulator: RunningEmulator
) -> None:
    """Each parameter used to get a bound of its own, so MAX_EXTRA_NODES parameters and more
    (up to the message size, millions of nodes) were built into one body."""
    parameters = [xml_pb2.XmlNode(name="P", text="x") for _ in range(MAX_EXTRA_NODES + 1)]
    seen = emulator.state.requests_seen
    error = await refused(
        stubs.templates.CreateMediaTemplate(
            T.CreateMediaTemplateRequest(
                template=T.MediaTemplate(tag="Tts", name="many"), parameters=parameters
            ),
            timeout=30,
        )
    )
    assert len(error.violations) == 1
    [(field, why)] = error.violations.items()
    assert field.startswith(f"parameters[{MAX_EXTRA_NODES}]")
    assert f"more than {MAX_EXTRA_NODES}" in why
    assert emulator.state.requests_seen == seen


async def test_workflow_nodes_share_one_request_bound_on_unknown_nodes(
    stubs: Stubs, emulator: RunningEmulator
) -> None:
    """The same for a workflow: each node's unknown nodes used to have a bound of their own."""
    half = MAX_EXTRA_NODES // 2 + 1
    bad = workflow()
    for name in ("Start", "MediaInfo_1"):
        bad.topology.nodes[name].extra_nodes.extend(
            xml_pb2.XmlNode(name="N", text="x") for _ in range(half)
        )
    seen = emulator.state.requests_seen
    error = await refused(
        stubs.workflows.CreateMediaWorkflow(
            W.CreateMediaWorkflowRequest(media_workflow=bad), timeout=30
        )
    )
    assert any(f"more than {MAX_EXTRA_NODES}" in why for why in error.violations.values())
    assert emulator.state.requests_seen == seen


def _deep(levels: int) -> xml_pb2.XmlNode:
    root = xml_pb2.XmlNode(name="P")
    node = root
    for _ in range(levels):
        node = node.children.add(name="Q")
    return root


@pytest.mark.parametrize(
    ("parameter", "field"),
    [
        (xml_pb2.XmlNode(name="not a name", text="x"), "parameters[0].name"),
        (xml_pb2.XmlNode(name="Name", text="twice"), "parameters[0].name"),
        (xml_pb2.XmlNode(name="P", text="\ufffe"), "parameters[0].text"),
        (_deep(40), "parameters[0]" + ".children[0]" * 32),
    ],
)
async def test_a_template_parameter_the_body_cannot_carry_is_refused_naming_it(
    stubs: Stubs, emulator: RunningEmulator, parameter: xml_pb2.XmlNode, field: str
) -> None:
    """Parameters were walked as plain messages: their names, depth and count went unchecked
    (a bad name was INTERNAL, a `<Name>` reached CI, which refuses a second one)."""
    seen = emulator.state.requests_seen
    error = await refused(
        stubs.templates.CreateMediaTemplate(
            T.CreateMediaTemplateRequest(
                template=T.MediaTemplate(tag="Tts", name="odd"), parameters=[parameter]
            ),
            timeout=10,
        )
    )
    assert set(error.violations) == {field}
    assert emulator.state.requests_seen == seen


def _transcode(*nodes: xml_pb2.XmlNode) -> T.MediaTemplate:
    return T.MediaTemplate(
        name="mp4",
        trans_tpl=kinds.Transcode(container=kinds.Container(format="mp4"), extra_nodes=nodes),
    )


@pytest.mark.parametrize("name", ["Name", "tag", "Snapshot", "TemplateId"])
async def test_a_root_container_s_unknown_node_is_no_node_of_the_request_s_own(
    stubs: Stubs, emulator: RunningEmulator, name: str
) -> None:
    """Transcode's parameters go straight under `<Request>`, its unknown nodes with them: one
    named `Name` was a second `<Name>` beside the template's, which CI refused (InvalidArgument
    naming no field), and one named like another kind's container a second kind."""
    seen = emulator.state.requests_seen
    error = await refused(
        stubs.templates.CreateMediaTemplate(
            T.CreateMediaTemplateRequest(template=_transcode(xml_pb2.XmlNode(name=name, text="x"))),
            timeout=10,
        )
    )
    assert set(error.violations) == {"template.trans_tpl.extra_nodes[0].name"}
    assert emulator.state.requests_seen == seen


async def test_a_root_container_s_other_unknown_nodes_still_reach_ci(stubs: Stubs) -> None:
    node = xml_pb2.XmlNode(name="Newer", text="x")
    created = await stubs.templates.CreateMediaTemplate(
        T.CreateMediaTemplateRequest(template=_transcode(node)), timeout=10
    )
    assert created.template.trans_tpl.container.format == "mp4"
    # A wrapped container's nodes are under its own element: `Name` there is no second Name.
    wrapped = T.MediaTemplate(
        name="thumbs",
        snapshot=kinds.Snapshot(mode="Interval", extra_nodes=[xml_pb2.XmlNode(name="Name")]),
    )
    created = await stubs.templates.CreateMediaTemplate(
        T.CreateMediaTemplateRequest(template=wrapped), timeout=10
    )
    assert created.template.name == "thumbs"


# 100,000: as long as a request may be (`server.max_request_bytes`, 128 KiB).
@pytest.mark.parametrize("name", ["a" * 129, "a" * 100_000, "tab\there", "nul\x00"])
async def test_a_workflow_name_in_a_query_is_bounded_and_refused_naming_it(
    stubs: Stubs, emulator: RunningEmulator, name: str
) -> None:
    """DescribeMediaWorkflows' filter and TriggerMediaWorkflow's run name went into the query
    unchecked: a megabyte of either reached CI, which answered a bare HTTP 400 naming no field."""
    seen = emulator.state.requests_seen
    described = await refused(
        stubs.workflows.DescribeMediaWorkflows(
            W.DescribeMediaWorkflowsRequest(name=name), timeout=10
        )
    )
    triggered = await refused(
        stubs.workflows.TriggerMediaWorkflow(
            W.TriggerMediaWorkflowRequest(workflow_id=WORKFLOW_ID, object=SAMPLE_KEY, name=name),
            timeout=10,
        )
    )
    assert set(described.violations) == {"name"}
    assert set(triggered.violations) == {"name"}
    assert emulator.state.requests_seen == seen


async def test_a_workflow_name_of_any_script_still_filters(stubs: Stubs) -> None:
    answer = await stubs.workflows.DescribeMediaWorkflows(
        W.DescribeMediaWorkflowsRequest(name="上传-\u202e" + "a" * 120), timeout=10
    )
    assert answer.total_count == "0"


@pytest.mark.parametrize(
    "url", ["javascript:alert(1)", "http://[::1/ci", "http://h:99999/ci", "http://a b/ci"]
)
async def test_a_queue_callback_url_that_is_no_http_url_is_refused_naming_it(
    stubs: Stubs, emulator: RunningEmulator, url: str
) -> None:
    """A job's `call_back` had to be an http(s) URL, but a queue's NotifyConfig.Url, where CI
    posts every job of the queue that has none of its own, was sent to CI as anything."""
    queues = await stubs.queues.DescribeMediaQueues(
        queues_pb2.DescribeMediaQueuesRequest(), timeout=10
    )
    queue = queues_pb2.MediaQueue(
        queue_id=queues.queue_list[0].queue_id,
        name="odd",
        notify_config=queues_pb2.QueueNotifyConfig(
            url=url, event="TaskFinish", type="Url", state="On"
        ),
    )
    seen = emulator.state.requests_seen
    error = await refused(
        stubs.queues.UpdateMediaQueue(queues_pb2.UpdateMediaQueueRequest(queue=queue), timeout=10)
    )
    assert set(error.violations) == {"queue.notify_config.url"}
    assert emulator.state.requests_seen == seen


@pytest.mark.parametrize("url", ["javascript:alert(1)", "http://h:99999/ci", "http://a b/ci"])
async def test_a_workflow_start_callback_url_that_is_no_http_url_is_refused_naming_it(
    stubs: Stubs, emulator: RunningEmulator, url: str
) -> None:
    """The Start node's NotifyConfig.Url is where CI posts each run's end: held to the rule of
    a queue's NotifyConfig and a job's `call_back`, where it used to reach CI as anything."""
    bad = workflow()
    bad.topology.nodes["Start"].input.notify_config.CopyFrom(
        queues_pb2.QueueNotifyConfig(url=url, event="WorkflowFinish", type="Url", state="On")
    )
    seen = emulator.state.requests_seen
    error = await refused(
        stubs.workflows.CreateMediaWorkflow(
            W.CreateMediaWorkflowRequest(media_workflow=bad), timeout=10
        )
    )
    assert set(error.violations) == {
        "media_workflow.topology.nodes['Start'].input.notify_config.url"
    }
    assert emulator.state.requests_seen == seen


async def test_a_workflow_start_notify_config_naming_the_gateway_is_still_checked(
    stubs: Stubs, emulator: RunningEmulator
) -> None:
    """`ci-gateway:callback` (what answers show for the gateway's receiver) stands for a valid
    URL, not for a valid NotifyConfig: the rest of it is held to the same rules, where it used
    to reach CI as anything once its URL was the stand-in."""
    bad = workflow()
    bad.topology.nodes["Start"].input.notify_config.CopyFrom(
        queues_pb2.QueueNotifyConfig(
            url=GATEWAY_CALLBACK, event="WorkflowFinish,Nope", type="Carrier", state="Maybe"
        )
    )
    seen = emulator.state.requests_seen
    error = await refused(
        stubs.workflows.CreateMediaWorkflow(
            W.CreateMediaWorkflowRequest(media_workflow=bad), timeout=10
        )
    )
    where = "media_workflow.topology.nodes['Start'].input.notify_config"
    assert set(error.violations) == {f"{where}.event", f"{where}.type", f"{where}.state"}
    assert emulator.state.requests_seen == seen


@pytest.mark.parametrize("key", ["N" * 600, "\x00" * 100, "<" * 129], ids=["long", "nul", "lt"])
async def test_a_node_name_too_long_for_a_field_path_is_named_in_the_description(
    stubs: Stubs, emulator: RunningEmulator, key: str
) -> None:
    """Violations named such nodes in their path (`nodes['NNN...']`), which the status cut at
    MAX_FIELD_CHARS: the path a client got named no field of its request."""
    bad = workflow()
    bad.topology.nodes[key].CopyFrom(bad.topology.nodes["MediaInfo_1"])
    bad.topology.dependencies[key] = "End"
    bad.topology.dependencies["M" * 600] = "End"  # no node of that name
    seen = emulator.state.requests_seen
    error = await refused(
        stubs.workflows.CreateMediaWorkflow(
            W.CreateMediaWorkflowRequest(media_workflow=bad), timeout=10
        )
    )
    where = "media_workflow.topology"
    assert set(error.violations) == {f"{where}.nodes", f"{where}.dependencies"}
    assert "is no node name" in error.violations[f"{where}.nodes"]
    assert f"({len(key)} characters)" in error.violations[f"{where}.nodes"]
    assert "(600 characters) is not a node" in error.violations[f"{where}.dependencies"]
    assert emulator.state.requests_seen == seen


async def test_a_short_bad_node_name_is_still_named_in_the_path(
    stubs: Stubs, emulator: RunningEmulator
) -> None:
    bad = workflow()
    bad.topology.nodes["1abc"].CopyFrom(W.WorkflowNode(type="MediaInfo"))
    bad.topology.dependencies["MediaInfo_1"] = "1abc"
    bad.topology.dependencies["1abc"] = "End"
    error = await refused(
        stubs.workflows.CreateMediaWorkflow(
            W.CreateMediaWorkflowRequest(media_workflow=bad), timeout=10
        )
    )
    assert set(error.violations) == {"media_workflow.topology.nodes['1abc']"}


async def test_the_gateway_s_stand_in_url_off_the_start_node_is_checked(
    stubs: Stubs, emulator: RunningEmulator
) -> None:
    """`ci-gateway:callback` becomes the receiver's URL on the Start node only; on any other
    node it went to CI as it was, a NotifyConfig URL that is no URL."""
    bad = workflow()
    bad.topology.nodes["MediaInfo_1"].input.notify_config.CopyFrom(
        queues_pb2.QueueNotifyConfig(
            url=GATEWAY_CALLBACK, event="WorkflowFinish", type="Url", state="On"
        )
    )
    seen = emulator.state.requests_seen
    error = await refused(
        stubs.workflows.CreateMediaWorkflow(
            W.CreateMediaWorkflowRequest(media_workflow=bad), timeout=10
        )
    )
    assert set(error.violations) == {
        "media_workflow.topology.nodes['MediaInfo_1'].input.notify_config.url"
    }
    assert emulator.state.requests_seen == seen


async def test_a_path_too_long_for_a_status_names_the_field_that_holds_the_rest(
    stubs: Stubs, emulator: RunningEmulator
) -> None:
    """Under a node name of 128 characters, a node nested too deep in a NotifyConfig is a path
    of ~600 characters, which the status cut mid-segment: the client got a path naming no field
    of its request. It is now cut at a segment's end, the rest said in the description."""
    name = "N" * 128
    bad = workflow()
    bad.topology.nodes[name].CopyFrom(bad.topology.nodes.pop("MediaInfo_1"))
    bad.topology.dependencies["Start"] = name
    bad.topology.dependencies[name] = "End"
    del bad.topology.dependencies["MediaInfo_1"]
    kafka = bad.topology.nodes[name].input.notify_config.kafka_config
    kafka.extra_nodes.append(_deep(40))
    full = (
        f"media_workflow.topology.nodes[{name!r}].input.notify_config.kafka_config"
        ".extra_nodes[0]" + ".children[0]" * 32
    )
    assert len(full) > MAX_FIELD_CHARS
    error = await refused(
        stubs.workflows.CreateMediaWorkflow(
            W.CreateMediaWorkflowRequest(media_workflow=bad), timeout=10
        )
    )
    [(field, why)] = error.violations.items()
    assert len(field) <= MAX_FIELD_CHARS
    assert full.startswith(field) and full[len(field)] == "."
    assert why.startswith(f"unknown nodes nested deeper than {MAX_EXTRA_DEPTH} (at .children[0]")


@pytest.mark.parametrize("event", [",", " , ", ",,"])
async def test_an_event_list_naming_no_event_is_refused_naming_it(
    stubs: Stubs, emulator: RunningEmulator, event: str
) -> None:
    """A comma list of nothing passed the check of each event it names (none), and CI refused
    the body: InvalidArgument "NotifyConfig.Event names an unknown event", naming no field."""
    queues = await stubs.queues.DescribeMediaQueues(
        queues_pb2.DescribeMediaQueuesRequest(), timeout=10
    )
    notify = queues_pb2.QueueNotifyConfig(
        url="http://127.0.0.1:9/cb", event=event, type="Url", state="On"
    )
    queue = queues_pb2.MediaQueue(
        queue_id=queues.queue_list[0].queue_id, name="q", notify_config=notify
    )
    seen = emulator.state.requests_seen
    error = await refused(
        stubs.queues.UpdateMediaQueue(queues_pb2.UpdateMediaQueueRequest(queue=queue), timeout=10)
    )
    assert set(error.violations) == {"queue.notify_config.event"}
    assert emulator.state.requests_seen == seen


@pytest.mark.parametrize("queue_id", ["", f"{QUEUE_ID} ", f"{QUEUE_ID},{QUEUE_ID}", "p/1"])
async def test_a_start_node_s_queue_id_is_held_to_a_queue_id_s_form(
    stubs: Stubs, emulator: RunningEmulator, queue_id: str
) -> None:
    """A submit's queue id was held to its form, the Start node's only to being there: a
    trailing space or a list reached CI, which answered only that it names no queue."""
    bad = workflow()
    bad.topology.nodes["Start"].input.queue_id = queue_id
    seen = emulator.state.requests_seen
    error = await refused(
        stubs.workflows.CreateMediaWorkflow(
            W.CreateMediaWorkflowRequest(media_workflow=bad), timeout=10
        )
    )
    assert set(error.violations) == {"media_workflow.topology.nodes['Start'].input.queue_id"}
    assert emulator.state.requests_seen == seen


@pytest.mark.parametrize("tag", sorted(set(template_wire.containers()) - {"VideoMontage"}))
async def test_a_typed_template_without_its_parameters_is_refused_naming_them(
    stubs: Stubs, emulator: RunningEmulator, tag: str
) -> None:
    """`tag` and `name` alone passed, and CI refused the body naming its XML
    (`Request.Container.Format is required for Transcode`), not the field to set."""
    seen = emulator.state.requests_seen
    error = await refused(
        stubs.templates.CreateMediaTemplate(
            T.CreateMediaTemplateRequest(template=T.MediaTemplate(tag=tag, name="bare")),
            timeout=10,
        )
    )
    assert set(error.violations) == {f"template.{template_wire.containers()[tag].field}"}
    assert emulator.state.requests_seen == seen


async def test_a_video_montage_template_may_go_without_parameters(stubs: Stubs) -> None:
    created = await stubs.templates.CreateMediaTemplate(
        T.CreateMediaTemplateRequest(template=T.MediaTemplate(tag="VideoMontage", name="bare")),
        timeout=10,
    )
    assert created.template.tag == "VideoMontage"
