"""A poller that stops on a bug of the gateway's (not a CI error: those are mapped) must tell
its watchers at once, INTERNAL, rather than leave them waiting for their deadlines. CI cannot
cause such a bug, so the describer here raises what no CI answer can: a plain exception."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence

import pytest

from gateway._proto import service_pb2, workflows_pb2
from gateway.errors import TrackerFailed
from gateway.jobs.tracking import JobTracker
from gateway.model import Target
from gateway.resources.executions import ExecutionFollower
from gateway.upstream.client import Reply
from gateway.upstream.retry import Deadline

TARGET = Target("b-1250000000", "ap-guangzhou")
WAIT_S = 5.0  # bounds each wait; the failure is expected within one loop turn or two


class Broken:
    """A CI client whose every describe fails the way only a bug of ours could."""

    def __init__(self) -> None:
        self.calls = 0

    async def describe_jobs(
        self, target: Target, job_ids: Sequence[str], deadline: Deadline
    ) -> Reply[service_pb2.DescribeMediaJobsResponse]:
        self.calls += 1
        raise RuntimeError("a bug in the gateway")

    async def describe_execution(
        self, target: Target, run_id: str, deadline: Deadline
    ) -> Reply[workflows_pb2.DescribeWorkflowExecutionResponse]:
        self.calls += 1
        raise RuntimeError("a bug in the gateway")


async def test_a_crashed_job_poller_ends_its_watches_with_internal(
    caplog: pytest.LogCaptureFixture,
) -> None:
    broken = Broken()
    tracker = JobTracker(broken)  # its own clock: the first look comes after `linger_s`
    try:
        async with tracker.watch(TARGET, "j1", "peer:a") as subscription:
            with pytest.raises(TrackerFailed):
                async with asyncio.timeout(WAIT_S):
                    async for _ in subscription.updates():
                        pass
    finally:
        await tracker.close()
    assert broken.calls == 1
    assert "crashed" in caplog.text


async def test_a_crashed_run_poller_ends_its_watches_with_internal(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.ERROR)
    broken = Broken()
    follower = ExecutionFollower(broken)
    try:
        async with follower.watch(TARGET, "i1", "peer:a") as updates:
            with pytest.raises(TrackerFailed):  # was: waiting until the caller's deadline
                async with asyncio.timeout(WAIT_S):
                    async for _ in updates:
                        pass
    finally:
        await follower.close()
    assert broken.calls == 1
    assert "poller of workflow run i1 crashed" in caplog.text
