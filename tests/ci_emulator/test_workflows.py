"""`POST /workflow` refuses what CI refuses in a Start node and a job node (catalogue A.13),
and a finished run reports where the Start node's NotifyConfig, else its queue's, says."""

from __future__ import annotations

import sys

import pytest
from lxml import etree

from ci_emulator.callbacks import CallbackTarget
from ci_emulator.queues import MediaQueue, NotifyConfig
from ci_emulator.server import RunningEmulator
from ci_emulator.templates import TemplateStore
from ci_emulator.workflows import Execution, WorkflowStore, finish_target, parse_workflow_body
from tests.ci_emulator.conftest import BUCKET, SignedClient


def body(queue_id: str, notify: str) -> bytes:
    """Start -> MediaInfo_1 -> End, whose Start node's Input carries `notify`."""
    return (
        "<Request><MediaWorkflow><Name>w</Name><Topology>"
        "<Dependencies><Start>MediaInfo_1</Start><MediaInfo_1>End</MediaInfo_1></Dependencies>"
        f"<Nodes><Start><Type>Start</Type><Input><QueueId>{queue_id}</QueueId>"
        f"<ObjectPrefix>input/</ObjectPrefix>{notify}</Input></Start>"
        "<MediaInfo_1><Type>MediaInfo</Type><Operation/></MediaInfo_1>"
        "</Nodes></Topology></MediaWorkflow></Request>"
    ).encode()


@pytest.mark.parametrize(
    ("notify", "why"),
    [
        ("<NotifyConfig><State>Maybe</State></NotifyConfig>", "NotifyConfig.State"),
        ("<NotifyConfig><Type>Sms</Type></NotifyConfig>", "NotifyConfig.Type"),
        ("<NotifyConfig><ResultFormat>YAML</ResultFormat></NotifyConfig>", "ResultFormat"),
        ("<NotifyConfig><Event>JobDone</Event></NotifyConfig>", "NotifyConfig.Event"),
        (
            "<NotifyConfig><State>On</State><Type>Url</Type>"
            "<Event>WorkflowFinish</Event></NotifyConfig>",
            "NotifyConfig.Url is required",
        ),
    ],
)
async def test_a_start_nodes_notify_config_meets_a_queues_rules(
    client: SignedClient, emu: RunningEmulator, notify: str, why: str
) -> None:
    """The Start node's NotifyConfig is the queue's node (Url, Event, Type, State,
    ResultFormat: notes §8.1, catalogue A.13), so CI holds it to the same values."""
    queue_id = emu.state.default_queue[BUCKET]
    reply = await client.send("POST", "/workflow", body=body(queue_id, notify))
    assert (reply.status, reply.code) == (400, "InvalidArgument")
    assert why in (reply.xml().findtext("Message") or "")


async def test_a_start_node_with_a_valid_notify_config_is_accepted(
    client: SignedClient, emu: RunningEmulator
) -> None:
    notify = (
        "<NotifyConfig><Url>http://127.0.0.1:9/wf</Url><Event>WorkflowFinish</Event>"
        "<Type>Url</Type><State>On</State><ResultFormat>JSON</ResultFormat></NotifyConfig>"
    )
    reply = await client.send(
        "POST", "/workflow", body=body(emu.state.default_queue[BUCKET], notify)
    )
    assert reply.ok().xml().findtext("MediaWorkflow/WorkflowId")


async def test_a_job_node_without_an_operation_is_refused(
    client: SignedClient, emu: RunningEmulator
) -> None:
    """CI's CreateWorkflow doc marks a job node's Operation "是" (catalogue A.13 leaves it
    open): the emulator's docstring said so but its code took the node, and a run of it."""
    queue_id = emu.state.default_queue[BUCKET]
    transcode = (
        body(queue_id, "")
        .replace(b"MediaInfo_1", b"Transcode_1")
        .replace(b"<Type>MediaInfo</Type>", b"<Type>Transcode</Type>")
    )
    reply = await client.send("POST", "/workflow", body=transcode.replace(b"<Operation/>", b""))
    assert (reply.status, reply.code) == (400, "InvalidArgument")
    assert "Topology.Nodes.Transcode_1.Operation is required" in (
        reply.xml().findtext("Message") or ""
    )
    # An empty one is an Operation (its kind's own rules apply when a run submits the job).
    assert (await client.send("POST", "/workflow", body=transcode)).ok()
    # A MediaInfo node may leave it out, as a MediaInfo job may (notes §2.2); the CreateWorkflow
    # doc has no MediaInfo node. The Start node has none: its Input says what it needs.
    bare = body(queue_id, "").replace(b"<Operation/>", b"")
    assert (await client.send("POST", "/workflow", body=bare)).ok()


# ---- where a finished run reports (pure) ------------------------------------------------------

QUEUE_ID = "p" + "0" * 32
ON_URL = (
    "<NotifyConfig><Url>http://127.0.0.1:9/start</Url><Event>WorkflowFinish</Event>"
    "<State>On</State><ResultFormat>JSON</ResultFormat></NotifyConfig>"
)


def _run(notify: str, queue_notify: NotifyConfig) -> tuple[Execution, MediaQueue]:
    queue = MediaQueue(QUEUE_ID, "q", BUCKET, 0.0, 1, 1, notify=queue_notify)
    parsed = parse_workflow_body(
        etree.fromstring(body(QUEUE_ID, notify)),
        queues={QUEUE_ID: queue},
        templates=TemplateStore(0.0, [BUCKET]),
        bucket=BUCKET,
    )
    workflow = WorkflowStore().create(BUCKET, parsed, 0.0)
    return WorkflowStore().new_execution(workflow, "input/a.mp4", 0.0), queue


QUEUE_ON = NotifyConfig(url="http://127.0.0.1:9/queue", state="On", event="WorkflowFinish")


@pytest.mark.parametrize(
    ("notify", "queue_notify", "expected"),
    [
        (ON_URL, QUEUE_ON, CallbackTarget("Url", "http://127.0.0.1:9/start", "JSON")),
        # CreateWorkflow's sample: Url, Event, Type and no State (its table has none).
        (
            "<NotifyConfig><Url>http://127.0.0.1:9/start</Url>"
            "<Event>TaskFinish,WorkflowFinish</Event><Type>Url</Type></NotifyConfig>",
            NotifyConfig(),
            CallbackTarget("Url", "http://127.0.0.1:9/start", "XML"),
        ),
        # The Start node's own, switched off, wins over the queue's.
        (ON_URL.replace(">On<", ">Off<"), QUEUE_ON, None),
        (ON_URL.replace("WorkflowFinish", "TaskFinish"), QUEUE_ON, None),
        # None set (or an empty one): the queue's, when it is on and subscribed.
        ("", QUEUE_ON, CallbackTarget("Url", "http://127.0.0.1:9/queue", "XML")),
        ("<NotifyConfig/>", QUEUE_ON, CallbackTarget("Url", "http://127.0.0.1:9/queue", "XML")),
        ("", NotifyConfig(url="http://127.0.0.1:9/queue", state="On"), None),
        # A message queue's address is the one a job's callback there gets (region/mode/name).
        (
            "<NotifyConfig><Type>TDMQ</Type><MqRegion>bj</MqRegion><MqName>runs</MqName>"
            "<Event>WorkflowFinish</Event><State>On</State></NotifyConfig>",
            NotifyConfig(),
            CallbackTarget("TDMQ", "bj/Queue/runs", "XML"),
        ),
        (
            "",
            NotifyConfig(
                state="On", type="TDMQ", mq_region="gz", mq_mode="Topic", mq_name="t",
                event="TaskFinish,WorkflowFinish",
            ),
            CallbackTarget("TDMQ", "gz/Topic/t", "XML"),
        ),
    ],
    ids=["start on", "doc sample without state", "start off", "start not subscribed", "queue",
         "empty start", "queue not subscribed", "start tdmq", "queue tdmq"],
)  # fmt: skip
def test_a_finished_run_reports_where_its_notify_config_says(
    notify: str, queue_notify: NotifyConfig, expected: CallbackTarget | None
) -> None:
    execution, queue = _run(notify, queue_notify)
    assert finish_target(execution, queue) == expected


# ---- long chains (the graph check is a walk, not a recursion) ------------------------------

# Past Python's recursion limit: a recursive depth-first check overflowed at about 1,000 nodes
# and the emulator answered InternalError (500) for a workflow CI takes.
CHAIN = sys.getrecursionlimit() + 200


def chain_body(queue_id: str, length: int, *, last: str = "End", extra: str = "") -> bytes:
    """Start -> MediaInfo_1 -> ... -> MediaInfo_<length> -> `last`, plus `extra` nodes."""
    names = [f"MediaInfo_{index}" for index in range(1, length + 1)]
    edges = [("Start", names[0]), *zip(names, [*names[1:], last], strict=True)]
    dependencies = "".join(f"<{source}>{target}</{source}>" for source, target in edges)
    nodes = "".join(f"<{name}><Type>MediaInfo</Type></{name}>" for name in names)
    return (
        "<Request><MediaWorkflow><Name>w</Name><Topology>"
        f"<Dependencies>{dependencies}</Dependencies>"
        f"<Nodes><Start><Type>Start</Type><Input><QueueId>{queue_id}</QueueId></Input></Start>"
        f"{nodes}{extra}</Nodes></Topology></MediaWorkflow></Request>"
    ).encode()


async def test_a_chain_longer_than_the_recursion_limit_is_checked(
    client: SignedClient, emu: RunningEmulator
) -> None:
    queue_id = emu.state.default_queue[BUCKET]
    reply = await client.send("POST", "/workflow", body=chain_body(queue_id, CHAIN))
    assert reply.ok().xml().findtext("MediaWorkflow/WorkflowId")

    # What the walk refuses, it still refuses at that depth: a cycle back from the far end, and
    # a node nothing leads to.
    cycle = chain_body(queue_id, CHAIN, last="MediaInfo_1")
    reply = await client.send("POST", "/workflow", body=cycle)
    assert (reply.status, reply.code) == (400, "InvalidArgument")
    assert "has a cycle through MediaInfo_1" in (reply.xml().findtext("Message") or "")
    stray = chain_body(queue_id, CHAIN, extra="<Stray><Type>MediaInfo</Type></Stray>")
    reply = await client.send("POST", "/workflow", body=stray)
    assert (reply.status, reply.code) == (400, "InvalidArgument")
    assert "Stray cannot be reached from Start" in (reply.xml().findtext("Message") or "")
