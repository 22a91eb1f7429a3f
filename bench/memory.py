"""Item 4 of issue 8: the gateway's resident memory at rest, at 1,000 in flight, over many calls.

* At 1,000 in flight: the emulator holds every request `delay_s` (a request hook, see
  `bench.serve`), 1,000 submits are started at once with a deadline shorter than the delay, and
  the gateway's RSS is sampled while they wait; all of them then end with DEADLINE_EXCEEDED (or
  are shed if the gateway bounds its RPCs in flight). The peak is reported, and the RSS once
  they are gone.
* Over many calls: a closed loop of submits at concurrency 64, bounded by `max_calls` and
  `max_s`; RSS is read before, after a warm-up and every few seconds, and the growth reported
  against the warmed-up figure (pools, caches and allocator arenas fill on first use) and
  against the figure at rest.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from typing import Any

import grpc

from bench.clients import GatewayClient
from bench.common import rss_mb
from bench.loadgen import closed_loop_async
from bench.procs import Servers

IN_FLIGHT = 1000
SAMPLE_EVERY_S = 0.25


async def in_flight(
    servers: Servers, *, calls: int = IN_FLIGHT, deadline_s: float
) -> dict[str, Any]:
    pid = servers.gateway.pid
    await asyncio.sleep(1.0)
    rest = rss_mb(pid)
    client = GatewayClient(servers.gateway_address)
    outcomes: Counter[str] = Counter()

    async def one() -> None:
        try:
            await client.submit(timeout_s=deadline_s)
            outcomes["OK"] += 1
        except grpc.aio.AioRpcError as error:
            outcomes[error.code().name] += 1

    try:
        tasks = [asyncio.create_task(one()) for _ in range(calls)]
        samples: list[tuple[float, float]] = []
        started = time.monotonic()
        # Bounded: one sample per period until the deadline (plus a second) has passed.
        while time.monotonic() - started < deadline_s + 1.0 and not all(t.done() for t in tasks):
            samples.append((round(time.monotonic() - started, 2), rss_mb(pid)))
            await asyncio.sleep(SAMPLE_EVERY_S)
        await asyncio.wait_for(asyncio.gather(*tasks), timeout=30)
        await asyncio.sleep(1.0)
        after = rss_mb(pid)
    finally:
        await client.close()
    return {
        "calls": calls,
        "deadline_s": deadline_s,
        "rest_mb": rest,
        "peak_mb": max(rss for _, rss in samples),
        "after_mb": after,
        "outcomes": dict(outcomes),
        "samples": samples,
    }


async def many_calls(
    servers: Servers, *, warmup_calls: int, max_calls: int, max_s: float, concurrency: int = 64
) -> dict[str, Any]:
    pid = servers.gateway.pid
    await asyncio.sleep(1.0)
    rest = rss_mb(pid)
    client = GatewayClient(servers.gateway_address)
    try:
        warm, _ = await closed_loop_async(
            client.submit, concurrency=concurrency, duration_s=max_s, warmup_s=0.0,
            max_calls=warmup_calls,
        )  # fmt: skip
        warmed = rss_mb(pid)
        samples: list[tuple[float, float]] = [(0.0, warmed)]
        started = time.monotonic()

        async def sample() -> None:
            while True:  # cancelled when the loop ends; one sample per 5 s
                await asyncio.sleep(5.0)
                samples.append((round(time.monotonic() - started, 1), rss_mb(pid)))

        sampler = asyncio.create_task(sample())
        try:
            run, error = await closed_loop_async(
                client.submit, concurrency=concurrency, duration_s=max_s, warmup_s=0.0,
                max_calls=max_calls,
            )  # fmt: skip
        finally:
            sampler.cancel()
        await asyncio.sleep(1.0)
        after = rss_mb(pid)
    finally:
        await client.close()
    return {
        "rest_mb": rest,
        "warmup_calls": warm.calls,
        "warmed_mb": warmed,
        "calls": run.calls,
        "errors": run.errors,
        "first_error": error,
        "seconds": round(time.monotonic() - started, 1),
        "after_mb": after,
        "growth_vs_warmed_pct": (after - warmed) / warmed * 100,
        "growth_vs_rest_pct": (after - rest) / rest * 100,
        "bytes_per_call": (after - warmed) * 1024 * 1024 / max(1, run.calls),
        "samples": samples,
    }
