"""Many watchers, few requests: 200 watchers on 50 jobs share 50 trackers and batched polls.

The tracker runs on a manual clock, so each poll round happens exactly when the test advances
time, and the number of `GET /jobs/<ids>` the emulator received is asserted exactly.
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import replace
from typing import TYPE_CHECKING

import grpc

from ci_emulator.server import RunningEmulator
from gateway._proto import media_pb2, service_pb2_grpc
from gateway.api.service import MediaJobService
from gateway.config.settings import Settings, Tracking
from gateway.credentials import Credentials
from gateway.jobs.runtime import start_tracking
from gateway.jobs.tracking import JobTracker
from gateway.model import MAX_DESCRIBE_JOB_IDS
from tests.conftest import ci_client
from tests.jobs.helpers import ManualTimer, assert_ended, next_detail, submit, watch

if TYPE_CHECKING:
    from gateway._proto.service_pb2_grpc import MediaJobServiceAsyncStub as Stub

M = media_pb2
JOBS = 50
WATCHERS_PER_JOB = 4
CHANNELS = 4  # 50 watchers per connection: within the per-client cap of 100
INITIAL_S = 0.5


@asynccontextmanager
async def manual_gateway(
    settings: Settings, credentials: Credentials, timer: ManualTimer
) -> AsyncIterator[tuple[str, JobTracker]]:
    """A gateway as `start_gateway` assembles it, but with the tracker on `timer`."""
    client = ci_client(settings, credentials)
    tracking = await start_tracking(settings, client, timer=timer)
    server = grpc.aio.server()
    service_pb2_grpc.add_MediaJobServiceServicer_to_server(
        MediaJobService(client, settings, tracker=tracking.tracker), server
    )
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    try:
        yield f"127.0.0.1:{port}", tracking.tracker
    finally:
        await tracking.drain()
        await server.stop(0)
        await tracking.close()
        await client.close()


async def test_200_watchers_on_50_jobs_cost_one_batched_request_per_10_jobs_per_round(
    settings: Settings, credentials: Credentials, emulator: RunningEmulator
) -> None:
    state = emulator.state
    timer = ManualTimer()
    # One caller (all on loopback) with 200 watchers: its own cap raised to hold them.
    tracked = replace(
        settings,
        tracking=Tracking(
            poll_initial_s=INITIAL_S,
            poll_max_s=4.0,
            max_watchers_per_client=JOBS * WATCHERS_PER_JOB,
        ),
    )
    batches_per_round = math.ceil(JOBS / MAX_DESCRIBE_JOB_IDS)
    async with AsyncExitStack() as stack:
        address, tracker = await stack.enter_async_context(
            manual_gateway(tracked, credentials, timer)
        )
        stubs: list[Stub] = []
        for _ in range(CHANNELS):
            # Own connections: HTTP/2 allows 100 streams on one.
            channel = await stack.enter_async_context(
                grpc.aio.insecure_channel(address, options=[("grpc.use_local_subchannel_pool", 1)])
            )
            stubs.append(service_pb2_grpc.MediaJobServiceStub(channel))

        state.pause_scheduling()
        jobs = [await submit(stubs[0]) for _ in range(JOBS)]
        calls = [
            watch(stubs[w % CHANNELS], job.job_id, timeout=60)
            for job in jobs
            for w in range(WATCHERS_PER_JOB)
        ]
        await tracker.wait_for(lambda s: s.watchers == len(calls) and s.jobs == JOBS)
        before = state.operations["DescribeMediaJob"]

        # Round 1: the first look at every job (after the 20 ms linger).
        timer.advance(tracker.schedule.linger_s)
        firsts = await asyncio.gather(*(next_detail(call) for call in calls))
        assert {d.state for d in firsts} == {M.JOB_STATE_SUBMITTED}
        assert state.operations["DescribeMediaJob"] - before == batches_per_round

        # Nothing is due before the next interval: advancing less sends nothing.
        timer.advance(INITIAL_S / 2)
        state.resume_scheduling()
        await asyncio.gather(
            *(state.wait_for_job_state(job.job_id, {"Success"}, timeout=40) for job in jobs)
        )
        assert state.operations["DescribeMediaJob"] - before == batches_per_round

        # Round 2: every job has ended; one look each, batched again, ends every stream.
        timer.advance(INITIAL_S / 2)
        finals = await asyncio.gather(*(next_detail(call) for call in calls))
        assert {d.state for d in finals} == {M.JOB_STATE_SUCCESS}
        assert all(d.operation.media_info.format.num_stream == "2" for d in finals)
        await asyncio.gather(*(assert_ended(call) for call in calls))
        assert state.operations["DescribeMediaJob"] - before == 2 * batches_per_round
        await tracker.wait_for(lambda s: s.jobs == 0 and s.watchers == 0 and s.pollers == 0)
