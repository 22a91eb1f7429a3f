"""Exactly-once job submission: one request_id, at most one CI job, whatever fails on the way.

CI documents no idempotency key, and a submit whose answer is lost (a read time-out, a reset
after sending, a 5xx, a 200 whose body is cut short or garbled) may or may not have created a
paid job. The official SDK replays it blindly and creates duplicates. This module never sends
the same submit twice without first asking CI whether the first one landed:

1. Every submit carries a request_id (the caller's, AIP-155 style, or one the gateway makes).
2. The gateway appends a short **marker** derived from the request_id alone to the job's
   `UserData` (` #cigw:<20 hex>`, without the space when `UserData` is empty; `UserData` is the
   one field CI stores verbatim and returns on describe, list and callbacks), so a caller who
   sends the same request_id again names the same marker. (In shared mode, from the client's
   name and its request_id, `gateway.jobs.exactly_once.RequestKey`: one client's id never finds
   another's job.) Everything the gateway returns has the marker stripped again, so callers see
   their own `UserData`; the marker costs `MARKER_LEN` of CI's 1024-character budget. (Jobs
   read straight from CI, e.g. callbacks sent to a caller's own URL, do show it.)
3. After an ambiguous failure, the gateway **reconciles**: it lists the jobs of that tag for
   that input object created since shortly before the first attempt and adopts the one carrying
   the marker. That first look is made at once (the job is the caller's without delay when only
   CI's answer was lost). When it finds nothing, CI may still be creating the job (a balancer's
   504 while CI commits, a read time-out on a slow front end) or not list it yet, so the
   gateway **lets CI settle** (`retry.submit_settle_s`, 1 s, plus the retry backoff's jitter:
   `gateway.upstream.retry.Settle`) and looks again; only when that look finds none either does
   it send the submit again. A caller's deadline too short for the settle, a look and a resend
   ends the call SUBMIT_OUTCOME_UNKNOWN instead, the record left in doubt with the time its
   last send ended, so a repeat at once settles from then too before any resend. At most two
   looks per send in doubt, `MAX_SEND_ROUNDS` sends per call.
4. A `SubmitStore` remembers request_id -> (fingerprint of the request, outcome) for 24 h
   (`RETENTION_S`): a repeat returns the original `JobsDetail`; a different request under the
   same id is refused; a record left in doubt (answer lost, process restarted) is reconciled
   before any resend. Concurrent calls with one request_id in this process share one flight.
5. The store can lose records: the embedded one with its process, Redis when it restarts
   empty or evicts keys. So a **caller's** request_id the store does not know is reconciled
   before its first POST too, over the whole `RECOVERY_LOOKBACK_S` (the store's 24 h plus the
   skew margin): a miss looks the same whether the id is new or its record was lost, and only
   the look tells them apart. It costs one list call per new caller request_id (more only for
   an input object with more than `RECONCILE_PAGE_SIZE` jobs of that tag in 24 h), and no POST
   is ever risked on a guess. A request_id the gateway made needs none: nobody can have sent it
   before. If that look fails, nothing is sent, the id stays free, and the call fails with the
   listing's own error; the next call looks again.

What bounds the guarantee: the recovery sees jobs CI created within `RECOVERY_LOOKBACK_S` of the
repeat, among the newest `RECONCILE_PAGES` x `RECONCILE_PAGE_SIZE` (500) jobs of that tag on that
input object (queue too, when the request names one). A repeat later than that, or of a job
buried deeper, creates a new job: the same as a repeat after an intact store's 24 h.
A different request under a request_id whose record was lost is not recognised as a reuse (its
fingerprint went with the record): with the same tag and input object it gets the earlier job
back, with another input object a new job.

UNCONFIRMED: whether CI's job listing can lag behind job creation, and how long CI may go on
creating a job after the answer to its POST was lost. The settle covers either up to its length:
a job CI commits, or lists, later than the settle after the failure is missed by the look, and
the resend then duplicates it (the emulator's `listing_lag_s` fault plays such a lag). Also
UNCONFIRMED: how long CI keeps jobs listable. Its documentation states no retention and no
limit on the `startCreationTime`..`endCreationTime` range, so the recovery assumes CI still
lists a job 24 h after creating it.

This module holds the markers and the single form. The steps themselves (claim and lease,
another replica's lead, the shared flight, the rounds of reconcile-then-send) and the store are
`gateway.jobs.exactly_once`'s, shared with the multi-operation form (`gateway.jobs.multi_submit`).
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import re

from lxml import etree

from gateway import tracing
from gateway._proto import media_pb2, service_pb2
from gateway.errors import UpstreamProtocolError
from gateway.jobs.exactly_once import (
    RECOVERY_LOOKBACK_S,
    RETENTION_S,
    ExactlyOnceCoordinator,
    InMemorySubmitStore,
    Jobs,
    SubmitRecord,
    SubmitStore,
)
from gateway.kinds import DEFAULT_TAG
from gateway.model import GATEWAY_CALLBACK, Target
from gateway.scrub import is_gateway_callback
from gateway.upstream import xml_codec
from gateway.upstream.client import Attempts
from gateway.upstream.retry import Deadline

# The store and its horizons are `exactly_once`'s; they stay importable from here, beside the
# design they serve.
__all__ = [
    "MARKER_HEX",
    "MARKER_LEN",
    "MARKER_PREFIX",
    "RECOVERY_LOOKBACK_S",
    "REQUEST_ID",
    "RETENTION_S",
    "InMemorySubmitStore",
    "SubmitCoordinator",
    "SubmitRecord",
    "SubmitStore",
    "fingerprint",
    "marker",
    "new_request_id",
    "strip_marker",
    "strip_markers",
    "with_marker",
]

MARKER_PREFIX = "#cigw:"
MARKER_HEX = 20
# A space separates the marker from the caller's UserData (none when that is empty: CI's XML
# would lose a leading space to whitespace trimming).
MARKER_LEN = 1 + len(MARKER_PREFIX) + MARKER_HEX
_MARKER = re.compile(f"(?:^| ){re.escape(MARKER_PREFIX)}[0-9a-f]{{{MARKER_HEX}}}$")
REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")


def new_request_id() -> str:
    """A random (version 4) UUID in its usual text form: `str(uuid.uuid4())`, without building
    a `uuid.UUID` on the way (half the cost, once per submit that names no id)."""
    raw = bytearray(os.urandom(16))
    raw[6] = (raw[6] & 0x0F) | 0x40  # version 4
    raw[8] = (raw[8] & 0x3F) | 0x80  # RFC 4122 variant
    h = raw.hex()
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


def marker(request_id: str) -> str:
    digest = hashlib.sha256(request_id.encode()).hexdigest()[:MARKER_HEX]
    return MARKER_PREFIX + digest


def with_marker(user_data: str, request_id: str) -> str:
    return f"{user_data} {marker(request_id)}" if user_data else marker(request_id)


def strip_marker(user_data: str) -> str:
    """`user_data` without the gateway's marker at its end (`_MARKER`), if it has one.

    The marker ends the text (or stands before a final line break, where `$` matches too), so
    its prefix lies within the last `MARKER_LEN` characters: the marker with its space, or
    without it before that line break. UserData without one (a job the gateway did not submit,
    a caller's own text) is told by a substring test of those, at a fraction of the regex's
    search, which tries `(?:^| )` at every position of the text."""
    if MARKER_PREFIX not in user_data[-MARKER_LEN:]:
        return user_data
    return _MARKER.sub("", user_data)


def strip_markers(jobs: list[media_pb2.JobsDetail]) -> None:
    """Give callers back their own UserData on every job the gateway returns, in the typed
    view and in the raw XML when the call asked for it; and never show them the gateway's
    callback URL (it holds the callback token), should CI echo a job's `CallBack`. CI's
    documented JobsDetail has none (UNCONFIRMED that it never sends one): it would arrive as an
    unknown node, so that is where it is looked for, at the cost of one emptiness check a job."""
    for job in jobs:
        operation = job.operation  # read once: each read of a upb field builds its value anew
        user_data = operation.user_data
        if user_data and (unmarked := strip_marker(user_data)) != user_data:
            operation.user_data = unmarked
        if job.extra_nodes:
            for node in job.extra_nodes:
                if node.name == "CallBack" and is_gateway_callback(node.text):
                    node.text = GATEWAY_CALLBACK
        if job.raw_xml:
            job.raw_xml = _strip_marker_xml(job.raw_xml)


def _strip_marker_xml(raw: str) -> str:
    element = xml_codec.parse_document(raw.encode())
    for node in element.iterfind("{*}Operation/{*}UserData"):
        if node.text:
            # Only a marker goes (and the layout after it): the rest is UserData as CI sent it.
            marked = node.text.rstrip(" \t\r\n")
            if (unmarked := strip_marker(marked)) != marked:
                node.text = unmarked
    for node in element.iterfind("{*}CallBack"):
        if node.text and is_gateway_callback(node.text):
            node.text = GATEWAY_CALLBACK
    return etree.tostring(element, encoding="unicode")


def fingerprint(target: Target, request: media_pb2.Request) -> str:
    body = request.SerializeToString(deterministic=True)
    return hashlib.sha256(f"{target.bucket}\0{target.region}\0".encode() + body).hexdigest()


class SubmitCoordinator(
    ExactlyOnceCoordinator[media_pb2.Request, service_pb2.SubmitMediaJobResponse]
):
    """The single form: one request, one job (operation 0), the marker of the request_id."""

    _response_type = service_pb2.SubmitMediaJobResponse

    def _fingerprint(self, target: Target, request: media_pb2.Request) -> str:
        return fingerprint(target, request)

    def _operations(self, request: media_pb2.Request) -> int:
        return 1

    async def _send(
        self,
        target: Target,
        request: media_pb2.Request,
        request_id: str,
        pending: list[int],
        deadline: Deadline,
        attempts: Attempts,
    ) -> tuple[Jobs, str, service_pb2.SubmitMediaJobResponse | None]:
        """POST the marked job: its JobsDetail, CI's RequestId, and CI's answer when it holds
        nothing but the job (`_answer_as_is`). A 2xx naming no job (an empty body) lost CI's
        answer as surely as a garbled one did: an ambiguous failure."""
        marked = media_pb2.Request()
        marked.CopyFrom(request)
        marked.operation.user_data = with_marker(request.operation.user_data, request_id)
        reply = await attempts.counted(self._client.submit_job(target, marked, deadline))
        job = reply.message.jobs_detail
        if not job.job_id:
            raise UpstreamProtocolError(
                "CI accepted the submit but its answer names no job",
                http_status=200,
                request_id=reply.request_id,
            )
        answer = reply.message
        return {0: job}, reply.request_id, answer if _answer_as_is(answer) else None

    async def _find(
        self,
        target: Target,
        request: media_pb2.Request,
        request_id: str,
        known: Jobs,
        since: float,
        deadline: Deadline,
        attempts: Attempts,
    ) -> tuple[Jobs, str]:
        """Look for the job a lost submit may have created: same tag, same input object,
        created since `since` (by CI's clock, hence the margins callers add), carrying this
        request's marker. Returns it with CI's RequestId of the listing that found it."""
        with tracing.span(tracing.RECONCILE_SPAN) as span:
            found = await self._find_job(
                target, request, marker(request_id), since, deadline, attempts
            )
            span.set_attribute("ci_gateway.reconcile.found", found is not None)
        if found is None:
            return {}, ""
        job, ci_request_id = found
        return {0: job}, ci_request_id

    async def _find_job(
        self,
        target: Target,
        request: media_pb2.Request,
        wanted: str,
        since: float,
        deadline: Deadline,
        attempts: Attempts,
    ) -> tuple[media_pb2.JobsDetail, str] | None:
        pages = self._reconcile_pages(
            target,
            deadline,
            attempts,
            tag=request.tag or DEFAULT_TAG,
            input_object=request.input.object,
            queue_id=request.queue_id,
            queue_type=request.queue_type,
            since=since,
        )
        async with contextlib.aclosing(pages):
            async for page in pages:
                for job in page.message.jobs_detail:
                    if job.operation.user_data.endswith(wanted):
                        return job, page.request_id
        return None

    def _response(
        self, jobs: Jobs, answer: service_pb2.SubmitMediaJobResponse | None = None
    ) -> service_pb2.SubmitMediaJobResponse:
        if answer is None:
            answer = service_pb2.SubmitMediaJobResponse(jobs_detail=jobs[0])
        strip_markers([answer.jobs_detail])
        return answer


def _answer_as_is(answer: service_pb2.SubmitMediaJobResponse) -> bool:
    """CI's answer to the POST is the caller's answer as it stands: the job and nothing else.
    Its `<Response>` may carry nodes the single-job answer leaves out (`extra_nodes`), and then
    the job is copied into a new answer (`SubmitCoordinator._response`). The answer type's
    fields are pinned by a test, so a field added to it is seen here."""
    return not answer.extra_nodes
