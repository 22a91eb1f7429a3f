"""What one client may do: buckets, operations, job tags and a request rate.

The decision needs a few facts of the request (`RequestScope`): the operation, from the RPC's
method name (`METHOD_OPERATIONS`), the bucket, region and tag the call will act on, with the same
defaults `gateway.api.validation` applies (the gateway's default bucket and region; tag
`MediaInfo`), and every other bucket and region the request names anywhere inside it
(`request.input.bucket_id`, an output's bucket: `gateway.access.places` finds them by walking
the message). Each of them must pass the client's `buckets` and `regions`. A job id names no
bucket of its own: CI finds a job only in the bucket the call names, so a client limited to its
buckets cannot describe, wait for, list or cancel a job in any other one.

`tags` are checked twice. A submit or a listing names its tag, so the request decides
(`RequestScope.tags`). A call by job id (describe, watch, wait, cancel) names none: the job's
`Tag` is known only from CI's answer, so `gateway.api.service` asks `ClientPolicy.sees_tag` of
each job it would show, and a job of another tag is answered exactly as a job CI does not have
(not found), never as a refusal that would tell the job exists. A cancel by a client with a
`tags` rule therefore describes the job first; clients without one pay nothing for it.

Every rule denies by default: an RPC missing from `METHOD_OPERATIONS` (one added later) is
allowed only to clients whose `operations` list it by method name or hold `"*"`.

CI's resources beside jobs have a read and a write operation each (`queues_read`,
`queues_write`, `templates_read`, ...); the bare name (`queues`) grants both. Writes change
what every service of the bucket shares (a paused queue stops everyone's jobs, a changed
template changes everyone's output), so a sidecar, which trusts every local caller, refuses
them unless its access file names them in `sidecar_operations` (`SIDECAR_GUARDED`).
"""

from __future__ import annotations

import enum
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

from google.protobuf.message import Message

from gateway.access.places import Place, named_places
from gateway.errors import AccessDenied, Reason

API_SERVICE = "ci.media.v1.MediaJobService"
QUEUE_SERVICE = "ci.media.v1.MediaQueueService"
TEMPLATE_SERVICE = "ci.media.v1.MediaTemplateService"
WORKFLOW_SERVICE = "ci.media.v1.MediaWorkflowService"
ANY = "*"
# gateway.api.validation's default for a submit or listing that names no tag.
DEFAULT_TAG = "MediaInfo"


class Operation(enum.StrEnum):
    SUBMIT = "submit"
    DESCRIBE = "describe"
    LIST = "list"
    CANCEL = "cancel"
    MEDIA_INFO = "media_info"
    # CI's resources: a group name (`queues`) grants its read and its write.
    QUEUES = "queues"
    QUEUES_READ = "queues_read"
    QUEUES_WRITE = "queues_write"
    TEMPLATES = "templates"
    TEMPLATES_READ = "templates_read"
    TEMPLATES_WRITE = "templates_write"
    WORKFLOWS = "workflows"
    WORKFLOWS_READ = "workflows_read"
    WORKFLOWS_WRITE = "workflows_write"


OPERATION_GROUPS: dict[str, frozenset[Operation]] = {
    Operation.QUEUES: frozenset({Operation.QUEUES_READ, Operation.QUEUES_WRITE}),
    Operation.TEMPLATES: frozenset({Operation.TEMPLATES_READ, Operation.TEMPLATES_WRITE}),
    Operation.WORKFLOWS: frozenset({Operation.WORKFLOWS_READ, Operation.WORKFLOWS_WRITE}),
}
# Changing a bucket's shared resources: refused by a sidecar unless `sidecar_operations` says.
SIDECAR_GUARDED = frozenset(
    {Operation.QUEUES_WRITE, Operation.TEMPLATES_WRITE, Operation.WORKFLOWS_WRITE}
)


def expand(operations: Iterable[str]) -> frozenset[str]:
    """The operations a list grants: each name, and each group's members."""
    granted: set[str] = set()
    for name in operations:
        granted.add(name)
        granted.update(OPERATION_GROUPS.get(name, ()))
    return frozenset(granted)


METHOD_OPERATIONS: dict[str, Operation] = {
    f"/{API_SERVICE}/SubmitMediaJob": Operation.SUBMIT,
    f"/{API_SERVICE}/SubmitMediaJobs": Operation.SUBMIT,
    f"/{API_SERVICE}/DescribeMediaJobs": Operation.DESCRIBE,
    # Watching or waiting for a job reads it, exactly like describing it.
    f"/{API_SERVICE}/WatchMediaJob": Operation.DESCRIBE,
    f"/{API_SERVICE}/WaitMediaJob": Operation.DESCRIBE,
    f"/{API_SERVICE}/ListMediaJobs": Operation.LIST,
    f"/{API_SERVICE}/CancelMediaJob": Operation.CANCEL,
    f"/{API_SERVICE}/GenerateMediaInfo": Operation.MEDIA_INFO,
    f"/{API_SERVICE}/GetMediaInfo": Operation.MEDIA_INFO,
    f"/{QUEUE_SERVICE}/DescribeMediaQueues": Operation.QUEUES_READ,
    f"/{QUEUE_SERVICE}/UpdateMediaQueue": Operation.QUEUES_WRITE,
    f"/{TEMPLATE_SERVICE}/DescribeMediaTemplates": Operation.TEMPLATES_READ,
    f"/{TEMPLATE_SERVICE}/CreateMediaTemplate": Operation.TEMPLATES_WRITE,
    f"/{TEMPLATE_SERVICE}/UpdateMediaTemplate": Operation.TEMPLATES_WRITE,
    f"/{TEMPLATE_SERVICE}/DeleteMediaTemplate": Operation.TEMPLATES_WRITE,
    f"/{WORKFLOW_SERVICE}/DescribeMediaWorkflows": Operation.WORKFLOWS_READ,
    f"/{WORKFLOW_SERVICE}/ListWorkflowExecutions": Operation.WORKFLOWS_READ,
    f"/{WORKFLOW_SERVICE}/DescribeWorkflowExecution": Operation.WORKFLOWS_READ,
    f"/{WORKFLOW_SERVICE}/WatchWorkflowExecution": Operation.WORKFLOWS_READ,
    f"/{WORKFLOW_SERVICE}/CreateMediaWorkflow": Operation.WORKFLOWS_WRITE,
    f"/{WORKFLOW_SERVICE}/UpdateMediaWorkflow": Operation.WORKFLOWS_WRITE,
    f"/{WORKFLOW_SERVICE}/DeleteMediaWorkflow": Operation.WORKFLOWS_WRITE,
    f"/{WORKFLOW_SERVICE}/ActivateMediaWorkflow": Operation.WORKFLOWS_WRITE,
    f"/{WORKFLOW_SERVICE}/PauseMediaWorkflow": Operation.WORKFLOWS_WRITE,
    # A run submits jobs on the workflow's behalf, as the workflow's owner set it up.
    f"/{WORKFLOW_SERVICE}/TriggerMediaWorkflow": Operation.WORKFLOWS_WRITE,
}


# Unary calls that wait on a job rather than act (for up to the RPC deadline): like the
# streams, they are open calls that a change of the access file ends (`gateway.access.open_calls`).
WAITING_METHODS = frozenset({f"/{API_SERVICE}/WaitMediaJob"})


def operation_of(method: str) -> str:
    """The operation name a policy lists for `/package.Service/Method`; an unmapped method is
    its own name (`Method`), which only a client listing it (or `*`) may call."""
    known = METHOD_OPERATIONS.get(method)
    return known.value if known is not None else method.rsplit("/", 1)[-1]


@dataclass(frozen=True)
class RequestScope:
    operation: str
    bucket: str
    tag: str | None  # only submits and listings name a tag
    region: str = ""
    # Every other bucket and region the request names, wherever in the message.
    elsewhere: tuple[Place, ...] = ()
    # A multi-operation submit names no tag at the top (`tag` None) but one per operation, each
    # checked like `tag` (as sent: validation refuses an operation without one).
    operation_tags: tuple[str, ...] = ()

    @property
    def tags(self) -> tuple[str, ...]:
        """Every job tag the call would act on."""
        return ((self.tag,) if self.tag is not None else ()) + self.operation_tags


# The request's own target: read (with its default) as `bucket` and `region` above.
_TARGET_FIELDS = frozenset({"bucket", "region"})


def request_scope(
    method: str, request: object, default_bucket: str, default_region: str = ""
) -> RequestScope:
    """The facts a policy decides on, read from the deserialized request."""
    operation = operation_of(method)
    bucket = getattr(request, "bucket", "") or default_bucket
    region = getattr(request, "region", "") or default_region
    tag: str | None = None
    operation_tags: tuple[str, ...] = ()
    if operation == Operation.SUBMIT:
        body = getattr(request, "request", None)
        operations = getattr(body, "operation", None)
        if isinstance(operations, Sequence):  # SubmitMediaJobs: `repeated Operation operation`
            operation_tags = tuple(getattr(item, "tag", "") for item in operations)
        else:
            tag = getattr(body, "tag", "") or DEFAULT_TAG
    elif operation == Operation.LIST:
        tag = getattr(request, "tag", "") or DEFAULT_TAG
    elsewhere: tuple[Place, ...] = ()
    if isinstance(request, Message):
        places = named_places(request)
        elsewhere = tuple(place for place in places if place.field not in _TARGET_FIELDS)
    return RequestScope(operation, bucket, tag, region, elsewhere, operation_tags)


@dataclass(frozen=True)
class RateLimit:
    per_s: float
    burst: float


class TokenBucket:
    """`burst` calls at once, refilled at `per_s`; one token per call."""

    def __init__(self, limit: RateLimit, *, clock: Callable[[], float] = time.monotonic) -> None:
        self.limit = limit
        self._clock = clock
        self._tokens = limit.burst
        self._updated = clock()

    def try_take(self) -> float:
        """0 when the call may proceed, else the seconds until a token is due."""
        now = self._clock()
        elapsed = max(now - self._updated, 0.0)
        self._tokens = min(self.limit.burst, self._tokens + elapsed * self.limit.per_s)
        self._updated = now
        if self._tokens >= 1:
            self._tokens -= 1
            return 0.0
        return (1 - self._tokens) / self.limit.per_s


@dataclass(frozen=True)
class ClientPolicy:
    """One client: how it proves who it is, and what it may do."""

    name: str
    buckets: frozenset[str]
    operations: frozenset[str]
    tags: frozenset[str] = frozenset({ANY})
    regions: frozenset[str] = frozenset({ANY})
    rate: RateLimit | None = None
    certificate_names: frozenset[str] = frozenset()
    # sha256 hex of each bearer token; the tokens themselves are never stored.
    token_sha256: frozenset[str] = frozenset()

    def __repr__(self) -> str:
        return f"ClientPolicy(name={self.name!r})"

    @property
    def restricts_tags(self) -> bool:
        """Whether `tags` limits this client (else every job tag is its to see)."""
        return ANY not in self.tags

    def sees_tag(self, tag: str) -> bool:
        """Whether a job tagged `tag` exists for this client (a job CI answers without a tag
        is seen only by clients without a `tags` rule)."""
        return ANY in self.tags or tag in self.tags

    def check(self, scope: RequestScope) -> None:
        """Raise `AccessDenied` naming the first rule that refuses the call."""
        if ANY not in self.operations and scope.operation not in self.operations:
            raise AccessDenied(
                Reason.OPERATION_NOT_ALLOWED,
                f"this client may not call {scope.operation!r}",
                {"operation": scope.operation},
            )
        self._check_place(scope, Place("bucket", "bucket", scope.bucket), top=True)
        for place in scope.elsewhere:
            if place.kind == "bucket":
                self._check_place(scope, place)
        self._check_place(scope, Place("region", "region", scope.region), top=True)
        for place in scope.elsewhere:
            if place.kind == "region":
                self._check_place(scope, place)
        if ANY in self.tags:
            return
        for tag in scope.tags:
            if tag not in self.tags:
                raise AccessDenied(
                    Reason.TAG_NOT_ALLOWED,
                    f"this client may not use job tag {tag!r}",
                    {"operation": scope.operation, "tag": tag},
                )

    def _check_place(self, scope: RequestScope, place: Place, *, top: bool = False) -> None:
        """A bucket or region of the request against `buckets` / `regions`; the refusal names
        the value asked for and, below the request's own target, the field that named it."""
        allowed = self.buckets if place.kind == "bucket" else self.regions
        if ANY in allowed or place.value in allowed:
            return
        reason = Reason.BUCKET_NOT_ALLOWED if place.kind == "bucket" else Reason.REGION_NOT_ALLOWED
        shown = place.value or f"(no {place.kind})"
        asked = {"operation": scope.operation, place.kind: place.value}
        where = ""
        if not top:
            asked["field"] = place.field
            where = f" (in {place.field})"
        raise AccessDenied(reason, f"this client may not use {place.kind} {shown!r}{where}", asked)
