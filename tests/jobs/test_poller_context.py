"""The poller runs for every watcher, so it must not run as part of the RPC that started it."""

from __future__ import annotations

from collections.abc import Sequence

from gateway import rpc_context
from gateway._proto import media_pb2, service_pb2
from gateway.jobs.tracking import JobTracker
from gateway.model import Target
from gateway.rpc_context import RpcScope
from gateway.upstream.client import Reply
from gateway.upstream.retry import Deadline
from tests.jobs.helpers import ManualTimer

TARGET = Target("b-1250000000", "ap-guangzhou")


class Describer:
    """Answers every describe with the jobs finished, noting whose RPC scope it ran in."""

    def __init__(self) -> None:
        self.scopes: list[RpcScope | None] = []

    async def describe_jobs(
        self, target: Target, job_ids: Sequence[str], deadline: Deadline
    ) -> Reply[service_pb2.DescribeMediaJobsResponse]:
        self.scopes.append(rpc_context.current())
        done = [
            media_pb2.JobsDetail(job_id=job_id, state=media_pb2.JOB_STATE_SUCCESS)
            for job_id in job_ids
        ]
        return Reply(service_pb2.DescribeMediaJobsResponse(jobs_detail=done), "")


async def test_polls_run_outside_the_scope_of_the_rpc_that_started_the_poller() -> None:
    describer = Describer()
    timer = ManualTimer()
    tracker = JobTracker(describer, timer=timer)
    scope = RpcScope("/ci.media.v1.MediaJobService/WatchMediaJob", "watch-1")
    token = rpc_context.enter(scope)
    try:
        async with tracker.watch(TARGET, "j1", "peer:a") as subscription:
            timer.advance(1.0)
            async for detail in subscription.updates():
                assert detail.state == media_pb2.JOB_STATE_SUCCESS
    finally:
        rpc_context.leave(token)
        await tracker.close()
    # Before the fix the task copied the watcher's context: the poll ran in scope "watch-1",
    # and the CI client's telemetry counted it among that RPC's attempts.
    assert describer.scopes == [None]
