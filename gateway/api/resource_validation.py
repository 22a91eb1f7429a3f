"""Checks on the queue, template and workflow RPCs, before anything is sent to CI.

As `validation` does for jobs: each violation names the field by its path in the RPC request,
all are reported at once, and what comes out is what CI is sent (the target, the query in CI's
own parameter names, the ids that go into paths). The rules are CI's documented ones; where CI
documents none (a template name's length, a page's size), the bound is generous and only keeps
a request from being absurd.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Sequence
from typing import Final

from google.protobuf.descriptor import EnumDescriptor

from gateway._proto import (
    job_kinds_pb2,
    media_pb2,
    queues_pb2,
    service_pb2,
    templates_pb2,
    workflows_pb2,
    xml_pb2,
)
from gateway.api import kind_rules
from gateway.api.tree_checks import check_nodes, check_tree, new_budget
from gateway.api.validation import (
    _CONTROL,
    MQ_MODES,
    MQ_REGIONS,
    _creation_time,
    _is_http_url,
    _object_key,
    _page_token,
    _target,
    _Violations,
    kafka_config,
)
from gateway.config.settings import Settings
from gateway.model import GATEWAY_CALLBACK, Target
from gateway.resources import template_wire
from gateway.upstream import xml_codec

# Ids in paths and queries: CI's are a letter and 32 hex digits; any short token without a comma
# (it would split a list) or a slash (it would change the path) is let through.
_ID = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
MAX_IDS = 10
MAX_PAGE_SIZE = 100
MAX_QUEUE_NAME_BYTES = 128
MAX_WORKFLOW_NAME = 128
# CI: "Chinese characters, letters, digits, `_`, `-` and `*`" (catalogue §2.2). No length is
# documented (UNCONFIRMED); 128 characters is far beyond any real preset's name.
TEMPLATE_NAME = re.compile(r"^[\u4e00-\u9fffA-Za-z0-9_*-]{1,128}$")
# Every kind CI keeps templates for (catalogue §2.2): the typed ones (template_wire's containers)
# and those sent losslessly as `parameters` (template_wire.UNTYPED).
UNTYPED_TEMPLATE_TAGS = frozenset(template_wire.UNTYPED)
NOTIFY_TYPES = frozenset({"Url", "TDMQ", "Kafka"})
NOTIFY_STATES = frozenset({"On", "Off"})
RESULT_FORMATS = frozenset({"XML", "JSON"})
# TaskFinish and WorkflowFinish are the documented ones; TransCodingFinish the legacy name (a
# Java SDK comment, a Go test); WorkflowStart is in CI's own answer (DescribeMediaWorkflows'
# sample: `TaskFinish,WorkflowFinish,WorkflowStart`), so a definition read back must pass.
NOTIFY_EVENTS = frozenset({"TaskFinish", "WorkflowFinish", "TransCodingFinish", "WorkflowStart"})
END_NODE = "End"
START_TYPE = "Start"
# Node types that may go without an `Operation`. CI's CreateWorkflow doc marks a job node's
# Operation "是" for every kind it tables, and the emulator refuses a node without one; it has no
# MediaInfo node, whose job's Operation is optional (notes §2.2): the tolerant reading
# (UNCONFIRMED) lets a MediaInfo node go without, as the emulator does.
_NO_OPERATION_NEEDED = frozenset({START_TYPE, "MediaInfo"})
_NO_OPERATION = xml_codec.encode(workflows_pb2.WorkflowNodeOperation(), "Operation")
_NODE_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_.-]{0,127}$")

Query = dict[str, str | None]


def template_tags() -> frozenset[str]:
    return frozenset(template_wire.containers()) | UNTYPED_TEMPLATE_TAGS


def _id(value: str, field: str, errors: _Violations, *, what: str) -> None:
    if not value:
        errors.add(field, "required")
    elif not _ID.fullmatch(value):
        errors.add(field, f"must be a CI {what} id (letters, digits, '-', '_'; at most 64)")


def _ids(values: Sequence[str], field: str, errors: _Violations, *, what: str) -> str:
    """The ids comma-joined for a query (`queueIds=a,b`), each checked, at most MAX_IDS."""
    if len(values) > MAX_IDS:
        errors.add(field, f"at most {MAX_IDS} ids per call, got {len(values)}")
    for index, value in enumerate(values):
        _id(value, f"{field}[{index}]", errors, what=what)
    return ",".join(dict.fromkeys(values))


def _paging(number: int, size: int, errors: _Violations) -> Query:
    if number < 0:
        errors.add("page_number", "must be 1 or more (0 = CI's default)")
    if not 0 <= size <= MAX_PAGE_SIZE:
        errors.add("page_size", f"must be between 1 and {MAX_PAGE_SIZE} (0 = CI's default)")
    query: Query = {}
    if number:
        query["pageNumber"] = str(number)
    if size:
        query["pageSize"] = str(size)
    return query


def _enum_text(descriptor: EnumDescriptor, number: int, field: str, errors: _Violations) -> str:
    """CI's text for a set enum value; "" for UNSPECIFIED; a violation for an unknown number."""
    if number == 0:
        return ""
    if number not in descriptor.values_by_number:
        errors.add(field, "unknown value")
        return ""
    return xml_codec.enum_wire_name(descriptor, number)


# Queues ---------------------------------------------------------------------------------------


def validate_describe_queues(
    rpc: queues_pb2.DescribeMediaQueuesRequest, settings: Settings
) -> tuple[Target, Query]:
    errors = _Violations()
    target = _target(rpc.bucket, rpc.region, settings, errors)
    query: Query = {}
    if rpc.queue_ids:
        query["queueIds"] = _ids(rpc.queue_ids, "queue_ids", errors, what="queue")
    state = _enum_text(queues_pb2.QueueState.DESCRIPTOR, rpc.state, "state", errors)
    # The Python SDK always sends `All`; Go sends nothing. Both mean "either state".
    query["state"] = state or "All"
    category = _enum_text(queues_pb2.QueueCategory.DESCRIPTOR, rpc.category, "category", errors)
    if category:
        query["category"] = category
    query.update(_paging(rpc.page_number, rpc.page_size, errors))
    errors.raise_if_any()
    return target, query


def _notify_config(
    config: queues_pb2.QueueNotifyConfig, path: str, errors: _Violations, *, check_url: bool = True
) -> None:
    if config.type and config.type not in NOTIFY_TYPES:
        errors.add(f"{path}.type", f"must be one of {', '.join(sorted(NOTIFY_TYPES))}")
    if config.state and config.state not in NOTIFY_STATES:
        errors.add(f"{path}.state", "must be 'On' or 'Off'")
    if config.result_format and config.result_format not in RESULT_FORMATS:
        errors.add(f"{path}.result_format", "must be 'XML' or 'JSON'")
    events = [event.strip() for event in config.event.split(",") if event.strip()]
    # Text that names no event at all (`,`) is refused as an unknown one would be: CI reads it
    # as naming an event, not as no Event (only blank text is no Event).
    if config.event.strip() and (not events or any(e not in NOTIFY_EVENTS for e in events)):
        errors.add(f"{path}.event", f"a comma list of {', '.join(sorted(NOTIFY_EVENTS))}")
    # TDMQ's nodes, as in a job's CallBackMqConfig (notes §2.2, §8.1); a switched-on callback
    # needs somewhere to go (Kafka: KafkaConfig Region, InstanceId, Topic; catalogue §2.4).
    if config.mq_region and config.mq_region not in MQ_REGIONS:
        errors.add(f"{path}.mq_region", f"must be one of {', '.join(sorted(MQ_REGIONS))}")
    if config.mq_mode and config.mq_mode not in MQ_MODES:
        errors.add(f"{path}.mq_mode", "must be 'Topic' or 'Queue'")
    if config.state == "On" and config.type == "TDMQ":
        for name in ("mq_region", "mq_name"):
            if not getattr(config, name):
                errors.add(f"{path}.{name}", "required when a TDMQ callback is On")
    if config.state == "On" and config.type == "Kafka":
        why = "required when a Kafka callback is On"
        kafka_config(config.kafka_config, f"{path}.kafka_config", errors, why=why)
    if not check_url:
        return
    if config.state == "On" and config.type in ("", "Url") and not config.url:
        errors.add(f"{path}.url", "required when the callback is On")
    elif config.url and config.type in ("", "Url") and not _is_http_url(config.url):
        # The rule a job's own `call_back` follows: CI posts every job's end to this URL.
        errors.add(f"{path}.url", "must be an http(s) URL")


def validate_update_queue(
    rpc: queues_pb2.UpdateMediaQueueRequest, settings: Settings
) -> tuple[Target, queues_pb2.MediaQueue]:
    """The target and the queue to write (`state` UNSPECIFIED and an empty `name` are filled
    from CI by the servicer)."""
    errors = _Violations()
    target = _target(rpc.bucket, rpc.region, settings, errors)
    queue = rpc.queue
    _id(queue.queue_id, "queue.queue_id", errors, what="queue")
    if len(queue.name.encode()) > MAX_QUEUE_NAME_BYTES:
        errors.add("queue.name", f"longer than {MAX_QUEUE_NAME_BYTES} bytes")
    _enum_text(queues_pb2.QueueState.DESCRIPTOR, queue.state, "queue.state", errors)
    if queue.HasField("notify_config"):
        _notify_config(queue.notify_config, "queue.notify_config", errors)
    check_tree(queue, "queue", errors.add)
    errors.raise_if_any()
    return target, queue


# Templates ------------------------------------------------------------------------------------


def _template_body(
    template: templates_pb2.MediaTemplate,
    parameters: Sequence[xml_pb2.XmlNode],
    errors: _Violations,
    *,
    tag_required: bool,
) -> templates_pb2.MediaTemplate:
    """The template to send, its tag filled from its container when left empty."""
    body = templates_pb2.MediaTemplate()
    body.CopyFrom(template)
    filled = template_wire.containers_set(template)
    if len(filled) > 1:
        names = ", ".join(f"template.{c.field}" for c in filled)
        errors.add("template", f"set the parameters of one kind only, not {names}")
    elif filled and not body.tag:
        body.tag = filled[0].tag
    if not body.tag:
        if tag_required or not filled:
            errors.add("template.tag", "required (or set the container of the template's kind)")
    elif body.tag not in template_tags():
        errors.add("template.tag", f"not a kind CI keeps templates for: {body.tag!r}")
    elif filled and filled[0].tag != body.tag:
        field, holds = f"template.{filled[0].field}", filled[0].tag
        errors.add(field, f"holds {holds} parameters, not {body.tag}")
    elif body.tag in template_wire.containers() and parameters:
        errors.add("parameters", f"{body.tag} is typed: set its container instead")
    elif body.tag in template_wire.containers() and not filled:
        _parameters_required(body.tag, errors)
    for container in filled[:1]:
        _template_parameters(body, container, errors)
    if body.HasField("watermark"):
        # A Watermark template's watermark is held to a job's rules (Type, Pos, LocMode, Dx
        # required; catalogue §1.3 cites the watermark *template* docs for them).
        kind_rules.check_watermark(body.watermark, "template.watermark", errors.add)
    if not body.name:
        errors.add("template.name", "required")
    elif not TEMPLATE_NAME.fullmatch(body.name):
        errors.add("template.name", "Chinese characters, letters, digits, '_', '-', '*' only")
    # One budget for the whole request. The parameters are written as the template's unknown
    # nodes (template_wire.request_body), so they are checked as those are: XML names, text XML
    # can carry, depth, and never the name of a typed field (CI refuses a second `<Name>`).
    budget = new_budget()
    check_tree(body, "template", errors.add, budget)
    check_nodes(templates_pb2.MediaTemplate(), parameters, "parameters", errors.add, budget)
    for container in filled[:1]:
        if container.at_request_root:
            params = getattr(body, container.field)
            path = f"template.{container.field}.extra_nodes"
            _beside_the_head(getattr(params, "extra_nodes", ()), path, errors)
    if body.tag in template_tags():
        _untyped_containers(body, parameters, errors)
    return body


def _beside_the_head(nodes: Sequence[xml_pb2.XmlNode], path: str, errors: _Violations) -> None:
    """A container whose children go straight under `<Request>` (Transcode's) puts its unknown
    nodes there too, beside the template's own `Tag` and `Name`: one spelled like a field of
    `MediaTemplate` would be a second `<Tag>` or `<Name>` (CI refuses the body) or another
    kind's container. Held to those names as `parameters` are. (They reached CI.)"""
    head = templates_pb2.MediaTemplate()
    for index, node in enumerate(nodes):
        typed = xml_codec.typed_field_for(head, node.name)
        if typed is not None:
            why = f"<{node.name}> is the template's own {typed!r}: set that instead"
            errors.add(f"{path}[{index}].name", why)


def _untyped_containers(
    body: templates_pb2.MediaTemplate, parameters: Sequence[xml_pb2.XmlNode], errors: _Violations
) -> None:
    """The untyped kinds' answer containers among `template.extra_nodes` (a template read back:
    `<TtsTpl>`, `<PicProcess>`, ...), which are sent where CI's request holds the kind's
    parameters (`template_wire.as_sent`): the template's own kind's, once, and not beside the
    same parameters in `parameters`; unwrapped under `<Request>`, held to what may stand there."""
    own = template_wire.UNTYPED.get(body.tag)
    first: int | None = None
    for index, node in enumerate(body.extra_nodes):
        kind = template_wire.UNTYPED_BY_ANSWER.get(node.name)
        if kind is None:
            continue
        where = f"template.extra_nodes[{index}]"
        if kind is not own:
            errors.add(
                f"{where}.name", f"<{node.name}> holds {kind.tag} parameters, not {body.tag}"
            )
        elif first is not None:
            errors.add(where, f"a second <{node.name}>: the first is template.extra_nodes[{first}]")
        else:
            first = index
            if parameters:
                why = f"the {kind.tag} parameters are in {where} (<{node.name}>): give them once"
                errors.add("parameters", why)
            if kind.wrapper is None:
                if node.text.strip(" \t\r\n"):
                    why = f"<{node.name}>'s parameters go straight under <Request>: no text"
                    errors.add(f"{where}.text", why)
                _beside_the_head(node.children, f"{where}.children", errors)


# Typed kinds whose template CI takes without parameters (each has a default). VideoMontage's
# are all optional in the emulator; CI's docs say nothing either way (UNCONFIRMED): tolerant.
_PARAMETERS_OPTIONAL = frozenset({"VideoMontage"})


def _parameters_required(tag: str, errors: _Violations) -> None:
    """A typed kind's template names its parameters in its container: without it CI refuses the
    body (`Container.Format is required for Transcode`, naming its XML, not the field)."""
    if tag not in _PARAMETERS_OPTIONAL:
        field = template_wire.containers()[tag].field
        errors.add(f"template.{field}", f"required: the parameters of a {tag} template")


@functools.cache
def _operation_fields() -> dict[str, str]:
    """`Operation`'s singular message fields by message type: where a job holds each kind's
    node (`Transcode` -> `transcode`), which is what a template's container holds."""
    return {
        f.message_type.full_name: f.name
        for f in media_pb2.Operation.DESCRIPTOR.fields
        if f.message_type is not None and not f.is_repeated
    }


def _template_parameters(
    body: templates_pb2.MediaTemplate, container: template_wire.Container, errors: _Violations
) -> None:
    """The kind's rules on its parameters (kind_rules: required nodes, closed sets), checked on
    the container set where a job's Operation would hold it, and the template's own rules
    (`kind_rules.check_template`), reported under the container."""
    params = getattr(body, container.field)
    below = f"template.{container.field}"
    kind_rules.check_template(
        container.tag, params, lambda at, why: errors.add(f"{below}.{at}", why)
    )
    field = _operation_fields().get(params.DESCRIPTOR.full_name)
    if field is None:
        return  # TranscodePro: no job holds it
    operation = media_pb2.Operation()
    getattr(operation, field).CopyFrom(params)

    def report(path: str, why: str) -> None:
        errors.add(f"{below}{path.removeprefix(field)}", why)

    kind_rules.check_parameters(container.tag, operation, report)


def validate_create_template(
    rpc: templates_pb2.CreateMediaTemplateRequest, settings: Settings
) -> tuple[Target, templates_pb2.MediaTemplate]:
    errors = _Violations()
    target = _target(rpc.bucket, rpc.region, settings, errors)
    body = _template_body(rpc.template, rpc.parameters, errors, tag_required=False)
    errors.raise_if_any()
    return target, body


def validate_update_template(
    rpc: templates_pb2.UpdateMediaTemplateRequest, settings: Settings
) -> tuple[Target, str, templates_pb2.MediaTemplate]:
    errors = _Violations()
    target = _target(rpc.bucket, rpc.region, settings, errors)
    _id(rpc.template_id, "template_id", errors, what="template")
    body = _template_body(rpc.template, rpc.parameters, errors, tag_required=False)
    errors.raise_if_any()
    return target, rpc.template_id, body


def validate_describe_templates(
    rpc: templates_pb2.DescribeMediaTemplatesRequest, settings: Settings
) -> tuple[Target, Query]:
    errors = _Violations()
    target = _target(rpc.bucket, rpc.region, settings, errors)
    query: Query = {}
    if rpc.tag:
        if rpc.tag not in template_tags():
            errors.add("tag", f"not a kind CI keeps templates for: {rpc.tag!r}")
        query["tag"] = rpc.tag
    categories = templates_pb2.TemplateCategory.DESCRIPTOR
    category = _enum_text(categories, rpc.category, "category", errors)
    if category:
        query["category"] = category
    if rpc.template_ids:
        query["ids"] = _ids(rpc.template_ids, "template_ids", errors, what="template")
    if rpc.name:
        if not TEMPLATE_NAME.fullmatch(rpc.name):
            errors.add("name", "Chinese characters, letters, digits, '_', '-', '*' only")
        query["name"] = rpc.name
    query.update(_paging(rpc.page_number, rpc.page_size, errors))
    errors.raise_if_any()
    return target, query


def validate_delete_template(
    rpc: templates_pb2.DeleteMediaTemplateRequest, settings: Settings
) -> tuple[Target, str]:
    errors = _Violations()
    target = _target(rpc.bucket, rpc.region, settings, errors)
    _id(rpc.template_id, "template_id", errors, what="template")
    errors.raise_if_any()
    return target, rpc.template_id


# Workflows ------------------------------------------------------------------------------------


def _topology(
    topology: workflows_pb2.WorkflowTopology, errors: _Violations, budget: list[int]
) -> None:
    """CI's shape of a graph: a Start node, element names as keys, edges between known nodes.
    Whether the graph is sensible beyond that (reachable, acyclic) is CI's to judge."""
    path = "media_workflow.topology"
    nodes = topology.nodes
    # No most nodes per workflow: CI documents none (neither the notes nor the catalogue, §2.3
    # and A.13, nor CI's CreateWorkflow pages name one), so none is imposed here (UNCONFIRMED,
    # the tolerant reading); a request's size bounds it. A chain as long as the emulator takes
    # (past 1,000 nodes) is sent: tests/resources/test_workflows.py.
    if not nodes:
        errors.add(f"{path}.nodes", "required: at least a Start node and one job node")
        return
    starts = [name for name, node in nodes.items() if node.type == START_TYPE]
    if len(starts) != 1:
        errors.add(f"{path}.nodes", f"exactly one node of type {START_TYPE} is required")
    for name in starts:
        # CI's CreateWorkflow doc marks Start.Input.QueueId "是" (the queue the runs' jobs go
        # to; the catalogue's A.13 lists it unmarked), and the emulator refuses a Start node
        # without one. ObjectPrefix is "是" there too, but an empty prefix (every upload) is a
        # reasonable workflow the gateway cannot send as a node: left to CI (UNCONFIRMED).
        where = _entry(f"{path}.nodes", name)
        if where is not None:
            # As a submit's `queue_id`: a form no queue has ("p1 ", "p1,p2") is named here,
            # where CI would answer only that it names no queue.
            _id(nodes[name].input.queue_id, f"{where}.input.queue_id", errors, what="queue")
    if not topology.dependencies:
        # "Dependencies 是" in CI's CreateWorkflow doc (every body in catalogue A.13 has them):
        # without an edge from Start no node runs, and the emulator refuses a topology without.
        errors.add(f"{path}.dependencies", "required: Start's edge to the first job node")
    for name in sorted(nodes):
        where = _entry(f"{path}.nodes", name)
        if where is None:
            errors.add(f"{path}.nodes", f"{_shown(name)} is no node name: {_NODE_NAME_RULE}")
            continue  # what it holds cannot be named either, and it cannot be sent as it is
        if not _NODE_NAME.fullmatch(name):
            errors.add(where, f"node names are {_NODE_NAME_RULE}")
        if not nodes[name].type:
            errors.add(f"{where}.type", "required")
        elif nodes[name].type not in _NO_OPERATION_NEEDED and _writes_nothing(nodes[name]):
            why = "required: the job the node runs (its template_id or its kind's parameters)"
            errors.add(f"{where}.operation", why)
        check_tree(nodes[name], where, errors.add, budget)
        notify = nodes[name].input.notify_config
        if nodes[name].input.HasField("notify_config"):
            # CI posts each run's end there, as it posts a job's to its `call_back`. The stand-in
            # GATEWAY_CALLBACK is replaced before CI sees it, on the Start node: there only its
            # URL goes unchecked, the rest of the node is sent as it is (Type, State, Event,
            # ResultFormat). On any other node it would reach CI as it is: checked.
            own_url = notify.url != GATEWAY_CALLBACK or nodes[name].type != START_TYPE
            _notify_config(notify, f"{where}.input.notify_config", errors, check_url=own_url)
        if nodes[name].operation.HasField("output"):
            _output_keys(nodes[name].operation.output, f"{where}.operation", errors)
    for name in sorted(topology.dependencies):
        where = _entry(f"{path}.dependencies", name) or f"{path}.dependencies"
        if name not in nodes:
            errors.add(where, f"{_shown(name)} is not a node")
        following = [part.strip() for part in topology.dependencies[name].split(",")]
        for target in following:
            if target != END_NODE and target not in nodes:
                errors.add(where, f"{_shown(target)} is neither a node nor {END_NODE}")


_NODE_NAME_RULE = "XML element names (letters, digits, _ - .; at most 128)"
# The longest map key a field path names (`nodes['Start']`): a node name's 128 characters,
# quoted. A status cuts a field path at `status.MAX_FIELD_CHARS`, and a path cut short names
# no field of the request, so a longer key is named in the description, under the map's path.
_MAX_KEY_IN_PATH = 130
_MAX_KEY_SHOWN = 40


def _entry(map_path: str, key: str) -> str | None:
    """The path of a map entry (`media_workflow.topology.nodes['Start']`), or None when its
    key is too long to be part of a path."""
    quoted = repr(key)
    return f"{map_path}[{quoted}]" if len(quoted) <= _MAX_KEY_IN_PATH else None


def _shown(key: str) -> str:
    """A key (or a dependency's target) as a description shows it: quoted, cut short."""
    if len(key) <= _MAX_KEY_SHOWN:
        return repr(key)
    return f"{key[:_MAX_KEY_SHOWN]!r}... ({len(key)} characters)"


def _writes_nothing(node: workflows_pb2.WorkflowNode) -> bool:
    """Whether the node's `operation` is sent as no `<Operation>` at all: nothing set, or only
    what the codec leaves out (an empty message, an empty id in a list). One the codec cannot
    write (a control character, an unknown node's bad name) holds something: `check_tree`
    names what is wrong with it. (The codec's error escaped here as INTERNAL.)"""
    try:
        return xml_codec.encode(node.operation, "Operation") == _NO_OPERATION
    except xml_codec.XmlCodecError:
        return False


def _output_keys(output: job_kinds_pb2.Output, below: str, errors: _Violations) -> None:
    """A node's output keys, held to a job's rule (`kind_rules.check_output_keys`)."""
    kind_rules.check_output_keys(output, lambda at, why: errors.add(f"{below}.{at}", why))


def _query_name(name: str, field: str, errors: _Violations) -> None:
    """A name sent in a query (a workflow filter, a run's name): bounded as a workflow's own
    name is, so a megabyte of it never becomes a URL CI refuses with a bare 400 naming no
    field, and free of control characters, which no name CI keeps can hold."""
    if len(name) > MAX_WORKFLOW_NAME:
        errors.add(field, f"longer than {MAX_WORKFLOW_NAME} characters")
    elif _CONTROL.search(name):
        errors.add(field, "must not contain control characters")


def _workflow(
    workflow: workflows_pb2.MediaWorkflow, errors: _Violations
) -> workflows_pb2.MediaWorkflow:
    if not workflow.name:
        errors.add("media_workflow.name", "required")
    elif len(workflow.name) > MAX_WORKFLOW_NAME:
        errors.add("media_workflow.name", f"longer than {MAX_WORKFLOW_NAME} characters")
    states = workflows_pb2.WorkflowState.DESCRIPTOR
    _enum_text(states, workflow.state, "media_workflow.state", errors)
    # Only what a body carries: output-only fields are never sent back.
    body = workflows_pb2.MediaWorkflow(name=workflow.name, state=workflow.state)
    body.topology.CopyFrom(workflow.topology)
    body.extra_nodes.extend(workflow.extra_nodes)
    budget = new_budget()
    _topology(workflow.topology, errors, budget)
    # Everything else the body carries is XML too: the name, and the unknown nodes of the
    # workflow and of its topology (the walk skips the maps, which _topology checked).
    check_tree(body, "media_workflow", errors.add, budget)
    return body


def validate_create_workflow(
    rpc: workflows_pb2.CreateMediaWorkflowRequest, settings: Settings
) -> tuple[Target, workflows_pb2.MediaWorkflow]:
    errors = _Violations()
    target = _target(rpc.bucket, rpc.region, settings, errors)
    body = _workflow(rpc.media_workflow, errors)
    errors.raise_if_any()
    return target, body


def validate_update_workflow(
    rpc: workflows_pb2.UpdateMediaWorkflowRequest, settings: Settings
) -> tuple[Target, str, workflows_pb2.MediaWorkflow]:
    errors = _Violations()
    target = _target(rpc.bucket, rpc.region, settings, errors)
    _id(rpc.workflow_id, "workflow_id", errors, what="workflow")
    body = _workflow(rpc.media_workflow, errors)
    errors.raise_if_any()
    return target, rpc.workflow_id, body


def validate_describe_workflows(
    rpc: workflows_pb2.DescribeMediaWorkflowsRequest, settings: Settings
) -> tuple[Target, Query]:
    errors = _Violations()
    target = _target(rpc.bucket, rpc.region, settings, errors)
    query: Query = {}
    if rpc.workflow_ids:
        query["ids"] = _ids(rpc.workflow_ids, "workflow_ids", errors, what="workflow")
    if rpc.name:
        _query_name(rpc.name, "name", errors)
        query["name"] = rpc.name
    query.update(_paging(rpc.page_number, rpc.page_size, errors))
    errors.raise_if_any()
    return target, query


WorkflowRef = (
    workflows_pb2.DeleteMediaWorkflowRequest
    | workflows_pb2.ActivateMediaWorkflowRequest
    | workflows_pb2.PauseMediaWorkflowRequest
)


def validate_workflow_ref(rpc: WorkflowRef, settings: Settings) -> tuple[Target, str]:
    errors = _Violations()
    target = _target(rpc.bucket, rpc.region, settings, errors)
    _id(rpc.workflow_id, "workflow_id", errors, what="workflow")
    errors.raise_if_any()
    return target, rpc.workflow_id


def validate_trigger_workflow(
    rpc: workflows_pb2.TriggerMediaWorkflowRequest, settings: Settings
) -> tuple[Target, Query]:
    errors = _Violations()
    target = _target(rpc.bucket, rpc.region, settings, errors)
    _id(rpc.workflow_id, "workflow_id", errors, what="workflow")
    _object_key(rpc.object, "object", errors)
    if rpc.name:
        _query_name(rpc.name, "name", errors)
    errors.raise_if_any()
    query: Query = {"workflowId": rpc.workflow_id, "object": rpc.object}
    if rpc.name:
        query["name"] = rpc.name
    return target, query


RUN_STATES: Final = frozenset({"Running", "Success", "Failed", "Cancel"})
"""The `states` DescribeWorkflowExecutions takes besides `All` (its page: "All, Success, Failed,
Running, Cancel"): a run is never Submitted or Paused, and CI refuses such a filter."""


def validate_list_executions(
    rpc: workflows_pb2.ListWorkflowExecutionsRequest, settings: Settings
) -> tuple[Target, Query]:
    errors = _Violations()
    target = _target(rpc.bucket, rpc.region, settings, errors)
    _id(rpc.workflow_id, "workflow_id", errors, what="workflow")
    states = [
        _enum_text(media_pb2.JobState.DESCRIPTOR, state, f"states[{index}]", errors)
        for index, state in enumerate(rpc.states)
    ]
    if any(not state for state in states):
        errors.add("states", "each must be a known job state")
    elif not set(states) <= RUN_STATES:
        errors.add("states", "a run is Running, Success, Failed or Cancel")
    orders = service_pb2.OrderByTime.DESCRIPTOR
    order = _enum_text(orders, rpc.order_by_time, "order_by_time", errors)
    if not 0 <= rpc.size <= MAX_PAGE_SIZE:
        errors.add("size", f"must be between 1 and {MAX_PAGE_SIZE} (0 = CI's default)")
    start_creation_time = _creation_time(rpc.start_creation_time, "start_creation_time", errors)
    end_creation_time = _creation_time(rpc.end_creation_time, "end_creation_time", errors)
    if rpc.object:
        _object_key(rpc.object, "object", errors)
    _page_token(rpc.next_token, "next_token", errors)
    errors.raise_if_any()
    query: Query = {"workflowId": rpc.workflow_id}
    optional = {
        "name": rpc.object,
        "orderByTime": order,
        "states": ",".join(dict.fromkeys(states)),
        "size": str(rpc.size) if rpc.size else "",
        "startCreationTime": start_creation_time,
        "endCreationTime": end_creation_time,
    }
    query.update({name: value for name, value in optional.items() if value})
    query["nextToken"] = rpc.next_token  # sent even when empty, as the official SDK does
    return target, query


ExecutionRef = (
    workflows_pb2.DescribeWorkflowExecutionRequest | workflows_pb2.WatchWorkflowExecutionRequest
)


def validate_execution_ref(rpc: ExecutionRef, settings: Settings) -> tuple[Target, str]:
    errors = _Violations()
    target = _target(rpc.bucket, rpc.region, settings, errors)
    _id(rpc.run_id, "run_id", errors, what="workflow run")
    errors.raise_if_any()
    return target, rpc.run_id
