"""A raw HTTP/1.1 peer on loopback that plays CI for every queue, template, workflow and
media-info call, and answers each request with whatever bytes a test scripts: CI's own
answers, or what a hostile server (or a broken proxy) might send instead.

Raw asyncio streams rather than aiohttp, because the faults under test are below HTTP's
semantics (a Content-Length that lies, chunk framing that breaks, a close in mid-body, a body
trickled byte by byte); `tests.integration.fake_ci` serves the ones aiohttp can write. Nothing
of the gateway is mocked: it is started for real, and called over a real gRPC channel.

`CALLS` is every RPC these tests cover, each with its request and how the gateway retries it;
`good_answer` is CI's answer to each, as documented (catalogue §2.2-2.3, notes §4 and §8).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass, field
from enum import Enum
from typing import Any

import grpc

from gateway._proto import (
    job_kinds_pb2,
    media_pb2,
    queues_pb2,
    service_pb2,
    templates_pb2,
    workflows_pb2,
)
from gateway.api.server import RunningGateway, start_gateway
from gateway.config.settings import Retry, Settings, Tracking
from gateway.credentials import Credentials, StaticCredentialsProvider
from tests.conftest import BUCKET, REGION
from tests.fixtures.tcp import stream_server
from tests.resources.conftest import Stubs, platform_access, stubs_on

W = workflows_pb2
QUEUE_ID = "p" + "b" * 32
RUN_ID = "i7fd6f3e2a7e411ee8d3e525400c2b7b1"
JOB_IDS = [f"j{index:032x}" for index in range(25)]  # three describe batches


class Act(Enum):
    """What the peer does besides writing bytes."""

    CUT = "cut"  # reset the connection where the script reached this point
    HOLD = "hold"  # never answer: wait until the gateway gives up and closes
    TRICKLE = "trickle"  # a head announcing 1,000 bytes, then one byte per TRICKLE_S


TRICKLE_S = 0.05
MAX_RESPONSE_BYTES = 256 * 1024  # the gateways' here: an answer past it is cheap to send


Piece = bytes | Act
Script = Callable[["Seen"], Sequence[Piece]]


@dataclass(frozen=True)
class Seen:
    """One request as the peer read it."""

    method: str
    target: str  # path and query, as sent
    headers: dict[str, str]
    body: bytes

    @property
    def path(self) -> str:
        return self.target.partition("?")[0]


@dataclass
class Peer:
    """What the peer was sent, and what it answers (a test may swap `script` between calls)."""

    script: Script
    url: str = ""
    requests: list[Seen] = field(default_factory=list)
    closed_unanswered: int = 0  # held requests whose connection the gateway closed
    _closed: asyncio.Event = field(default_factory=asyncio.Event)

    def note_closed(self) -> None:
        self.closed_unanswered += 1
        closed, self._closed = self._closed, asyncio.Event()
        closed.set()

    async def until_closed(self, count: int, timeout_s: float = 10.0) -> None:
        """Until the gateway has closed `count` connections it gave up on (bounded)."""
        async with asyncio.timeout(timeout_s):
            while self.closed_unanswered < count:  # each pass waits for one more close
                await self._closed.wait()


def http(
    status: int,
    body: bytes = b"",
    *headers: str,
    reason: str = "Reason",
    content_type: str = "application/xml",
    request_id: bytes = b"",
) -> bytes:
    """One complete answer with a correct Content-Length and CI's request id header
    (`RID-<status>` unless `request_id` says otherwise)."""
    head = [f"HTTP/1.1 {status} {reason}", f"Content-Length: {len(body)}"]
    head += [f"Content-Type: {content_type}", *headers]
    rid = request_id or f"RID-{status}".encode()
    return ("\r\n".join(head) + "\r\n").encode() + b"x-ci-request-id: " + rid + b"\r\n\r\n" + body


async def _read(reader: asyncio.StreamReader) -> Seen | None:
    try:
        head = await reader.readuntil(b"\r\n\r\n")
    except (asyncio.IncompleteReadError, ConnectionError):
        return None
    lines = head.decode("latin-1").split("\r\n")
    method, target, _ = lines[0].split(" ", 2)
    headers = {}
    for line in lines[1:]:
        name, sep, value = line.partition(":")
        if sep:
            headers[name.strip().lower()] = value.strip()
    body = await reader.readexactly(int(headers.get("content-length", "0")))
    return Seen(method, target, headers, body)


async def _trickle(writer: asyncio.StreamWriter) -> None:
    """A 200 whose body comes a byte at a time, far slower than any deadline of these tests,
    until the gateway closes the connection (bounded: 1,000 bytes)."""
    writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n")
    with contextlib.suppress(ConnectionError):
        for _ in range(1000):
            writer.write(b" ")
            await writer.drain()
            if writer.transport.is_closing():
                return
            await asyncio.sleep(TRICKLE_S)  # the fault itself: the peer's pace, not a wait


@contextlib.asynccontextmanager
async def hostile_ci(script: Script) -> AsyncIterator[Peer]:
    peer = Peer(script)

    async def on_connection(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        for _ in range(1000):  # requests on one keep-alive connection; far more than a test sends
            seen = await _read(reader)
            if seen is None:
                return
            peer.requests.append(seen)
            for piece in peer.script(seen):
                if piece is Act.CUT:
                    writer.transport.abort()
                    return
                if piece is Act.HOLD:
                    with contextlib.suppress(ConnectionError):
                        await reader.read()  # until the gateway closes: it gave up
                    peer.note_closed()
                    return
                if piece is Act.TRICKLE:
                    await _trickle(writer)
                    peer.note_closed()
                    return
                assert isinstance(piece, bytes)
                writer.write(piece)
            await writer.drain()

    async with stream_server(on_connection) as server:
        peer.url = f"http://127.0.0.1:{server.port}"
        yield peer


@contextlib.asynccontextmanager
async def gateway_for(
    peer: Peer, credentials: Credentials, **overrides: Any
) -> AsyncIterator[tuple[RunningGateway, Stubs]]:
    """A real gateway in front of `peer`: quick retries and a budget no test spends, so every
    call shows its own retry decision; run watches poll fast."""
    options: dict[str, Any] = {
        "listen": "127.0.0.1:0",
        "default_bucket": BUCKET,
        "default_region": REGION,
        "endpoint_url": peer.url,
        "retry": Retry(transient_base_s=0.001, throttled_base_s=0.001, budget_capacity=1e6),
        "tracking": Tracking(poll_initial_s=0.05, poll_max_s=0.1),
        "max_response_bytes": MAX_RESPONSE_BYTES,
        **overrides,
    }
    gateway = await start_gateway(
        Settings(**options), StaticCredentialsProvider(credentials), access=platform_access()
    )
    try:
        async with grpc.aio.insecure_channel(gateway.address) as channel:
            yield gateway, stubs_on(channel)
    finally:
        await gateway.stop(grace_s=0)


# ---- the calls ---------------------------------------------------------------------------------


class Replay(Enum):
    """How the gateway retries a call (gateway.upstream.retry)."""

    IDEMPOTENT = "idempotent"  # reads, PUTs, DELETEs: every transient outcome is retried
    ONCE = "once"  # creates and triggers: only what never reached CI, or was throttled


def _workflow() -> W.MediaWorkflow:
    key = "MediaInfo_1581665960537"
    topology = W.WorkflowTopology(dependencies={"Start": key, key: "End"})
    topology.nodes["Start"].CopyFrom(
        W.WorkflowNode(type="Start", input=W.WorkflowNodeInput(queue_id=QUEUE_ID))
    )
    topology.nodes[key].CopyFrom(W.WorkflowNode(type="MediaInfo"))
    return W.MediaWorkflow(name="probe", state=W.WORKFLOW_STATE_ACTIVE, topology=topology)


_SNAPSHOT = templates_pb2.MediaTemplate(
    name="thumbs", snapshot=job_kinds_pb2.Snapshot(mode="Interval")
)
_NOTIFY = queues_pb2.QueueNotifyConfig(url="http://hooks.example/ci", type="Url", state="On")


Invoke = Callable[[Stubs, float], Any]  # the stub's call: await it, or read its trailers


@dataclass(frozen=True)
class Call:
    name: str
    invoke: Invoke
    replay: Replay
    requires: str = ""  # the node every answer of it has (`CiCall.requires`)
    batched: bool = False  # several CI requests at once: their count is not one call's
    # A listing naming no queue looks up the bucket's queue first, one attempt, once per
    # gateway while CI fails (`upstream.default_queue`).
    looks_up_queue: bool = False


CALLS: tuple[Call, ...] = (
    Call(
        "DescribeMediaQueues",
        lambda s, t: s.queues.DescribeMediaQueues(
            queues_pb2.DescribeMediaQueuesRequest(), timeout=t
        ),
        Replay.IDEMPOTENT,
    ),
    Call(
        "UpdateMediaQueue",
        lambda s, t: s.queues.UpdateMediaQueue(
            queues_pb2.UpdateMediaQueueRequest(
                queue=queues_pb2.MediaQueue(
                    queue_id=QUEUE_ID,
                    name="q",
                    state=queues_pb2.QUEUE_STATE_PAUSED,
                    notify_config=_NOTIFY,
                )
            ),
            timeout=t,
        ),
        Replay.IDEMPOTENT,
        requires="Queue",
    ),
    Call(
        # The read of a read-then-write: the answer under test reaches the read first.
        "UpdateMediaQueue(reads first)",
        lambda s, t: s.queues.UpdateMediaQueue(
            queues_pb2.UpdateMediaQueueRequest(
                queue=queues_pb2.MediaQueue(queue_id=QUEUE_ID, state=queues_pb2.QUEUE_STATE_PAUSED)
            ),
            timeout=t,
        ),
        Replay.IDEMPOTENT,
    ),
    Call(
        "CreateMediaTemplate",
        lambda s, t: s.templates.CreateMediaTemplate(
            templates_pb2.CreateMediaTemplateRequest(template=_SNAPSHOT), timeout=t
        ),
        Replay.ONCE,
        requires="Template",
    ),
    Call(
        "UpdateMediaTemplate",
        lambda s, t: s.templates.UpdateMediaTemplate(
            templates_pb2.UpdateMediaTemplateRequest(template_id="t1abc", template=_SNAPSHOT),
            timeout=t,
        ),
        Replay.IDEMPOTENT,
        requires="Template",
    ),
    Call(
        "DescribeMediaTemplates",
        lambda s, t: s.templates.DescribeMediaTemplates(
            templates_pb2.DescribeMediaTemplatesRequest(), timeout=t
        ),
        Replay.IDEMPOTENT,
    ),
    Call(
        "DeleteMediaTemplate",
        lambda s, t: s.templates.DeleteMediaTemplate(
            templates_pb2.DeleteMediaTemplateRequest(template_id="t1abc"), timeout=t
        ),
        Replay.IDEMPOTENT,
    ),
    Call(
        "CreateMediaWorkflow",
        lambda s, t: s.workflows.CreateMediaWorkflow(
            W.CreateMediaWorkflowRequest(media_workflow=_workflow()), timeout=t
        ),
        Replay.ONCE,
        requires="MediaWorkflow",
    ),
    Call(
        "UpdateMediaWorkflow",
        lambda s, t: s.workflows.UpdateMediaWorkflow(
            W.UpdateMediaWorkflowRequest(workflow_id="w1abc", media_workflow=_workflow()),
            timeout=t,
        ),
        Replay.IDEMPOTENT,
        requires="MediaWorkflow",
    ),
    Call(
        "DescribeMediaWorkflows",
        lambda s, t: s.workflows.DescribeMediaWorkflows(
            W.DescribeMediaWorkflowsRequest(), timeout=t
        ),
        Replay.IDEMPOTENT,
    ),
    Call(
        "DeleteMediaWorkflow",
        lambda s, t: s.workflows.DeleteMediaWorkflow(
            W.DeleteMediaWorkflowRequest(workflow_id="w1abc"), timeout=t
        ),
        Replay.IDEMPOTENT,
    ),
    Call(
        "ActivateMediaWorkflow",
        lambda s, t: s.workflows.ActivateMediaWorkflow(
            W.ActivateMediaWorkflowRequest(workflow_id="w1abc"), timeout=t
        ),
        Replay.IDEMPOTENT,
    ),
    Call(
        "PauseMediaWorkflow",
        lambda s, t: s.workflows.PauseMediaWorkflow(
            W.PauseMediaWorkflowRequest(workflow_id="w1abc"), timeout=t
        ),
        Replay.IDEMPOTENT,
    ),
    Call(
        "TriggerMediaWorkflow",
        lambda s, t: s.workflows.TriggerMediaWorkflow(
            W.TriggerMediaWorkflowRequest(workflow_id="w1abc", object="input/a.mp4"), timeout=t
        ),
        Replay.ONCE,
        requires="InstanceId",
    ),
    Call(
        "ListWorkflowExecutions",
        lambda s, t: s.workflows.ListWorkflowExecutions(
            W.ListWorkflowExecutionsRequest(workflow_id="w1abc"), timeout=t
        ),
        Replay.IDEMPOTENT,
    ),
    Call(
        "DescribeWorkflowExecution",
        lambda s, t: s.workflows.DescribeWorkflowExecution(
            W.DescribeWorkflowExecutionRequest(run_id=RUN_ID), timeout=t
        ),
        Replay.IDEMPOTENT,
    ),
    Call(
        "GetMediaInfo",
        lambda s, t: s.jobs.GetMediaInfo(
            service_pb2.GetMediaInfoRequest(object="input/a.mp4"), timeout=t
        ),
        Replay.IDEMPOTENT,
        requires="MediaInfo",
    ),
    Call(
        "GenerateMediaInfo",
        lambda s, t: s.jobs.GenerateMediaInfo(
            service_pb2.GenerateMediaInfoRequest(input=media_pb2.Input(object="input/a.mp4")),
            timeout=t,
        ),
        Replay.IDEMPOTENT,
        requires="MediaInfo",
    ),
    Call(
        "ListMediaJobs",
        lambda s, t: s.jobs.ListMediaJobs(
            service_pb2.ListMediaJobsRequest(tag="MediaInfo", next_token="page-2"), timeout=t
        ),
        Replay.IDEMPOTENT,
        looks_up_queue=True,
    ),
    Call(
        "DescribeMediaJobs(3 batches)",
        lambda s, t: s.jobs.DescribeMediaJobs(
            service_pb2.DescribeMediaJobsRequest(job_ids=JOB_IDS), timeout=t
        ),
        Replay.IDEMPOTENT,
        batched=True,
    ),
)
BY_NAME = {call.name: call for call in CALLS}


# ---- CI's own answers ----------------------------------------------------------------------------

_QUEUE = (
    f"<QueueId>{QUEUE_ID}</QueueId><Name>q</Name><State>Active</State>"
    "<NotifyConfig><Url>http://hooks.example/ci</Url><State>On</State><Type>Url</Type>"
    "</NotifyConfig><MaxSize>10000</MaxSize><MaxConcurrent>10</MaxConcurrent>"
)
_TEMPLATE = (
    "<TemplateId>t1abc</TemplateId><Tag>Snapshot</Tag><Name>thumbs</Name>"
    "<Snapshot><Mode>Interval</Mode></Snapshot>"
)
_WORKFLOW = "<WorkflowId>w1abc</WorkflowId><Name>probe</Name><State>Active</State>"
_MEDIA_INFO = (
    "<MediaInfo><Format><NumStream>1</NumStream><FormatName>mov,mp4</FormatName>"
    "<Duration>2.000000</Duration></Format></MediaInfo>"
)


def good_answer(seen: Seen, request_id: bytes = b"") -> bytes:
    """CI's answer to `seen`, as documented for each operation (with `request_id` as its
    `x-ci-request-id` header, when given)."""
    method, path, query = seen.method, seen.path, seen.target.partition("?")[2]
    if path == "/queue":
        inner = f"<QueueList>{_QUEUE}</QueueList>"
    elif path.startswith("/queue/"):
        inner = f"<Queue>{_QUEUE}</Queue>"
    elif path == "/template" and method == "GET":
        inner = f"<TotalCount>1</TotalCount><TemplateList>{_TEMPLATE}</TemplateList>"
    elif path.startswith("/template") and method == "DELETE":
        inner = "<TemplateId>t1abc</TemplateId>"
    elif path.startswith("/template"):
        inner = f"<Template>{_TEMPLATE}</Template>"
    elif path == "/workflowexecution":
        inner = f"<WorkflowExecutionList><RunId>{RUN_ID}</RunId></WorkflowExecutionList>"
    elif path.startswith("/workflowexecution/"):
        inner = (
            f"<WorkflowExecution><RunId>{RUN_ID}</RunId><WorkflowId>w1abc</WorkflowId>"
            "<State>Success</State></WorkflowExecution>"
        )
    elif path == "/workflow" and method == "GET":
        inner = f"<MediaWorkflowList>{_WORKFLOW}</MediaWorkflowList>"
    elif path.startswith("/workflow/") and method == "DELETE":
        inner = "<WorkflowId>w1abc</WorkflowId>"
    elif path.startswith("/workflow/") and query in ("active", "paused"):
        inner = ""
    elif path.startswith("/workflow"):
        inner = f"<MediaWorkflow>{_WORKFLOW}</MediaWorkflow>"
    elif path == "/triggerworkflow":
        inner = f"<InstanceId>{RUN_ID}</InstanceId>"
    elif path == "/jobs":
        inner = "<NextToken></NextToken>"
    elif path.startswith("/jobs/"):
        ids = path.removeprefix("/jobs/").replace("%2C", ",").split(",")
        inner = "".join(f"<NonExistJobIds>{job_id}</NonExistJobIds>" for job_id in ids)
    else:  # /mediainfo, and GET /<key>?ci-process=videoinfo on the COS host
        inner = _MEDIA_INFO
    body = f"<Response><RequestId>RID-body</RequestId>{inner}</Response>".encode()
    return http(200, body, request_id=request_id)


def answering_well(seen: Seen) -> Sequence[Piece]:
    return [good_answer(seen)]
