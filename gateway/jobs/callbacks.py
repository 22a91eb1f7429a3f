"""The callback receiver: CI's job-completion POSTs, checked, then fanned out to the trackers.

CI POSTs `<Response><EventName>TaskFinish</EventName><JobsDetail>...` (XML, the default) or the
same as JSON (notes §7) to a job's `CallBack` URL when the job ends. CI signs nothing, so nothing
in a callback is believed on its own:

1. The URL carries an unguessable per-gateway token (`/ci-callback/<token>/<bucket>/<region>`),
   compared in constant time; a wrong token or path is 404, before the body is even read.
2. The body is parsed with the hardened XML codec (JSON is first turned into the same element
   tree), capped at `max_body_bytes`; anything malformed or not a TaskFinish is 400.
3. The job is read back from CI (`GET /jobs/<id>[,<id>...]`, one request), and the callback is
   accepted only when CI knows every job and reports the state the callback claims (else 422).
   What watchers get is CI's describe answer, never the callback's body.

Accepted callbacks are published through the fan-out (`gateway.jobs.fanout`), so the tracker of
whichever replica has watchers learns of them; the answer is 200 as soon as that is done (one
describe round trip), and 503 when CI could not be asked (CI may send the callback again; if
not, polling finds the change). The access log is off: the path holds the token. With tracing on
(`gateway.tracing`), each callback received is a trace of its own, naming the route, not the
path.

JSON quirks honoured (notes §7): every value is a string (numbers are taken as their text),
`JobsDetail` is an object or an array, one stream is an object and several an array, empty nodes
are simply absent. The Content-Type of JSON callbacks is undocumented, so the format is sniffed.
"""

from __future__ import annotations

import asyncio
import hmac
import json
import logging
import re
from collections.abc import Awaitable, Callable, Sequence

from aiohttp import web
from lxml import etree

from gateway import tracing
from gateway._aiohttp_log import server_logger
from gateway._aiohttp_stop import start_site, stop_runner
from gateway._proto import media_pb2
from gateway.errors import GatewayError
from gateway.jobs.fanout import FanOut, JobUpdate
from gateway.jobs.tracking import JobDescriber
from gateway.model import (
    CALLBACK_PATH_PREFIX,
    MAX_DESCRIBE_JOB_IDS,
    Target,
    is_valid_bucket,
    is_valid_region,
)
from gateway.upstream import xml_codec
from gateway.upstream.retry import Deadline

log = logging.getLogger(__name__)


# aiohttp's own messages about the receiver's connections go here, a malformed request in one
# rate-limited line (its text would quote the path, and so the token): `server_logger`.
_SERVER_LOG = f"{__name__}.http"

EVENT_NAME = "TaskFinish"
# CI's other event on the same URL (a workflow run finished): handed on whole, with the URL's
# target, to whoever follows runs (`gateway.resources.executions`); it answers the HTTP status.
OtherEvent = Callable[[bytes, Target], Awaitable[int]]
# A callback is one JobsDetail with MediaInfo, a few KiB; CI's multi-operation jobs have at
# most 6. A megabyte is generous and still bounds what one request can make us hold.
MAX_CALLBACK_BYTES = 1024 * 1024
DEFAULT_VERIFY_TIMEOUT_S = 10.0
# The port faces the Internet (CI calls from Tencent's network). aiohttp holds a connection that
# never completes its request line and headers for its keep-alive time, an hour by default, and
# reads a body as slowly as it is sent: either way anyone could pin sockets and file descriptors
# (the ones the gateway needs towards CI) at a few bytes a minute. A connection gets this long
# to send a request (or the next one); a body gets this long to arrive in full.
DEFAULT_IDLE_TIMEOUT_S = 15.0
DEFAULT_BODY_TIMEOUT_S = 10.0
# After answering a request whose body it did not read (a wrong token, a body too slow), aiohttp
# drains the rest for this long before closing, so that the peer sees the answer (10 s by
# default, enough to hold a socket per trickled request).
_LINGER_S = 2.0
# At a drain, a callback still being checked with CI gets this long before aiohttp cancels it
# (aiohttp's default is 60 s). The drain closes the receiver before it gives the API calls in
# flight their `shutdown_grace_s`, so whatever the receiver waits comes on top of that grace,
# which the pod's terminationGracePeriodSeconds is sized for. Cutting one costs little: this
# replica's watches have ended already, other replicas' pollers find the job's end, and CI may
# send the callback again.
SHUTDOWN_TIMEOUT_S = 1.0
_JOB_ID = re.compile(r"^[A-Za-z0-9_-]{1,64}$")


class CallbackRejected(ValueError):
    """The body is not a CI job callback; `status` is the HTTP answer (4xx)."""

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.status = status


def callback_url(base_url: str, token: str, target: Target) -> str:
    """The CallBack URL the gateway hands CI for a job of `target`."""
    return f"{base_url.rstrip('/')}{CALLBACK_PATH_PREFIX}/{token}/{target.bucket}/{target.region}"


# ---- parsing ---------------------------------------------------------------------------------


def parse_callback(body: bytes) -> media_pb2.JobCallback:
    """XML or JSON (sniffed, after any byte-order mark) -> `JobCallback`; `CallbackRejected`
    for anything else."""
    head = xml_codec.document_head(body).lstrip()[:1]
    try:
        if head == b"<":
            return xml_codec.decode(
                body, media_pb2.JobCallback, root="Response", max_bytes=MAX_CALLBACK_BYTES
            )
        if head in (b"{", b"["):
            return xml_codec.decode(json_to_element(body), media_pb2.JobCallback, root=None)
    except xml_codec.XmlCodecError as exc:
        raise CallbackRejected(f"not a CI callback: {exc}") from exc
    raise CallbackRejected("the body is neither XML nor JSON")


def json_to_element(body: bytes) -> etree._Element:
    """CI's JSON callback -> the element tree of its XML twin (`<Response>` root): objects are
    elements, arrays are repeated elements, strings (and numbers) are text, nulls are absent."""
    try:
        document = json.loads(body)
    except (ValueError, RecursionError) as exc:
        raise CallbackRejected("malformed JSON") from exc
    if not isinstance(document, dict):
        raise CallbackRejected("a JSON callback is an object")
    root = etree.Element("Response")
    try:
        _fill(root, document, 1)
    except ValueError as exc:  # lxml: a key that is no XML name, text XML cannot hold
        raise CallbackRejected(f"JSON does not fit CI's callback: {exc}") from exc
    return root


def _fill(element: etree._Element, value: object, depth: int) -> None:
    if depth > xml_codec.MAX_DEPTH:
        raise CallbackRejected(f"JSON nested deeper than {xml_codec.MAX_DEPTH}")
    if isinstance(value, dict):
        for key, child in value.items():
            for item in child if isinstance(child, list) else [child]:
                if item is not None:
                    _fill(etree.SubElement(element, str(key)), item, depth + 1)
    elif isinstance(value, str):
        element.text = value
    elif isinstance(value, int | float) and not isinstance(value, bool):
        element.text = str(value)  # CI quotes every value; a bare number still means its text
    else:
        raise CallbackRejected(f"unexpected JSON value for {element.tag}")


def check_callback(callback: media_pb2.JobCallback, target: Target) -> None:
    """The callback is a TaskFinish for jobs of `target` (the URL's bucket and region)."""
    if callback.event_name != EVENT_NAME:
        raise CallbackRejected(f"EventName must be {EVENT_NAME}")
    jobs = callback.jobs_detail
    if not 1 <= len(jobs) <= MAX_DESCRIBE_JOB_IDS:
        raise CallbackRejected(f"expected 1 to {MAX_DESCRIBE_JOB_IDS} JobsDetail")
    for job in jobs:
        if not _JOB_ID.fullmatch(job.job_id):
            raise CallbackRejected("JobsDetail.JobId is missing or malformed")
        if not job.state_text:
            raise CallbackRejected("JobsDetail.State is missing")
        if job.input.bucket_id and job.input.bucket_id != target.bucket:
            raise CallbackRejected("JobsDetail.Input.BucketId is not this URL's bucket")
        if job.input.region and job.input.region != target.region:
            raise CallbackRejected("JobsDetail.Input.Region is not this URL's region")


def confirmed(
    claimed: Sequence[media_pb2.JobsDetail], ci_answer: Sequence[media_pb2.JobsDetail]
) -> list[media_pb2.JobsDetail]:
    """CI's record of each claimed job, when CI knows it in the claimed state; else 422."""
    by_id = {detail.job_id: detail for detail in ci_answer}
    records = []
    for claim in claimed:
        record = by_id.get(claim.job_id)
        if record is None:
            raise CallbackRejected(f"CI has no job {claim.job_id}", status=422)
        if record.state_text != claim.state_text:
            raise CallbackRejected(
                f"CI reports job {claim.job_id} as {record.state_text}, not {claim.state_text}",
                status=422,
            )
        records.append(record)
    return records


# ---- the HTTP endpoint -----------------------------------------------------------------------


class CallbackReceiver:
    """An aiohttp server on its own port (so it can be exposed to CI without the gRPC API)."""

    def __init__(
        self,
        *,
        token: str,
        client: JobDescriber,
        fanout: FanOut,
        verify_timeout_s: float = DEFAULT_VERIFY_TIMEOUT_S,
        max_body_bytes: int = MAX_CALLBACK_BYTES,
        other_events: dict[str, OtherEvent] | None = None,
        idle_timeout_s: float = DEFAULT_IDLE_TIMEOUT_S,
        body_timeout_s: float = DEFAULT_BODY_TIMEOUT_S,
    ) -> None:
        self._token = token.encode()
        self._other_events = other_events or {}
        self._client = client
        self._fanout = fanout
        self._verify_timeout_s = verify_timeout_s
        self._max_body_bytes = max_body_bytes
        self._idle_timeout_s = idle_timeout_s
        self._body_timeout_s = body_timeout_s
        self._runner: web.AppRunner | None = None
        self.base_url = ""

    async def start(self, listen: str) -> str:
        """Listen on `host:port` (port 0 = any free one); returns `http://host:port`."""
        app = web.Application(client_max_size=self._max_body_bytes)
        route = CALLBACK_PATH_PREFIX + "/{token}/{bucket}/{region}"
        app.router.add_post(
            route, tracing.traced_http_handler(tracing.CALLBACK_SPAN, "POST", route, self._handle)
        )
        runner = web.AppRunner(
            app,
            access_log=None,
            logger=server_logger(_SERVER_LOG, "callback"),
            keepalive_timeout=self._idle_timeout_s,
            lingering_time=_LINGER_S,
            shutdown_timeout=SHUTDOWN_TIMEOUT_S,
        )
        host, bound = await start_site(runner, listen, "callbacks.listen")
        self._runner = runner
        self.base_url = f"http://{f'[{host}]' if ':' in host else host}:{bound}"
        log.info("callback receiver listening on %s", self.base_url)
        return self.base_url

    async def close(self) -> None:
        if self._runner is not None:
            await stop_runner(self._runner)
            self._runner = None

    async def _handle(self, request: web.Request) -> web.Response:
        info = request.match_info
        if not hmac.compare_digest(info["token"].encode(), self._token):
            return web.Response(status=404)
        target = Target(info["bucket"], info["region"])
        if not (is_valid_bucket(target.bucket) and is_valid_region(target.region)):
            return web.Response(status=404)
        try:
            async with asyncio.timeout(self._body_timeout_s):
                body = await request.read()  # over client_max_size: aiohttp answers 413
        except TimeoutError:
            log.warning("callback rejected (408): the body took over %ss", self._body_timeout_s)
            response = web.Response(status=408, text="the body was not sent in time")
            response.force_close()
            return response
        try:
            callback = parse_callback(body)
            other = self._other_events.get(callback.event_name)
            if other is not None:
                return web.Response(status=await other(body, target))
            check_callback(callback, target)
        except CallbackRejected as exc:
            log.warning("callback rejected (%d): %s", exc.status, exc)
            return web.Response(status=exc.status, text=str(exc))
        claimed = list(callback.jobs_detail)
        try:
            reply = await self._client.describe_jobs(
                target, [job.job_id for job in claimed], Deadline(self._verify_timeout_s)
            )
        except GatewayError as error:
            log.warning("callback not verified, CI could not be asked: %s", error)
            return web.Response(status=503, text="could not verify the callback with CI")
        try:
            records = confirmed(claimed, reply.message.jobs_detail)
        except CallbackRejected as exc:
            log.warning("callback rejected (%d): %s", exc.status, exc)
            return web.Response(status=exc.status, text=str(exc))
        for record in records:
            await self._fanout.publish(JobUpdate(target, record))
        log.info("callback for %s accepted", ",".join(job.job_id for job in claimed))
        return web.Response(status=200, text="OK")
