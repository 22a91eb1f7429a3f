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

The claim / lease / shared-flight steps and the rounds of reconcile-then-send are
`gateway.jobs.exactly_once`'s, the same as the single form's; this module says only how the
operations are marked, sent and found.
"""

from __future__ import annotations

import contextlib
import hashlib
from collections.abc import Iterable, Mapping

from gateway._proto import media_pb2, service_pb2
from gateway.jobs.exactly_once import ExactlyOnceCoordinator, Jobs
from gateway.jobs.submit import MARKER_HEX, MARKER_PREFIX, marker, strip_markers, with_marker
from gateway.model import Target
from gateway.upstream.client import Attempts
from gateway.upstream.retry import Deadline

__all__ = ["MAX_OPERATIONS", "MultiSubmitCoordinator", "multi_fingerprint", "operation_marker"]

MAX_OPERATIONS = 6
"""Most Operations CI takes in one multi-operation request (job catalogue §2.1)."""

Response = service_pb2.SubmitMediaJobsResponse


def _operation_id(request_id: str, index: int) -> str:
    # `/` is no request_id character (`submit.REQUEST_ID`) and the index follows the last one:
    # no single submit's id, and no other operation's, derives the same marker (a shared-mode
    # key, `<client>|<request_id>`, too: its client name may hold `/`, its request_id cannot).
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


class MultiSubmitCoordinator(ExactlyOnceCoordinator[media_pb2.MultiOperationRequest, Response]):
    """The multi-operation form: one job per operation, each known by its own marker; the
    answer lists them in operation order."""

    _response_type = Response

    def _fingerprint(self, target: Target, request: media_pb2.MultiOperationRequest) -> str:
        return multi_fingerprint(target, request)

    def _operations(self, request: media_pb2.MultiOperationRequest) -> int:
        return len(request.operation)

    async def _send(
        self,
        target: Target,
        request: media_pb2.MultiOperationRequest,
        request_id: str,
        pending: list[int],
        deadline: Deadline,
        attempts: Attempts,
    ) -> tuple[Jobs, str, Response | None]:
        """Only the `pending` operations go out; CI's answer is matched to them by marker, not
        by position. It is handed back as the caller's only when it lists exactly the
        operations sent, in the order sent (`_answer_as_is`)."""
        body = _marked(request, request_id, pending)
        reply = await attempts.counted(self._client.submit_jobs(target, body, deadline))
        answer = reply.message
        jobs = answer.jobs_detail[:]
        found = _matched(jobs, {operation_marker(request_id, i): i for i in pending})
        return (
            found,
            reply.request_id,
            answer if _answer_as_is(answer, jobs, found, pending) else None,
        )

    async def _find(
        self,
        target: Target,
        request: media_pb2.MultiOperationRequest,
        request_id: str,
        known: Jobs,
        since: float,
        deadline: Deadline,
        attempts: Attempts,
    ) -> tuple[Jobs, str]:
        """The jobs a lost submit may have created for the operations not in `known`: per tag,
        the same listing the single form's reconcile makes, matched by each one's marker. The
        answer keeps the last POST's RequestId."""
        markers = [operation_marker(request_id, i) for i in range(len(request.operation))]
        by_tag: dict[str, dict[str, int]] = {}
        for index, operation in enumerate(request.operation):
            if index not in known:
                by_tag.setdefault(operation.tag, {})[markers[index]] = index
        found: Jobs = {}
        for tag, wanted in by_tag.items():
            pages = self._reconcile_pages(
                target,
                deadline,
                attempts,
                tag=tag,
                input_object=request.input.object,
                queue_id=request.queue_id,
                queue_type=request.queue_type,
                since=since,
            )
            async with contextlib.aclosing(pages):
                async for page in pages:
                    matched = _matched(page.message.jobs_detail, wanted)
                    found.update(matched)
                    for index in matched:
                        del wanted[markers[index]]
                    if not wanted:
                        break
        return found, ""

    def _response(self, jobs: Jobs, answer: Response | None = None) -> Response:
        # `answer`: CI's own, which lists every operation's job in operation order (`_send`
        # hands one back only then, and the protocol takes it only when that send named every
        # operation); else the jobs copied into a new answer in operation order.
        if answer is None:
            answer = Response(jobs_detail=[jobs[index] for index in sorted(jobs)])
        strip_markers(answer.jobs_detail[:])
        return answer


def _answer_as_is(
    answer: Response, jobs: list[media_pb2.JobsDetail], found: Jobs, pending: list[int]
) -> bool:
    """CI's answer (`jobs` its JobsDetail, `found` what `_matched` made of them) is the answer
    `_response` would build from the jobs it names, as it stands: every job matched a
    different operation sent (`found` has as many entries as there are jobs: a job without its
    id or a wanted marker is left out, a marker named twice kept once), in the order sent
    (`found` keeps the answer's order), and no other `<Response>` node (`extra_nodes`).
    Anything else is built anew, as before. The answer type's fields are pinned by a test, so
    a field added to it is weighed here."""
    return len(jobs) == len(found) and list(found) == pending and not answer.extra_nodes


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
