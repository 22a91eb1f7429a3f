"""Exactly-once for CreateMediaJobs' multi-operation form: one request_id, up to 6 operations,
at most one CI job per operation, whatever fails on the way.

The single submit's design (`gateway.jobs.submit`: read its docstring first) carries over, with
its marker format, store, record type, ambiguity rule and reconcile criteria. What changes is
that one call is several jobs, so everything is counted per operation:

1. Operation `i` carries a marker of its own in `UserData`, derived from (request_id, `i`)
   (`operation_marker`): a reconcile can tell every operation's job apart, even several of the
   same kind on the same input.
2. CI's answer is matched to operations by marker, not by position: an answer naming fewer jobs
   than it was sent (CI's partial-failure semantics are undocumented) leaves the rest in doubt
   instead of pinning a job on the wrong operation.
3. Whatever is in doubt (a lost answer, operations an answer did not name, a record left by an
   earlier call) is **reconciled** before anything is sent again: one listing per distinct tag
   among the missing operations (same input object and queue, created since shortly before the
   first attempt), adopting each job that carries a missing operation's marker.
4. Only the operations still without a job are sent again, as a smaller multi-operation POST
   with their own markers: an operation whose job was found is never sent twice.
5. The record (fingerprint marked as multi, so one request_id cannot name both forms) holds the
   whole answer once every operation has its job. Until then it stays in doubt, and a request_id
   with any job behind it is never freed: a repeat reconciles first and sends only what is
   missing. Errors then say which operations have a job (`operations_with_a_job`).
6. As in the single form, a caller's request_id the store does not know is looked up in CI
   (`RECOVERY_LOOKBACK_S` back) before the first POST, so a store that lost its record never
   makes a repeat create jobs again; `ErrorInfo.attempts` counts every POST and listing, and a
   store failure after CI answered never hides CI's answer.

The claim / lease / shared-flight steps are the single form's, restated for this answer type
(`SubmitCoordinator` keeps them private to its own answer type).
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, replace

from gateway._proto import media_pb2, service_pb2
from gateway.errors import (
    DeadlineExceeded,
    GatewayError,
    RequestIdReused,
    SubmitOutcomeUnknown,
    SubmitStoreUnavailable,
    UpstreamProtocolError,
)
from gateway.jobs.submit import (
    LEADER_POLL_S,
    LEASE_MARGIN_S,
    MARKER_HEX,
    MARKER_PREFIX,
    MAX_SEND_ROUNDS,
    RECONCILE_LOOKBACK_S,
    RECONCILE_PAGE_SIZE,
    RECONCILE_PAGES,
    RECOVERY_LOOKBACK_S,
    SubmitRecord,
    SubmitStore,
    ci_time,
    is_ambiguous,
    marker,
    strip_markers,
    with_marker,
)
from gateway.model import Target
from gateway.upstream.client import CiClient, Reply
from gateway.upstream.retry import Deadline, RetryBudget

__all__ = ["MAX_OPERATIONS", "MultiSubmitCoordinator", "multi_fingerprint", "operation_marker"]

log = logging.getLogger(__name__)

MAX_OPERATIONS = 6
"""Most Operations CI takes in one multi-operation request (job catalogue §2.1)."""

Response = service_pb2.SubmitMediaJobsResponse
# Operation index -> its job, as far as known.
Jobs = dict[int, media_pb2.JobsDetail]


def _operation_id(request_id: str, index: int) -> str:
    # `/` is no request_id character (`submit.REQUEST_ID`): no single submit's id, and no other
    # operation's, derives the same marker.
    return f"{request_id}/{index}"


def operation_marker(request_id: str, index: int) -> str:
    """The marker operation `index` of a multi-operation submit carries in its `UserData`."""
    return marker(_operation_id(request_id, index))


def _trailing_marker(user_data: str) -> str:
    """The marker a `UserData` ends with, if it ends with one (else text that matches none)."""
    return user_data[-(len(MARKER_PREFIX) + MARKER_HEX) :]


def multi_fingerprint(target: Target, request: media_pb2.MultiOperationRequest) -> str:
    body = request.SerializeToString(deterministic=True)
    return hashlib.sha256(f"multi\0{target.bucket}\0{target.region}\0".encode() + body).hexdigest()


def _matched(answer: Iterable[media_pb2.JobsDetail], wanted: Mapping[str, int]) -> Jobs:
    """The jobs among `answer` that carry a wanted marker, by operation index."""
    found: Jobs = {}
    for job in answer:
        index = wanted.get(_trailing_marker(job.operation.user_data))
        if index is not None and job.job_id:
            found[index] = job
    return found


@dataclass
class _Attempts:
    """HTTP attempts towards CI over all of one call's POSTs and listings (`ErrorInfo.attempts`
    of the error it ends with), as the single form counts them."""

    count: int = 0

    def report(self, error: GatewayError) -> GatewayError:
        error.attempts = self.count
        return error


class MultiSubmitCoordinator:
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
        self._flights: dict[str, tuple[str, asyncio.Future[Reply[Response]]]] = {}

    async def submit(
        self,
        target: Target,
        request: media_pb2.MultiOperationRequest,
        request_id: str,
        deadline: Deadline,
        *,
        caller_supplied: bool = True,
    ) -> Reply[Response]:
        """One job per operation, once per request_id; the answer lists them in operation
        order. `caller_supplied` as in `SubmitCoordinator.submit`."""
        print_ = multi_fingerprint(target, request)
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
        future: asyncio.Future[Reply[Response]] = asyncio.get_running_loop().create_future()
        self._flights[request_id] = (print_, future)
        try:
            reply = await self._lead(
                target, request, request_id, print_, deadline, recover=caller_supplied
            )
            if not caller_supplied:
                # Best effort: the jobs are known, and the record expires by itself anyway.
                with contextlib.suppress(SubmitStoreUnavailable):
                    await self._store.delete(request_id)
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
        request: media_pb2.MultiOperationRequest,
        request_id: str,
        print_: str,
        deadline: Deadline,
        *,
        recover: bool,
    ) -> Reply[Response]:
        now = self._clock()
        lease = now + deadline.remaining() + LEASE_MARGIN_S
        record = SubmitRecord(print_, None, now, now, leader_until=lease)
        attempts = _Attempts()
        existing = await self._store.claim(request_id, record)
        # Where the next look for this request_id's jobs starts (None: send without looking).
        since: float | None
        if existing is None:
            # Ours: nobody has sent it since the store last knew. A caller's id may still have
            # jobs whose record the store lost: look as far back as the store keeps records.
            since = now - RECOVERY_LOOKBACK_S if recover else None
        else:
            existing = await self._await_other_leader(request_id, existing, deadline)
            if existing.fingerprint != print_:
                raise RequestIdReused(request_id)
            if existing.jobs_detail is not None:
                return Reply(Response.FromString(existing.jobs_detail), "")
            # Sent before (answer lost, caller gone, replica died): reconcile first. We lead now.
            record = replace(existing, leader_until=lease, updated_at=now)
            await self._store.put(request_id, record)
            since = record.first_attempt_at - RECONCILE_LOOKBACK_S

        markers = [operation_marker(request_id, i) for i in range(len(request.operation))]
        jobs: Jobs = {}
        ci_request_id = ""
        last_error: GatewayError | None = None
        for _ in range(MAX_SEND_ROUNDS):
            if since is not None:
                try:
                    found = await self._find(
                        target, request, markers, jobs, since, deadline, attempts
                    )
                except GatewayError as error:
                    if existing is None and last_error is None and not jobs:
                        # The look for a lost record's jobs failed, and nothing was sent: the
                        # id is free again, and the next call looks just as far back.
                        await self._forget(request_id)
                        attempts.report(error)
                        raise
                    raise await self._give_up(request_id, record, error, jobs, attempts) from error
                jobs.update(found)
                if len(jobs) == len(markers):
                    return await self._complete(request_id, record, jobs, ci_request_id)
                if last_error is not None and not self._may_resend(target, last_error):
                    raise await self._give_up(
                        request_id, record, last_error, jobs, attempts
                    ) from last_error
            pending = [i for i in range(len(markers)) if i not in jobs]
            try:
                reply = await self._send(
                    target, _marked(request, request_id, pending), deadline, attempts
                )
            except GatewayError as error:
                if not is_ambiguous(error):
                    if not jobs:
                        await self._forget(request_id)  # certainly no job: the id is free again
                        attempts.report(error)
                        raise
                    # CI refused the rest for certain, but some operations have a job: keep the
                    # record in doubt, so no repeat sends those again, and say which they are.
                    await self._give_up(request_id, record, error, jobs, attempts, wrap=False)
                    raise
                if isinstance(error, DeadlineExceeded) or deadline.expired:
                    raise await self._give_up(request_id, record, error, jobs, attempts) from error
                last_error = error
                since = record.first_attempt_at - RECONCILE_LOOKBACK_S
                continue
            ci_request_id = reply.request_id
            answered = _matched(reply.message.jobs_detail, {markers[i]: i for i in pending})
            jobs.update(answered)
            if len(jobs) == len(markers):
                return await self._complete(request_id, record, jobs, ci_request_id)
            # CI answered for some operations only: the others may or may not have a job.
            since = record.first_attempt_at - RECONCILE_LOOKBACK_S
            last_error = UpstreamProtocolError(
                f"CI's answer names {len(answered)} of the {len(pending)} jobs it was sent",
                http_status=200,
                request_id=reply.request_id,
            )
        assert last_error is not None
        raise await self._give_up(request_id, record, last_error, jobs, attempts) from last_error

    async def _send(
        self,
        target: Target,
        body: media_pb2.MultiOperationRequest,
        deadline: Deadline,
        attempts: _Attempts,
    ) -> Reply[Response]:
        try:
            reply = await self._client.submit_jobs(target, body, deadline)
        except GatewayError as error:
            attempts.count += error.attempts
            raise
        attempts.count += reply.attempts
        return reply

    async def _find(
        self,
        target: Target,
        request: media_pb2.MultiOperationRequest,
        markers: list[str],
        known: Jobs,
        since: float,
        deadline: Deadline,
        attempts: _Attempts,
    ) -> Jobs:
        """The jobs a lost submit may have created for the operations not in `known`: per tag,
        the same listing the single form's reconcile makes, matched by each one's marker."""
        by_tag: dict[str, dict[str, int]] = {}
        for index, operation in enumerate(request.operation):
            if index not in known:
                by_tag.setdefault(operation.tag, {})[markers[index]] = index
        found: Jobs = {}
        for tag, wanted in by_tag.items():
            params = {
                "tag": tag,
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
                matched = _matched(page.jobs_detail, wanted)
                found.update(matched)
                for index in matched:
                    del wanted[markers[index]]
                if not wanted or not page.next_token:
                    break
                params["nextToken"] = page.next_token
        return found

    async def _complete(
        self, request_id: str, record: SubmitRecord, jobs: Jobs, ci_request_id: str
    ) -> Reply[Response]:
        response = Response(jobs_detail=[jobs[index] for index in sorted(jobs)])
        strip_markers(list(response.jobs_detail))
        stored = response.SerializeToString()
        try:
            await self._store.put(
                request_id,
                SubmitRecord(record.fingerprint, stored, record.first_attempt_at, self._clock()),
            )
        except SubmitStoreUnavailable:
            # The jobs exist and are known: the caller gets them. A repeat still finds them,
            # through the in-doubt record if the store kept it, else through the recovery look.
            log.warning("multi-submit succeeded but its outcome could not be stored")
        return Reply(response, ci_request_id)

    async def _give_up(
        self,
        request_id: str,
        record: SubmitRecord,
        error: GatewayError,
        jobs: Jobs,
        attempts: _Attempts,
        *,
        wrap: bool = True,
    ) -> GatewayError:
        """Leave the record in doubt with nobody leading (the next call with this id reconciles
        at once) and return the error the call ends with. Best effort, as the single form's
        `_release`: should the store fail too, the lease runs out by itself."""
        with contextlib.suppress(SubmitStoreUnavailable):
            await self._store.put(request_id, replace(record, leader_until=0.0))
        final = error
        if wrap and not isinstance(error, DeadlineExceeded):
            final = SubmitOutcomeUnknown(request_id, error)
        attempts.report(final)
        final.extra["request_id"] = request_id
        if jobs:
            final.extra["operations_with_a_job"] = ",".join(map(str, sorted(jobs)))
        return final

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

    async def _forget(self, request_id: str) -> None:
        """No job for this id: free it (best effort, as the single form's `_forget`)."""
        with contextlib.suppress(SubmitStoreUnavailable):
            await self._store.delete(request_id)

    def _may_resend(self, target: Target, error: GatewayError) -> bool:
        if self._budget_for is None:
            return True
        return self._budget_for(target).try_spend(error)


def _marked(
    request: media_pb2.MultiOperationRequest, request_id: str, pending: list[int]
) -> media_pb2.MultiOperationRequest:
    """The body to send: the envelope, and the `pending` operations with their markers."""
    body = media_pb2.MultiOperationRequest()
    body.CopyFrom(request)
    del body.operation[:]
    for index in pending:
        operation = body.operation.add()
        operation.CopyFrom(request.operation[index])
        operation.user_data = with_marker(operation.user_data, _operation_id(request_id, index))
    return body
