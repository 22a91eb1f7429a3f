"""The request_id store lost its records (the gateway restarted with the embedded store, Redis
restarted empty or evicted keys): a repeat of an earlier request_id must still find its job.

Every job carries the marker derived from its request_id in CI, so on a store miss for a
caller's request_id the gateway lists that tag and input object over the store's 24 h and
adopts the marked job before it would POST. Jobs are spread over few input objects, so each
listing returns several jobs and the marker, not the filter, picks the right one.
"""

from __future__ import annotations

import time
from dataclasses import replace

import redis.asyncio as aioredis
from aiohttp import web

from ci_emulator.hosts import Target
from ci_emulator.server import RunningEmulator
from ci_emulator.timefmt import parse_ci_time
from gateway.config.settings import Settings, Shared
from gateway.credentials import Credentials
from gateway.jobs.submit import RECOVERY_LOOKBACK_S
from tests.jobs.helpers import gateway, submit

JOBS = 20
KEYS = 5  # 4 jobs per input object


def request_ids() -> list[str]:
    return [f"order-{i:02d}" for i in range(JOBS)]


def key_of(request_id: str) -> str:
    return f"input/clip-{int(request_id[-2:]) % KEYS}.mp4"


async def submit_all(stub: object) -> list[str]:
    return [
        (await submit(stub, key_of(rid), request_id=rid)).job_id  # type: ignore[arg-type]
        for rid in request_ids()
    ]


async def test_a_restarted_gateway_returns_the_jobs_of_earlier_request_ids(
    settings: Settings, credentials: Credentials, emulator: RunningEmulator
) -> None:
    emulator.state.pause_scheduling()
    async with gateway(settings, credentials) as first:
        before = await submit_all(first.stub)
    async with gateway(settings, credentials) as restarted:  # an empty embedded store
        after = await submit_all(restarted.stub)
    assert after == before
    assert len(set(before)) == JOBS
    assert emulator.state.jobs_created == JOBS  # no new job


async def test_a_flushed_redis_store_still_returns_the_jobs_of_earlier_request_ids(
    settings: Settings,
    credentials: Credentials,
    emulator: RunningEmulator,
    redis_url: str,
    redis_client: aioredis.Redis,
) -> None:
    emulator.state.pause_scheduling()
    shared = replace(settings, shared=Shared(redis_url=redis_url, submit_store="redis"))
    async with gateway(shared, credentials) as running:
        before = await submit_all(running.stub)
        await redis_client.flushdb()  # Redis restarted empty, or evicted every record
        after = await submit_all(running.stub)
    assert after == before
    assert emulator.state.jobs_created == JOBS


async def test_only_a_callers_request_id_costs_a_look_and_it_spans_the_stores_24_hours(
    settings: Settings, credentials: Credentials, emulator: RunningEmulator
) -> None:
    """A gateway-made request_id cannot have been used before: no look. A caller's may have
    been, within the store's 24 h: one listing before the POST, back that far."""
    emulator.state.pause_scheduling()
    since: list[str] = []

    async def record(request: web.Request, target: Target) -> web.StreamResponse | None:
        if request.method == "GET" and request.path == "/jobs":
            since.append(request.query["startCreationTime"])
        return None

    emulator.state.request_hooks.append(record)
    async with gateway(settings, credentials) as running:
        await submit(running.stub)
        assert since == []
        asked_at = time.time()
        await submit(running.stub, request_id="a-callers-id")
    (start,) = since
    assert abs(parse_ci_time(start) - (asked_at - RECOVERY_LOOKBACK_S)) < 5
    assert RECOVERY_LOOKBACK_S >= 24 * 3600
    assert emulator.state.jobs_created == 2
