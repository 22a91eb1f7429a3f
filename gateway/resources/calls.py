"""One method per CI operation on queues, templates and workflows, as `CiClient` has for jobs.

Each reads like its documentation row (method, path, query, body, answer) and runs through
`CiClient.call`, so signing, retries, budgets, time-outs and error mapping are the jobs' own.
Creates (`POST /template`, `POST /workflow`, `POST /triggerworkflow`) make something new each
time they reach CI, so they are replayed only when the request certainly never left (or CI
throttled it); every other call (reads, `PUT`s, `DELETE`s) is retried like a read: a `PUT`
sends the whole of what it sets, so sending it again sets the same. Bodies are built by the XML
codec (`template_wire` for a template's per-kind body).

What an answer must hold is declared with the call (`CiCall.requires`): a create or an update
answers the template, workflow or queue with its id, a trigger the run's `InstanceId`
(catalogue §2.2, §2.3; notes §8.2); an answer without it is refused, never an empty success.
"""

from __future__ import annotations

from collections.abc import Mapping, MutableSequence, Sequence
from dataclasses import replace

from gateway._proto import queues_pb2, templates_pb2, workflows_pb2, xml_pb2
from gateway.errors import GatewayError, ResourceNotFound
from gateway.model import Target
from gateway.resources import template_wire
from gateway.upstream.client import Attempts, CiCall, CiClient, Reply, encode_body
from gateway.upstream.retry import Deadline

Params = Mapping[str, str | None]

# A set NotifyConfig replaces the queue's whole, and CI documents each of its children as
# optional, `State` defaulting to Off (UpdateMediaQueue, CI's page 460/42324; its Event is
# required only when State is On): a set but empty one is the callbacks switched off. The codec
# writes an empty message as no node at all, so the update went out without NotifyConfig and
# the queue kept its callback. How CI reads an empty `<NotifyConfig/>` is not documented
# (UNCONFIRMED), so the default is spelt out instead: State Off is what CI documents to switch
# callbacks off under every reading.
NOTIFY_OFF = "Off"
_NO_NOTIFY_CONFIG = encode_body(queues_pb2.MediaQueue())

# What each answer always holds: the resource written, with its id, or the run started.
TEMPLATE = ("template.template_id",)
WORKFLOW = ("media_workflow.workflow_id",)
QUEUE = ("queue.queue_id",)
RUN = ("instance_id",)


class ResourceCalls:
    """CI's queue, template and workflow operations over one `CiClient`."""

    def __init__(self, client: CiClient) -> None:
        self._client = client

    # Queues (notes §8) ------------------------------------------------------------------------

    async def describe_queues(
        self, target: Target, params: Params, deadline: Deadline
    ) -> Reply[queues_pb2.DescribeMediaQueuesResponse]:
        call = CiCall("DescribeMediaQueues", target, "ci", "GET", "/queue", params)
        response = queues_pb2.DescribeMediaQueuesResponse
        reply = await self._client.call(call, response, deadline, replayable=True)
        answer = reply.message
        _read_text_ids(answer, "NonExistPIDs", answer.non_exist_pids.queue_id)
        return reply

    async def update_queue(
        self, target: Target, queue: queues_pb2.MediaQueue, deadline: Deadline
    ) -> Reply[queues_pb2.UpdateMediaQueueResponse]:
        """UpdateMediaQueue, reading the queue first when `queue` leaves its name, state or
        NotifyConfig empty (CI wants name and state on every update; its older documentation
        NotifyConfig too), so that pausing a queue is one field and keeps its callback. The
        reply, or the error, counts the read's attempts with the write's: both went to CI."""
        attempts = Attempts()
        try:
            if (
                not queue.name
                or queue.state == queues_pb2.QUEUE_STATE_UNSPECIFIED
                or not queue.HasField("notify_config")
            ):
                queue = await self._filled(target, queue, deadline, attempts)
            reply = await attempts.counted(self._write_queue(target, queue, deadline))
        except GatewayError as error:
            attempts.report(error)
            raise
        return replace(reply, attempts=attempts.count)

    async def _filled(
        self,
        target: Target,
        queue: queues_pb2.MediaQueue,
        deadline: Deadline,
        attempts: Attempts,
    ) -> queues_pb2.MediaQueue:
        """`queue` with the name, state and NotifyConfig CI has for it wherever the call left
        them out. NotifyConfig: "required" in CI's older documentation (notes §8.2) and "是" on its
        current page (460/42324) too; what leaving it out does is UNCONFIRMED (keep it, or clear
        it); sending the queue's own is right under every reading."""
        query: dict[str, str | None] = {
            "queueIds": queue.queue_id,
            "state": "All",
            "category": "CateAll",
        }
        reply = await attempts.counted(self.describe_queues(target, query, deadline))
        current = next((q for q in reply.message.queue_list if q.queue_id == queue.queue_id), None)
        if current is None:
            raise ResourceNotFound("queue", queue.queue_id)
        filled = queues_pb2.MediaQueue()
        filled.CopyFrom(queue)
        if not filled.name:
            filled.name = current.name
        if filled.state == queues_pb2.QUEUE_STATE_UNSPECIFIED:
            filled.state, filled.state_text = current.state, current.state_text
        if not filled.HasField("notify_config") and current.HasField("notify_config"):
            filled.notify_config.CopyFrom(current.notify_config)
        return filled

    async def _write_queue(
        self, target: Target, queue: queues_pb2.MediaQueue, deadline: Deadline
    ) -> Reply[queues_pb2.UpdateMediaQueueResponse]:
        # The body is the queue's writable part: Name, State, NotifyConfig. A state the enum
        # lacks (read back from CI) is written as CI's own text.
        body = queues_pb2.MediaQueue(name=queue.name, state=queue.state)
        if not queue.state:
            body.state_text = queue.state_text
        if queue.HasField("notify_config"):
            body.notify_config.CopyFrom(queue.notify_config)
            if _writes_nothing(body.notify_config):
                body.notify_config.state = NOTIFY_OFF
        call = CiCall(
            "UpdateMediaQueue",
            target,
            "ci",
            "PUT",
            f"/queue/{queue.queue_id}",
            body=encode_body(body),
            requires=QUEUE,
        )
        response = queues_pb2.UpdateMediaQueueResponse
        return await self._client.call(call, response, deadline, replayable=True)

    # Templates (catalogue §2.2) ---------------------------------------------------------------

    async def create_template(
        self,
        target: Target,
        template: templates_pb2.MediaTemplate,
        parameters: Sequence[xml_pb2.XmlNode],
        deadline: Deadline,
    ) -> Reply[templates_pb2.CreateMediaTemplateResponse]:
        body = template_wire.request_body(template, parameters)
        call = CiCall(
            "CreateMediaTemplate", target, "ci", "POST", "/template", body=body, requires=TEMPLATE
        )
        response = templates_pb2.CreateMediaTemplateResponse
        return await self._client.call(call, response, deadline, replayable=False)

    async def update_template(
        self,
        target: Target,
        template_id: str,
        template: templates_pb2.MediaTemplate,
        parameters: Sequence[xml_pb2.XmlNode],
        deadline: Deadline,
    ) -> Reply[templates_pb2.UpdateMediaTemplateResponse]:
        body = template_wire.request_body(template, parameters)
        path = f"/template/{template_id}"
        call = CiCall(
            "UpdateMediaTemplate", target, "ci", "PUT", path, body=body, requires=TEMPLATE
        )
        response = templates_pb2.UpdateMediaTemplateResponse
        return await self._client.call(call, response, deadline, replayable=True)

    async def describe_templates(
        self, target: Target, params: Params, deadline: Deadline
    ) -> Reply[templates_pb2.DescribeMediaTemplatesResponse]:
        call = CiCall("DescribeMediaTemplate", target, "ci", "GET", "/template", params)
        response = templates_pb2.DescribeMediaTemplatesResponse
        reply = await self._client.call(call, response, deadline, replayable=True)
        answer = reply.message
        _read_text_ids(answer, "NonExistTIDs", answer.non_exist_tids.template_id)
        return reply

    async def delete_template(
        self, target: Target, template_id: str, deadline: Deadline
    ) -> Reply[templates_pb2.DeleteMediaTemplateResponse]:
        path = f"/template/{template_id}"
        call = CiCall("DeleteMediaTemplate", target, "ci", "DELETE", path)
        response = templates_pb2.DeleteMediaTemplateResponse
        return await self._client.call(call, response, deadline, replayable=True)

    # Workflows and their runs (catalogue §2.3) ------------------------------------------------

    async def create_workflow(
        self, target: Target, workflow: workflows_pb2.MediaWorkflow, deadline: Deadline
    ) -> Reply[workflows_pb2.CreateMediaWorkflowResponse]:
        body = encode_body(workflows_pb2.MediaWorkflowBody(media_workflow=workflow))
        call = CiCall(
            "CreateMediaWorkflow", target, "ci", "POST", "/workflow", body=body, requires=WORKFLOW
        )
        response = workflows_pb2.CreateMediaWorkflowResponse
        return await self._client.call(call, response, deadline, replayable=False)

    async def update_workflow(
        self,
        target: Target,
        workflow_id: str,
        workflow: workflows_pb2.MediaWorkflow,
        deadline: Deadline,
    ) -> Reply[workflows_pb2.UpdateMediaWorkflowResponse]:
        body = encode_body(workflows_pb2.MediaWorkflowBody(media_workflow=workflow))
        path = f"/workflow/{workflow_id}"
        call = CiCall(
            "UpdateMediaWorkflow", target, "ci", "PUT", path, body=body, requires=WORKFLOW
        )
        response = workflows_pb2.UpdateMediaWorkflowResponse
        return await self._client.call(call, response, deadline, replayable=True)

    async def describe_workflows(
        self, target: Target, params: Params, deadline: Deadline
    ) -> Reply[workflows_pb2.DescribeMediaWorkflowsResponse]:
        call = CiCall("DescribeMediaWorkflow", target, "ci", "GET", "/workflow", params)
        response = workflows_pb2.DescribeMediaWorkflowsResponse
        return await self._client.call(call, response, deadline, replayable=True)

    async def delete_workflow(
        self, target: Target, workflow_id: str, deadline: Deadline
    ) -> Reply[workflows_pb2.DeleteMediaWorkflowResponse]:
        path = f"/workflow/{workflow_id}"
        call = CiCall("DeleteMediaWorkflow", target, "ci", "DELETE", path)
        response = workflows_pb2.DeleteMediaWorkflowResponse
        return await self._client.call(call, response, deadline, replayable=True)

    # Activate and pause: the Go SDK reads no answer (as for CancelMediaJob, whose answer is
    # documented empty), the catalogue documents none. UNCONFIRMED whether CI sends a body, so
    # the tolerant reading: an empty 200 is their answer too (the emulator sends `<RequestId>`).

    async def activate_workflow(
        self, target: Target, workflow_id: str, deadline: Deadline
    ) -> Reply[workflows_pb2.ActivateMediaWorkflowResponse]:
        path = f"/workflow/{workflow_id}"
        call = CiCall(
            "ActiveMediaWorkflow", target, "ci", "PUT", path, {"active": None}, empty_ok=True
        )
        response = workflows_pb2.ActivateMediaWorkflowResponse
        return await self._client.call(call, response, deadline, replayable=True)

    async def pause_workflow(
        self, target: Target, workflow_id: str, deadline: Deadline
    ) -> Reply[workflows_pb2.PauseMediaWorkflowResponse]:
        path = f"/workflow/{workflow_id}"
        call = CiCall(
            "PausedMediaWorkflow", target, "ci", "PUT", path, {"paused": None}, empty_ok=True
        )
        response = workflows_pb2.PauseMediaWorkflowResponse
        return await self._client.call(call, response, deadline, replayable=True)

    async def trigger_workflow(
        self, target: Target, params: Params, deadline: Deadline
    ) -> Reply[workflows_pb2.TriggerMediaWorkflowResponse]:
        call = CiCall(
            "TriggerWorkflow", target, "ci", "POST", "/triggerworkflow", params, requires=RUN
        )
        response = workflows_pb2.TriggerMediaWorkflowResponse
        return await self._client.call(call, response, deadline, replayable=False)

    async def list_executions(
        self, target: Target, params: Params, deadline: Deadline
    ) -> Reply[workflows_pb2.ListWorkflowExecutionsResponse]:
        path = "/workflowexecution"
        call = CiCall("DescribeWorkflowExecutions", target, "ci", "GET", path, params)
        response = workflows_pb2.ListWorkflowExecutionsResponse
        return await self._client.call(call, response, deadline, replayable=True)

    async def describe_execution(
        self, target: Target, run_id: str, deadline: Deadline
    ) -> Reply[workflows_pb2.DescribeWorkflowExecutionResponse]:
        path = f"/workflowexecution/{run_id}"
        call = CiCall("DescribeWorkflowExecution", target, "ci", "GET", path)
        response = workflows_pb2.DescribeWorkflowExecutionResponse
        return await self._client.call(call, response, deadline, replayable=True)


def _writes_nothing(config: queues_pb2.QueueNotifyConfig) -> bool:
    """Whether the codec writes `config` as no `<NotifyConfig>` at all: nothing set, or only
    what it leaves out (an empty `kafka_config`)."""
    return encode_body(queues_pb2.MediaQueue(notify_config=config)) == _NO_NOTIFY_CONFIG


def _read_text_ids(
    answer: queues_pb2.DescribeMediaQueuesResponse | templates_pb2.DescribeMediaTemplatesResponse,
    node: str,
    into: MutableSequence[str],
) -> None:
    """Move text `<node>` children of `answer` (`<NonExistPIDs>A</NonExistPIDs>`, repeated)
    from `extra_nodes` into `into`, the container field's id list.

    CI documents two shapes for the ids it does not know: a container of id elements
    (`<NonExistPIDs><QueueID>B</QueueID></NonExistPIDs>` on the media-queue pages,
    `<NonExistTIDs><TemplateId>B</TemplateId></NonExistTIDs>` on the template pages), which the
    codec reads into the typed field; and a repeated text node (DescribeAiQueues' sample, the Go
    SDK's `NonExistPIDs []string`), which the codec, finding text where a container belongs,
    keeps among `extra_nodes`, where the caller would never see the ids as unknown. Which one CI
    sends is UNCONFIRMED, so both are read (a comma-joined text too, as for `NonExistJobIds`)."""
    kept = []
    for extra in answer.extra_nodes:
        if extra.name.lower() == node.lower() and not extra.children:
            ids = (part.strip() for part in extra.text.split(","))
            into.extend(item for item in ids if item)
        else:
            kept.append(extra)
    if len(kept) != len(answer.extra_nodes):
        del answer.extra_nodes[:]
        answer.extra_nodes.extend(kept)
