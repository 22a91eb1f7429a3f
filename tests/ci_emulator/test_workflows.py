"""`POST /workflow` refuses what CI refuses in a Start node (catalogue A.13)."""

from __future__ import annotations

import pytest

from ci_emulator.server import RunningEmulator
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
