"""The official Python SDK's workflow calls, unchanged, against the emulator: create, get,
activate, trigger, the run's executions, delete (as `test_official_sdk` does for jobs)."""

from __future__ import annotations

from ci_emulator.server import RunningEmulator
from tests.ci_emulator.conftest import BUCKET, VIDEO_KEY
from tests.ci_emulator.test_official_sdk import run, sdk_client


def body(queue_id: str) -> dict[str, object]:
    """The SDK demo's shape: xmltodict turns nested dicts into element-keyed nodes."""
    return {
        "MediaWorkflow": {
            "Name": "sdk-workflow",
            "State": "Paused",
            "Topology": {
                "Dependencies": {"Start": "MediaInfo_1", "MediaInfo_1": "End"},
                "Nodes": {
                    "Start": {
                        "Type": "Start",
                        "Input": {"QueueId": queue_id, "ObjectPrefix": "input/"},
                    },
                    "MediaInfo_1": {"Type": "MediaInfo", "Operation": {"UserData": "sdk"}},
                },
            },
        }
    }


async def test_sdk_drives_a_workflow_from_creation_to_a_finished_run(
    emu: RunningEmulator,
) -> None:
    client = sdk_client(emu)
    queue_id = emu.state.default_queue[BUCKET]
    created = await run(client.ci_create_workflow, Bucket=BUCKET, Body=body(queue_id))
    workflow = created["MediaWorkflow"]
    workflow_id = workflow["WorkflowId"]
    assert (workflow["Name"], workflow["State"]) == ("sdk-workflow", "Paused")
    assert workflow["Topology"]["Dependencies"] == {"MediaInfo_1": "End", "Start": "MediaInfo_1"}

    listed = await run(client.ci_get_workflow, Bucket=BUCKET, Ids=workflow_id)
    assert listed["MediaWorkflowList"][0]["WorkflowId"] == workflow_id
    await run(
        client.ci_update_workflow_state,
        Bucket=BUCKET,
        WorkflowId=workflow_id,
        UpdateState="active",
    )
    assert emu.state.resources.workflows.workflows[workflow_id].state == "Active"

    triggered = await run(
        client.ci_trigger_workflow, Bucket=BUCKET, WorkflowId=workflow_id, Key=VIDEO_KEY
    )
    run_id = triggered["InstanceId"]
    await emu.state.resources.wait_for_run(run_id, {"Success"})
    described = await run(client.ci_get_workflowexecution, Bucket=BUCKET, RunId=run_id)
    execution = described["WorkflowExecution"][0]
    assert (execution["RunId"], execution["State"], execution["Object"]) == (
        run_id,
        "Success",
        VIDEO_KEY,
    )
    assert execution["Tasks"]["Type"] == "MediaInfo"
    executions = await run(client.ci_list_workflowexecution, Bucket=BUCKET, WorkflowId=workflow_id)
    # The Go SDK names the list's nodes `WorkflowExecutionList` (the catalogue's source, and the
    # emulator's); the Python SDK listifies `WorkflowExecution` instead, so one run stays a dict.
    assert executions["WorkflowExecutionList"]["RunId"] == run_id

    deleted = await run(client.ci_delete_workflow, Bucket=BUCKET, WorkflowId=workflow_id)
    assert deleted["WorkflowId"] == workflow_id
