"""Exactly-once job submission: one request_id, at most one CI job, whatever fails on the way.

CI documents no idempotency key, and a submit whose answer is lost (a read time-out, a reset
after sending, a 5xx, a 200 whose body is cut short or garbled) may or may not have created a
paid job. The official SDK replays it blindly and creates duplicates. This module never sends
the same submit twice without first asking CI whether the first one landed:

1. Every submit carries a request_id (the caller's, AIP-155 style, or one the gateway makes).
2. The gateway appends a short **marker** derived from the request_id alone to the job's
   `UserData` (` #cigw:<20 hex>`, without the space when `UserData` is empty; `UserData` is the
   one field CI stores verbatim and returns on describe, list and callbacks), so a caller who
   sends the same request_id again names the same marker. Everything the gateway returns has
   the marker stripped again, so callers see their own `UserData`; the marker costs
   `MARKER_LEN` of CI's 1024-character budget. (Jobs read straight from CI, e.g. callbacks sent
   to a caller's own URL, do show it.)
3. After an ambiguous failure, the gateway **reconciles**: it lists the jobs of that tag for
   that input object created since shortly before the first attempt and adopts the one carrying
   the marker. Only when none exists does it send the submit again.
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

UNCONFIRMED: whether CI's job listing can lag behind job creation. If it can, a resend after a
reconcile that found nothing could still duplicate; the window is the listing's lag. Also
UNCONFIRMED: how long CI keeps jobs listable. Its documentation states no retention and no
limit on the `startCreationTime`..`endCreationTime` range, so the recovery assumes CI still
lists a job 24 h after creating it.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import os
import re
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta, timezone
from typing import Protocol

from lxml import etree

from gateway import tracing
from gateway._proto import media_pb2, service_pb2
from gateway.errors import (
    DeadlineExceeded,
    GatewayError,
    RequestIdReused,
    RetryBudgetExhausted,
    RetryClass,
    SubmitOutcomeUnknown,
    SubmitStoreUnavailable,
    TransportError,
    UpstreamError,
    UpstreamProtocolError,
)
from gateway.kinds import DEFAULT_TAG
from gateway.model import Target
from gateway.upstream import xml_codec
from gateway.upstream.client import CiClient, Reply
from gateway.upstream.retry import Deadline, RetryBudget

log = logging.getLogger(__name__)
MARKER_PREFIX = "#cigw:"
MARKER_HEX = 20
# A space separates the marker from the caller's UserData (none when that is empty: CI's XML
# would lose a leading space to whitespace trimming).
MARKER_LEN = 1 + len(MARKER_PREFIX) + MARKER_HEX
_MARKER = re.compile(f"(?:^| ){re.escape(MARKER_PREFIX)}[0-9a-f]{{{MARKER_HEX}}}$")
REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")
RETENTION_S = 24 * 3600
# How far before the first attempt a reconcile looks back: covers clock skew between the
# gateway and CI (CI's creation times come from CI's clock).
RECONCILE_LOOKBACK_S = 600
# A caller's request_id the store does not know: how far back a job of it may have been created
# with its record since lost. The store keeps records RETENTION_S, so a repeat within that is
# promised its job whatever happened to the store; beyond it, not even an intact store would.
RECOVERY_LOOKBACK_S = RETENTION_S + RECONCILE_LOOKBACK_S
RECONCILE_PAGES = 5
RECONCILE_PAGE_SIZE = 100  # CI's maximum `size`
MAX_SEND_ROUNDS = 3
# A lead lasts the caller's deadline plus this; a replica that died mid-submit blocks others
# at most that long, and then they reconcile.
LEASE_MARGIN_S = 5.0
# How often a replica looks whether another replica's lead on the same request_id has ended.
LEADER_POLL_S = (0.05, 0.5)
CI_TIMEZONE = timezone(timedelta(hours=8))


def new_request_id() -> str:
    """A random (version 4) UUID in its usual text form: `str(uuid.uuid4())`, without building
    a `uuid.UUID` on the way (a third of the cost, once per submit)."""
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
    return _MARKER.sub("", user_data)


def strip_markers(jobs: list[media_pb2.JobsDetail]) -> None:
    """Give callers back their own UserData on every job the gateway returns, in the typed
    view and in the raw XML when the call asked for it."""
    for job in jobs:
        if job.operation.user_data:
            job.operation.user_data = strip_marker(job.operation.user_data)
        if job.raw_xml:
            job.raw_xml = _strip_marker_xml(job.raw_xml)


def _strip_marker_xml(raw: str) -> str:
    element = xml_codec.parse_document(raw.encode())
    for node in element.iterfind("{*}Operation/{*}UserData"):
        if node.text:
            node.text = strip_marker(node.text.strip(" \t\r\n"))
    return etree.tostring(element, encoding="unicode")


def fingerprint(target: Target, request: media_pb2.Request) -> str:
    body = request.SerializeToString(deterministic=True)
    return hashlib.sha256(f"{target.bucket}\0{target.region}\0".encode() + body).hexdigest()


@dataclass(frozen=True)
class SubmitRecord:
    fingerprint: str
    # None while in doubt: sent or about to be sent, outcome not known yet.
    jobs_detail: bytes | None
    first_attempt_at: float
    updated_at: float
    # Until when the replica leading this submit may still be sending it (0: nobody is). Another
    # replica waits for the leader's outcome instead of sending the same job in parallel.
    leader_until: float = 0.0


class SubmitStore(Protocol):
    """request_id -> SubmitRecord. The embedded store is the default; a shared one (Redis) makes
    retries land on any replica."""

    async def get(self, request_id: str) -> SubmitRecord | None: ...

    async def claim(self, request_id: str, record: SubmitRecord) -> SubmitRecord | None:
        """Store `record` only if the id has none, atomically; return the existing one if any."""
        ...

    async def put(self, request_id: str, record: SubmitRecord) -> None: ...

    async def delete(self, request_id: str) -> None: ...


class InMemorySubmitStore:
    """Process-local store. Records live `retention_s` (24 h); beyond `max_entries` the oldest
    are evicted first, so memory stays bounded under any request rate."""

    def __init__(
        self,
        *,
        retention_s: float = RETENTION_S,
        max_entries: int = 1_000_000,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._records: OrderedDict[str, SubmitRecord] = OrderedDict()
        self._retention_s = retention_s
        self._max_entries = max_entries
        self._clock = clock

    def __len__(self) -> int:
        return len(self._records)

    def _expire(self) -> None:
        horizon = self._clock() - self._retention_s
        while self._records:
            oldest_id, oldest = next(iter(self._records.items()))
            if oldest.updated_at >= horizon and len(self._records) <= self._max_entries:
                return
            del self._records[oldest_id]

    async def get(self, request_id: str) -> SubmitRecord | None:
        self._expire()
        return self._records.get(request_id)

    async def claim(self, request_id: str, record: SubmitRecord) -> SubmitRecord | None:
        self._expire()
        existing = self._records.get(request_id)
        if existing is None:
            await self.put(request_id, record)
        return existing

    async def put(self, request_id: str, record: SubmitRecord) -> None:
        self._records[request_id] = record
        self._records.move_to_end(request_id)
        self._expire()

    async def delete(self, request_id: str) -> None:
        self._records.pop(request_id, None)


def is_ambiguous(error: GatewayError) -> bool:
    """Might CI have acted on a submit that failed this way?"""
    if isinstance(error, RetryBudgetExhausted):
        return is_ambiguous(error.last)
    if isinstance(error, TransportError):
        return error.sent
    if isinstance(error, DeadlineExceeded):
        return True  # the last attempt may have been in flight
    if isinstance(error, UpstreamProtocolError):
        # A 2xx whose body could not be read (cut short, garbled, empty, oversize): CI accepted
        # the submit, so the job probably exists; only its answer is lost.
        return 200 <= error.http_status < 300
    if isinstance(error, UpstreamError):
        # A 5xx may come after CI created the job; throttling and 4xx come before.
        return error.retry is RetryClass.TRANSIENT
    return False


def ci_time(unix: float) -> str:
    return datetime.fromtimestamp(unix, UTC).astimezone(CI_TIMEZONE).strftime("%Y-%m-%dT%H:%M:%S%z")


@dataclass
class _Attempts:
    """HTTP attempts towards CI one submit made over all its POSTs and listings. Each CI call
    counts only its own; the error a submit ends with reports them all (`ErrorInfo.attempts`)."""

    count: int = 0

    def report(self, error: GatewayError) -> GatewayError:
        error.attempts = self.count
        return error


class SubmitCoordinator:
    def __init__(
        self,
        client: CiClient,
        store: SubmitStore,
        *,
        budget_for: Callable[[Target], RetryBudget] | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._client = client
        self._store = store
        self._budget_for = budget_for
        self._clock = clock
        self._flights: dict[
            str, tuple[str, asyncio.Future[Reply[service_pb2.SubmitMediaJobResponse]]]
        ] = {}

    async def submit(
        self,
        target: Target,
        request: media_pb2.Request,
        request_id: str,
        deadline: Deadline,
        *,
        caller_supplied: bool = True,
    ) -> Reply[service_pb2.SubmitMediaJobResponse]:
        """Submit once per request_id. `caller_supplied=False` (the gateway made the id) skips
        the look for a lost record's job (nobody can have sent the id before) and drops the
        record once the job is known, which keeps memory flat (no caller can repeat a call
        that succeeded); records in doubt are kept either way, since their id was returned."""
        print_ = fingerprint(target, request)
        # Bounded: a cancelled leader hands over at most this often.
        for _ in range(MAX_SEND_ROUNDS):
            flight = self._flights.get(request_id)
            if flight is None:
                break
            flight_print, leader = flight
            if flight_print != print_:
                raise RequestIdReused(request_id)
            try:
                return await asyncio.shield(leader)
            except asyncio.CancelledError:
                if not leader.cancelled():
                    raise  # we were cancelled ourselves
                # The leading call was cancelled by its client; take over.
        future: asyncio.Future[Reply[service_pb2.SubmitMediaJobResponse]]
        future = asyncio.get_running_loop().create_future()
        self._flights[request_id] = (print_, future)
        try:
            reply = await self._lead(
                target,
                request,
                request_id,
                print_,
                deadline,
                recover=caller_supplied,
                keep=caller_supplied,
            )
        except GatewayError as error:
            future.set_exception(error)
            future.exception()  # mark retrieved: followers may be none
            raise
        except BaseException:
            future.cancel()
            raise
        else:
            future.set_result(reply)
            return reply
        finally:
            if self._flights.get(request_id, (None, None))[1] is future:
                del self._flights[request_id]

    async def _lead(
        self,
        target: Target,
        request: media_pb2.Request,
        request_id: str,
        print_: str,
        deadline: Deadline,
        *,
        recover: bool,
        keep: bool = True,
    ) -> Reply[service_pb2.SubmitMediaJobResponse]:
        """`keep=False`: the record goes once the job is known (see `submit`)."""
        now = self._clock()
        lease = now + deadline.remaining() + LEASE_MARGIN_S
        record = SubmitRecord(print_, None, now, now, leader_until=lease)
        attempts = _Attempts()
        existing = await self._store.claim(request_id, record)
        # Where the next look for a job of this request_id starts (None: send without looking).
        since: float | None
        if existing is None:
            # Ours: nobody has sent it since the store last knew. A caller's id may still have
            # a job whose record the store lost: look as far back as the store keeps records.
            since = now - RECOVERY_LOOKBACK_S if recover else None
        else:
            existing = await self._await_other_leader(request_id, existing, deadline)
            if existing.fingerprint != print_:
                raise RequestIdReused(request_id)
            if existing.jobs_detail is not None:
                if not keep:
                    await self._forget(request_id)
                return self._reply_from(existing.jobs_detail)
            # Sent before (answer lost, caller gone, replica died): reconcile first. We lead now.
            record = replace(existing, leader_until=lease, updated_at=now)
            await self._store.put(request_id, record)
            since = record.first_attempt_at - RECONCILE_LOOKBACK_S

        tag = marker(request_id)
        marked = media_pb2.Request()
        marked.CopyFrom(request)
        marked.operation.user_data = with_marker(request.operation.user_data, request_id)
        last_error: GatewayError | None = None
        for _ in range(MAX_SEND_ROUNDS):
            if since is not None:
                try:
                    with tracing.span(tracing.RECONCILE_SPAN) as span:
                        found = await self._find(target, request, tag, since, deadline, attempts)
                        span.set_attribute("ci_gateway.reconcile.found", found is not None)
                except GatewayError as error:
                    if existing is None and last_error is None:
                        # The look for a lost record's job failed, and nothing was sent: the id
                        # is free again, and the next call looks just as far back.
                        await self._forget(request_id)
                        attempts.report(error)
                        raise
                    await self._release(request_id, record)
                    raise self._unknown(request_id, error, attempts) from error
                if found is not None:
                    return await self._complete(request_id, record, *found, keep=keep)
                if last_error is not None and not self._may_resend(target, last_error):
                    await self._release(request_id, record)
                    raise self._unknown(request_id, last_error, attempts) from last_error
            try:
                job, ci_request_id = await self._send(target, marked, deadline, attempts)
            except GatewayError as error:
                if not is_ambiguous(error):
                    await self._forget(request_id)  # certainly no job: the id is free again
                    attempts.report(error)
                    raise
                if isinstance(error, DeadlineExceeded) or deadline.expired:
                    await self._release(request_id, record)
                    raise self._unknown(request_id, error, attempts) from error
                last_error = error
                since = record.first_attempt_at - RECONCILE_LOOKBACK_S
                continue
            return await self._complete(request_id, record, job, ci_request_id, keep=keep)
        assert last_error is not None
        await self._release(request_id, record)
        raise self._unknown(request_id, last_error, attempts) from last_error

    async def _send(
        self,
        target: Target,
        marked: media_pb2.Request,
        deadline: Deadline,
        attempts: _Attempts,
    ) -> tuple[media_pb2.JobsDetail, str]:
        """POST the marked job: its JobsDetail and CI's RequestId. A 2xx naming no job (an
        empty body) lost CI's answer as surely as a garbled one did: an ambiguous failure."""
        try:
            reply = await self._client.submit_job(target, marked, deadline)
        except GatewayError as error:
            attempts.count += error.attempts
            raise
        attempts.count += reply.attempts
        job = reply.message.jobs_detail
        if not job.job_id:
            raise UpstreamProtocolError(
                "CI accepted the submit but its answer names no job",
                http_status=200,
                request_id=reply.request_id,
            )
        return job, reply.request_id

    async def _await_other_leader(
        self, request_id: str, record: SubmitRecord, deadline: Deadline
    ) -> SubmitRecord:
        """Another replica leads this request_id: wait (bounded) for its outcome."""
        delay = LEADER_POLL_S[0]
        while record.jobs_detail is None and record.leader_until > self._clock():
            if deadline.remaining() <= delay:
                waited = DeadlineExceeded("another replica is still submitting it")
                unknown = SubmitOutcomeUnknown(request_id, waited)
                waited.attempts = unknown.attempts = 0  # this call asked CI nothing
                raise unknown
            await asyncio.sleep(delay)
            delay = min(delay * 2, LEADER_POLL_S[1])
            latest = await self._store.get(request_id)
            if latest is None:  # the other lead failed for certain: the id is free again
                return replace(record, leader_until=0.0)
            record = latest
        return record

    async def _release(self, request_id: str, record: SubmitRecord) -> None:
        """In doubt and nobody sending: the next call with this id reconciles at once. Best
        effort: should the store fail too, the lease runs out by itself, and the caller learns
        of the submit's own failure rather than the store's."""
        with contextlib.suppress(SubmitStoreUnavailable):
            await self._store.put(request_id, replace(record, leader_until=0.0))

    async def _forget(self, request_id: str) -> None:
        """Drop the id's record: no job was made for it (the id is free again), or the job is
        known and the id was the gateway's (nobody can repeat it). Best effort, like `_release`:
        CI's answer is what the caller must learn; a record the store failed to drop is
        reconciled by the next call, or expires."""
        with contextlib.suppress(SubmitStoreUnavailable):
            await self._store.delete(request_id)

    def _may_resend(self, target: Target, error: GatewayError) -> bool:
        if self._budget_for is None:
            return True
        return self._budget_for(target).try_spend(error)

    @staticmethod
    def _unknown(request_id: str, error: GatewayError, attempts: _Attempts) -> GatewayError:
        if isinstance(error, DeadlineExceeded):
            error.extra["request_id"] = request_id
            return attempts.report(error)
        return attempts.report(SubmitOutcomeUnknown(request_id, error))

    async def _complete(
        self,
        request_id: str,
        record: SubmitRecord,
        job: media_pb2.JobsDetail,
        ci_request_id: str,
        *,
        keep: bool = True,
    ) -> Reply[service_pb2.SubmitMediaJobResponse]:
        response = service_pb2.SubmitMediaJobResponse(jobs_detail=job)
        strip_markers([response.jobs_detail])
        if not keep:
            # Dropped rather than stored and then dropped: one store call instead of two (a
            # round trip to Redis when shared), no serializing. The job is known; a record the
            # store fails to drop expires by itself.
            await self._forget(request_id)
            return Reply(response, ci_request_id)
        stored = response.SerializeToString()
        try:
            await self._store.put(
                request_id,
                SubmitRecord(record.fingerprint, stored, record.first_attempt_at, self._clock()),
            )
        except SubmitStoreUnavailable:
            # The job exists and is known: the caller gets it. A repeat still finds this job,
            # through the in-doubt record if the store kept it, else through the recovery look.
            log.warning("submit succeeded but its outcome could not be stored; a repeat looks")
        return Reply(response, ci_request_id)

    @staticmethod
    def _reply_from(stored: bytes) -> Reply[service_pb2.SubmitMediaJobResponse]:
        return Reply(service_pb2.SubmitMediaJobResponse.FromString(stored), "")

    async def _find(
        self,
        target: Target,
        request: media_pb2.Request,
        tag: str,
        since: float,
        deadline: Deadline,
        attempts: _Attempts,
    ) -> tuple[media_pb2.JobsDetail, str] | None:
        """Look for the job a lost submit may have created: same tag, same input object,
        created since `since` (by CI's clock, hence the margins callers add), carrying this
        request's marker. Returns it with CI's RequestId of the listing that found it."""
        params = {
            "tag": request.tag or DEFAULT_TAG,
            "startCreationTime": ci_time(since),
            "orderByTime": "Desc",
            "size": str(RECONCILE_PAGE_SIZE),
            "nextToken": "",
        }
        if request.input.object:  # a kind without input (Concat) is found by tag and marker
            params["inputObject"] = request.input.object
        if request.queue_id:
            params["queueId"] = request.queue_id
        for _ in range(RECONCILE_PAGES):
            try:
                reply = await self._client.list_jobs(target, params, deadline)
            except GatewayError as error:
                attempts.count += error.attempts
                raise
            attempts.count += reply.attempts
            page = reply.message
            for job in page.jobs_detail:
                if job.operation.user_data.endswith(tag):
                    return job, reply.request_id
            if not page.next_token:
                return None
            params["nextToken"] = page.next_token
        return None
