"""DescribeMediaJobs for more ids than one CI request carries: batches, sent together, merged.

CI describes several jobs in one `GET /jobs/<id1>,<id2>,...` (notes §5.1) and documents no
maximum. UNCONFIRMED, so the tolerant reading: one request carries at most
`MAX_DESCRIBE_JOB_IDS` (10, `gateway.model`) ids rather than a guess at CI's bound, and an RPC
naming more is split into such batches rather than refused. The RPC itself names at
most `MAX_JOB_IDS_PER_RPC` ids, so one call cannot fan out without limit.

::

    describe_jobs(client, target, ids, deadline)
        -> batches of <= MAX_DESCRIBE_JOB_IDS ids, at most MAX_BATCHES_IN_FLIGHT at once,
           each one CiClient.describe_jobs (its own retries) under the call's one Deadline
        <- one answer: JobsDetail in the order asked, NonExistJobIds likewise

All or nothing: the first batch that fails (after its own retries) fails the call with its error,
and the batches still out (or waiting for a place) are cancelled; a partial answer would look
whole to the caller. The error's `attempts` counts that batch's and those of the batches already
answered; the access log counts every attempt made (`RpcScope.attempts`), the cancelled ones'
too.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import TypeVar

from gateway._proto import service_pb2
from gateway.errors import GatewayError
from gateway.model import MAX_DESCRIBE_JOB_IDS, Target
from gateway.upstream.client import Attempts, CiClient, Reply
from gateway.upstream.retry import Deadline

MAX_JOB_IDS_PER_RPC = 100
"""The most ids one DescribeMediaJobs may name (before repeats are dropped): ten CI requests."""
MAX_BATCHES_IN_FLIGHT = 4
"""CI requests one call has out at once: a 100-id call takes three rounds rather than holding
ten of the client's places towards CI (`CiClient` sheds beyond its bound)."""

Answer = service_pb2.DescribeMediaJobsResponse
T = TypeVar("T")


def batches(jobs: Sequence[T], size: int = MAX_DESCRIBE_JOB_IDS) -> list[Sequence[T]]:
    """`jobs` (ids, or the tracker's jobs) in consecutive runs of at most `size`, in order: one
    CI request each."""
    return [jobs[start : start + size] for start in range(0, len(jobs), size)]


async def describe_jobs(
    client: CiClient,
    target: Target,
    job_ids: Sequence[str],
    deadline: Deadline,
    *,
    keep_raw: bool = False,
) -> Reply[Answer]:
    """Every job of `job_ids` (distinct ids, as validation leaves them) described, in batches
    when one CI request cannot carry them all. A single batch is CI's answer unchanged."""
    if len(job_ids) <= MAX_DESCRIBE_JOB_IDS:  # almost every call: no batches to make
        return await client.describe_jobs(target, job_ids, deadline, keep_raw=keep_raw)
    runs = batches(job_ids)
    places = asyncio.Semaphore(MAX_BATCHES_IN_FLIGHT)
    attempts = Attempts()

    async def one(run: Sequence[str]) -> Reply[Answer]:
        async with places:
            return await attempts.counted(
                client.describe_jobs(target, run, deadline, keep_raw=keep_raw)
            )

    tasks = [asyncio.create_task(one(run)) for run in runs]
    try:
        replies = await _all_or_first_error(tasks)
    except GatewayError as error:
        attempts.report(error)
        raise
    return Reply(merge(job_ids, replies), _request_ids(replies), attempts.count)


async def _all_or_first_error(tasks: Sequence[asyncio.Task[Reply[Answer]]]) -> list[Reply[Answer]]:
    """Each task's reply in order; on the first failure (or a cancellation of the caller) the
    others are cancelled and awaited, and the failure is raised. Not `gather`, which leaves the
    rest running, nor a TaskGroup, which wraps the error in an ExceptionGroup."""
    try:
        pending = set(tasks)
        while pending:
            done, pending = await asyncio.wait(pending, return_when=asyncio.FIRST_EXCEPTION)
            # Of the batches failed by now, the earliest asked: not whichever the loop saw first.
            for task in tasks:
                if task in done and not task.cancelled() and task.exception() is not None:
                    task.result()  # raises it
        return [task.result() for task in tasks]
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


def merge(job_ids: Sequence[str], replies: Sequence[Reply[Answer]]) -> Answer:
    """The batches' answers as one: JobsDetail and NonExistJobIds each in the order asked (an id
    CI answered that was not asked for comes last, as it came). The batches share no id, so each
    job appears once, as it would in one request."""
    order = {job_id: position for position, job_id in enumerate(job_ids)}

    def asked(job_id: str) -> int:
        return order.get(job_id, len(order))

    merged = Answer()
    details = [detail for reply in replies for detail in reply.message.jobs_detail]
    merged.jobs_detail.extend(sorted(details, key=lambda detail: asked(detail.job_id)))
    missing = [job_id for reply in replies for job_id in reply.message.non_exist_job_ids]
    merged.non_exist_job_ids.extend(sorted(missing, key=asked))
    for reply in replies:
        merged.extra_nodes.extend(reply.message.extra_nodes)
    return merged


def _request_ids(replies: Sequence[Reply[Answer]]) -> str:
    """CI's RequestId of every batch, comma-joined in batch order (HTTP's form of a repeated
    header value): what Tencent support asks for, for each request the call made."""
    return ",".join(reply.request_id for reply in replies if reply.request_id)
