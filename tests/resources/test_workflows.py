"""MediaWorkflowService end to end through the emulator: definitions (element-keyed topology),
state, runs (trigger, upload), executions, and WorkflowFinish reaching watchers.

Runs here use MediaInfo nodes, which the emulator runs with a real probe; nodes of the media
kinds (Transcode, ...) run the same way once the emulator's media engine runs their jobs.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
import sys
from collections.abc import AsyncIterator
from dataclasses import replace
from pathlib import Path

import aiohttp
import grpc
import pytest
from aiohttp import web

from ci_emulator.hosts import Target as EmulatorTarget
from ci_emulator.queues import QueueState
from ci_emulator.server import RunningEmulator
from gateway import rpc_context
from gateway._proto import job_kinds_pb2 as kinds
from gateway._proto import media_pb2, queues_pb2, service_pb2, templates_pb2, workflows_pb2
from gateway.access.interceptor import ClientAccess
from gateway.api.server import RunningGateway, start_gateway
from gateway.config.settings import Callbacks, Settings, Tracking
from gateway.credentials import Credentials, StaticCredentialsProvider
from gateway.logs import UPSTREAM_LOGGER
from gateway.model import GATEWAY_CALLBACK, Target
from gateway.upstream import xml_codec
from tests.access.helpers import FakeSleep, bearer, token_access_file
from tests.conftest import BUCKET, REGION, SAMPLE_KEY
from tests.integration.helpers import rich_error
from tests.resources.conftest import Stubs, platform_access, stubs_on

W = workflows_pb2
SLOW_POLLS = Tracking(poll_initial_s=60.0, poll_max_s=60.0)  # beyond the test: one look only
FAST_POLLS = Tracking(poll_initial_s=0.05, poll_max_s=0.2)


def workflow(
    queue_id: str,
    *,
    name: str = "probe-uploads",
    node_type: str = "MediaInfo",
    operation: W.WorkflowNodeOperation | None = None,
    prefix: str = "input/",
    state: int = W.WORKFLOW_STATE_ACTIVE,
) -> W.MediaWorkflow:
    """Start -> one job node -> End."""
    key = f"{node_type}_1581665960537"
    topology = W.WorkflowTopology(dependencies={"Start": key, key: "End"})
    topology.nodes["Start"].CopyFrom(
        W.WorkflowNode(
            type="Start", input=W.WorkflowNodeInput(queue_id=queue_id, object_prefix=prefix)
        )
    )
    topology.nodes[key].CopyFrom(
        W.WorkflowNode(type=node_type, operation=operation or W.WorkflowNodeOperation())
    )
    return W.MediaWorkflow(name=name, state=state, topology=topology)  # type: ignore[arg-type]


def queue_of(emulator: RunningEmulator) -> str:
    return emulator.state.default_queue[BUCKET]


async def create(stubs: Stubs, definition: W.MediaWorkflow) -> W.MediaWorkflow:
    reply = await stubs.workflows.CreateMediaWorkflow(
        W.CreateMediaWorkflowRequest(media_workflow=definition)
    )
    return reply.media_workflow


async def watch_to_end(stubs: Stubs, run_id: str) -> list[W.WorkflowExecution]:
    call = stubs.workflows.WatchWorkflowExecution(
        W.WatchWorkflowExecutionRequest(run_id=run_id), timeout=20
    )
    return [reply.workflow_execution async for reply in call]


# ---- definitions -----------------------------------------------------------------------------


async def test_create_and_describe_round_trip_the_topology(
    stubs: Stubs, emulator: RunningEmulator
) -> None:
    template = await stubs.templates.CreateMediaTemplate(
        templates_pb2.CreateMediaTemplateRequest(
            template=templates_pb2.MediaTemplate(
                name="mp4", trans_tpl=kinds.Transcode(container=kinds.Container(format="mp4"))
            )
        )
    )
    operation = W.WorkflowNodeOperation(
        template_id=template.template.template_id,
        output=kinds.Output(region="ap-guangzhou", bucket=BUCKET, object="out/${InputName}.mp4"),
    )
    sent = workflow(queue_of(emulator), node_type="Transcode", operation=operation)
    created = await create(stubs, sent)
    assert created.workflow_id.startswith("w") and created.bucket_id == BUCKET
    assert (created.state, created.state_text) == (W.WORKFLOW_STATE_ACTIVE, "Active")
    assert created.topology == sent.topology  # maps keyed by element name, both ways

    described = await stubs.workflows.DescribeMediaWorkflows(
        W.DescribeMediaWorkflowsRequest(workflow_ids=[created.workflow_id, "wnothere"])
    )
    assert [w.workflow_id for w in described.media_workflow_list] == [created.workflow_id]
    assert described.media_workflow_list[0].topology == sent.topology
    assert list(described.non_exist_ids) == ["wnothere"]


def test_the_topology_is_the_same_bytes_whatever_the_insertion_order() -> None:
    first = workflow("p1")
    second = W.MediaWorkflow(name=first.name, state=first.state)
    for key in reversed(sorted(first.topology.nodes)):
        second.topology.nodes[key].CopyFrom(first.topology.nodes[key])
    for key in reversed(sorted(first.topology.dependencies)):
        second.topology.dependencies[key] = first.topology.dependencies[key]
    encode = xml_codec.encode
    assert encode(W.MediaWorkflowBody(media_workflow=first)) == encode(
        W.MediaWorkflowBody(media_workflow=second)
    )
    body = encode(W.MediaWorkflowBody(media_workflow=first)).decode()
    assert body.index("<MediaInfo_1581665960537>") < body.index("<Start>")  # sorted keys


async def test_update_pause_activate_and_delete(stubs: Stubs, emulator: RunningEmulator) -> None:
    created = await create(stubs, workflow(queue_of(emulator)))
    workflow_id = created.workflow_id
    renamed = workflow(queue_of(emulator), name="renamed", prefix="videos/")
    updated = await stubs.workflows.UpdateMediaWorkflow(
        W.UpdateMediaWorkflowRequest(workflow_id=workflow_id, media_workflow=renamed)
    )
    assert updated.media_workflow.name == "renamed"
    assert updated.media_workflow.topology.nodes["Start"].input.object_prefix == "videos/"

    await stubs.workflows.PauseMediaWorkflow(W.PauseMediaWorkflowRequest(workflow_id=workflow_id))
    assert emulator.state.resources.workflows.workflows[workflow_id].state == "Paused"
    await stubs.workflows.ActivateMediaWorkflow(
        W.ActivateMediaWorkflowRequest(workflow_id=workflow_id)
    )
    assert emulator.state.resources.workflows.workflows[workflow_id].state == "Active"

    deleted = await stubs.workflows.DeleteMediaWorkflow(
        W.DeleteMediaWorkflowRequest(workflow_id=workflow_id)
    )
    assert deleted.workflow_id == workflow_id
    assert workflow_id not in emulator.state.resources.workflows.workflows


async def test_a_template_in_use_cannot_be_deleted(stubs: Stubs, emulator: RunningEmulator) -> None:
    template = await stubs.templates.CreateMediaTemplate(
        templates_pb2.CreateMediaTemplateRequest(
            template=templates_pb2.MediaTemplate(
                name="thumbs", snapshot=kinds.Snapshot(mode="Interval")
            )
        )
    )
    template_id = template.template.template_id
    operation = W.WorkflowNodeOperation(template_id=template_id)
    await create(stubs, workflow(queue_of(emulator), node_type="Snapshot", operation=operation))
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await stubs.templates.DeleteMediaTemplate(
            templates_pb2.DeleteMediaTemplateRequest(template_id=template_id)
        )
    assert caught.value.code() is grpc.StatusCode.INVALID_ARGUMENT
    assert "used by workflow" in (caught.value.details() or "")


async def test_bad_definitions_are_refused(stubs: Stubs, emulator: RunningEmulator) -> None:
    no_start = workflow(queue_of(emulator))
    del no_start.topology.nodes["Start"]
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await create(stubs, no_start)
    violations = rich_error(caught.value).violations
    assert "media_workflow.topology.nodes" in violations
    assert "media_workflow.topology.dependencies['Start']" in violations

    # CI's CreateWorkflow doc marks Start.Input.QueueId and Topology.Dependencies "是", and the
    # emulator refuses both omissions: the gateway names the field instead of sending them.
    bodies: list[tuple[str, str, bytes]] = []
    emulator.state.bodies = bodies
    no_queue = workflow("")
    no_edges = workflow(queue_of(emulator))
    no_edges.topology.ClearField("dependencies")
    # A job node's Operation is "是" there too: the emulator's refusal would name its XML node,
    # not the field. Set to nothing the codec writes is the same as unset.
    no_job = workflow(queue_of(emulator), node_type="Transcode")
    nothing_written = workflow(
        queue_of(emulator),
        node_type="Snapshot",
        operation=W.WorkflowNodeOperation(watermark_template_id=[""], output=kinds.Output()),
    )
    for definition, field in (
        (no_queue, "media_workflow.topology.nodes['Start'].input.queue_id"),
        (no_edges, "media_workflow.topology.dependencies"),
        (no_job, "media_workflow.topology.nodes['Transcode_1581665960537'].operation"),
        (nothing_written, "media_workflow.topology.nodes['Snapshot_1581665960537'].operation"),
    ):
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await create(stubs, definition)
        assert caught.value.code() is grpc.StatusCode.INVALID_ARGUMENT
        assert field in rich_error(caught.value).violations, field
    assert bodies == []  # none reached CI
    # A MediaInfo node may go without (its job's Operation is optional): CI is asked.
    await create(stubs, workflow(queue_of(emulator)))
    assert len(bodies) == 1

    # What only CI can tell: the queue, the template's kind.
    for definition in (
        workflow("pnotaqueue"),
        workflow(
            queue_of(emulator),
            node_type="Snapshot",
            operation=W.WorkflowNodeOperation(template_id="t1nothere"),
        ),
    ):
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await create(stubs, definition)
        assert caught.value.code() is grpc.StatusCode.INVALID_ARGUMENT


async def test_a_chain_of_more_nodes_than_pythons_recursion_limit_round_trips(
    stubs: Stubs, emulator: RunningEmulator
) -> None:
    """CI documents no most nodes per workflow, so the gateway sends a long chain as it is; the
    emulator's graph check recursed once per node and answered InternalError past ~1,000."""
    length = sys.getrecursionlimit() + 200
    names = [f"MediaInfo_{index}" for index in range(1, length + 1)]
    definition = workflow(queue_of(emulator))
    topology = definition.topology
    topology.ClearField("dependencies")
    del topology.nodes["MediaInfo_1581665960537"]
    for source, target in zip(["Start", *names], [*names, "End"], strict=True):
        topology.dependencies[source] = target
    for name in names:
        topology.nodes[name].type = "MediaInfo"
    created = await create(stubs, definition)
    assert created.topology == topology
    described = await stubs.workflows.DescribeMediaWorkflows(
        W.DescribeMediaWorkflowsRequest(workflow_ids=[created.workflow_id])
    )
    assert described.media_workflow_list[0].topology == topology


# ---- runs ------------------------------------------------------------------------------------


@pytest.fixture
async def polling_stubs(settings: Settings, credentials: Credentials) -> AsyncIterator[Stubs]:
    running = await start_gateway(
        replace(settings, tracking=FAST_POLLS),
        StaticCredentialsProvider(credentials),
        access=platform_access(),
    )
    try:
        async with grpc.aio.insecure_channel(running.address) as channel:
            yield stubs_on(channel)
    finally:
        await running.stop(grace_s=0)


async def test_a_triggered_run_is_watched_to_its_end_and_recorded(
    polling_stubs: Stubs, emulator: RunningEmulator
) -> None:
    stubs = polling_stubs
    created = await create(stubs, workflow(queue_of(emulator)))
    triggered = await stubs.workflows.TriggerMediaWorkflow(
        W.TriggerMediaWorkflowRequest(workflow_id=created.workflow_id, object=SAMPLE_KEY)
    )
    run_id = triggered.instance_id
    assert run_id.startswith("i")

    updates = await watch_to_end(stubs, run_id)
    assert updates[-1].state == media_pb2.JOB_STATE_SUCCESS
    assert all(u.state == media_pb2.JOB_STATE_RUNNING for u in updates[:-1])

    described = await stubs.workflows.DescribeWorkflowExecution(
        W.DescribeWorkflowExecutionRequest(run_id=run_id)
    )
    (run,) = described.workflow_execution
    assert (run.workflow_id, run.workflow_name, run.object) == (
        created.workflow_id,
        "probe-uploads",
        SAMPLE_KEY,
    )
    (task,) = run.tasks
    assert (task.type, task.name, task.state) == (
        "MediaInfo",
        "MediaInfo_1581665960537",
        media_pb2.JOB_STATE_SUCCESS,
    )
    job = emulator.state.jobs[task.job_id]
    assert (job.spec.tag, job.spec.object_key, str(job.state)) == (
        "MediaInfo",
        SAMPLE_KEY,
        "Success",
    )
    assert run.topology == created.topology

    listed = await stubs.workflows.ListWorkflowExecutions(
        W.ListWorkflowExecutionsRequest(workflow_id=created.workflow_id)
    )
    assert [(e.run_id, e.state_text, e.object) for e in listed.workflow_execution_list] == [
        (run_id, "Success", SAMPLE_KEY)
    ]
    assert not listed.next_token


async def test_a_failing_node_fails_the_run(stubs: Stubs, emulator: RunningEmulator) -> None:
    created = await create(stubs, workflow(queue_of(emulator)))
    emulator.state.set_queue_state(queue_of(emulator), QueueState.PAUSED)
    triggered = await stubs.workflows.TriggerMediaWorkflow(
        W.TriggerMediaWorkflowRequest(workflow_id=created.workflow_id, object=SAMPLE_KEY)
    )
    run = await emulator.state.resources.wait_for_run(triggered.instance_id, {"Failed"})
    (task,) = run.tasks
    assert (task.state, task.code) == ("Failed", "QueuePaused")


async def test_listing_runs_pages_and_filters(stubs: Stubs, emulator: RunningEmulator) -> None:
    created = await create(stubs, workflow(queue_of(emulator)))
    run_ids = []
    for _ in range(3):
        triggered = await stubs.workflows.TriggerMediaWorkflow(
            W.TriggerMediaWorkflowRequest(workflow_id=created.workflow_id, object=SAMPLE_KEY)
        )
        run_ids.append(triggered.instance_id)
    for run_id in run_ids:
        await emulator.state.resources.wait_for_run(run_id, {"Success"})
    first = await stubs.workflows.ListWorkflowExecutions(
        W.ListWorkflowExecutionsRequest(workflow_id=created.workflow_id, size=2)
    )
    assert [e.run_id for e in first.workflow_execution_list] == run_ids[:0:-1]  # newest first
    second = await stubs.workflows.ListWorkflowExecutions(
        W.ListWorkflowExecutionsRequest(
            workflow_id=created.workflow_id, size=2, next_token=first.next_token
        )
    )
    assert [e.run_id for e in second.workflow_execution_list] == run_ids[:1]
    assert not second.next_token
    failed_only = await stubs.workflows.ListWorkflowExecutions(
        W.ListWorkflowExecutionsRequest(
            workflow_id=created.workflow_id, states=[media_pb2.JOB_STATE_FAILED]
        )
    )
    assert not failed_only.workflow_execution_list


@pytest.mark.parametrize("state", [media_pb2.JOB_STATE_SUBMITTED, media_pb2.JOB_STATE_PAUSE])
async def test_listing_runs_in_a_state_no_run_has_is_refused_before_ci(
    stubs: Stubs, emulator: RunningEmulator, state: int
) -> None:
    """DescribeWorkflowExecutions takes Running, Success, Failed and Cancel (its page): the
    gateway names the field instead of passing CI's InvalidArgument on."""
    seen = emulator.state.requests_seen
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await stubs.workflows.ListWorkflowExecutions(
            W.ListWorkflowExecutionsRequest(
                workflow_id="w" + "0" * 32,
                states=[media_pb2.JOB_STATE_SUCCESS, state],  # type: ignore[list-item]
            )
        )
    error = rich_error(caught.value)
    assert error.code is grpc.StatusCode.INVALID_ARGUMENT
    assert list(error.violations) == ["states"]
    assert emulator.state.requests_seen == seen


async def test_listing_runs_sends_creation_times_in_cis_form(
    stubs: Stubs, emulator: RunningEmulator
) -> None:
    """As for ListMediaJobs: the ISO forms the gateway accepts (`Z`, `+08:00`, unpadded
    fields) reach CI as `2001-01-01T00:00:00+0800` (notes §5.2), never as given."""
    created = await create(stubs, workflow(queue_of(emulator)))
    sent: list[tuple[str, str]] = []

    async def record(request: web.Request, target: EmulatorTarget) -> web.StreamResponse | None:
        if request.method == "GET" and "startCreationTime" in request.query:
            sent.append((request.query["startCreationTime"], request.query["endCreationTime"]))
        return None

    emulator.state.request_hooks.append(record)
    listed = await stubs.workflows.ListWorkflowExecutions(
        W.ListWorkflowExecutionsRequest(
            workflow_id=created.workflow_id,
            start_creation_time="2000-1-1T0:0:0Z",
            end_creation_time="2100-01-01T08:00:00+08:00",
        )
    )
    assert not listed.workflow_execution_list
    assert sent == [("2000-01-01T00:00:00+0000", "2100-01-01T08:00:00+0800")]


async def test_an_unknown_run_is_not_found(stubs: Stubs) -> None:
    for call in (
        stubs.workflows.DescribeWorkflowExecution(
            W.DescribeWorkflowExecutionRequest(run_id="inothere")
        ),
        watch_to_end(stubs, "inothere"),
    ):
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await call
        assert caught.value.code() is grpc.StatusCode.NOT_FOUND


async def test_an_upload_under_the_prefix_starts_active_workflows_only(
    stubs: Stubs, emulator: RunningEmulator
) -> None:
    active = await create(stubs, workflow(queue_of(emulator)))
    await create(stubs, workflow(queue_of(emulator), name="paused", state=W.WORKFLOW_STATE_PAUSED))
    await create(stubs, workflow(queue_of(emulator), name="elsewhere", prefix="other/"))
    async with (
        aiohttp.ClientSession() as session,
        session.post(
            f"{emulator.url}/_emulator/uploads", json={"bucket": BUCKET, "key": SAMPLE_KEY}
        ) as answer,
    ):
        assert answer.status == 200
        (run_id,) = (await answer.json())["runs"]
    run = emulator.state.resources.workflows.executions[run_id]
    assert run.workflow.workflow_id == active.workflow_id
    assert (await emulator.state.resources.wait_for_run(run_id, {"Success"})).state == "Success"


async def test_a_runs_jobs_name_their_run_and_list_by_workflow_id(
    stubs: Stubs, emulator: RunningEmulator
) -> None:
    """Through the gateway: the typed `JobsDetail.workflow` of each job a run started, and
    ListMediaJobs' `workflow_id` finding exactly the jobs of that workflow's runs."""
    mine = await create(stubs, workflow(queue_of(emulator), name="mine"))
    other = await create(stubs, workflow(queue_of(emulator), name="other"))
    runs = {}
    for workflow_id in (mine.workflow_id, mine.workflow_id, other.workflow_id):
        triggered = await stubs.workflows.TriggerMediaWorkflow(
            W.TriggerMediaWorkflowRequest(workflow_id=workflow_id, object=SAMPLE_KEY)
        )
        run = await emulator.state.resources.wait_for_run(triggered.instance_id, {"Success"})
        (task,) = run.tasks
        runs[task.job_id] = (run.run_id, workflow_id)
    own = await stubs.jobs.SubmitMediaJob(
        service_pb2.SubmitMediaJobRequest(
            request=media_pb2.Request(input=media_pb2.Input(object=SAMPLE_KEY))
        )
    )
    node = "MediaInfo_1581665960537"

    described = await stubs.jobs.DescribeMediaJobs(
        service_pb2.DescribeMediaJobsRequest(job_ids=[*runs, own.jobs_detail.job_id])
    )
    by_id = {detail.job_id: detail for detail in described.jobs_detail}
    for job_id, (run_id, workflow_id) in runs.items():
        name = "mine" if workflow_id == mine.workflow_id else "other"
        assert list(by_id[job_id].workflow) == [
            media_pb2.JobWorkflow(
                name=node, run_id=run_id, workflow_id=workflow_id, workflow_name=name
            )
        ]
        assert not by_id[job_id].extra_nodes  # typed, nothing left over
    assert not by_id[own.jobs_detail.job_id].workflow

    async def listed(workflow_id: str) -> list[str]:
        reply = await stubs.jobs.ListMediaJobs(
            service_pb2.ListMediaJobsRequest(workflow_id=workflow_id, size=100)
        )
        assert not reply.next_token
        return [detail.job_id for detail in reply.jobs_detail]

    mine_jobs = [job_id for job_id, (_, w) in runs.items() if w == mine.workflow_id]
    other_jobs = [job_id for job_id, (_, w) in runs.items() if w == other.workflow_id]
    assert await listed(mine.workflow_id) == mine_jobs[::-1]  # newest first
    assert await listed(other.workflow_id) == other_jobs
    assert await listed("wnosuchworkflow") == []
    reply = await stubs.jobs.ListMediaJobs(
        service_pb2.ListMediaJobsRequest(workflow_id=other.workflow_id)
    )
    assert [w.run_id for d in reply.jobs_detail for w in d.workflow] == [runs[other_jobs[0]][0]]


# ---- WorkflowFinish ----------------------------------------------------------------------------


@pytest.fixture
async def receiving_gateway(
    settings: Settings, credentials: Credentials
) -> AsyncIterator[RunningGateway]:
    """Polls once per run, then only CI's WorkflowFinish callback can tell it the run ended."""
    callbacks = Callbacks(listen="127.0.0.1:0", public_url="auto", token="t" * 40)
    running = await start_gateway(
        replace(settings, tracking=SLOW_POLLS, callbacks=callbacks),
        StaticCredentialsProvider(credentials),
        access=platform_access(),
    )
    try:
        yield running
    finally:
        await running.stop(grace_s=0)


async def test_the_workflow_finish_callback_reaches_watchers(
    receiving_gateway: RunningGateway, emulator: RunningEmulator
) -> None:
    emulator.state.hold_running()  # the watch starts before the run can end
    async with grpc.aio.insecure_channel(receiving_gateway.address) as channel:
        stubs = stubs_on(channel)
        created = await create(stubs, workflow(queue_of(emulator)))
        notify = created.topology.nodes["Start"].input.notify_config
        # CI holds the receiver's URL (token included); callers see only its stand-in.
        assert notify.url == GATEWAY_CALLBACK
        assert (notify.event, notify.state) == ("WorkflowFinish", "On")
        token = receiving_gateway.tracking.token
        described = await stubs.workflows.DescribeMediaWorkflows(
            W.DescribeMediaWorkflowsRequest(workflow_ids=[created.workflow_id])
        )
        assert token not in str(described)
        stored = emulator.state.resources.workflows.workflows[created.workflow_id]
        assert f"/ci-callback/{token}/" in str(stored.fields())
        # What a caller read back can be sent back: the stand-in becomes the real URL again.
        renamed = described.media_workflow_list[0]
        renamed.name = "renamed"
        updated = await stubs.workflows.UpdateMediaWorkflow(
            W.UpdateMediaWorkflowRequest(workflow_id=created.workflow_id, media_workflow=renamed)
        )
        assert token not in str(updated)
        stored = emulator.state.resources.workflows.workflows[created.workflow_id]
        assert stored.name == "renamed" and f"/ci-callback/{token}/" in str(stored.fields())

        triggered = await stubs.workflows.TriggerMediaWorkflow(
            W.TriggerMediaWorkflowRequest(workflow_id=created.workflow_id, object=SAMPLE_KEY)
        )
        watch = asyncio.ensure_future(watch_to_end(stubs, triggered.instance_id))
        await emulator.state.resources.wait_for_run(triggered.instance_id, {"Running"})
        emulator.state.release_running()
        updates = await watch
    assert updates[-1].state == media_pb2.JOB_STATE_SUCCESS
    (delivery,) = await emulator.state.wait_for_callbacks(1)
    assert delivery.status == 200 and "/ci-callback/" in delivery.url


async def test_a_workflow_naming_its_own_notify_config_keeps_it(
    receiving_gateway: RunningGateway, emulator: RunningEmulator
) -> None:
    mine = queues_pb2.QueueNotifyConfig(
        url="http://127.0.0.1:9/mine", event="WorkflowFinish", type="Url", state="Off"
    )
    definition = workflow(queue_of(emulator))
    definition.topology.nodes["Start"].input.notify_config.CopyFrom(mine)
    async with grpc.aio.insecure_channel(receiving_gateway.address) as channel:
        created = await create(stubs_on(channel), definition)
    assert created.topology.nodes["Start"].input.notify_config == mine


async def test_a_start_event_as_cis_own_sample_shows_it_is_taken(
    stubs: Stubs, emulator: RunningEmulator
) -> None:
    """DescribeMediaWorkflows' sample answers a Start node's NotifyConfig with Event
    `TaskFinish,WorkflowFinish,WorkflowStart`: a definition like that, read back and written
    again, must not be refused by the gateway or the emulator."""
    definition = workflow(queue_of(emulator))
    notify = queues_pb2.QueueNotifyConfig(
        url="http://www.callback.com",
        event="TaskFinish,WorkflowFinish,WorkflowStart",
        type="Url",
        state="On",
        result_format="JSON",
    )
    definition.topology.nodes["Start"].input.notify_config.CopyFrom(notify)
    created = await create(stubs, definition)
    assert created.topology.nodes["Start"].input.notify_config == notify
    updated = await stubs.workflows.UpdateMediaWorkflow(
        W.UpdateMediaWorkflowRequest(workflow_id=created.workflow_id, media_workflow=created)
    )
    assert updated.media_workflow.topology.nodes["Start"].input.notify_config == notify


async def test_a_notify_config_read_back_is_still_held_to_cis_values(
    stubs: Stubs, emulator: RunningEmulator
) -> None:
    """A Start node's NotifyConfig whose URL is the gateway's stand-in (`GATEWAY_CALLBACK`, as
    a caller reads it back) goes to CI with everything else it says: its State, Type, Event and
    ResultFormat are checked as any NotifyConfig's (notes §8.1), only its URL is the gateway's."""
    definition = workflow(queue_of(emulator))
    definition.topology.nodes["Start"].input.notify_config.CopyFrom(
        queues_pb2.QueueNotifyConfig(
            url=GATEWAY_CALLBACK, event="WorkflowFinish", type="Url", state="Maybe"
        )
    )
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await create(stubs, definition)
    error = rich_error(caught.value)
    assert error.code is grpc.StatusCode.INVALID_ARGUMENT
    assert "media_workflow.topology.nodes['Start'].input.notify_config.state" in error.violations


async def test_run_watches_end_at_once_when_the_gateway_drains(
    settings: Settings, credentials: Credentials, emulator: RunningEmulator
) -> None:
    """As job watches do: UNAVAILABLE at the start of the drain, so the client watches again
    elsewhere instead of holding the drain for its whole grace period."""
    running = await start_gateway(
        replace(settings, tracking=SLOW_POLLS),
        StaticCredentialsProvider(credentials),
        access=platform_access(),
    )
    emulator.state.hold_running()
    async with grpc.aio.insecure_channel(running.address) as channel:
        stubs = stubs_on(channel)
        created = await create(stubs, workflow(queue_of(emulator)))
        triggered = await stubs.workflows.TriggerMediaWorkflow(
            W.TriggerMediaWorkflowRequest(workflow_id=created.workflow_id, object=SAMPLE_KEY)
        )
        call = stubs.workflows.WatchWorkflowExecution(
            W.WatchWorkflowExecutionRequest(run_id=triggered.instance_id)
        )
        first = await call.read()
        assert isinstance(first, W.WatchWorkflowExecutionResponse)
        assert first.workflow_execution.state == media_pb2.JOB_STATE_RUNNING
        async with asyncio.timeout(10):  # far below the 30 s grace
            await running.stop(grace_s=30)
            with pytest.raises(grpc.aio.AioRpcError) as caught:
                await call.read()
    assert caught.value.code() is grpc.StatusCode.UNAVAILABLE
    emulator.state.release_running()


async def test_a_forged_workflow_callback_is_refused(
    receiving_gateway: RunningGateway, emulator: RunningEmulator
) -> None:
    """CI signs nothing: the receiver believes CI's describe, never the body."""
    emulator.state.hold_running()
    async with grpc.aio.insecure_channel(receiving_gateway.address) as channel:
        stubs = stubs_on(channel)
        created = await create(stubs, workflow(queue_of(emulator)))
        triggered = await stubs.workflows.TriggerMediaWorkflow(
            W.TriggerMediaWorkflowRequest(workflow_id=created.workflow_id, object=SAMPLE_KEY)
        )
    url = receiving_gateway.tracking.callback_url(Target(BUCKET, REGION))
    assert url is not None

    def body(run_id: str, state: str, bucket: str = BUCKET) -> bytes:
        return (
            f"<Response><EventName>WorkflowFinish</EventName><WorkflowExecution>"
            f"<RunId>{run_id}</RunId><BucketId>{bucket}</BucketId><State>{state}</State>"
            f"</WorkflowExecution></Response>"
        ).encode()

    answers = {}
    async with aiohttp.ClientSession() as session:
        for case, data in {
            "claims an end CI has not seen": body(triggered.instance_id, "Success"),
            "names a run CI does not know": body("inothere", "Success"),
            "names another bucket": body(triggered.instance_id, "Success", "other-1250000000"),
            "is no workflow callback": b"<Response><EventName>WorkflowFinish</EventName>"
            b"</Response>",
        }.items():
            async with session.post(url, data=data) as answer:
                answers[case] = answer.status
    emulator.state.release_running()
    # The real WorkflowFinish follows: let it land before the gateway goes away.
    await emulator.state.resources.wait_for_run(triggered.instance_id, {"Success"})
    (delivery,) = await emulator.state.wait_for_callbacks(1)
    assert delivery.status == 200
    assert answers == {
        "claims an end CI has not seen": 422,
        "names a run CI does not know": 422,
        "names another bucket": 400,
        "is no workflow callback": 400,
    }


async def test_a_transcode_node_runs_its_template(
    stubs: Stubs, emulator: RunningEmulator, bucket_dir: Path
) -> None:
    template = await stubs.templates.CreateMediaTemplate(
        templates_pb2.CreateMediaTemplateRequest(
            template=templates_pb2.MediaTemplate(
                name="mp4-small",
                trans_tpl=kinds.Transcode(
                    container=kinds.Container(format="mp4"),
                    video=kinds.TranscodeVideo(codec="H.264", width="160"),
                    audio=kinds.TranscodeAudio(codec="aac"),
                ),
            )
        )
    )
    operation = W.WorkflowNodeOperation(
        template_id=template.template.template_id,
        output=kinds.Output(region=REGION, bucket=BUCKET, object="wf/small.mp4"),
    )
    created = await create(
        stubs, workflow(queue_of(emulator), node_type="Transcode", operation=operation)
    )
    triggered = await stubs.workflows.TriggerMediaWorkflow(
        W.TriggerMediaWorkflowRequest(workflow_id=created.workflow_id, object=SAMPLE_KEY)
    )
    run = await emulator.state.resources.wait_for_run(
        triggered.instance_id, {"Success", "Failed"}, timeout=60
    )
    (task,) = run.tasks
    assert (run.state, task.state, task.template_name) == ("Success", "Success", "mp4-small")
    assert (bucket_dir / "wf" / "small.mp4").is_file()
    job = emulator.state.jobs[task.job_id]
    assert job.spec.tag == "Transcode"


async def test_a_shared_client_is_held_to_its_own_cap_of_run_watches(
    settings: Settings, credentials: Credentials, emulator: RunningEmulator, tmp_path: Path
) -> None:
    """As for job watches (`tracking.max_watchers_per_client`): one client of a shared gateway
    cannot take every run watcher and leave the other clients none."""
    alpha, beta = "tok-" + secrets.token_urlsafe(24), "tok-" + secrets.token_urlsafe(24)
    access = token_access_file(tmp_path / "access.toml", ("alpha", alpha), ("beta", beta))
    one_each = replace(settings, tracking=replace(SLOW_POLLS, max_watchers_per_client=1))
    running = await start_gateway(
        one_each, StaticCredentialsProvider(credentials), access=ClientAccess.from_file(access)
    )
    emulator.state.hold_running()
    as_alpha, as_beta = bearer(alpha), bearer(beta)
    try:
        async with (
            grpc.aio.insecure_channel(running.address) as first,
            grpc.aio.insecure_channel(running.address) as second,
        ):
            stubs = stubs_on(first)
            created = (
                await stubs.workflows.CreateMediaWorkflow(
                    W.CreateMediaWorkflowRequest(media_workflow=workflow(queue_of(emulator))),
                    metadata=as_alpha,
                )
            ).media_workflow
            triggered = await stubs.workflows.TriggerMediaWorkflow(
                W.TriggerMediaWorkflowRequest(workflow_id=created.workflow_id, object=SAMPLE_KEY),
                metadata=as_alpha,
            )
            request = W.WatchWorkflowExecutionRequest(run_id=triggered.instance_id)
            watching = stubs.workflows.WatchWorkflowExecution(request, metadata=as_alpha)
            async with asyncio.timeout(10):
                first_update = await watching.read()
            assert isinstance(first_update, W.WatchWorkflowExecutionResponse)
            # Another connection, the same client: over its cap of one.
            again = stubs_on(second).workflows.WatchWorkflowExecution(request, metadata=as_alpha)
            with pytest.raises(grpc.aio.AioRpcError) as caught:
                async with asyncio.timeout(10):
                    await again.read()
            assert caught.value.code() is grpc.StatusCode.RESOURCE_EXHAUSTED
            # The same connection, another client: its own cap.
            other = stubs.workflows.WatchWorkflowExecution(request, metadata=as_beta)
            async with asyncio.timeout(10):
                assert isinstance(await other.read(), W.WatchWorkflowExecutionResponse)
            watching.cancel()
            other.cancel()
    finally:
        emulator.state.release_running()
        await running.stop(grace_s=0)


async def test_a_run_watch_ends_when_its_client_is_removed_and_only_its(
    settings: Settings, credentials: Credentials, emulator: RunningEmulator, tmp_path: Path
) -> None:
    """An access-file reload that removes a client ends its run watches at once, UNAUTHENTICATED
    as its next call would be (tests/access/test_job_tags.py has the job watches); another
    client's watch of the same run goes on to the run's end."""
    tokens = {name: "tok-" + secrets.token_urlsafe(24) for name in ("alpha", "beta")}

    def write(*names: str) -> Path:
        clients = [(name, tokens[name]) for name in names]
        return token_access_file(tmp_path / "access.toml", *clients)

    sleep = FakeSleep()
    access = ClientAccess.from_file(write("alpha", "beta"), sleep=sleep)
    running = await start_gateway(
        replace(settings, tracking=FAST_POLLS),
        StaticCredentialsProvider(credentials),
        access=access,
    )
    assert await sleep.next_delay() == 5  # the access file is watched
    emulator.state.hold_running()
    as_alpha, as_beta = bearer(tokens["alpha"]), bearer(tokens["beta"])
    try:
        async with grpc.aio.insecure_channel(running.address) as channel:
            stubs = stubs_on(channel)
            created = await stubs.workflows.CreateMediaWorkflow(
                W.CreateMediaWorkflowRequest(media_workflow=workflow(queue_of(emulator))),
                metadata=as_beta,
            )
            triggered = await stubs.workflows.TriggerMediaWorkflow(
                W.TriggerMediaWorkflowRequest(
                    workflow_id=created.media_workflow.workflow_id, object=SAMPLE_KEY
                ),
                metadata=as_beta,
            )
            request = W.WatchWorkflowExecutionRequest(run_id=triggered.instance_id)
            watches = [
                stubs.workflows.WatchWorkflowExecution(request, metadata=who, timeout=30)
                for who in (as_alpha, as_beta)
            ]
            for call in watches:
                async with asyncio.timeout(10):
                    assert isinstance(await call.read(), W.WatchWorkflowExecutionResponse)

            write("beta")  # alpha removed
            sleep.release()
            assert await sleep.next_delay() == 5  # reloaded

            alpha, beta = watches
            with pytest.raises(grpc.aio.AioRpcError) as caught:
                async with asyncio.timeout(10):  # at the reload, the run still running
                    await alpha.read()
            assert caught.value.code() is grpc.StatusCode.UNAUTHENTICATED
            emulator.state.release_running()
            async with asyncio.timeout(30):
                last = None
                while (update := await beta.read()) is not grpc.aio.EOF:  # type: ignore[attr-defined]
                    last = update  # bounded: the run ends, and the stream with it
            assert isinstance(last, W.WatchWorkflowExecutionResponse)
            assert last.workflow_execution.state_text == "Success"
            assert await beta.code() is grpc.StatusCode.OK
            assert len(access.open_calls) == 0
    finally:
        emulator.state.release_running()
        await running.stop(grace_s=0)


class _ScopeOfAttempts(logging.Handler):
    """Notes, for each CI attempt the client logs, the request id of the RPC it ran in."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.request_ids: list[str | None] = []

    def emit(self, record: logging.LogRecord) -> None:
        scope = rpc_context.current()
        self.request_ids.append(scope.request_id if scope is not None else None)


async def test_a_runs_polls_are_not_part_of_the_watch_that_started_them(
    settings: Settings, credentials: Credentials, emulator: RunningEmulator
) -> None:
    """A run's poll serves every watcher of it, for as long as any watches: as the job poller,
    it must not run in the context of the first watcher's RPC (its request id on every poll's
    log line, its attempt count, its trace span as the parent of every later poll)."""
    attempts = _ScopeOfAttempts()
    upstream = logging.getLogger(UPSTREAM_LOGGER)
    level = upstream.level
    upstream.setLevel(logging.DEBUG)
    upstream.addHandler(attempts)
    running = await start_gateway(
        replace(settings, tracking=FAST_POLLS),
        StaticCredentialsProvider(credentials),
        access=platform_access(),
    )
    emulator.state.hold_running()
    try:
        async with grpc.aio.insecure_channel(running.address) as channel:
            stubs = stubs_on(channel)
            created = await create(stubs, workflow(queue_of(emulator)))
            triggered = await stubs.workflows.TriggerMediaWorkflow(
                W.TriggerMediaWorkflowRequest(workflow_id=created.workflow_id, object=SAMPLE_KEY)
            )
            attempts.request_ids.clear()  # the calls above are RPCs of their own
            call = stubs.workflows.WatchWorkflowExecution(
                W.WatchWorkflowExecutionRequest(run_id=triggered.instance_id),
                metadata=(("x-request-id", "watch-a"),),
                timeout=20,
            )
            first = await call.read()
            assert isinstance(first, W.WatchWorkflowExecutionResponse)
            emulator.state.release_running()
            last = first.workflow_execution
            async with asyncio.timeout(20):
                while (reply := await call.read()) is not grpc.aio.EOF:  # type: ignore[attr-defined]
                    assert isinstance(reply, W.WatchWorkflowExecutionResponse)
                    last = reply.workflow_execution
            assert last.state == media_pb2.JOB_STATE_SUCCESS
    finally:
        emulator.state.release_running()
        await running.stop(grace_s=0)
        upstream.removeHandler(attempts)
        upstream.setLevel(level)
    assert attempts.request_ids  # the polls were logged ...
    assert set(attempts.request_ids) == {None}  # ... and none as part of the watch


async def test_a_run_watched_never_shows_the_receivers_url(
    receiving_gateway: RunningGateway, emulator: RunningEmulator
) -> None:
    """A run's topology is its workflow's, whose Start node CI holds with the receiver's URL,
    token included (a secret: with it anyone can make the gateway re-read jobs from CI). As
    DescribeWorkflowExecution, WatchWorkflowExecution shows its stand-in instead."""
    token = receiving_gateway.tracking.token
    async with grpc.aio.insecure_channel(receiving_gateway.address) as channel:
        stubs = stubs_on(channel)
        created = await create(stubs, workflow(queue_of(emulator)))
        triggered = await stubs.workflows.TriggerMediaWorkflow(
            W.TriggerMediaWorkflowRequest(workflow_id=created.workflow_id, object=SAMPLE_KEY)
        )
        updates = await watch_to_end(stubs, triggered.instance_id)
    assert updates[-1].state == media_pb2.JOB_STATE_SUCCESS
    for update in updates:
        assert token not in str(update)
        notify = update.topology.nodes["Start"].input.notify_config
        assert notify.url == GATEWAY_CALLBACK
