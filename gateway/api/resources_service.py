"""The servicers of queues, templates and workflows: Protobuf in, validation, CI, Protobuf out.

Three services (`MediaQueueService`, `MediaTemplateService`, `MediaWorkflowService`) shaped
like `MediaJobService`: `resource_validation` turns each RPC into a target and CI's inputs,
`ResourceCalls` makes the call, and any `GatewayError` becomes a rich status. What the gateway
adds beyond one CI call each:

* UpdateMediaQueue reads the queue first when the call leaves its name, state or NotifyConfig
  empty (CI wants name and state on every update, and its older documentation NotifyConfig
  too), so pausing a queue is one field and leaves its callback as it was
  (`ResourceCalls.update_queue`);
* Create/UpdateMediaWorkflow point the Start node's `NotifyConfig` at the gateway's callback
  receiver when the gateway has one and the workflow names none, so `WatchWorkflowExecution`
  hears of finished runs at once instead of by polling (on every replica: the verified run
  travels through the fan-out, `gateway.jobs.fanout`);
* DescribeWorkflowExecution and WatchWorkflowExecution answer NOT_FOUND for a run CI does not
  know (CI answers an empty list). A run is shown whole to any client allowed `workflows_read`
  on its bucket: it has no job tag of its own (its tasks may be of any kind), and the job ids
  it lists are held to the client's `tags` when described (`gateway.api.service`).

The three share one admission bound (`retry.max_in_flight_rpcs`), separate from the jobs' so
that a burst of template reads never starves job submits.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Callable
from typing import Any

import grpc
from google.protobuf.descriptor import FieldDescriptor
from google.protobuf.message import Message

from gateway._proto import (
    queues_pb2,
    queues_pb2_grpc,
    templates_pb2,
    templates_pb2_grpc,
    workflows_pb2,
    workflows_pb2_grpc,
)
from gateway.api import resource_validation as checks
from gateway.api.service import default_client_identity
from gateway.api.servicer import Admission, Servicer, rpc
from gateway.config.settings import Settings
from gateway.errors import GatewayError
from gateway.model import GATEWAY_CALLBACK, Target
from gateway.resources.calls import ResourceCalls
from gateway.resources.executions import ExecutionFollower, the_run
from gateway.scrub import is_gateway_callback
from gateway.status import abort

log = logging.getLogger(__name__)

Context = grpc.aio.ServicerContext[Any, Any]
WORKFLOW_FINISH = "WorkflowFinish"
START_TYPE = "Start"


class _Servicer(Servicer):
    """What the three servicers share beyond `Servicer`: CI's resource calls."""

    def __init__(self, calls: ResourceCalls, settings: Settings, admission: Admission) -> None:
        super().__init__(settings, admission)
        self._calls = calls


# Queues ---------------------------------------------------------------------------------------


class MediaQueueService(_Servicer, queues_pb2_grpc.MediaQueueServiceServicer):
    @rpc
    async def DescribeMediaQueues(
        self, request: queues_pb2.DescribeMediaQueuesRequest, context: Context
    ) -> queues_pb2.DescribeMediaQueuesResponse:
        target, query = checks.validate_describe_queues(request, self._settings)
        reply = await self._calls.describe_queues(target, query, self._deadline(context))
        return self._reply(reply, context)

    @rpc
    async def UpdateMediaQueue(
        self, request: queues_pb2.UpdateMediaQueueRequest, context: Context
    ) -> queues_pb2.UpdateMediaQueueResponse:
        target, queue = checks.validate_update_queue(request, self._settings)
        reply = await self._calls.update_queue(target, queue, self._deadline(context))
        return self._reply(reply, context)


# Templates ------------------------------------------------------------------------------------


class MediaTemplateService(_Servicer, templates_pb2_grpc.MediaTemplateServiceServicer):
    @rpc
    async def CreateMediaTemplate(
        self, request: templates_pb2.CreateMediaTemplateRequest, context: Context
    ) -> templates_pb2.CreateMediaTemplateResponse:
        target, template = checks.validate_create_template(request, self._settings)
        reply = await self._calls.create_template(
            target, template, request.parameters, self._deadline(context)
        )
        return self._reply(reply, context)

    @rpc
    async def UpdateMediaTemplate(
        self, request: templates_pb2.UpdateMediaTemplateRequest, context: Context
    ) -> templates_pb2.UpdateMediaTemplateResponse:
        target, template_id, template = checks.validate_update_template(request, self._settings)
        reply = await self._calls.update_template(
            target, template_id, template, request.parameters, self._deadline(context)
        )
        return self._reply(reply, context)

    @rpc
    async def DescribeMediaTemplates(
        self, request: templates_pb2.DescribeMediaTemplatesRequest, context: Context
    ) -> templates_pb2.DescribeMediaTemplatesResponse:
        target, query = checks.validate_describe_templates(request, self._settings)
        reply = await self._calls.describe_templates(target, query, self._deadline(context))
        return self._reply(reply, context)

    @rpc
    async def DeleteMediaTemplate(
        self, request: templates_pb2.DeleteMediaTemplateRequest, context: Context
    ) -> templates_pb2.DeleteMediaTemplateResponse:
        target, template_id = checks.validate_delete_template(request, self._settings)
        reply = await self._calls.delete_template(target, template_id, self._deadline(context))
        return self._reply(reply, context)


# Workflows ------------------------------------------------------------------------------------


class MediaWorkflowService(_Servicer, workflows_pb2_grpc.MediaWorkflowServiceServicer):
    def __init__(
        self,
        calls: ResourceCalls,
        settings: Settings,
        admission: Admission,
        *,
        follower: ExecutionFollower,
        callback_url: Callable[[Target], str | None] | None = None,
    ) -> None:
        super().__init__(calls, settings, admission)
        self._follower = follower
        self._callback_url = callback_url

    def _use_gateway_callback(self, target: Target, workflow: workflows_pb2.MediaWorkflow) -> None:
        """Point the Start node's NotifyConfig at the gateway's receiver (WorkflowFinish only),
        unless the workflow names one of its own: its runs then reach watchers by polling. A
        NotifyConfig a caller read back from the gateway names the receiver as
        `GATEWAY_CALLBACK` (see `_hide_gateway_callback`), which becomes the real URL again."""
        url = self._callback_url(target) if self._callback_url is not None else None
        for node in workflow.topology.nodes.values():
            if node.type != START_TYPE:
                continue
            notify = node.input.notify_config
            if url and not node.input.HasField("notify_config"):
                notify.CopyFrom(
                    queues_pb2.QueueNotifyConfig(
                        url=url, event=WORKFLOW_FINISH, type="Url", state="On", result_format="XML"
                    )
                )
            elif notify.url == GATEWAY_CALLBACK:
                if not url:
                    notify.ClearField("url")  # this gateway receives no callbacks
                else:
                    notify.url = url

    @staticmethod
    def _hide_gateway_callback(answer: Message) -> None:
        """The receiver's URL carries the callback token (a secret: with it anyone can make the
        gateway re-read jobs from CI), so no answer shows it: every receiver URL
        (`model.is_gateway_callback`, the rule job answers follow: any replica's, any public
        URL's), anywhere in the answer, reads `GATEWAY_CALLBACK`, which an update may send back
        unchanged."""
        _replace_strings(answer, is_gateway_callback, GATEWAY_CALLBACK)

    @rpc
    async def CreateMediaWorkflow(
        self, request: workflows_pb2.CreateMediaWorkflowRequest, context: Context
    ) -> workflows_pb2.CreateMediaWorkflowResponse:
        target, workflow = checks.validate_create_workflow(request, self._settings)
        self._use_gateway_callback(target, workflow)
        reply = await self._calls.create_workflow(target, workflow, self._deadline(context))
        self._hide_gateway_callback(reply.message)
        return self._reply(reply, context)

    @rpc
    async def UpdateMediaWorkflow(
        self, request: workflows_pb2.UpdateMediaWorkflowRequest, context: Context
    ) -> workflows_pb2.UpdateMediaWorkflowResponse:
        target, workflow_id, workflow = checks.validate_update_workflow(request, self._settings)
        self._use_gateway_callback(target, workflow)
        reply = await self._calls.update_workflow(
            target, workflow_id, workflow, self._deadline(context)
        )
        self._hide_gateway_callback(reply.message)
        return self._reply(reply, context)

    @rpc
    async def DescribeMediaWorkflows(
        self, request: workflows_pb2.DescribeMediaWorkflowsRequest, context: Context
    ) -> workflows_pb2.DescribeMediaWorkflowsResponse:
        target, query = checks.validate_describe_workflows(request, self._settings)
        reply = await self._calls.describe_workflows(target, query, self._deadline(context))
        self._hide_gateway_callback(reply.message)
        return self._reply(reply, context)

    @rpc
    async def DeleteMediaWorkflow(
        self, request: workflows_pb2.DeleteMediaWorkflowRequest, context: Context
    ) -> workflows_pb2.DeleteMediaWorkflowResponse:
        target, workflow_id = checks.validate_workflow_ref(request, self._settings)
        reply = await self._calls.delete_workflow(target, workflow_id, self._deadline(context))
        return self._reply(reply, context)

    @rpc
    async def ActivateMediaWorkflow(
        self, request: workflows_pb2.ActivateMediaWorkflowRequest, context: Context
    ) -> workflows_pb2.ActivateMediaWorkflowResponse:
        target, workflow_id = checks.validate_workflow_ref(request, self._settings)
        reply = await self._calls.activate_workflow(target, workflow_id, self._deadline(context))
        return self._reply(reply, context)

    @rpc
    async def PauseMediaWorkflow(
        self, request: workflows_pb2.PauseMediaWorkflowRequest, context: Context
    ) -> workflows_pb2.PauseMediaWorkflowResponse:
        target, workflow_id = checks.validate_workflow_ref(request, self._settings)
        reply = await self._calls.pause_workflow(target, workflow_id, self._deadline(context))
        return self._reply(reply, context)

    @rpc
    async def TriggerMediaWorkflow(
        self, request: workflows_pb2.TriggerMediaWorkflowRequest, context: Context
    ) -> workflows_pb2.TriggerMediaWorkflowResponse:
        target, query = checks.validate_trigger_workflow(request, self._settings)
        reply = await self._calls.trigger_workflow(target, query, self._deadline(context))
        return self._reply(reply, context)

    @rpc
    async def ListWorkflowExecutions(
        self, request: workflows_pb2.ListWorkflowExecutionsRequest, context: Context
    ) -> workflows_pb2.ListWorkflowExecutionsResponse:
        target, query = checks.validate_list_executions(request, self._settings)
        reply = await self._calls.list_executions(target, query, self._deadline(context))
        return self._reply(reply, context)

    @rpc
    async def DescribeWorkflowExecution(
        self, request: workflows_pb2.DescribeWorkflowExecutionRequest, context: Context
    ) -> workflows_pb2.DescribeWorkflowExecutionResponse:
        target, run_id = checks.validate_execution_ref(request, self._settings)
        reply = await self._calls.describe_execution(target, run_id, self._deadline(context))
        the_run(reply.message, run_id)  # NOT_FOUND rather than an empty answer
        self._hide_gateway_callback(reply.message)
        return self._reply(reply, context)

    async def WatchWorkflowExecution(
        self, request: workflows_pb2.WatchWorkflowExecutionRequest, context: Context
    ) -> AsyncIterator[workflows_pb2.WatchWorkflowExecutionResponse]:
        try:
            target, run_id = checks.validate_execution_ref(request, self._settings)
            client = default_client_identity(context)
            async with self._follower.watch(target, run_id, client) as updates:
                async for execution in updates:
                    # A copy (the follower's answer is every watcher's), shown as Describe's is.
                    answer = workflows_pb2.WatchWorkflowExecutionResponse(
                        workflow_execution=execution
                    )
                    self._hide_gateway_callback(answer)
                    yield answer
        except GatewayError as error:
            # Not `rpc`: a stream is not admitted per call; the follower's cap bounds it.
            log.info("WatchWorkflowExecution failed: %s %s", error.status.name, error.reason.value)
            await abort(context, error)


def _replace_strings(message: Message, old: Callable[[str], bool], new: str) -> None:
    """Every string field `old` holds true of, at any depth (maps and lists included), becomes
    `new`. Bounded by the message: it walks only the fields that are set."""
    for field, value in message.ListFields():
        if field.message_type is not None:
            if field.message_type.GetOptions().map_entry:
                items = value.values()
                if field.message_type.fields_by_name["value"].message_type is None:
                    for key, item in list(value.items()):
                        if old(item):
                            value[key] = new
                    continue
            elif field.is_repeated:
                items = value
            else:
                items = [value]
            for item in items:
                _replace_strings(item, old, new)
        elif field.type == FieldDescriptor.TYPE_STRING:
            if field.is_repeated:
                for index, item in enumerate(value):
                    if old(item):
                        value[index] = new
            elif old(value):
                setattr(message, field.name, new)
