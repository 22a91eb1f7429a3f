"""The CI and COS endpoints: route by (host kind, method, path), then one handler per operation.

Routing happens before the signature check, as CI's front end does: an unknown path is
InvalidUrl 404 and a known path with the wrong method MethodNotAllowed 405 whoever asks. CI paths
that exist but are not emulated (other job and queue families) are NotImplemented 501, so a
client hitting them learns the gap is the emulator's, not its own bug. Templates and workflows
are `resource_api`'s, routed by the front end before this module's `route`.

Choices where CI's behaviour is undocumented (UNCONFIRMED, tolerant reading unless noted):

* describe: unknown ids go to `<NonExistJobIds>`, one element per id (Go's multi-describe types
  it `[]string`), with 200 even when no id exists; more than 10 ids is InvalidArgument; repeated
  ids are answered once, in first-seen order.
* cancel: unknown id -> InvalidArgument 400 (CI's table has no job-not-found code and uses
  InvalidArgument for bad parameters); Submitted or Pause (waiting in a paused queue) -> Cancel;
  a media job Running in a worker -> Cancel, its worker killed (issue 14; see
  `Job.cancellable`); a Running MediaInfo job or a finished job -> InvalidArgument 400 "job ...
  is Running and cannot be canceled" (CI: only jobs not yet executing can be cancelled); an
  already-cancelled job -> 200 again, so a retried cancel whose answer was lost succeeds;
  `PUT /jobs/<id>` without `?cancel` -> InvalidArgument (no other PUT exists on that path).
* submit to a Paused queue -> QueuePaused 403, to a full one -> QueueSaturated 403 (notes §8.2).
  A multi-operation submit (`multi_submit`) is checked whole before its jobs are created; a
  queue that fills up part-way leaves the jobs created so far (CI's behaviour is undocumented).
* `PUT /queue/<id>` for a queue this bucket does not have -> InvalidArgument 400 (as an unknown
  QueueId on submit); the queue API's own rules are in `queue_api`.
* `POST /mediainfo` on a missing object -> ResourceNotFound 400 (CI's "input resource does not
  exist"); `GET /<key>?ci-process=videoinfo` on a missing key -> NoSuchKey 404 (COS's code). A
  file that is not media -> InvalidArgument 400 with the probe's message on both hosts (CI: "no
  special error codes").
"""

from __future__ import annotations

import hashlib
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, replace

from aiohttp import web
from lxml import etree

from ci_emulator.body import parse_request_xml, read_body
from ci_emulator.config import BucketConfig
from ci_emulator.errors import CiError, invalid_argument
from ci_emulator.hosts import Service, Target
from ci_emulator.jobs import Job, JobState, WorkflowOrigin, full_detail, submit_detail
from ci_emulator.listing import parse_list_query
from ci_emulator.multi_submit import split_operations
from ci_emulator.objects import resolve_object_path
from ci_emulator.probe import ProbeError, ProbeErrorCode
from ci_emulator.queue_api import (
    parse_queue_query,
    parse_queue_update,
    queue_fields,
    select_queues,
)
from ci_emulator.queues import QueueState
from ci_emulator.state import EmulatorState
from ci_emulator.submit import object_key, parse_submit, sent_operation
from ci_emulator.templates import resolve_job_templates
from ci_emulator.xmlbuild import Fields, media_info_fields, render_response

MAX_DESCRIBE_IDS = 10

_UNEMULATED_CI_PREFIXES = (
    "/pic_jobs",
    "/ai_jobs",
    "/picqueue",
    "/ai_queue",
    "/asrqueue",
    "/file_queue",
    "/inventorytriggerjob",
)


@dataclass(frozen=True)
class Call:
    """One authenticated request, resolved to its bucket."""

    request: web.Request
    state: EmulatorState
    bucket: BucketConfig
    target: Target
    params: Mapping[str, str]
    request_id: str
    """The id this request is answered under (also in the request-id header)."""


Handler = Callable[[Call], Awaitable[web.Response]]


@dataclass(frozen=True)
class Endpoint:
    name: str
    """CI's operation name; the key of `EmulatorState.operations`."""
    handler: Handler


def xml_response(fields: Fields) -> web.Response:
    return web.Response(body=render_response(fields), content_type="application/xml")


def route(target: Target, method: str) -> Endpoint:
    if target.service is Service.COS:
        return _route_cos(target, method)
    path = target.path
    if path == "/jobs":
        return _by_method(method, POST=CREATE, GET=LIST)
    if path.startswith("/jobs/"):
        return _by_method(method, GET=DESCRIBE, PUT=CANCEL)
    if path == "/queue":
        return _by_method(method, GET=DESCRIBE_QUEUES)
    if path.startswith("/queue/"):
        return _by_method(method, PUT=UPDATE_QUEUE)
    if path == "/mediainfo":
        return _by_method(method, POST=GENERATE_MEDIA_INFO)
    if path.startswith(_UNEMULATED_CI_PREFIXES):
        raise CiError("NotImplemented", f"the CI emulator does not serve {path}")
    raise CiError("InvalidUrl", f"no CI API at {path}")


def _route_cos(target: Target, method: str) -> Endpoint:
    if target.path == "/":
        raise CiError("NotImplemented", "the CI emulator serves only ?ci-process=videoinfo on COS")
    return _by_method(method, GET=VIDEO_INFO)


def _by_method(method: str, **endpoints: Endpoint) -> Endpoint:
    endpoint = endpoints.get(method)
    if endpoint is None:
        raise CiError("MethodNotAllowed", f"{method} is not allowed here", status=405)
    return endpoint


# ---- job API ---------------------------------------------------------------------------------


async def _request_body(call: Call) -> tuple[bytes, etree._Element]:
    max_bytes = call.state.config.max_body_bytes
    body = await read_body(call.request, max_bytes=max_bytes)
    if call.state.bodies is not None:
        call.state.bodies.append((call.request.method, call.target.path, body))
    return body, parse_request_xml(body, max_bytes=max_bytes)


async def _request_xml(call: Call) -> etree._Element:
    return (await _request_body(call))[1]


def submit_jobs(
    state: EmulatorState,
    bucket: BucketConfig,
    root: etree._Element,
    *,
    body_digest: str = "",
    workflow: WorkflowOrigin | None = None,
) -> list[Job]:
    """CreateMediaJobs' steps, from a parsed `<Request>` to its queued jobs: shared with
    workflow runs, whose node jobs are created exactly as a submit would create them, plus
    `workflow` (the run and node that started them: their `JobsDetail.Workflow`, and what a
    listing by `workflowId` finds them by). A client's submit cannot set it.

    The multi-operation form is one single-form request per Operation (`multi_submit`); each
    gets the templates it names merged in (`templates`), and every one is checked before any
    job is created. The jobs echo each Operation as it was sent (`submit.parse_submit`'s
    `sent`)."""
    requests = split_operations(root) or [root]
    # What the client sent, before templates are merged in to run the job: CI echoes that.
    sent = [sent_operation(one) for one in requests]
    for one in requests:
        resolve_job_templates(one, state.resources.templates, bucket.name)
    specs = [
        parse_submit(
            one,
            default_queue_id=state.default_queue[bucket.name],
            bucket=bucket,
            buckets=state.config.bucket,
            sent=operation,
        )
        for one, operation in zip(requests, sent, strict=True)
    ]
    if workflow is not None:
        specs = [replace(spec, workflow=workflow) for spec in specs]
    for spec in specs:
        queue = state.queue_of(bucket.name, spec.queue_id)
        if queue.state is QueueState.PAUSED:
            raise CiError("QueuePaused", f"queue {queue.queue_id} is paused")
    return [state.submit(bucket, spec, body_digest=body_digest) for spec in specs]


async def _create(call: Call) -> web.Response:
    body, root = await _request_body(call)
    digest = hashlib.sha256(body).hexdigest()
    jobs = submit_jobs(call.state, call.bucket, root, body_digest=digest)
    return xml_response([("JobsDetail", submit_detail(job)) for job in jobs])


async def _describe(call: Call) -> web.Response:
    requested = list(dict.fromkeys(i for i in call.target.path[len("/jobs/") :].split(",") if i))
    if not requested:
        raise invalid_argument("a job id is required")
    if len(requested) > MAX_DESCRIBE_IDS:
        raise invalid_argument(f"at most {MAX_DESCRIBE_IDS} job ids may be described at once")
    found: Fields = []
    missing: Fields = []
    for job_id in requested:
        job = call.state.jobs.get(job_id)
        if job is not None and job.bucket == call.bucket.name:
            found.append(("JobsDetail", full_detail(job)))
        else:
            missing.append(("NonExistJobIds", job_id))
    return xml_response(found + missing)


async def _list(call: Call) -> web.Response:
    query = parse_list_query(call.params)
    if query.queue_id is not None:
        call.state.queue_of(call.bucket.name, query.queue_id)
    listed_until = call.state.faults.listed_until(call.state.config.clock())
    if listed_until is not None:
        query = replace(query, listed_until=listed_until)
    found = call.state.list_jobs(call.bucket.name, query)
    fields: Fields = [("JobsDetail", full_detail(job)) for job in found.jobs]
    return xml_response([*fields, ("NextToken", found.next_token)])


async def _cancel(call: Call) -> web.Response:
    if "cancel" not in call.params:
        raise invalid_argument("PUT /jobs/<jobId> needs the cancel flag (?cancel)")
    job_id = call.target.path[len("/jobs/") :]
    if not job_id or "," in job_id:
        raise invalid_argument("exactly one job id may be cancelled at a time")
    job = call.state.jobs.get(job_id)
    if job is None or job.bucket != call.bucket.name:
        raise invalid_argument(f"job {job_id} does not exist")
    if job.cancellable:
        call.state.cancel(job)
    elif job.state is not JobState.CANCEL:
        raise invalid_argument(f"job {job_id} is {job.state} and cannot be canceled")
    return web.Response(status=200)


# ---- queues ----------------------------------------------------------------------------------


async def _describe_queues(call: Call) -> web.Response:
    query = parse_queue_query(call.params)
    selected, total, missing = select_queues(call.state.queues_of(call.bucket.name), query)
    fields: Fields = [
        ("RequestId", call.request_id),
        ("TotalCount", str(total)),
        ("PageNumber", str(query.page_number)),
        ("PageSize", str(query.page_size)),
    ]
    fields += [("QueueList", queue_fields(queue)) for queue in selected]
    if missing:
        fields.append(("NonExistPIDs", [("QueueID", queue_id) for queue_id in missing]))
    return xml_response(fields)


async def _update_queue(call: Call) -> web.Response:
    queue_id = call.target.path[len("/queue/") :]
    queue = call.state.queues.get(queue_id)
    if not queue_id or queue is None or queue.bucket != call.bucket.name:
        raise invalid_argument(f"queue {queue_id} does not exist")
    update = parse_queue_update(await _request_xml(call))
    if update.queue_id is not None and update.queue_id != queue_id:
        raise invalid_argument("the body's QueueID names another queue than the path")
    call.state.update_queue(queue, name=update.name, state=update.state, notify=update.notify)
    return xml_response([("RequestId", call.request_id), ("Queue", queue_fields(queue))])


# ---- synchronous media info ------------------------------------------------------------------


async def _generate_media_info(call: Call) -> web.Response:
    key = object_key(await _request_xml(call))
    return await _media_info(
        call, key, missing=CiError("ResourceNotFound", f"the input object {key} does not exist")
    )


async def _video_info(call: Call) -> web.Response:
    process = call.params.get("ci-process")
    if process != "videoinfo":
        raise CiError("NotImplemented", "the CI emulator serves only ?ci-process=videoinfo on COS")
    missing = CiError("NoSuchKey", "The specified key does not exist.")
    return await _media_info(call, call.target.path[1:], missing=missing)


async def _media_info(call: Call, key: str, *, missing: CiError) -> web.Response:
    path = resolve_object_path(call.bucket.root, key)
    if path is None or not path.is_file():
        raise missing
    try:
        info = await call.state.config.probe(path)
    except ProbeError as exc:
        if exc.code == ProbeErrorCode.RESOURCE_NOT_FOUND:  # removed since the check above
            raise missing from exc
        raise invalid_argument(f"the object {key} is not a media file: {exc.message}") from exc
    return xml_response([("MediaInfo", media_info_fields(info))])


CREATE = Endpoint("CreateMediaJobs", _create)
LIST = Endpoint("DescribeMediaJobs", _list)
DESCRIBE = Endpoint("DescribeMediaJob", _describe)
CANCEL = Endpoint("CancelMediaJob", _cancel)
DESCRIBE_QUEUES = Endpoint("DescribeMediaQueues", _describe_queues)
UPDATE_QUEUE = Endpoint("UpdateMediaQueue", _update_queue)
GENERATE_MEDIA_INFO = Endpoint("GenerateMediaInfo", _generate_media_info)
VIDEO_INFO = Endpoint("GetMediaInfo", _video_info)
