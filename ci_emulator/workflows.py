"""Workflows: definitions kept per bucket, and runs that walk their node chain with real jobs.

A workflow (`POST /workflow`, catalogue §2.3, A.13) is a graph keyed by element name:
`<Topology><Dependencies><Start>Transcode_1</Start><Transcode_1>End</Transcode_1></Dependencies>
<Nodes><Start><Type>Start</Type><Input>...</Input></Start><Transcode_1>...</Transcode_1></Nodes>`.
Checked on create and update, each refusal InvalidArgument:

* `Name` required (at most 128 characters); `State` `Active` | `Paused`, absent = `Paused`
  (UNCONFIRMED: CI's console creates workflows paused);
* exactly one node of `Type` `Start`, whose `Input.QueueId` is one of the bucket's queues and
  whose `Input.NotifyConfig`, when given, meets a queue's rules (`queue_api`: the same node),
  `State` absent meaning On;
* every other node has a `Type` (a job kind) and an `Operation`: both "是" for every kind of
  node CI's CreateWorkflow doc tables (catalogue A.13 leaves the Operation open). A MediaInfo
  node may leave it out: that doc has no MediaInfo node, and a MediaInfo job's Operation is
  optional (notes §2.2, the 2025 doc), so the tolerant reading (UNCONFIRMED) holds for its
  node too. A `TemplateId` there must be a template of the node's kind, a
  `TranscodeTemplateId` a Transcode template;
* every dependency joins known nodes (or `End`); the graph has no cycle and every node can be
  reached from Start. CI documents no most nodes per workflow: none is imposed (the body's
  size bounds them), and the check walks a chain of any length.

A run (`POST /triggerworkflow`, or an upload under the Start node's `ObjectPrefix` that the
emulator learns of through `object_uploaded`) is a `WorkflowExecution`: its nodes run one after
the other in dependency order (UNCONFIRMED whether CI runs parallel branches at once; the
results are the same), each as a job submitted exactly as `POST /jobs` would create it, templates
resolved, and marked as the run's (`JobsDetail.Workflow`: RunId, WorkflowId, WorkflowName and
the node's Name; `GET /jobs?workflowId=` lists them, see `listing`). A task records its job;
a job that fails, or a node that cannot be submitted (a paused queue, a kind the emulator does
not run), fails the run and ends it. The run is `Running` until
its last node ends, then `Success` or `Failed`, and then reports `WorkflowFinish` to the Start
node's `NotifyConfig`, else the queue's (when `On` and subscribed to `WorkflowFinish`).
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import json
import logging
import re
import secrets
from collections.abc import Awaitable, Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Final

from lxml import etree

from ci_emulator.callback_body import JSON_CONTENT_TYPE, XML_CONTENT_TYPE, fields_to_json
from ci_emulator.callbacks import CallbackTarget, notify_target
from ci_emulator.config import BucketConfig
from ci_emulator.errors import CiError, invalid_argument
from ci_emulator.jobs import Job, JobState, WorkflowOrigin
from ci_emulator.query import positive
from ci_emulator.queue_api import parse_notify_config
from ci_emulator.queues import MediaQueue, NotifyConfig
from ci_emulator.tasks import BackgroundTasks
from ci_emulator.templates import TemplateStore, _append
from ci_emulator.timefmt import format_ci_time, parse_ci_time
from ci_emulator.xmlbuild import Fields, element_fields, render_response
from ci_emulator.xmlread import child, text_of

logger = logging.getLogger(__name__)

ACTIVE, PAUSED = "Active", "Paused"
WORKFLOW_STATES: Final = frozenset({ACTIVE, PAUSED})
START, END = "Start", "End"
EVENT_NAME = "WorkflowFinish"
RUNNING, SUCCESS, FAILED = "Running", "Success", "Failed"
FINAL_JOB_STATES: Final = frozenset({"Success", "Failed", "Cancel"})
MAX_NAME = 128
MAX_IDS = 100
MAX_PAGE = 100
RUN_JOB_TIMEOUT_S = 3600.0
"""Longest a run waits for one node's job: a bound, far beyond any emulated job."""
_NO_OPERATION_NEEDED: Final = frozenset({START, "MediaInfo"})
"""Node types that may leave `Operation` out (the module docstring says why)."""
_NODE_NAME: Final = re.compile(r"^[A-Za-z_][A-Za-z0-9_.-]{0,127}$")
_CURSOR_PREFIX = "ci-emulator:run:"


@dataclass(frozen=True)
class Node:
    name: str
    type: str
    fields: Fields
    """The node element's children, echoed as sent."""
    operation: Fields


@dataclass(frozen=True)
class Topology:
    dependencies: Mapping[str, tuple[str, ...]]
    nodes: Mapping[str, Node]
    start: str
    queue_id: str
    object_prefix: str
    notify: NotifyConfig | None
    """The Start node's `NotifyConfig`, checked as a queue's; None when the node sets none (an
    empty one included): the runs then report to the queue's, as CI's CreateWorkflow doc says
    of a Start node without one."""
    ext_filter: Mapping[str, str]

    def order(self) -> list[str]:
        """The job nodes in dependency order (Kahn; ties by name): the order a run takes."""
        incoming = {name: 0 for name in self.nodes}
        for targets in self.dependencies.values():
            for target in targets:
                if target in incoming:
                    incoming[target] += 1
        ready = sorted(name for name, count in incoming.items() if count == 0)
        order: list[str] = []
        while ready:  # bounded: each node enters `ready` once (the graph was checked acyclic)
            name = ready.pop(0)
            order.append(name)
            for target in self.dependencies.get(name, ()):
                if target in incoming:
                    incoming[target] -= 1
                    if incoming[target] == 0:
                        ready.append(target)
                        ready.sort()
        return [name for name in order if name != self.start]

    def fields(self) -> Fields:
        """`Topology`, keys in sorted order: the same workflow is the same bytes every time."""
        return [
            (
                "Dependencies",
                [(n, ",".join(self.dependencies[n])) for n in sorted(self.dependencies)],
            ),
            ("Nodes", [(n, self.nodes[n].fields) for n in sorted(self.nodes)]),
        ]


@dataclass(eq=False)
class Workflow:
    workflow_id: str
    bucket: str
    name: str
    state: str
    topology: Topology
    created_at: float
    updated_at: float

    def fields(self) -> Fields:
        """`MediaWorkflow` / `MediaWorkflowList` children (the Go SDK's order)."""
        return [
            ("Name", self.name),
            ("WorkflowId", self.workflow_id),
            ("State", self.state),
            ("Topology", self.topology.fields()),
            ("CreateTime", format_ci_time(self.created_at)),
            ("UpdateTime", format_ci_time(self.updated_at)),
            ("BucketId", self.bucket),
        ]


@dataclass(eq=False)
class Task:
    node: str
    type: str
    created_at: float
    state: str = RUNNING
    job_id: str = ""
    ended_at: float | None = None
    template_id: str = ""
    template_name: str = ""
    code: str = ""
    message: str = ""

    def fields(self) -> Fields:
        return [
            ("Type", self.type),
            ("CreateTime", format_ci_time(self.created_at)),
            ("EndTime", format_ci_time(self.ended_at) if self.ended_at is not None else "-"),
            ("State", self.state),
            ("JobId", self.job_id),
            ("Name", self.node),
            ("TemplateId", self.template_id),
            ("TemplateName", self.template_name),
            *([("Code", self.code), ("Message", self.message)] if self.code else []),
        ]


@dataclass(eq=False)
class Execution:
    run_id: str
    seq: int
    workflow: Workflow
    topology: Topology
    """The topology the run follows: an update of the workflow does not change a run."""
    bucket: str
    object_key: str
    created_at: float
    state: str = RUNNING
    tasks: list[Task] = field(default_factory=list)

    @property
    def final(self) -> bool:
        return self.state != RUNNING

    def list_fields(self) -> Fields:
        """A `WorkflowExecutionList` entry."""
        return [
            ("RunId", self.run_id),
            ("WorkflowId", self.workflow.workflow_id),
            ("State", self.state),
            ("CreationTime", format_ci_time(self.created_at)),
            ("Object", self.object_key),
        ]

    def fields(self) -> Fields:
        """`WorkflowExecution` of a describe."""
        return [
            ("RunId", self.run_id),
            ("WorkflowId", self.workflow.workflow_id),
            ("WorkflowName", self.workflow.name),
            ("State", self.state),
            ("CreateTime", format_ci_time(self.created_at)),
            ("Object", self.object_key),
            ("Topology", self.topology.fields()),
            *(("Tasks", task.fields()) for task in self.tasks),
        ]

    def callback_fields(self) -> Fields:
        """`WorkflowExecution` of the WorkflowFinish callback (Go's WorkflowExecutionNotifyBody)."""
        return [
            ("RunId", self.run_id),
            ("BucketId", self.bucket),
            ("Object", self.object_key),
            ("WorkflowId", self.workflow.workflow_id),
            ("WorkflowName", self.workflow.name),
            ("CreateTime", format_ci_time(self.created_at)),
            ("State", self.state),
            *(("Tasks", task.fields()) for task in self.tasks),
        ]


# ---- parsing -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class WorkflowBody:
    name: str
    state: str
    topology: Topology


def _texts(node: etree._Element | None) -> dict[str, str]:
    if node is None:
        return {}
    return {name: value for name, value in element_fields(node) if isinstance(value, str)}


def parse_workflow_body(
    request: etree._Element,
    *,
    queues: Mapping[str, MediaQueue],
    templates: TemplateStore,
    bucket: str,
) -> WorkflowBody:
    workflow = child(request, "MediaWorkflow")
    if workflow is None:
        raise invalid_argument("MediaWorkflow is required")
    name = text_of(workflow, "Name", strip=False)
    if name is None:
        raise invalid_argument("MediaWorkflow.Name is required")
    if len(name) > MAX_NAME:
        raise invalid_argument(f"MediaWorkflow.Name is longer than {MAX_NAME} characters")
    state = text_of(workflow, "State") or PAUSED
    if state not in WORKFLOW_STATES:
        raise invalid_argument("MediaWorkflow.State must be Active or Paused")
    topology_node = child(workflow, "Topology")
    if topology_node is None:
        raise invalid_argument("MediaWorkflow.Topology is required")
    topology = _topology(topology_node, queues, templates, bucket)
    return WorkflowBody(name, state, topology)


def _topology(
    element: etree._Element, queues: Mapping[str, MediaQueue], templates: TemplateStore, bucket: str
) -> Topology:
    nodes_element = child(element, "Nodes")
    dependencies_element = child(element, "Dependencies")
    if nodes_element is None or dependencies_element is None:
        raise invalid_argument("Topology needs Dependencies and Nodes")
    nodes: dict[str, Node] = {}
    for node in nodes_element.iterchildren("{*}*"):
        name = etree.QName(node).localname
        if name in nodes or not _NODE_NAME.fullmatch(name):
            raise invalid_argument(f"Topology.Nodes.{name} is repeated or not a node name")
        node_type = text_of(node, "Type")
        if node_type is None:
            raise invalid_argument(f"Topology.Nodes.{name}.Type is required")
        operation = child(node, "Operation")
        if operation is None and node_type not in _NO_OPERATION_NEEDED:
            raise invalid_argument(f"Topology.Nodes.{name}.Operation is required")
        nodes[name] = Node(
            name,
            node_type,
            element_fields(node),
            element_fields(operation) if operation is not None else [],
        )
    starts = [node for node in nodes.values() if node.type == START]
    if len(starts) != 1:
        raise invalid_argument("Topology.Nodes needs exactly one node of Type Start")
    start = starts[0]
    start_element = child(nodes_element, start.name)
    assert start_element is not None
    input_node = child(start_element, "Input")
    if input_node is None:
        raise invalid_argument(f"Topology.Nodes.{start.name}.Input is required")
    notify_node = child(input_node, "NotifyConfig")
    notify = None  # an empty NotifyConfig sets nothing, as an absent one
    if notify_node is not None and next(notify_node.iterchildren("{*}*"), None) is not None:
        # Held to a queue's rules: the same node. But a queue's is Off until switched On, while
        # CI's CreateWorkflow doc gives the Start node's no State at all (Url, Type and Event
        # "是"; its sample sets none) and says the runs report there: without State it is On
        # (UNCONFIRMED; the reading under which the doc's own sample gets its callbacks).
        notify = parse_notify_config(notify_node, default_state="On")
    queue_id = text_of(input_node, "QueueId")
    queue = queues.get(queue_id or "")
    if queue_id is None or queue is None or queue.bucket != bucket:
        raise invalid_argument(f"Topology.Nodes.{start.name}.Input.QueueId names no queue")
    for job_node in nodes.values():
        if job_node is not start:
            _check_operation(job_node, templates, bucket)
    dependencies: dict[str, tuple[str, ...]] = {}
    for entry in dependencies_element.iterchildren("{*}*"):
        name = etree.QName(entry).localname
        targets = tuple(t.strip() for t in (entry.text or "").split(",") if t.strip())
        if name not in nodes or not targets or any(t != END and t not in nodes for t in targets):
            raise invalid_argument(f"Topology.Dependencies.{name} joins unknown nodes")
        dependencies[name] = tuple(t for t in targets if t != END) or (END,)
    _check_graph(start.name, nodes, dependencies)
    return Topology(
        {name: tuple(targets) for name, targets in dependencies.items()},
        nodes,
        start.name,
        queue_id,
        text_of(input_node, "ObjectPrefix", strip=False) or "",
        notify,
        _texts(child(input_node, "ExtFilter")),
    )


def _check_operation(node: Node, templates: TemplateStore, bucket: str) -> None:
    values = dict((name, value) for name, value in node.operation if isinstance(value, str))
    for id_name, kind in (("TemplateId", node.type), ("TranscodeTemplateId", "Transcode")):
        template_id = values.get(id_name)
        if template_id is None:
            continue
        template = templates.get(bucket, template_id)
        if template is None or template.tag != kind:
            raise invalid_argument(
                f"Topology.Nodes.{node.name}.Operation.{id_name}: no {kind} template {template_id}"
            )


def _check_graph(
    start: str, nodes: Mapping[str, Node], edges: Mapping[str, tuple[str, ...]]
) -> None:
    """No cycle, and every node reachable from Start: a depth-first walk with a stack of its
    own, not Python's, since a chain is as deep as it is long (CI documents no most nodes per
    workflow; the recursive walk overflowed at ~1,000 and answered InternalError). Each step
    enters a node or follows or leaves one of its edges, and each node is entered once, so the
    walk ends within `bound` steps."""
    bound = 2 * len(nodes) + sum(len(targets) for targets in edges.values()) + 1
    on_path: set[str] = {start}  # the nodes the walk is in, from Start down: grey
    done: set[str] = set()  # every node walked from, and all it leads to: black
    stack: list[tuple[str, Iterator[str]]] = [(start, iter(edges.get(start, ())))]
    for _ in range(bound):
        if not stack:
            break
        name, following = stack[-1]
        target = next(following, None)
        if target is None:
            stack.pop()
            on_path.discard(name)
            done.add(name)
        elif target in on_path:
            raise invalid_argument(f"Topology.Dependencies has a cycle through {target}")
        elif target != END and target not in done:
            on_path.add(target)
            stack.append((target, iter(edges.get(target, ()))))
    else:
        raise AssertionError(f"the graph walk took more than {bound} steps")  # cannot happen
    unreachable = sorted(set(nodes) - done)
    if unreachable:
        raise invalid_argument(f"Topology: {', '.join(unreachable)} cannot be reached from Start")


@dataclass(frozen=True)
class WorkflowQuery:
    ids: tuple[str, ...]
    name: str | None
    page_number: int
    page_size: int


def parse_workflow_query(params: Mapping[str, str]) -> WorkflowQuery:
    ids = tuple(dict.fromkeys(i.strip() for i in params.get("ids", "").split(",") if i.strip()))
    if len(ids) > MAX_IDS:
        raise invalid_argument(f"at most {MAX_IDS} ids may be given")
    return WorkflowQuery(
        ids,
        params.get("name", "") or None,
        positive(params, "pageNumber", 1),
        positive(params, "pageSize", 10, MAX_PAGE),
    )


@dataclass(frozen=True)
class ExecutionQuery:
    workflow_id: str
    object_key: str | None
    ascending: bool
    states: frozenset[str] | None
    size: int
    after_seq: int | None
    start: float | None
    end: float | None


def parse_execution_query(params: Mapping[str, str]) -> ExecutionQuery:
    workflow_id = params.get("workflowId", "")
    if not workflow_id:
        raise invalid_argument("workflowId is required")
    order = params.get("orderByTime", "") or "Desc"
    if order not in ("Desc", "Asc"):
        raise invalid_argument("orderByTime must be Desc or Asc")
    state_names = {s.strip() for s in params.get("states", "").split(",") if s.strip()}
    # DescribeWorkflowExecutions' page lists the run states it takes: "All, Success, Failed,
    # Running, Cancel" (a run is never Submitted or Paused). Any other is refused.
    known = {RUNNING, SUCCESS, FAILED, "Cancel", "All"}
    if state_names - known:
        raise invalid_argument(f"states must be among {', '.join(sorted(known))}")
    states = None if not state_names or "All" in state_names else frozenset(state_names)
    token = params.get("nextToken", "")
    after: int | None = None
    if token:
        try:
            decoded = base64.urlsafe_b64decode(token.encode()).decode()
        except (binascii.Error, UnicodeDecodeError, ValueError):
            decoded = ""
        if not decoded.startswith(_CURSOR_PREFIX) or not decoded[len(_CURSOR_PREFIX) :].isdigit():
            raise invalid_argument("nextToken is not one this service issued")
        after = int(decoded[len(_CURSOR_PREFIX) :])
    bounds: list[float | None] = []
    for name in ("startCreationTime", "endCreationTime"):
        value = params.get(name, "")
        try:
            bounds.append(parse_ci_time(value) if value else None)
        except ValueError:
            raise invalid_argument(f"{name} must look like 2001-01-01T00:00:00+0800") from None
    return ExecutionQuery(
        workflow_id,
        params.get("name", "") or None,
        order == "Asc",
        states,
        positive(params, "size", 10, MAX_PAGE),
        after,
        bounds[0],
        bounds[1],
    )


def next_token(execution: Execution) -> str:
    return base64.urlsafe_b64encode(f"{_CURSOR_PREFIX}{execution.seq}".encode()).decode()


# ---- the store ---------------------------------------------------------------------------------


@dataclass
class WorkflowStore:
    """Every bucket's workflows and their runs."""

    workflows: dict[str, Workflow] = field(default_factory=dict)
    executions: dict[str, Execution] = field(default_factory=dict)
    _seq: int = 0

    def get(self, bucket: str, workflow_id: str) -> Workflow | None:
        workflow = self.workflows.get(workflow_id)
        return workflow if workflow is not None and workflow.bucket == bucket else None

    def create(self, bucket: str, body: WorkflowBody, now: float) -> Workflow:
        workflow = Workflow(
            "w" + secrets.token_hex(16), bucket, body.name, body.state, body.topology, now, now
        )
        self.workflows[workflow.workflow_id] = workflow
        return workflow

    def uses_template(self, bucket: str, template_id: str) -> Workflow | None:
        for workflow in self.workflows.values():
            if workflow.bucket != bucket:
                continue
            for node in workflow.topology.nodes.values():
                values = [v for _, v in node.operation if isinstance(v, str)]
                if template_id in values:
                    return workflow
        return None

    def select(self, bucket: str, query: WorkflowQuery) -> tuple[list[Workflow], int, list[str]]:
        """(this page, how many matched, requested ids unknown)."""
        mine = sorted(
            (w for w in self.workflows.values() if w.bucket == bucket),
            key=lambda w: (w.created_at, w.workflow_id),
        )
        by_id = {w.workflow_id: w for w in mine}
        missing = [i for i in query.ids if i not in by_id]
        matching = [
            w
            for w in ([by_id[i] for i in query.ids if i in by_id] if query.ids else mine)
            if query.name is None or w.name == query.name
        ]
        start = (query.page_number - 1) * query.page_size
        return matching[start : start + query.page_size], len(matching), missing

    def new_execution(self, workflow: Workflow, object_key: str, now: float) -> Execution:
        self._seq += 1
        execution = Execution(
            "i" + secrets.token_hex(16),
            self._seq,
            workflow,
            workflow.topology,
            workflow.bucket,
            object_key,
            now,
        )
        self.executions[execution.run_id] = execution
        return execution

    def execution(self, bucket: str, run_id: str) -> Execution | None:
        execution = self.executions.get(run_id)
        return execution if execution is not None and execution.bucket == bucket else None

    def list_executions(
        self, bucket: str, query: ExecutionQuery
    ) -> tuple[list[Execution], Execution | None]:
        """(this page, the last of it when more match)."""
        runs = sorted(
            (
                e
                for e in self.executions.values()
                if e.bucket == bucket
                and e.workflow.workflow_id == query.workflow_id
                and (query.object_key is None or e.object_key == query.object_key)
                and (query.states is None or e.state in query.states)
                and (query.start is None or e.created_at >= query.start)
                and (query.end is None or e.created_at <= query.end)
            ),
            key=lambda e: e.seq,
            reverse=not query.ascending,
        )
        if query.after_seq is not None:
            after = query.after_seq
            runs = [e for e in runs if (e.seq > after if query.ascending else e.seq < after)]
        page = runs[: query.size]
        return page, (page[-1] if len(runs) > query.size else None)


# ---- runs --------------------------------------------------------------------------------------

SubmitJob = Callable[[BucketConfig, etree._Element, WorkflowOrigin], Job]
"""Create a job from a CreateMediaJobs `<Request>` exactly as `POST /jobs` does (templates
resolved in place, queue checked), marked as started by the run's node (`WorkflowOrigin`);
raises `CiError` as the handler would answer it."""
WaitForJob = Callable[[str], Awaitable[Job]]
"""Until the job has ended (Success, Failed or Cancel)."""
Notify = Callable[[CallbackTarget, tuple[bytes, str], str], None]
"""Deliver a callback body (bytes, content type) to a target; the last argument names it."""


def job_request(execution: Execution, node: Node) -> etree._Element:
    """The `<Request>` a node's job is submitted with: its Type as Tag, the run's object, its
    Operation, the Start node's queue."""
    request = etree.Element("Request")
    etree.SubElement(request, "Tag").text = node.type
    etree.SubElement(etree.SubElement(request, "Input"), "Object").text = execution.object_key
    operation = etree.SubElement(request, "Operation")
    for name, value in node.operation:
        _append(operation, name, value)
    etree.SubElement(request, "QueueId").text = execution.topology.queue_id
    return request


def job_origin(execution: Execution, node: Node) -> WorkflowOrigin:
    """What a node's job says of its run (`JobsDetail.Workflow`), fixed when the job is
    created: the workflow's name then, as the run's describe would have reported it."""
    workflow = execution.workflow
    return WorkflowOrigin(execution.run_id, workflow.workflow_id, workflow.name, node.name)


def finish_target(execution: Execution, queue: MediaQueue | None) -> CallbackTarget | None:
    """Where a finished run reports: the Start node's NotifyConfig, else the queue's, if on and
    subscribed to WorkflowFinish; in its ResultFormat, to its address as a job's callback
    would go there (`callbacks.notify_target`)."""
    notify = execution.topology.notify
    if notify is None and queue is not None:
        notify = queue.notify
    if notify is None or not notify.notifies(EVENT_NAME):
        return None
    return notify_target(notify, notify.result_format or "XML")


def finish_body(execution: Execution, body_format: str) -> tuple[bytes, str]:
    fields: Fields = [
        ("EventName", EVENT_NAME),
        ("WorkflowExecution", execution.callback_fields()),
    ]
    if body_format == "JSON":
        return json.dumps(fields_to_json(fields), ensure_ascii=False).encode(), JSON_CONTENT_TYPE
    return render_response(fields), XML_CONTENT_TYPE


def matches_upload(workflow: Workflow, key: str) -> bool:
    """An upload of `key` starts a run of `workflow`: it is Active, the key is under its prefix,
    and (when its ExtFilter is on with CustomExts) the key's extension is listed. The filter's
    Video/Audio/Image classes are not modelled (UNCONFIRMED which extensions CI counts)."""
    topology = workflow.topology
    if workflow.state != ACTIVE or not key.startswith(topology.object_prefix):
        return False
    ext_filter = topology.ext_filter
    if ext_filter.get("State") == "On" and ext_filter.get("CustomExts"):
        allowed = {e.strip().lower() for e in ext_filter["CustomExts"].split("/") if e.strip()}
        return key.rpartition(".")[2].lower() in allowed
    return True


class WorkflowRunner:
    """Runs executions in tasks of its own; `close()` cancels them (a run cut short stays
    Running, as a run would when CI went away)."""

    def __init__(
        self,
        *,
        submit: SubmitJob,
        wait_for_job: WaitForJob,
        bucket: Callable[[str], BucketConfig],
        queue: Callable[[str], MediaQueue | None],
        notify: Notify,
        clock: Callable[[], float],
        on_change: Callable[[], None],
    ) -> None:
        self._submit = submit
        self._wait_for_job = wait_for_job
        self._bucket = bucket
        self._queue = queue
        self._notify = notify
        self._clock = clock
        self._on_change = on_change
        self._tasks = BackgroundTasks()

    def start(self, execution: Execution) -> None:
        self._tasks.spawn(self._run(execution), name=f"run-{execution.run_id}")

    async def close(self) -> None:
        await self._tasks.close()

    async def _run(self, execution: Execution) -> None:
        try:
            ok = True
            for name in execution.topology.order():  # bounded: the graph's nodes, once each
                ok = await self._run_node(execution, execution.topology.nodes[name])
                if not ok:
                    break
            execution.state = SUCCESS if ok else FAILED
        except asyncio.CancelledError:
            raise
        except Exception:  # a runner bug fails the run, never strands it Running
            logger.exception("workflow run %s crashed", execution.run_id)
            execution.state = FAILED
        self._on_change()
        self._report(execution)

    async def _run_node(self, execution: Execution, node: Node) -> bool:
        values = {name: value for name, value in node.operation if isinstance(value, str)}
        task = Task(node.name, node.type, self._clock(), template_id=values.get("TemplateId", ""))
        execution.tasks.append(task)
        request = job_request(execution, node)
        try:
            job = self._submit(self._bucket(execution.bucket), request, job_origin(execution, node))
        except CiError as error:
            task.state, task.code, task.message = FAILED, error.code, error.message
            task.ended_at = self._clock()
            self._on_change()
            return False
        task.job_id, task.template_name = job.job_id, job.spec.template_name
        self._on_change()
        async with asyncio.timeout(RUN_JOB_TIMEOUT_S):
            finished = await self._wait_for_job(job.job_id)
        task.state, task.ended_at = str(finished.state), self._clock()
        if finished.state is not JobState.SUCCESS:
            task.code, task.message = finished.code, finished.message
        self._on_change()
        return finished.state is JobState.SUCCESS

    def _report(self, execution: Execution) -> None:
        target = finish_target(execution, self._queue(execution.topology.queue_id))
        if target is None:
            return
        self._notify(target, finish_body(execution, target.body_format), execution.run_id)
