"""The CI client: build -> sign -> send -> parse -> map, once per attempt.

Each public method is one CI operation and reads like its documentation row (method, host kind,
path, params, body, response type); `_call` runs the shared pipeline under the retry policy:

    _call -> call_with_retry -> _attempt -> signing.authorization -> Transport.send
          -> _raise_for_error (CI <Error> -> UpstreamError) -> xml_codec.decode

Every attempt is signed afresh (new time window, current credentials), so a retry after a
credential rotation or a long backoff never carries a stale signature. When CI refuses the keys
an attempt was signed with, the attempt asks the provider whether it holds other keys by now
(`CredentialsProvider.renew`, which re-reads a source that may have changed unseen) and marks
the error `credentials_replaced` if so; the retry loop alone decides what follows.
"""

from __future__ import annotations

import asyncio
import binascii
import email.utils
import functools
import hashlib
import json
import logging
import math
import time
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Final, Generic, Literal, TypeVar
from urllib.parse import quote

from google.protobuf.message import Message

from gateway import kinds, scrub, tracing
from gateway._proto import media_pb2, queues_pb2, service_pb2
from gateway.config.settings import Settings
from gateway.credentials import SIGN_BY, Credentials, CredentialsProvider
from gateway.errors import (
    GatewayError,
    Overloaded,
    Reason,
    UpstreamError,
    UpstreamProtocolError,
)
from gateway.logs import event
from gateway.model import HostKind, Target
from gateway.telemetry import NullTelemetry, Telemetry
from gateway.upstream import default_queue, signing, xml_codec
from gateway.upstream.retry import (
    MIN_ATTEMPT_S,
    Deadline,
    RetryBudget,
    RetryBudgets,
    RetryPolicy,
    call_with_retry,
    read_only_policy,
)
from gateway.upstream.transport import HttpRequest, HttpResponse, Transport

log = logging.getLogger(__name__)

LOOKUP_TASK_NAME: Final = "queue look-up"
"""The name (and the bucket) of the task a shared `GET /queue` look-up runs in (`_only_queue`):
`close` cancels the ones in flight."""

M = TypeVar("M", bound=Message)
ReplyT = TypeVar("ReplyT", bound=Message)

FillQueue = Literal["lookup", "learnt", "none"]
"""Which queue a listing without `queueId` names (`CiClient.list_jobs`)."""

# The operation of both submit forms (`submit_job`, `submit_jobs`): what their attempts, and an
# exactly-once submit's settle before a resend, are counted and traced under.
SUBMIT_OPERATION = "CreateMediaJobs"

# What both media-info operations answer (notes §4: `<Response><MediaInfo>...`). UNCONFIRMED
# what CI answers for an object that is no media file; the emulator refuses it (InvalidArgument),
# and an answer without any `<MediaInfo>` tells the caller nothing of the file either way.
PROBED = ("media_info",)

# Signatures are valid from a minute in the past (tolerates a CI clock slightly behind ours) to
# ten minutes ahead: long enough for a slow synchronous probe, short enough to limit replay.
SIGN_BACKDATE_S = 60
SIGN_VALIDITY_S = 600


@dataclass(unsafe_hash=True)
class Reply(Generic[M]):
    """A parsed answer and CI's request id (returned to callers in trailing metadata)."""

    # Read-only by type (`Final`), not `frozen=True`: a frozen dataclass sets each field through
    # `object.__setattr__`, ~3x the cost of building a plain one, and every CI call and every
    # submit builds one (`message` cannot be `Final`: its type is a type variable). `unsafe_hash`
    # keeps the hash the frozen class had.
    message: M
    request_id: Final[str]
    # HTTP attempts the call made, retries included (an error carries its own `attempts`), so
    # that a caller making several calls for one RPC (the exactly-once submit) can report all.
    attempts: Final[int] = 1


@dataclass
class Attempts:
    """HTTP attempts towards CI one RPC made over several CI calls (a submit's POSTs and
    listings, a describe's batches). Each call's `Reply` or error counts only its own; the
    error the RPC ends with reports them all (`ErrorInfo.attempts`)."""

    count: int = 0

    async def counted(self, call: Awaitable[Reply[ReplyT]]) -> Reply[ReplyT]:
        """Await one CI call, adding its attempts whether it answers or fails."""
        try:
            reply = await call
        except GatewayError as error:
            self.count += error.attempts
            raise
        self.count += reply.attempts
        return reply

    def report(self, error: GatewayError) -> GatewayError:
        error.attempts = self.count
        return error


@dataclass(unsafe_hash=True)
class CiCall:
    """One CI operation's request, as its documentation row describes it, and what its answer
    must hold to be one."""

    # Read-only by type (`Final`), not `frozen=True`: a frozen dataclass sets each field through
    # `object.__setattr__`, ~3x the cost of building a plain one, and every CI call builds one.
    # `unsafe_hash` keeps the hash the frozen class had.
    operation: Final[str]  # CI's operation name: the telemetry label
    target: Final[Target]
    kind: Final[HostKind]
    method: Final[str]
    path: Final[str]  # raw, unencoded
    params: Final[Mapping[str, str | None]] = field(default_factory=dict)
    body: Final[bytes | None] = None
    # Fields (dotted paths into the answer's message) every answer of this operation sets: the
    # template a create made, its id, the run a trigger started. An answer without one is
    # refused as CI's answer could not be understood (`UpstreamProtocolError`), never passed on
    # as an empty success: a caller told "created" with no id cannot use, find or delete it.
    requires: Final[tuple[str, ...]] = ()
    # An empty 2xx is this operation's answer although its answer type has fields (CancelMediaJob's
    # type has none: an empty answer is always its answer).
    empty_ok: Final[bool] = False


def encode_body(message: Message) -> bytes:
    return xml_codec.encode(message, root="Request")


def encode_path(path: str) -> str:
    """Percent-encode a raw path for the wire, keeping `/` (CI decodes before verifying)."""
    # Paths repeat (`/jobs` on every submit and listing): a cache hit costs ~0.1 µs, `quote`
    # ~1 µs. Only short ones are remembered, so the cache stays small whatever it is fed.
    if len(path) <= _PATH_CACHE_MAX_CHARS:
        return _cached_path(path)
    return quote(path, safe="/-_.~")


_PATH_CACHE_MAX_CHARS = 256


@functools.lru_cache(maxsize=1024)
def _cached_path(path: str) -> str:
    return quote(path, safe="/-_.~")


def encode_query(params: Mapping[str, str | None]) -> str:
    """`?cancel` stays a bare flag (`None`), as the official SDK sends it."""
    return "&".join(
        signing.encode(name) if value is None else f"{signing.encode(name)}={signing.encode(value)}"
        for name, value in params.items()
    )


MAX_CI_TEXT_CHARS: Final = 1024
"""The most of one text of CI's answer (its Code, Message, TraceId, Resource) the gateway
keeps: a status clips each further on its way out (`gateway.status`), but an error's text also
goes into log lines (a poller's warning) and a RequestId into every access line, and an answer
may hold megabytes of it."""

MAX_CI_REQUEST_ID_CHARS: Final = 256
"""The most of CI's RequestId kept (CI's are 32 characters). It also travels as the
`x-ci-request-id` trailer, and a describe in batches joins ten of them there: grpc clients
refuse a trailer over 16 KiB (Java's over 8 KiB) as RESOURCE_EXHAUSTED "Stream removed", which
would hide the call's own status."""

# Percent-encoded in a RequestId that is not plain text: everything but printable ASCII, and
# `%` itself, so the encoding reads back unambiguously.
_METADATA_SAFE = "".join(chr(c) for c in range(0x21, 0x7F) if chr(c) != "%")


def _clip(text: str, limit: int, *, marker: str = "\u2026") -> str:
    return text if len(text) <= limit else text[: limit - len(marker)] + marker


def ci_text(text: str, known: Iterable[str] = ()) -> str:
    """A text of CI's answer as the gateway keeps it: redacted (`scrub.redact`), then bounded
    (`MAX_CI_TEXT_CHARS`; after redaction, so a secret cut short is still recognised)."""
    return _clip(scrub.redact(text, known), MAX_CI_TEXT_CHARS)


def ci_request_id(text: str, known: Iterable[str] = ()) -> str:
    """CI's RequestId as the gateway keeps and passes it on: redacted, and fit for a gRPC
    metadata value, which must be printable ASCII and short (grpc refuses anything else: a
    success would end INTERNAL "Invalid metadata", an error would lose its status). CI's own
    ids are base64 text and pass unchanged; anything else is percent-encoded (UTF-8), then
    bounded to `MAX_CI_REQUEST_ID_CHARS`."""
    text = scrub.redact(text, known)
    if not (text.isascii() and text.isprintable()):  # `[\x20-\x7e]*`, in C
        text = quote(text.strip(), safe=_METADATA_SAFE)
    return _clip(text, MAX_CI_REQUEST_ID_CHARS, marker="...")


def _raw_request_id(response: HttpResponse) -> str:
    headers = response.headers
    return headers.get("x-ci-request-id") or headers.get("x-cos-request-id") or ""


def _request_id(response: HttpResponse, known: Iterable[str] = ()) -> str:
    raw = _raw_request_id(response)
    return ci_request_id(raw, known) if raw else ""


# The longest Retry-After taken as CI says it: it bounds the wait the caller is told
# (`RetryInfo`); the gateway's own wait is capped lower, by the backoff's cap.
MAX_RETRY_AFTER_S = 3600.0


def _retry_after(response: HttpResponse, now: float) -> float | None:
    """CI's `Retry-After` in seconds: delay-seconds or an HTTP-date (RFC 9110 §10.2.3), at
    least 0 and at most `MAX_RETRY_AFTER_S`. Anything else (`nan`, `inf`, text) is no advice:
    a NaN wait never ended and an infinite one could not become a `RetryInfo`."""
    value = response.headers.get("Retry-After", "").strip()
    if not value:
        return None
    try:
        seconds = float(value)
    except ValueError:
        try:
            seconds = email.utils.parsedate_to_datetime(value).timestamp() - now
        except (TypeError, ValueError, OverflowError):
            return None
    if not math.isfinite(seconds):
        return None
    return min(max(seconds, 0.0), MAX_RETRY_AFTER_S)


def parse_error(
    response: HttpResponse, known: Iterable[str] = (), *, now: float | None = None
) -> UpstreamError:
    """Read CI's `<Error>`: each element on its own, so a body lacking `Resource` (CI's own
    documented shape) or `RequestId` still yields the rest; the request id falls back to the
    response header. A body that is not XML (a proxy's HTML page, Go SDK's JSON shape) still
    becomes an error with the HTTP status, never a parse crash.

    Every text taken from the answer is passed through `scrub.redact` (with `known`, the
    secrets just signed with): a peer echoing the request would otherwise hand the caller the
    gateway's SecretId and a live signature. Then each is bounded (`ci_text`), and the RequestId
    made fit for the trailer it also travels in (`ci_request_id`)."""
    fields = {"Code": "", "Message": "", "RequestId": "", "TraceId": "", "Resource": ""}
    content_type = response.headers.get("Content-Type", "")
    if xml_codec.document_head(response.body).lstrip().startswith(b"<"):
        try:
            root = xml_codec.parse_document(response.body)
        except xml_codec.XmlCodecError:
            root = None
        if root is not None and xml_codec.local_name(root.tag) == "Error":
            for child in root:
                name = xml_codec.local_name(child.tag)
                if name in fields:
                    fields[name] = (child.text or "").strip()
    elif "json" in content_type and response.body:
        try:
            data = json.loads(response.body)
        except (ValueError, RecursionError):  # RecursionError: arrays nested a million deep
            data = None
        if isinstance(data, dict):
            # Text only: `null`, a number or an object is no code, message or id.
            for name, key in (
                ("Code", "code"),
                ("Message", "message"),
                ("RequestId", "request_id"),
            ):
                value = data.get(key)
                if isinstance(value, str):
                    fields[name] = value.strip()
    if not fields["Message"] and 300 <= response.status < 400:
        location = response.headers.get("Location", "")
        fields["Message"] = f"unexpected redirect {response.status} {location}".strip()
    known = tuple(known)
    request_id = fields["RequestId"]
    return UpstreamError(
        http_status=response.status,
        code=ci_text(fields["Code"], known),
        message=ci_text(fields["Message"] or response.reason, known),
        request_id=ci_request_id(request_id, known) if request_id else _request_id(response, known),
        trace_id=ci_text(fields["TraceId"], known),
        resource=ci_text(fields["Resource"], known),
        retry_after_s=_retry_after(response, time.time() if now is None else now),
    )


async def _credentials_in_time(
    provider: CredentialsProvider, remaining_s: float
) -> tuple[Credentials, float]:
    """`provider`'s credentials, and the time the attempt has left once they are in hand. A
    provider that waits for new ones (STS) waits at most until the call's deadline leaves room
    for an attempt (`SIGN_BY`), not for the whole of STS's time-out."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + remaining_s
    bound = SIGN_BY.set(deadline - MIN_ATTEMPT_S)
    try:
        credentials = await provider.get()
    finally:
        SIGN_BY.reset(bound)
    return credentials, max(deadline - loop.time(), 0.0)


class CiClient:
    """Calls CI for every RPC; owns no connection itself (the `Transport` does)."""

    def __init__(
        self,
        *,
        settings: Settings,
        credentials: CredentialsProvider,
        transport: Transport,
        telemetry: Telemetry | None = None,
        budgets: RetryBudgets | None = None,
        max_in_flight: int | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._settings = settings
        self._credentials = credentials
        self._transport = transport
        self._telemetry: Telemetry = telemetry or NullTelemetry()
        self.budgets = budgets or RetryBudgets.from_settings(settings.retry)
        self._max_in_flight = max_in_flight or settings.retry.max_in_flight_upstream
        self._reads = read_only_policy(settings.retry)
        self._submit = self._reads.for_submit()
        self._in_flight = 0
        self._clock = clock
        # What an echo of our own request could carry back: see `scrub`.
        self._signed_with = scrub.RecentSecrets()
        self._default_queues = default_queue.DefaultQueues()
        # One attempt: a listing that cannot learn its queue goes without one.
        self._queue_lookup = replace(self._reads, max_attempts=1)
        # The `GET /queue` look-up in flight per bucket, shared by the listings waiting for it.
        self._lookups: dict[tuple[str, str], asyncio.Task[tuple[str | None, int]]] = {}

    @property
    def in_flight(self) -> int:
        return self._in_flight

    def budget_for(self, target: Target) -> RetryBudget:
        return self.budgets.for_upstream(f"{target.bucket}.{target.region}")

    async def close(self) -> None:
        for lookup in list(self._lookups.values()):
            lookup.cancel()
        await asyncio.gather(*self._lookups.values(), return_exceptions=True)
        await self._transport.close()

    async def call(
        self, call: CiCall, response_type: type[M], deadline: Deadline, *, replayable: bool
    ) -> Reply[M]:
        """One CI operation described elsewhere (`gateway.resources`: queues, templates,
        workflows), through the same pipeline as the methods below. `replayable`: the call is
        idempotent (a read, a PUT) and may be retried on any transient outcome; otherwise (a
        create) it is replayed only when the request certainly never reached CI."""
        policy = self._reads if replayable else self._submit
        return await self._call(call, response_type, deadline, policy)

    # One method per CI operation --------------------------------------------------------------

    async def submit_job(
        self, target: Target, request: media_pb2.Request, deadline: Deadline
    ) -> Reply[service_pb2.SubmitMediaJobResponse]:
        call = CiCall(SUBMIT_OPERATION, target, "ci", "POST", "/jobs", body=encode_body(request))
        reply = await self._call(call, service_pb2.SubmitMediaJobResponse, deadline, self._submit)
        if not request.queue_id and not request.queue_type:
            job = reply.message.jobs_detail
            self._default_queues.learn(target, job.tag or request.tag, job.queue_id)
        return reply

    async def submit_jobs(
        self, target: Target, request: media_pb2.MultiOperationRequest, deadline: Deadline
    ) -> Reply[service_pb2.SubmitMediaJobsResponse]:
        """CreateMediaJobs in its multi-operation form: the same `POST /jobs`, one `Operation`
        node per job, answered with one `JobsDetail` each."""
        call = CiCall(SUBMIT_OPERATION, target, "ci", "POST", "/jobs", body=encode_body(request))
        reply = await self._call(call, service_pb2.SubmitMediaJobsResponse, deadline, self._submit)
        if not request.queue_id and not request.queue_type:
            for job in reply.message.jobs_detail:
                self._default_queues.learn(target, job.tag, job.queue_id)
        return reply

    async def describe_jobs(
        self,
        target: Target,
        job_ids: Sequence[str],
        deadline: Deadline,
        *,
        keep_raw: bool = False,
    ) -> Reply[service_pb2.DescribeMediaJobsResponse]:
        """`keep_raw`: also put each `<JobsDetail>` element's XML in `JobsDetail.raw_xml`."""
        call = CiCall("DescribeMediaJob", target, "ci", "GET", "/jobs/" + ",".join(job_ids))
        response_type = service_pb2.DescribeMediaJobsResponse
        return await self._call(call, response_type, deadline, self._reads, keep_raw=keep_raw)

    async def list_jobs(
        self,
        target: Target,
        params: Mapping[str, str],
        deadline: Deadline,
        *,
        keep_raw: bool = False,
        fill_queue: FillQueue = "learnt",
    ) -> Reply[service_pb2.ListMediaJobsResponse]:
        """DescribeMediaJobs. CI documents `queueId` as required: without one in `params`, the
        listing names the queue that means the same (`default_queue`), when known. A caller's
        listing (`fill_queue="lookup"`) asks CI for the bucket's only media queue if need be;
        the exactly-once recovery (`"learnt"`) takes CI's default queue, learnt from earlier
        submits; `"none"` names none (a submit to a queue type's queue, which is not that)."""
        looked_up = 0  # attempts of a queue look-up this listing started (`_only_queue`)
        if "queueId" not in params and fill_queue != "none":
            tag = params.get("tag", "")
            media = (job_kind := kinds.kind(tag)) is not None and job_kind.typed
            if fill_queue == "learnt":
                queue_id = self._default_queues.for_recovery(target, tag, media=media)
            elif media:
                queue_id, looked_up = await self._only_queue(target, deadline)
            else:
                queue_id = None
            if queue_id:
                params = {**params, "queueId": queue_id}
        call = CiCall("DescribeMediaJobs", target, "ci", "GET", "/jobs", params)
        response_type = service_pb2.ListMediaJobsResponse
        listing = self._call(call, response_type, deadline, self._reads, keep_raw=keep_raw)
        if not looked_up:
            return await listing
        # The RPC's attempts, in its answer or its error, count the look-up's too.
        attempts = Attempts(looked_up)
        try:
            reply = await attempts.counted(listing)
        except GatewayError as error:
            attempts.report(error)
            raise
        return replace(reply, attempts=attempts.count)

    async def _only_queue(self, target: Target, deadline: Deadline) -> tuple[str | None, int]:
        """The bucket's only media queue, looked up once per `default_queue.TTL_S`, or None;
        and the attempts of the look-up this caller started (0 for one it shared or skipped).

        Listings that find no answer at hand share the look-up in flight (`_lookups`), which
        runs as a task of its own under its own deadline (`default_queue.LOOKUP_TIMEOUT_S`):
        each caller waits for it half its time left at most (so that a slow CI leaves the
        listing the other half), and a caller that gives up or is cancelled leaves it running
        for the others (`asyncio.shield`). Its attempts count in the RPC that started it."""
        known, queue_id = self._default_queues.only_queue(target)
        if known:
            return queue_id, 0
        key = (target.bucket, target.region)
        lookup = self._lookups.get(key)
        started = lookup is None
        if lookup is None:
            name = f"{LOOKUP_TASK_NAME} {target.bucket}"
            lookup = asyncio.create_task(self._look_up_only_queue(target), name=name)
            self._lookups[key] = lookup
            lookup.add_done_callback(functools.partial(self._lookup_done, key))
        try:
            async with asyncio.timeout(deadline.remaining() / 2):
                queue_id, count = await asyncio.shield(lookup)
        except TimeoutError:
            return None, 0  # the look-up runs on; its answer serves the next listings
        return queue_id, count if started else 0

    async def _look_up_only_queue(self, target: Target) -> tuple[str | None, int]:
        """One `GET /queue`: the bucket's only media queue or None, and the attempts made."""
        query = default_queue.LOOKUP_QUERY
        call = CiCall("DescribeMediaQueues", target, "ci", "GET", "/queue", query)
        response_type = queues_pb2.DescribeMediaQueuesResponse
        deadline = Deadline(default_queue.LOOKUP_TIMEOUT_S)
        try:
            reply = await self._call(call, response_type, deadline, self._queue_lookup)
        except GatewayError as error:
            # The listing goes without `queueId`, as the SDKs send it (for a while: `failed`).
            log.debug("no single queue known for %s: %s", target.bucket, error)
            self._default_queues.failed(target)
            return None, error.attempts
        answer = reply.message
        queue_ids = [queue.queue_id for queue in answer.queue_list]
        return self._default_queues.remember(target, queue_ids, answer.total_count), reply.attempts

    def _lookup_done(
        self, key: tuple[str, str], lookup: asyncio.Task[tuple[str | None, int]]
    ) -> None:
        if self._lookups.get(key) is lookup:
            del self._lookups[key]
        if not lookup.cancelled() and (problem := lookup.exception()) is not None:
            # A bug, not CI's answer (that is a `GatewayError`, handled above): never silent.
            log.error("queue look-up for %s failed", key[0], exc_info=problem)

    async def cancel_job(
        self, target: Target, job_id: str, deadline: Deadline
    ) -> Reply[service_pb2.CancelMediaJobResponse]:
        call = CiCall("CancelMediaJob", target, "ci", "PUT", f"/jobs/{job_id}", {"cancel": None})
        # Cancelling twice is harmless, so the call retries like a read.
        return await self._call(call, service_pb2.CancelMediaJobResponse, deadline, self._reads)

    async def generate_media_info(
        self, target: Target, object_key: str, deadline: Deadline
    ) -> Reply[service_pb2.MediaInfoResponse]:
        body = encode_body(media_pb2.Request(input=media_pb2.Input(object=object_key)))
        call = CiCall(
            "GenerateMediaInfo", target, "ci", "POST", "/mediainfo", body=body, requires=PROBED
        )
        return await self._call(call, service_pb2.MediaInfoResponse, deadline, self._reads)

    async def get_media_info(
        self, target: Target, object_key: str, version_id: str, deadline: Deadline
    ) -> Reply[service_pb2.MediaInfoResponse]:
        params: dict[str, str | None] = {"ci-process": "videoinfo"}
        if version_id:
            params["versionId"] = version_id
        call = CiCall(
            "GetMediaInfo", target, "cos", "GET", "/" + object_key, params, requires=PROBED
        )
        return await self._call(call, service_pb2.MediaInfoResponse, deadline, self._reads)

    # The pipeline -----------------------------------------------------------------------------

    async def _call(
        self,
        call: CiCall,
        response_type: type[M],
        deadline: Deadline,
        policy: RetryPolicy,
        *,
        keep_raw: bool = False,
    ) -> Reply[M]:
        attempts = 0
        provider = self._credentials.for_bucket(call.target.bucket)

        async def attempt(remaining_s: float) -> Reply[M]:
            nonlocal attempts
            attempts += 1
            response, signed_with = await self._timed_send(call, provider, remaining_s)
            try:
                # The attempt that answers is the last: its count is the call's.
                return self._parse(response, call, response_type, keep_raw, attempts)
            except UpstreamError as error:
                if error.refuses_credentials:
                    await self._note_refusal(call, provider, signed_with, error)
                raise

        def on_retry(error: GatewayError, delay_s: float) -> None:
            self.retry_scheduled(call.operation, error.reason, delay_s)

        return await call_with_retry(
            attempt, policy, deadline, on_retry=on_retry, budget=self.budget_for(call.target)
        )

    def retry_scheduled(self, operation: str, reason: Reason, delay_s: float) -> None:
        """Tell the telemetry (the retry counter, an INFO line, an event on the RPC's span)
        that `operation` goes to CI again after `delay_s`: the retry loop's backoff, or an
        exactly-once submit in doubt letting CI settle before it may be resent."""
        self._telemetry.retry_scheduled(operation, reason.value, delay_s)

    async def _note_refusal(
        self,
        call: CiCall,
        provider: CredentialsProvider,
        signed_with: Credentials,
        error: UpstreamError,
    ) -> None:
        """CI refused `signed_with`: mark `error` when the provider holds other keys now."""
        error.credentials_replaced = await provider.renew(signed_with)
        if not error.credentials_replaced:
            return  # final: the caller's status and the access log tell of it
        event(
            log,
            logging.WARNING,
            "CI refused the credentials an attempt was signed with; the gateway holds new ones",
            operation=call.operation,
            source=provider.name,
            code=error.code,
            ci_request_id=error.request_id,
        )

    async def _timed_send(
        self, call: CiCall, provider: CredentialsProvider, remaining_s: float
    ) -> tuple[HttpResponse, Credentials]:
        if self._in_flight >= self._max_in_flight:
            # Shed rather than queue: a queue here would only turn overload into time-outs.
            raise Overloaded("requests in flight to CI", self._max_in_flight)
        self._in_flight += 1
        self._telemetry.attempt_started(call.operation)
        started = time.monotonic()
        outcome = "Cancelled"
        try:
            response, signed_with = await self._send(call, provider, remaining_s)
            outcome = str(response.status)
            # As CI sent it: tracing redacts it, and only when on (nothing to do on every call).
            tracing.attempt_answered(_raw_request_id(response), self._signed_with.values())
            return response, signed_with
        except GatewayError as error:
            outcome = type(error).__name__
            raise
        finally:
            self._in_flight -= 1
            self._telemetry.attempt_finished(call.operation, outcome, time.monotonic() - started)

    async def _send(
        self, call: CiCall, provider: CredentialsProvider, remaining_s: float
    ) -> tuple[HttpResponse, Credentials]:
        """Sign with `provider`'s current credentials and send: the answer, and the credentials
        it was signed with (CI may refuse exactly those)."""
        host = call.target.host(call.kind)
        headers = {"Host": host}
        tracing.inject(headers)  # the attempt's traceparent, when tracing is on
        if call.body is not None:
            headers["Content-Type"] = "application/xml"
            headers["Content-Length"] = str(len(call.body))
            digest = hashlib.md5(call.body).digest()  # noqa: S324 - CI's integrity check
            # `base64.b64encode`'s own call, without its wrapper's checks: once per submit.
            headers["Content-MD5"] = binascii.b2a_base64(digest, newline=False).decode()
        # Credentials at hand need no bound for `get` (the usual case); `get` is awaited only
        # when it may wait (a first load, an STS refresh). `remaining_s` is then as good as
        # unchanged: nothing waited.
        at_hand = provider.at_hand()
        if at_hand is None:
            credentials, remaining_s = await _credentials_in_time(provider, remaining_s)
        else:
            credentials = at_hand
        self._signed_with.note(credentials.secret_id, credentials.token)
        if credentials.token:
            token_header = "x-ci-security-token" if call.kind == "ci" else "x-cos-security-token"
            headers[token_header] = credentials.token
        now = int(self._clock())
        headers["Authorization"] = signing.authorization(
            secret_id=credentials.secret_id,
            secret_key=credentials.secret_key,
            method=call.method,
            host=None,
            path=call.path,
            params=call.params,
            headers=headers,
            start=now - SIGN_BACKDATE_S,
            end=now + SIGN_VALIDITY_S,
            only_signable=True,
        )
        base = self._settings.endpoint_url or f"https://{host}"
        url = base.rstrip("/") + encode_path(call.path)
        if call.params:
            url += "?" + encode_query(call.params)
        timeouts = self._settings.timeouts
        log.debug("CI %s %s%s", call.method, host, call.path)
        response = await self._transport.send(
            HttpRequest(call.method, url, headers, call.body),
            connect_timeout=min(timeouts.connect_s, remaining_s),
            total_timeout=min(timeouts.read_s, remaining_s),
        )
        return response, credentials

    def _parse(
        self,
        response: HttpResponse,
        call: CiCall,
        response_type: type[M],
        keep_raw: bool = False,
        attempts: int = 1,
    ) -> Reply[M]:
        known = self._signed_with.values()
        request_id = _request_id(response, known)
        if not 200 <= response.status < 300:
            raise parse_error(response, known, now=self._clock())
        body = response.body
        if not body or body.isspace():  # `not body.strip()` without copying the answer
            # Cancel answers 200 with no body, and its answer type has no fields. An answer
            # with fields (a job, a listing, a probe) always comes as a `<Response>`: an empty
            # one is something other than CI answering (a proxy, a cut connection), not an
            # empty success.
            if response_type.DESCRIPTOR.fields and not call.empty_ok:
                raise UpstreamProtocolError(
                    f"CI answered {response.status} without the body this operation always has",
                    http_status=response.status,
                    request_id=request_id,
                )
            return Reply(response_type(), request_id, attempts)
        try:
            message = xml_codec.decode(
                response.body,
                response_type,
                root="Response",
                max_bytes=self._settings.max_response_bytes,
                keep_raw=keep_raw,
            )
        except xml_codec.XmlCodecError as exc:
            error_root = isinstance(exc, xml_codec.WrongRoot) and exc.root.lower() == "error"
            problem = ci_text(str(exc), known)  # it may quote the answer
        else:
            lacking = _lacking(message, call.requires)
            if lacking is None:
                return Reply(message, request_id, attempts)
            del message  # refused: nothing of the answer stays with the error (see below)
            problem = f"it has no <{lacking}>, which every {call.operation} answer has"
            error_root = False
        if error_root:
            # CI's `<Error>` under a 2xx (UNCONFIRMED that CI sends one): its Code decides, as
            # on any other status, and its Code, Message and RequestId reach the caller.
            raise parse_error(response, known, now=self._clock())
        # Raised outside the handler, without the codec's exception as cause or context: that
        # one's frames hold the parsed tree (up to `max_response_bytes` of XML as libxml2
        # nodes), and this error lives on until the refusal has reached the caller. Kept, every
        # concurrent refusal would hold a tree of its own.
        raise UpstreamProtocolError(
            f"CI's answer could not be parsed: {problem}",
            http_status=response.status,
            request_id=request_id,
        )


def _lacking(message: Message, paths: Sequence[str]) -> str | None:
    """The first of `paths` (`CiCall.requires`) that `message` leaves unset, as the answer's
    nodes would name it (`Template><TemplateId`), or None when each is set: a message field
    present (an empty node is absent: `xml_codec`), a string not empty."""
    for path in paths:
        node = message
        names: list[str] = []
        for name in path.split("."):
            descriptor = node.DESCRIPTOR.fields_by_name[name]  # a typo fails every such call
            names.append(xml_codec.wire_name(descriptor))
            if descriptor.message_type is not None:
                if not node.HasField(name):
                    return "><".join(names)
                node = getattr(node, name)
            elif not getattr(node, name):
                return "><".join(names)
    return None
