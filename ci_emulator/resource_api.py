"""The template and workflow endpoints: `/template`, `/workflow`, `/triggerworkflow`,
`/workflowexecution` (catalogue §2.2, §2.3), routed before the job API by the front end.

The rules of each body and query are in `templates` and `workflows`; here are the endpoints and
the choices where CI is silent (UNCONFIRMED, tolerant reading unless noted):

* an id this bucket does not have (template, workflow) is InvalidArgument 400, as an unknown
  queue is; describing unknown workflow ids answers them in `<NonExistIDs>` (200), unknown
  template ids in `<NonExistTIDs><TemplateId>…</TemplateId></NonExistTIDs>` (200, the
  DescribeMediaTemplates samples' shape);
* `DELETE /template/<id>` of a template a workflow names is InvalidArgument (the workflow would
  break); of an official template, InvalidArgument (read-only);
* `PUT /workflow/<id>` with the bare flag `active` or `paused` (no body) sets the state and
  answers `<RequestId>` only; without a flag it is the update, and needs a body;
* `POST /triggerworkflow` runs Active and Paused workflows alike (a trigger is explicit); an
  object that does not exist fails the run's first job, as a job for it would fail;
* `GET /workflowexecution/<RunId>` of an unknown run answers 200 with no `WorkflowExecution`
  (like describe's NonExist lists; the gateway turns it into NOT_FOUND);
* `GET /workflowexecution?workflowId=` filters, as `GET /jobs?workflowId=` does: an id this
  bucket has no workflow of is no error (CI documents none), so an unknown one lists nothing
  and a deleted workflow's runs (still describable by RunId) still list;
* answers carry `RequestId` first, except the workflow list, which follows the catalogue's
  order (`MediaWorkflowList` first).

`add_admin_routes` adds `POST /_emulator/uploads` (`{"bucket": ..., "key": ...}`), the way a
test or the demo tells the emulator an object was uploaded (CI learns it from COS).
"""

from __future__ import annotations

import json

from aiohttp import web

from ci_emulator.admin import ADMIN_PREFIX, STATE_KEY
from ci_emulator.errors import CiError, invalid_argument
from ci_emulator.handlers import Call, Endpoint, _by_method, _request_xml, xml_response
from ci_emulator.hosts import Service, Target
from ci_emulator.templates import Template, parse_template_body, parse_template_query
from ci_emulator.workflows import (
    ACTIVE,
    PAUSED,
    Workflow,
    next_token,
    parse_execution_query,
    parse_workflow_body,
    parse_workflow_query,
)
from ci_emulator.xmlbuild import Fields

PREFIXES = ("/template", "/workflow", "/triggerworkflow", "/workflowexecution")


def route(target: Target, method: str) -> Endpoint | None:
    """The endpoint for a CI-host path of this module, None for any other path."""
    if target.service is not Service.CI:
        return None
    path = target.path
    if path == "/template":
        return _by_method(method, POST=CREATE_TEMPLATE, GET=DESCRIBE_TEMPLATES)
    if path.startswith("/template/"):
        return _by_method(method, PUT=UPDATE_TEMPLATE, DELETE=DELETE_TEMPLATE)
    if path == "/workflow":
        return _by_method(method, POST=CREATE_WORKFLOW, GET=DESCRIBE_WORKFLOWS)
    if path.startswith("/workflow/"):
        return _by_method(method, PUT=UPDATE_WORKFLOW, DELETE=DELETE_WORKFLOW)
    if path == "/triggerworkflow":
        return _by_method(method, POST=TRIGGER_WORKFLOW)
    if path == "/workflowexecution":
        return _by_method(method, GET=LIST_EXECUTIONS)
    if path.startswith("/workflowexecution/"):
        return _by_method(method, GET=DESCRIBE_EXECUTION)
    return None


def _tail(call: Call, prefix: str) -> str:
    value = call.target.path[len(prefix) :]
    if not value or "/" in value or "," in value:
        raise invalid_argument(f"{prefix}<id> needs exactly one id")
    return value


def _now(call: Call) -> float:
    return call.state.config.clock()


# ---- templates ---------------------------------------------------------------------------------


def _template(call: Call) -> Template:
    template_id = _tail(call, "/template/")
    template = call.state.resources.templates.get(call.bucket.name, template_id)
    if template is None:
        raise invalid_argument(f"template {template_id} does not exist")
    return template


async def _create_template(call: Call) -> web.Response:
    body = parse_template_body(await _request_xml(call))
    template = call.state.resources.templates.create(call.bucket.name, body, _now(call))
    return xml_response([("RequestId", call.request_id), ("Template", template.fields())])


async def _update_template(call: Call) -> web.Response:
    template = _template(call)
    body = parse_template_body(await _request_xml(call))
    call.state.resources.templates.update(template, body, _now(call))
    return xml_response([("RequestId", call.request_id), ("Template", template.fields())])


async def _describe_templates(call: Call) -> web.Response:
    query = parse_template_query(call.params)
    page, total = call.state.resources.templates.select(call.bucket.name, query)
    fields: Fields = [
        ("RequestId", call.request_id),
        ("TotalCount", str(total)),
        ("PageNumber", str(query.page_number)),
        ("PageSize", str(query.page_size)),
    ]
    fields += [("TemplateList", template.fields()) for template in page]
    missing = call.state.resources.templates.unknown(call.bucket.name, query.ids)
    if missing:  # as DescribeMediaTemplates' samples print them
        fields.append(("NonExistTIDs", [("TemplateId", template_id) for template_id in missing]))
    return xml_response(fields)


async def _delete_template(call: Call) -> web.Response:
    template = _template(call)
    user = call.state.resources.workflows.uses_template(call.bucket.name, template.template_id)
    if user is not None:
        raise invalid_argument(
            f"template {template.template_id} is used by workflow {user.workflow_id}"
        )
    call.state.resources.templates.delete(template)
    return xml_response([("RequestId", call.request_id), ("TemplateId", template.template_id)])


# ---- workflows ---------------------------------------------------------------------------------


def _workflow(call: Call) -> Workflow:
    workflow_id = _tail(call, "/workflow/")
    workflow = call.state.resources.workflows.get(call.bucket.name, workflow_id)
    if workflow is None:
        raise invalid_argument(f"workflow {workflow_id} does not exist")
    return workflow


async def _create_workflow(call: Call) -> web.Response:
    state = call.state
    body = parse_workflow_body(
        await _request_xml(call), queues=state.queues, templates=state.resources.templates,
        bucket=call.bucket.name,
    )  # fmt: skip
    workflow = state.resources.workflows.create(call.bucket.name, body, _now(call))
    return xml_response([("RequestId", call.request_id), ("MediaWorkflow", workflow.fields())])


async def _update_workflow(call: Call) -> web.Response:
    workflow = _workflow(call)
    flags = [flag for flag in ("active", "paused") if flag in call.params]
    if len(flags) > 1:
        raise invalid_argument("give one of ?active and ?paused")
    if flags:
        workflow.state = ACTIVE if flags[0] == "active" else PAUSED
        workflow.updated_at = _now(call)
        return xml_response([("RequestId", call.request_id)])
    state = call.state
    body = parse_workflow_body(
        await _request_xml(call), queues=state.queues, templates=state.resources.templates,
        bucket=call.bucket.name,
    )  # fmt: skip
    workflow.name, workflow.state, workflow.topology = body.name, body.state, body.topology
    workflow.updated_at = _now(call)
    return xml_response([("RequestId", call.request_id), ("MediaWorkflow", workflow.fields())])


async def _describe_workflows(call: Call) -> web.Response:
    query = parse_workflow_query(call.params)
    page, total, missing = call.state.resources.workflows.select(call.bucket.name, query)
    fields: Fields = [("MediaWorkflowList", workflow.fields()) for workflow in page]
    fields += [
        ("RequestId", call.request_id),
        ("TotalCount", str(total)),
        ("PageNumber", str(query.page_number)),
        ("PageSize", str(query.page_size)),
    ]
    fields += [("NonExistIDs", workflow_id) for workflow_id in missing]
    return xml_response(fields)


async def _delete_workflow(call: Call) -> web.Response:
    workflow = _workflow(call)
    del call.state.resources.workflows.workflows[workflow.workflow_id]
    return xml_response([("RequestId", call.request_id), ("WorkflowId", workflow.workflow_id)])


async def _trigger_workflow(call: Call) -> web.Response:
    workflow_id = call.params.get("workflowId", "")
    key = call.params.get("object", "")
    if not workflow_id or not key:
        raise invalid_argument("workflowId and object are required")
    workflow = call.state.resources.workflows.get(call.bucket.name, workflow_id)
    if workflow is None:
        raise invalid_argument(f"workflow {workflow_id} does not exist")
    execution = call.state.resources.start_run(workflow, key, _now(call))
    return xml_response([("InstanceId", execution.run_id), ("RequestId", call.request_id)])


async def _list_executions(call: Call) -> web.Response:
    query = parse_execution_query(call.params)
    page, last = call.state.resources.workflows.list_executions(call.bucket.name, query)
    fields: Fields = [("WorkflowExecutionList", run.list_fields()) for run in page]
    fields += [
        ("NextToken", next_token(last) if last is not None else ""),
        ("RequestId", call.request_id),
    ]
    return xml_response(fields)


async def _describe_execution(call: Call) -> web.Response:
    run_id = _tail(call, "/workflowexecution/")
    execution = call.state.resources.workflows.execution(call.bucket.name, run_id)
    fields: Fields = [("RequestId", call.request_id)]
    if execution is not None:
        fields.append(("WorkflowExecution", execution.fields()))
    fields.append(("NextToken", ""))
    return xml_response(fields)


CREATE_TEMPLATE = Endpoint("CreateMediaTemplate", _create_template)
UPDATE_TEMPLATE = Endpoint("UpdateMediaTemplate", _update_template)
DESCRIBE_TEMPLATES = Endpoint("DescribeMediaTemplate", _describe_templates)
DELETE_TEMPLATE = Endpoint("DeleteMediaTemplate", _delete_template)
CREATE_WORKFLOW = Endpoint("CreateMediaWorkflow", _create_workflow)
UPDATE_WORKFLOW = Endpoint("UpdateMediaWorkflow", _update_workflow)
DESCRIBE_WORKFLOWS = Endpoint("DescribeMediaWorkflow", _describe_workflows)
DELETE_WORKFLOW = Endpoint("DeleteMediaWorkflow", _delete_workflow)
TRIGGER_WORKFLOW = Endpoint("TriggerWorkflow", _trigger_workflow)
LIST_EXECUTIONS = Endpoint("DescribeWorkflowExecutions", _list_executions)
DESCRIBE_EXECUTION = Endpoint("DescribeWorkflowExecution", _describe_execution)


# ---- the admin surface -------------------------------------------------------------------------


def add_admin_routes(app: web.Application) -> None:
    app.router.add_post(f"{ADMIN_PREFIX}/uploads", _uploaded)


async def _uploaded(request: web.Request) -> web.Response:
    """`{"bucket": ..., "key": ...}`: an object was uploaded; answers the runs it started."""
    state = request.app[STATE_KEY]
    try:
        document = json.loads(await request.read())
        bucket, key = document["bucket"], document["key"]
        if not isinstance(bucket, str) or not isinstance(key, str) or not key:
            raise TypeError
    except (ValueError, KeyError, TypeError):
        return web.json_response({"error": 'expected {"bucket": "...", "key": "..."}'}, status=400)
    if state.config.bucket(bucket) is None:
        return web.json_response({"error": f"no bucket {bucket}"}, status=404)
    try:
        runs = state.resources.object_uploaded(bucket, key, state.config.clock())
    except CiError as error:
        return web.json_response({"error": error.message}, status=503)
    return web.json_response({"runs": [run.run_id for run in runs]})
