"""The gRPC servicer: Protobuf in, validation, one CI call, Protobuf out.

Handlers hold no logic of their own: `validation` turns the RPC into a target and CI's inputs,
`CiClient` does the call, and `servicer.rpc` turns any `GatewayError` into a rich status (see
`gateway.api.servicer` for what every handler shares).

In shared mode a client with a `tags` rule must not reach another tag's job by its id: the
access check cannot see a job's tag before CI answers, so the handlers here hide it as CI hides
an unknown id (`hide_unseen_jobs` for describe, `show_job_tag` per watcher for watch and wait,
a describe before the cancel of such a client). Not hidden: whether the tracker already follows
the job (another client watches it), which answers a watch or wait at once where an unknown id
waits for CI (README, "tags"); it takes holding the job's id to ask.
"""

from __future__ import annotations

import asyncio
import functools
import logging
from collections.abc import AsyncIterator, Callable, Sequence
from typing import Any, TypeVar

import grpc
from google.protobuf.message import Message

from gateway._proto import media_pb2, service_pb2, service_pb2_grpc
from gateway.access.open_calls import current_client, show_job_tag
from gateway.access.policy import ClientPolicy
from gateway.api import validation
from gateway.api.interceptors import when_cut
from gateway.api.servicer import Admission, Servicer, peer_address, rpc, waiting_rpc
from gateway.config.settings import Settings
from gateway.errors import (
    DeadlineExceeded,
    GatewayError,
    JobNotFound,
    ShuttingDown,
    SubmitOutcomeUnknown,
)
from gateway.jobs import describe
from gateway.jobs.exactly_once import (
    ExactlyOnceCoordinator,
    InMemorySubmitStore,
    RequestKey,
    SubmitStore,
)
from gateway.jobs.multi_submit import MultiSubmitCoordinator
from gateway.jobs.outputs import fill_outputs
from gateway.jobs.submit import SubmitCoordinator, strip_markers
from gateway.jobs.tracking import JobTracker, PollSchedule, WatchLimits
from gateway.model import Target
from gateway.status import abort
from gateway.upstream.client import CiClient
from gateway.upstream.retry import Deadline, submit_settle

log = logging.getLogger(__name__)

# A submit form's body and answer (`gateway.jobs.exactly_once`).
Body = TypeVar("Body", media_pb2.Request, media_pb2.MultiOperationRequest)
Answer = TypeVar("Answer", bound=Message)
ClientIdentity = Callable[[grpc.aio.ServicerContext[Any, Any]], str]

# The submit's request_id (the caller's, or the one the gateway made): retry with it.
REQUEST_ID_METADATA = "x-ci-gateway-request-id"
# WaitMediaJob answers this much before the caller's deadline (a tenth of what is left, at most
# a second), so the latest state arrives instead of DEADLINE_EXCEEDED.
WAIT_MARGIN_FRACTION = 0.1
WAIT_MARGIN_MAX_S = 1.0


def submit_cut(request_id: str, caller_supplied: bool, attempts: int) -> GatewayError:
    """What a submit the shutdown cut ends with (`when_cut`), given its attempts towards CI.

    SUBMIT_OUTCOME_UNKNOWN with the request_id whenever a job of it may exist: the coordinator
    has left the record in doubt (or CI holds the marker), so a retry with the id reconciles
    and never makes a second job, where a retry without it would get a new id. That is, when
    the call made any attempt (a gateway-made id's first is its POST; a caller's id is looked
    for first, and the look, unfinished, is exactly what would have said whether its job
    exists), and for a caller's id even with none: the call may have been waiting on another
    call's or replica's send of it. Only a gateway-made id with no attempt cannot have reached
    CI (nobody else knows it, and its record was dropped): SHUTTING_DOWN, send it again."""
    if attempts == 0 and not caller_supplied:
        return ShuttingDown()
    # Its ErrorInfo carries the request_id (`SubmitOutcomeUnknown.metadata`).
    return SubmitOutcomeUnknown(
        request_id, ShuttingDown("the gateway is shutting down and ended the call")
    )


class MediaJobService(Servicer, service_pb2_grpc.MediaJobServiceServicer):
    def __init__(
        self,
        client: CiClient,
        settings: Settings,
        *,
        submit_store: SubmitStore | None = None,
        max_in_flight_rpcs: int | None = None,
        tracker: JobTracker | None = None,
        callback_url: Callable[[Target], str | None] | None = None,
        client_identity: ClientIdentity | None = None,
    ) -> None:
        limit = max_in_flight_rpcs or settings.retry.max_in_flight_rpcs
        super().__init__(settings, Admission(limit))
        self._client = client
        store = submit_store if submit_store is not None else InMemorySubmitStore()
        settle = submit_settle(settings.retry)
        self._submits = SubmitCoordinator(
            client, store, budget_for=client.budget_for, settle=settle
        )
        # One store for both forms: a request_id names one call, whichever form it took.
        self._multi_submits = MultiSubmitCoordinator(
            client, store, budget_for=client.budget_for, settle=settle
        )
        tracking = settings.tracking
        self._tracker = tracker or JobTracker(
            client,
            schedule=PollSchedule(initial_s=tracking.poll_initial_s, max_s=tracking.poll_max_s),
            limits=WatchLimits(tracking.max_watchers, tracking.max_watchers_per_client),
            unreachable_s=tracking.unreachable_s,
        )
        self._callback_url = callback_url
        self._client_identity = client_identity or default_client_identity

    async def _submit(
        self,
        coordinator: ExactlyOnceCoordinator[Body, Answer],
        target: Target,
        body: Body,
        request_id: str,
        caller_supplied: bool,
        context: grpc.aio.ServicerContext[Any, Answer],
    ) -> Answer:
        """The steps both submit forms take around their coordinator. The request_id goes in
        the trailers before the call too, and on any error it ends with, so a caller whose call
        failed still learns the id to retry with. In shared mode the id is the client's own:
        the coordinator keys it by the client's name (`RequestKey.scoped`), so two clients'
        equal ids never meet, and what the caller reads still shows the id it sent."""
        self._use_gateway_callback(target, body)
        context.set_trailing_metadata(((REQUEST_ID_METADATA, request_id),))
        when_cut(functools.partial(submit_cut, request_id, caller_supplied))
        client = current_client()
        key = RequestKey.scoped(client.name if client is not None else None, request_id)
        try:
            reply = await coordinator.submit(
                target, body, key, self._deadline(context), caller_supplied=caller_supplied
            )
        except GatewayError as error:
            error.extra.setdefault("request_id", request_id)
            raise
        return self._reply(reply, context, (REQUEST_ID_METADATA, request_id))

    @rpc
    async def SubmitMediaJob(
        self,
        request: service_pb2.SubmitMediaJobRequest,
        context: grpc.aio.ServicerContext[
            service_pb2.SubmitMediaJobRequest, service_pb2.SubmitMediaJobResponse
        ],
    ) -> service_pb2.SubmitMediaJobResponse:
        target, body, request_id = validation.validate_submit(request, self._settings)
        response = await self._submit(
            self._submits, target, body, request_id, bool(request.request_id), context
        )
        fill_outputs([response.jobs_detail])
        return response

    @rpc
    async def SubmitMediaJobs(
        self,
        request: service_pb2.SubmitMediaJobsRequest,
        context: grpc.aio.ServicerContext[
            service_pb2.SubmitMediaJobsRequest, service_pb2.SubmitMediaJobsResponse
        ],
    ) -> service_pb2.SubmitMediaJobsResponse:
        target, body, request_id = validation.validate_submit_jobs(request, self._settings)
        response = await self._submit(
            self._multi_submits, target, body, request_id, bool(request.request_id), context
        )
        fill_outputs(response.jobs_detail)
        return response

    @rpc
    async def DescribeMediaJobs(
        self,
        request: service_pb2.DescribeMediaJobsRequest,
        context: grpc.aio.ServicerContext[
            service_pb2.DescribeMediaJobsRequest, service_pb2.DescribeMediaJobsResponse
        ],
    ) -> service_pb2.DescribeMediaJobsResponse:
        target, job_ids = validation.validate_describe(request, self._settings)
        reply = await describe.describe_jobs(
            self._client, target, job_ids, self._deadline(context), keep_raw=request.include_raw_xml
        )
        client = current_client()
        if client is not None and client.restricts_tags:
            hide_unseen_jobs(reply.message, job_ids, client)
        jobs = reply.message.jobs_detail[:]  # see `ListMediaJobs`
        strip_markers(jobs)
        fill_outputs(jobs)
        return self._reply(reply, context)

    @rpc
    async def ListMediaJobs(
        self,
        request: service_pb2.ListMediaJobsRequest,
        context: grpc.aio.ServicerContext[
            service_pb2.ListMediaJobsRequest, service_pb2.ListMediaJobsResponse
        ],
    ) -> service_pb2.ListMediaJobsResponse:
        target, params = validation.validate_list(request, self._settings)
        reply = await self._client.list_jobs(
            target,
            params,
            self._deadline(context),
            keep_raw=request.include_raw_xml,
            fill_queue="lookup",
        )
        # The jobs as a list, by one slice: iterating the repeated field itself ends in an
        # IndexError formatted and dropped inside protobuf (~1,900 instructions a loop).
        jobs = reply.message.jobs_detail[:]
        strip_markers(jobs)
        fill_outputs(jobs)
        return self._reply(reply, context)

    @rpc
    async def CancelMediaJob(
        self,
        request: service_pb2.CancelMediaJobRequest,
        context: grpc.aio.ServicerContext[
            service_pb2.CancelMediaJobRequest, service_pb2.CancelMediaJobResponse
        ],
    ) -> service_pb2.CancelMediaJobResponse:
        target, job_id = validation.validate_job_ref(request, self._settings)
        deadline = self._deadline(context)
        client = current_client()
        if client is not None and client.restricts_tags:
            # Only a client with a `tags` rule pays for this describe.
            await self._visible_job(client, target, job_id, deadline)
        reply = await self._client.cancel_job(target, job_id, deadline)
        return self._reply(reply, context)

    async def _visible_job(
        self, client: ClientPolicy, target: Target, job_id: str, deadline: Deadline
    ) -> None:
        """`JobNotFound` unless CI has the job and its tag is the client's: a job of another
        tag is refused exactly as one CI does not have, before anything is sent to cancel it."""
        reply = await self._client.describe_jobs(target, [job_id], deadline)
        for detail in reply.message.jobs_detail:
            if detail.job_id == job_id and client.sees_tag(detail.tag):
                return
        raise JobNotFound(job_id)

    @rpc
    async def GenerateMediaInfo(
        self,
        request: service_pb2.GenerateMediaInfoRequest,
        context: grpc.aio.ServicerContext[
            service_pb2.GenerateMediaInfoRequest, service_pb2.MediaInfoResponse
        ],
    ) -> service_pb2.MediaInfoResponse:
        target, key = validation.validate_generate_media_info(request, self._settings)
        reply = await self._client.generate_media_info(target, key, self._deadline(context))
        return self._reply(reply, context)

    @rpc
    async def GetMediaInfo(
        self,
        request: service_pb2.GetMediaInfoRequest,
        context: grpc.aio.ServicerContext[
            service_pb2.GetMediaInfoRequest, service_pb2.MediaInfoResponse
        ],
    ) -> service_pb2.MediaInfoResponse:
        target, key, version = validation.validate_get_media_info(request, self._settings)
        reply = await self._client.get_media_info(target, key, version, self._deadline(context))
        return self._reply(reply, context)

    # ---- job tracking --------------------------------------------------------------------

    def _use_gateway_callback(
        self, target: Target, body: media_pb2.Request | media_pb2.MultiOperationRequest
    ) -> None:
        """Point CI's callback at the gateway's receiver, unless the caller chose a callback of
        its own (a URL, `no`, or a message queue: TDMQ, Kafka): the gateway then relies on
        polling for that job. This
        runs before the exactly-once fingerprint, with a URL that is the same on every replica,
        so a retried submit fingerprints alike."""
        url = self._callback_url(target) if self._callback_url is not None else None
        if (
            url
            and not body.call_back
            and body.call_back_type not in validation.QUEUE_CALL_BACK_TYPES
        ):
            body.call_back = url

    async def WatchMediaJob(
        self,
        request: service_pb2.WatchMediaJobRequest,
        context: grpc.aio.ServicerContext[
            service_pb2.WatchMediaJobRequest, service_pb2.WatchMediaJobResponse
        ],
    ) -> AsyncIterator[service_pb2.WatchMediaJobResponse]:
        try:
            target, job_id = validation.validate_job_ref(request, self._settings)
            async with self._tracker.watch(target, job_id, self._client_identity(context)) as watch:
                async for detail in watch.updates():
                    # Per watcher: one poll feeds every client watching the job.
                    show_job_tag(detail.tag, JobNotFound(job_id))
                    yield service_pb2.WatchMediaJobResponse(jobs_detail=detail)
        except GatewayError as error:
            # Not `rpc`: a stream is not admitted per call; the watcher caps bound it instead.
            log.info("WatchMediaJob failed: %s %s", error.status.name, error.reason.value)
            await abort(context, error)

    @waiting_rpc
    async def WaitMediaJob(
        self,
        request: service_pb2.WaitMediaJobRequest,
        context: grpc.aio.ServicerContext[
            service_pb2.WaitMediaJobRequest, service_pb2.WaitMediaJobResponse
        ],
    ) -> service_pb2.WaitMediaJobResponse:
        target, job_id, timeout = validation.validate_wait(request, self._settings)
        budget = self._wait_budget(timeout, context)
        latest: media_pb2.JobsDetail | None = None
        async with self._tracker.watch(target, job_id, self._client_identity(context)) as watch:
            try:
                async with asyncio.timeout(budget):
                    async for detail in watch.updates():
                        show_job_tag(detail.tag, JobNotFound(job_id))
                        latest = detail
            except TimeoutError:
                if latest is None:
                    raise DeadlineExceeded("CI's answer for the job did not come in time") from None
        assert latest is not None  # updates() ends only after yielding a final state
        return service_pb2.WaitMediaJobResponse(jobs_detail=latest)

    def _wait_budget(
        self,
        timeout: float | None,
        context: grpc.aio.ServicerContext[
            service_pb2.WaitMediaJobRequest, service_pb2.WaitMediaJobResponse
        ],
    ) -> float:
        """AIP-151: wait at most `timeout` (the request's, validated), and answer before the
        caller's deadline."""
        budget = self._settings.timeouts.rpc_deadline_s
        remaining = context.time_remaining()
        if remaining is not None:
            margin = min(remaining * WAIT_MARGIN_FRACTION, WAIT_MARGIN_MAX_S)
            budget = min(budget, remaining - margin)
        if timeout is not None:
            budget = min(budget, timeout)
        return max(budget, 0.0)


def hide_unseen_jobs(
    answer: service_pb2.DescribeMediaJobsResponse, job_ids: Sequence[str], client: ClientPolicy
) -> None:
    """Answer as CI would if the jobs whose tag `client` may not see did not exist: they leave
    `jobs_detail` (their raw XML with them) for `non_exist_job_ids`, which then lists the
    missing ids in the request's order, so neither its content nor its order tells a hidden
    job from an unknown one."""
    missing = set(answer.non_exist_job_ids)
    details = answer.jobs_detail
    for index in reversed(range(len(details))):
        if not client.sees_tag(details[index].tag):
            missing.add(details[index].job_id)
            del details[index]
    asked = set(job_ids)
    ordered = [job_id for job_id in job_ids if job_id in missing]
    ordered += [job_id for job_id in answer.non_exist_job_ids if job_id not in asked]
    del answer.non_exist_job_ids[:]
    answer.non_exist_job_ids.extend(ordered)


def default_client_identity(context: grpc.aio.ServicerContext[Any, Any]) -> str:
    """Who counts against the per-client watcher cap: the authenticated client (shared mode,
    `gateway.access.interceptor`), else the gRPC peer's address without its port (`ipv4:10.0.0.7`):
    behind one NAT or node address, callers share it, which errs on the safe side of a cap."""
    client = current_client()
    if client is not None:
        return f"client:{client.name}"
    return f"peer:{peer_address(context.peer())}"
