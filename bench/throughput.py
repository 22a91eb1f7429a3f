"""Items 1 and 2 of issue 8: submit, describe and list, through the gateway vs direct vs SDK.

Each cell (client x operation x concurrency) is repeated `reps` times, and the repetitions are
interleaved (rep 1 of every cell, then rep 2, ...) so a slow drift of the machine spreads over
all cells instead of biasing whichever ran last. Every run records the CPU time the gateway,
the emulator and the load generator spent per call, which does not depend on how the CPUs are
shared and shows where the time goes.
"""

from __future__ import annotations

import asyncio
import os
import random
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any

import aiohttp

from bench.clients import DirectClient, GatewayClient, SdkClient
from bench.common import RunStats, Summary
from bench.loadgen import closed_loop_async, closed_loop_threads
from bench.procs import Servers

CLIENTS = ("gateway", "direct", "sdk")
SEED_JOBS = 50
SEED_TIMEOUT_S = 30.0


@dataclass(frozen=True)
class LoadPlan:
    concurrencies: Sequence[int]
    reps: int
    duration_s: float
    warmup_s: float
    clients: Sequence[str] = CLIENTS


Cell = tuple[str, str, int]  # (operation, client, concurrency)


class _Cells:
    def __init__(self) -> None:
        self.runs: dict[Cell, list[RunStats]] = {}
        self.first_error: dict[Cell, str] = {}

    def add(self, cell: Cell, stats: RunStats, error: str | None) -> None:
        self.runs.setdefault(cell, []).append(stats)
        if error and cell not in self.first_error:
            self.first_error[cell] = error

    def summaries(self) -> dict[Cell, Summary]:
        return {
            cell: Summary.of(runs, self.first_error.get(cell)) for cell, runs in self.runs.items()
        }


async def _emulator_counters(servers: Servers) -> dict[str, Any]:
    async with (
        aiohttp.ClientSession() as session,
        session.get(servers.emulator_url + "/_emulator/counters") as response,
    ):
        response.raise_for_status()
        return dict(await response.json())


async def seed_jobs(servers: Servers, count: int = SEED_JOBS) -> list[str]:
    """Submit `count` jobs through the gateway and wait (bounded) until they all succeeded."""
    gateway = GatewayClient(servers.gateway_address)
    try:
        ids = [await gateway.submit() for _ in range(count)]
    finally:
        await gateway.close()
    deadline = time.monotonic() + SEED_TIMEOUT_S
    while time.monotonic() < deadline:
        states = (await _emulator_counters(servers)).get("jobs_by_state", {})
        if states.get("Success", 0) >= count:
            return ids
        await asyncio.sleep(0.1)
    raise RuntimeError(f"seeded jobs did not all succeed within {SEED_TIMEOUT_S} s: {states}")


async def capture_bodies(emulator_url: str, job_id: str) -> dict[str, bytes]:
    """CI's answers to a submit, a describe of `job_id` and a list of 10, as the direct client
    gets them (for the codec figures and the gRPC floor's canned answers)."""
    from bench.clients import LIST_PARAMS, SUBMIT_BODY

    direct = DirectClient(emulator_url)
    try:
        return {
            "submit": await direct._call("POST", "/jobs", {}, SUBMIT_BODY),
            "describe": await direct._call("GET", f"/jobs/{job_id}", {}, None),
            "list": await direct._call("GET", "/jobs", LIST_PARAMS, None),
        }
    finally:
        await direct.close()


async def run_load(
    servers: Servers, plan: LoadPlan, operations: Sequence[str], job_ids: Sequence[str] = ()
) -> dict[Cell, Summary]:
    """Run every (operation, client, concurrency) cell `plan.reps` times, interleaved."""
    pids = {
        "gateway": servers.gateway.pid,
        "emulator": servers.emulator.pid,
        "loadgen": os.getpid(),
    }
    rng = random.Random(8)
    cells = _Cells()
    gateway = GatewayClient(servers.gateway_address)
    direct = DirectClient(servers.emulator_url)
    sdk_clients: dict[int, SdkClient] = {}
    try:
        async_calls: dict[tuple[str, str], Callable[[], Awaitable[object]]] = {
            ("submit", "gateway"): gateway.submit,
            ("submit", "direct"): direct.submit,
            ("describe", "gateway"): lambda: gateway.describe(rng.choice(job_ids)),
            ("describe", "direct"): lambda: direct.describe(rng.choice(job_ids)),
            ("list", "gateway"): gateway.list,
            ("list", "direct"): direct.list,
        }
        for _ in range(plan.reps):
            for concurrency in plan.concurrencies:
                for operation in operations:
                    for client in plan.clients:
                        cell = (operation, client, concurrency)
                        if client == "sdk":
                            sdk = sdk_clients.get(concurrency)
                            if sdk is None:
                                sdk = sdk_clients[concurrency] = SdkClient(
                                    servers.emulator_url, concurrency
                                )
                            sdk_call = _sdk_call(sdk, operation, job_ids, rng)
                            stats, error = await asyncio.to_thread(
                                closed_loop_threads,
                                sdk_call,
                                concurrency=concurrency,
                                duration_s=plan.duration_s,
                                warmup_s=plan.warmup_s,
                                cpu_pids=pids,
                            )
                        else:
                            stats, error = await closed_loop_async(
                                async_calls[(operation, client)],
                                concurrency=concurrency,
                                duration_s=plan.duration_s,
                                warmup_s=plan.warmup_s,
                                cpu_pids=pids,
                            )
                        cells.add(cell, stats, error)
    finally:
        await gateway.close()
        await direct.close()
        for sdk in sdk_clients.values():
            sdk.close()
    return cells.summaries()


def _sdk_call(
    sdk: SdkClient, operation: str, job_ids: Sequence[str], rng: random.Random
) -> Callable[[], object]:
    if operation == "submit":
        return sdk.submit
    if operation == "describe":
        return lambda: sdk.describe(rng.choice(job_ids))
    return sdk.list
