"""The jobs a workflow run starts look like CI's: each `JobsDetail` carries the run's
`Workflow` node (RunId, WorkflowId, WorkflowName and the node's Name), and
`GET /jobs?workflowId=` lists exactly the jobs that workflow's runs started, with the
listing's other filters and paging as for any job.

Runs here are two MediaInfo nodes in a row (the emulator probes them for real), so one run
makes two jobs and the node names tell them apart."""

from __future__ import annotations

import pytest
from lxml import etree

from ci_emulator.server import RunningEmulator
from ci_emulator.workflows import Execution
from tests.ci_emulator.conftest import BUCKET, MISSING_KEY, VIDEO_KEY, SignedClient, pairs
from tests.ci_emulator.test_listing import job_ids, next_token

NODES = ("MediaInfo_1", "MediaInfo_2")


def workflow_body(queue_id: str, name: str) -> bytes:
    """Start -> MediaInfo_1 -> MediaInfo_2 -> End, Active, on `queue_id`."""
    first, second = NODES
    return (
        f"<Request><MediaWorkflow><Name>{name}</Name><State>Active</State><Topology>"
        f"<Dependencies><Start>{first}</Start><{first}>{second}</{first}>"
        f"<{second}>End</{second}></Dependencies>"
        "<Nodes><Start><Type>Start</Type>"
        f"<Input><QueueId>{queue_id}</QueueId><ObjectPrefix>input/</ObjectPrefix></Input></Start>"
        f"<{first}><Type>MediaInfo</Type><Operation/></{first}>"
        f"<{second}><Type>MediaInfo</Type><Operation/></{second}>"
        "</Nodes></Topology></MediaWorkflow></Request>"
    ).encode()


async def create_workflow(client: SignedClient, emu: RunningEmulator, name: str) -> str:
    queue_id = emu.state.default_queue[BUCKET]
    reply = (await client.send("POST", "/workflow", body=workflow_body(queue_id, name))).ok()
    workflow_id = reply.xml().findtext("MediaWorkflow/WorkflowId")
    assert workflow_id
    return workflow_id


async def run_to_end(
    client: SignedClient, emu: RunningEmulator, workflow_id: str, key: str = VIDEO_KEY
) -> Execution:
    """Trigger a run of `key` and wait (on the emulator's run events, no sleeping) for its end."""
    reply = await client.send(
        "POST", "/triggerworkflow", params={"workflowId": workflow_id, "object": key}
    )
    run_id = reply.ok().xml().findtext("InstanceId")
    assert run_id
    return await emu.state.resources.wait_for_run(run_id, {"Success", "Failed"})


def workflow_node(detail: etree._Element | None) -> list[tuple[str, str | None]]:
    return pairs(detail, "Workflow")


async def test_each_job_of_a_run_names_its_run_workflow_and_node(
    client: SignedClient, emu: RunningEmulator
) -> None:
    workflow_id = await create_workflow(client, emu, "probe-twice")
    run = await run_to_end(client, emu, workflow_id)
    assert run.state == "Success"
    assert [task.node for task in run.tasks] == list(NODES)
    described = (await client.describe(*(task.job_id for task in run.tasks))).ok().xml()
    details = described.findall("JobsDetail")
    assert [d.findtext("JobId") for d in details] == [task.job_id for task in run.tasks]
    for detail, node in zip(details, NODES, strict=True):
        # The describe layout is alphabetical, so Workflow comes last, after Tag.
        assert [child.tag for child in detail][-2:] == ["Tag", "Workflow"]
        assert workflow_node(detail) == [
            ("Name", node),
            ("RunId", run.run_id),
            ("WorkflowId", workflow_id),
            ("WorkflowName", "probe-twice"),
        ]
        assert detail.findtext("State") == "Success"

    # A client's own job has no Workflow node.
    own = await client.submit_ok()
    own_detail = (await client.describe(own)).ok().xml().find("JobsDetail")
    assert own_detail is not None and own_detail.find("Workflow") is None


async def test_a_rename_after_the_run_leaves_its_jobs_as_they_were(
    client: SignedClient, emu: RunningEmulator
) -> None:
    workflow_id = await create_workflow(client, emu, "before")
    run = await run_to_end(client, emu, workflow_id)
    queue_id = emu.state.default_queue[BUCKET]
    renamed = workflow_body(queue_id, "after")
    (await client.send("PUT", f"/workflow/{workflow_id}", body=renamed)).ok()
    detail = (await client.describe(run.tasks[0].job_id)).ok().xml().find("JobsDetail")
    assert ("WorkflowName", "before") in workflow_node(detail)


async def test_listing_by_workflow_id_finds_exactly_its_runs_jobs(
    client: SignedClient, emu: RunningEmulator
) -> None:
    mine = await create_workflow(client, emu, "mine")
    other = await create_workflow(client, emu, "other")
    first = await run_to_end(client, emu, mine)
    failed = await run_to_end(client, emu, mine, MISSING_KEY)  # its first node fails
    theirs = await run_to_end(client, emu, other)
    own = await client.submit_ok()
    assert failed.state == "Failed" and len(failed.tasks) == 1
    my_jobs = [task.job_id for task in (*first.tasks, *failed.tasks)]
    their_jobs = [task.job_id for task in theirs.tasks]

    async def listed(**params: str) -> list[str]:
        return job_ids(await client.list_jobs(params))

    before = emu.state.list_jobs_examined
    assert await listed(workflowId=mine) == my_jobs[::-1]  # newest first, as always
    assert emu.state.list_jobs_examined - before == len(my_jobs)  # its index, not every job
    assert await listed(workflowId=mine, orderByTime="Asc") == my_jobs
    assert await listed(workflowId=other) == their_jobs[::-1]
    assert await listed(workflowId="wnosuchworkflow") == []
    # The listing's other filters still apply.
    assert await listed(workflowId=mine, states="Failed") == my_jobs[2:]
    assert await listed(workflowId=mine, states="Success", orderByTime="Asc") == my_jobs[:2]
    assert await listed(workflowId=mine, inputObject=MISSING_KEY) == my_jobs[2:]
    queue_id = emu.state.default_queue[BUCKET]
    assert await listed(workflowId=mine, queueId=queue_id) == my_jobs[::-1]
    assert await listed(workflowId=mine, tag="Transcode") == []
    # Paging: a token per full page, none after the last.
    pages: list[str] = []
    token = ""
    for _ in range(len(my_jobs) + 1):  # bounded: one job per page
        reply = await client.list_jobs({"workflowId": mine, "size": "1", "nextToken": token})
        pages += job_ids(reply)
        token = next_token(reply) or ""
        if not token:
            break
    assert pages == my_jobs[::-1]
    # Without the filter a listing holds every job, the runs' among them (tolerant reading).
    assert await listed(size="100") == [*my_jobs, *their_jobs, own][::-1]
    # Batch jobs: the emulator runs none, so the filter still matches nothing.
    assert await listed(inventoryTriggerJobId="b123") == []


async def test_a_run_job_in_a_listing_carries_its_workflow_node(
    client: SignedClient, emu: RunningEmulator
) -> None:
    workflow_id = await create_workflow(client, emu, "listed")
    run = await run_to_end(client, emu, workflow_id)
    reply = (await client.list_jobs({"workflowId": workflow_id, "orderByTime": "Asc"})).ok()
    details = reply.xml().findall("JobsDetail")
    assert [dict(workflow_node(detail))["Name"] for detail in details] == list(NODES)
    assert {dict(workflow_node(detail))["RunId"] for detail in details} == {run.run_id}


async def test_listing_runs_filters_by_workflow_id_and_refuses_none(
    client: SignedClient, emu: RunningEmulator
) -> None:
    """`GET /workflowexecution?workflowId=` filters, as `GET /jobs?workflowId=` does: an id
    the bucket has no workflow of is no error CI documents (tolerant reading: an empty list),
    and a deleted workflow's runs, which `GET /workflowexecution/<RunId>` still describes,
    still list."""
    workflow_id = await create_workflow(client, emu, "gone")
    run = await run_to_end(client, emu, workflow_id)

    async def listed(workflow: str) -> tuple[list[str], str | None]:
        reply = await client.send("GET", "/workflowexecution", params={"workflowId": workflow})
        root = reply.ok().xml()
        return [n.text or "" for n in root.findall("WorkflowExecutionList/RunId")], root.findtext(
            "NextToken"
        )

    assert await listed("wnosuchworkflow") == ([], "")
    (await client.send("DELETE", f"/workflow/{workflow_id}")).ok()
    (await client.send("GET", f"/workflowexecution/{run.run_id}")).ok()
    assert await listed(workflow_id) == ([run.run_id], "")


@pytest.mark.parametrize("state", ["Submitted", "Pause"])
async def test_listing_runs_refuses_a_state_no_run_has(
    client: SignedClient, emu: RunningEmulator, state: str
) -> None:
    """DescribeWorkflowExecutions' page lists the `states` it takes: All, Success, Failed,
    Running, Cancel. A job state a run never has is refused as CI refuses a bad value."""
    workflow_id = await create_workflow(client, emu, "states")
    await run_to_end(client, emu, workflow_id)
    for states in (state, f"{state},Success"):
        params = {"workflowId": workflow_id, "states": states}
        reply = await client.send("GET", "/workflowexecution", params=params)
        assert (reply.status, reply.code) == (400, "InvalidArgument")
    params = {"workflowId": workflow_id, "states": "Running,Success,Failed,Cancel"}
    root = (await client.send("GET", "/workflowexecution", params=params)).ok().xml()
    assert len(root.findall("WorkflowExecutionList")) == 1
