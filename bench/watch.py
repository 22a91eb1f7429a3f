"""Item 5 of issue 8: what 1,000 watched jobs cost upstream, and how soon watchers hear the end.

1. The emulator's scheduler is paused, so `jobs` submitted jobs stay `Submitted`; one
   WatchMediaJob stream per job is opened through the gateway, spread over enough channels that
   no client exceeds the gateway's per-client watcher cap (each channel gets its own connection,
   and the gateway tells clients apart by peer).
2. Once every stream has its first answer, the emulator's DescribeMediaJob count is read every
   `window_s` for `windows` windows: upstream describe requests per second (each may carry up to
   10 ids) while nothing changes, as the per-job poll interval backs off.
3. The scheduler is resumed (jobs finish at once: cached probe) and the time from then until each
   stream receives the final state is recorded (no callbacks configured: polling alone).

Everything is bounded: stream set-up, each window, and the wait for the final states.
"""

from __future__ import annotations

import asyncio
import math
import time
from typing import Any

import grpc

from bench.clients import GatewayClient
from bench.common import percentile, rss_mb
from bench.faults import _admin
from bench.procs import Servers
from gateway._proto import media_pb2, service_pb2, service_pb2_grpc

WATCHERS_PER_CHANNEL = 50
FINAL = {media_pb2.JOB_STATE_SUCCESS, media_pb2.JOB_STATE_FAILED, media_pb2.JOB_STATE_CANCEL}


async def run_watch(
    servers: Servers, *, jobs: int, window_s: float, windows: int, final_timeout_s: float
) -> dict[str, Any]:
    await _admin(servers, "POST", "/_emulator/scheduling/pause")
    gateway = GatewayClient(servers.gateway_address)
    try:
        job_ids = [await gateway.submit() for _ in range(jobs)]
    finally:
        await gateway.close()
    channels = [
        grpc.aio.insecure_channel(
            servers.gateway_address, options=[("grpc.use_local_subchannel_pool", 1)]
        )
        for _ in range(math.ceil(jobs / WATCHERS_PER_CHANNEL))
    ]
    first_seen = asyncio.Event()
    seen_first = 0
    resumed_at = math.inf
    final_after: list[float] = []
    failures: list[str] = []

    async def watch(channel: grpc.aio.Channel, job_id: str) -> None:
        nonlocal seen_first
        stub = service_pb2_grpc.MediaJobServiceStub(channel)
        stream = stub.WatchMediaJob(service_pb2.WatchMediaJobRequest(job_id=job_id))
        first = True
        try:
            async for reply in stream:
                if first:
                    first = False
                    seen_first += 1
                    if seen_first == jobs:
                        first_seen.set()
                if reply.jobs_detail.state in FINAL:
                    final_after.append(time.monotonic() - resumed_at)
                    return
        except grpc.aio.AioRpcError as error:
            failures.append(f"{error.code().name}: {error.details()}"[:200])
            if first:
                seen_first += 1
                if seen_first == jobs:
                    first_seen.set()

    pid = servers.gateway.pid
    rest_mb = rss_mb(pid)
    tasks = [
        asyncio.create_task(watch(channels[i // WATCHERS_PER_CHANNEL], job_id))
        for i, job_id in enumerate(job_ids)
    ]
    try:
        await asyncio.wait_for(first_seen.wait(), timeout=60)
        watching_mb = rss_mb(pid)
        rates = []
        for _ in range(windows):  # bounded: `windows` windows of `window_s`
            before = await _admin(servers, "GET", "/_emulator/counters")
            started = time.monotonic()
            await asyncio.sleep(window_s)
            after = await _admin(servers, "GET", "/_emulator/counters")
            elapsed = time.monotonic() - started
            count = after["operations"].get("DescribeMediaJob", 0) - before["operations"].get(
                "DescribeMediaJob", 0
            )
            rates.append(round(count / elapsed, 1))
        resumed_at = time.monotonic()
        await _admin(servers, "POST", "/_emulator/scheduling/resume")
        await asyncio.wait(tasks, timeout=final_timeout_s)
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        for channel in channels:
            await channel.close(None)
    final_after.sort()
    return {
        "jobs": jobs,
        "channels": len(channels),
        "rss_rest_mb": rest_mb,
        "rss_watching_mb": watching_mb,
        "window_s": window_s,
        "describes_per_s": rates,
        "naive_polling_per_s_at_1s": jobs,
        "final_received": len(final_after),
        "final_p50_s": percentile(final_after, 0.5),
        "final_p99_s": percentile(final_after, 0.99),
        "final_max_s": final_after[-1] if final_after else math.nan,
        "failures": len(failures),
        "first_failure": failures[0] if failures else None,
    }
