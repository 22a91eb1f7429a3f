"""The 1,000-submits-under-faults harness that the exactly-once tests of both submit forms run.

Each request is sent once while the emulator's seeded `FaultPlan` fails 20% of CI's answers
(the kinds that lose a created job's answer included), then each failed one again with the
faults cleared, then a sample of those that succeeded at first. What a form's test checks after
that (how many jobs CI holds, one per what) is its own.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterable
from typing import TypeVar

import grpc

from ci_emulator.faults import FaultSpec
from ci_emulator.server import RunningEmulator

FAULTS = FaultSpec(
    error_500=0.05,
    error_503=0.04,
    slowdown_429=0.04,
    reset_before=0.03,
    commit_then_drop=0.04,
)
FAULT_KINDS = ("error_500", "error_503", "slowdown_429", "reset_before", "commit_then_drop")
CONCURRENCY = 50
REPEATED = 100

Result = TypeVar("Result")


async def submit_under_faults(
    emulator: RunningEmulator,
    seed: int,
    request_ids: Iterable[str],
    submit: Callable[[str], Awaitable[Result]],
) -> dict[str, Result]:
    """Every request's result (its job, or its jobs), once the checks every form shares hold:
    every fault kind happened, a call failed only as retryable, a retry with the same
    request_id resolved every failed call, and a repeat of a call that succeeded the first time
    answered the same. `submit` makes one call (30 s) and checks its answer."""
    emulator.state.pause_scheduling()  # jobs are only created; probing is not under test
    emulator.state.faults.reseed(seed)
    emulator.state.faults.set("*", FAULTS)
    gate = asyncio.Semaphore(CONCURRENCY)

    async def call(request_id: str) -> Result | grpc.StatusCode:
        async with gate:
            try:
                return await submit(request_id)
            except grpc.aio.AioRpcError as error:
                return error.code()

    requests = list(request_ids)
    first = dict(zip(requests, await asyncio.gather(*map(call, requests)), strict=True))
    failed = [rid for rid, result in first.items() if isinstance(result, grpc.StatusCode)]
    # Every fault kind really happened, including the ones that lose created jobs' answer.
    injected = emulator.state.faults.injected
    for kind in FAULT_KINDS:
        assert injected[f"CreateMediaJobs:{kind}"] > 0, kind
    assert {first[rid] for rid in failed} <= {
        grpc.StatusCode.UNAVAILABLE,
        grpc.StatusCode.RESOURCE_EXHAUSTED,
    }

    # A retry with the same request_id resolves every failed call.
    emulator.state.faults.clear()
    resolved = dict(zip(failed, await asyncio.gather(*map(call, failed)), strict=True))
    results: dict[str, Result] = {}
    for rid, result in {**first, **resolved}.items():
        assert not isinstance(result, grpc.StatusCode), resolved
        results[rid] = result

    # A repeat of a call that succeeded the first time returns the same.
    sample = [rid for rid in requests if rid not in resolved][:REPEATED]
    again = await asyncio.gather(*map(call, sample))
    assert again == [results[rid] for rid in sample]
    return results
