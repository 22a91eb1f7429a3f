"""Item 6 of issue 8: submits while the emulator injects faults into 20% of CreateMediaJobs.

The emulator's seeded `FaultPlan` (admin `PUT /_emulator/faults`) turns 20% of the submits that
pass the signature check into one of CI's failure modes: 500, 503, 429 SlowDown, a TCP reset
before processing, or "commit then drop" (the job is created, the answer never sent). The same
closed loop then runs through:

* (a) the gateway: retries what is safe to retry, reconciles ambiguous submits by listing;
* (b) the direct signed call: no retries at all, so its error rate is the raw fault rate;
* (c) the official SDK with its default `retry=3` (sleeps 1 s, 2 s, 3 s; replays a POST after a
  5xx or a dropped answer, which can create a duplicate job).

From the emulator's counters read before and after each run: upstream attempts per call
(CreateMediaJobs received / calls finished), reconcile lists per call (DescribeMediaJobs), jobs
created per successful call (above 1.0: jobs the caller never heard of, i.e. orphans or
duplicates) and duplicate jobs per 1,000 calls (a second job from one call's body: every call
sends its own UserData, so the emulator's jobs-per-body count finds replays).
"""

from __future__ import annotations

import asyncio
import itertools
import os
from dataclasses import asdict
from typing import Any

import aiohttp

from bench.clients import DirectClient, GatewayClient, SdkClient
from bench.common import OBJECT_KEY, RunStats, Spread
from bench.loadgen import closed_loop_async, closed_loop_threads
from bench.procs import Servers

FAULT_SEED = 8
SUBMIT_FAULTS = {
    "error_500": 0.05,
    "error_503": 0.05,
    "slowdown_429": 0.04,
    "reset_before": 0.03,
    "commit_then_drop": 0.03,
}
"""20% of submits fail, in CI's five ways (the outcomes are exclusive, so the rates add up)."""

ROWS = (
    # (label, client, every call on one "hot" input object)
    ("gateway", "gateway", False),
    ("direct", "direct", False),
    ("sdk", "sdk", False),
    ("gateway, one hot input", "gateway", True),
)
"""Each call submits its own input object (the usual case) except in the last row: there every
job shares one object, so a reconcile (which lists the jobs of the call's input object created
since shortly before its first attempt) pages through every job of the last minutes."""


async def _admin(servers: Servers, method: str, path: str, body: Any = None) -> dict[str, Any]:
    async with (
        aiohttp.ClientSession() as session,
        session.request(method, servers.emulator_url + path, json=body) as response,
    ):
        response.raise_for_status()
        return dict(await response.json())


async def run_faults(
    servers: Servers,
    *,
    concurrency: int,
    reps: int,
    duration_s: float,
) -> dict[str, Any]:
    pids = {
        "gateway": servers.gateway.pid,
        "emulator": servers.emulator.pid,
        "loadgen": os.getpid(),
    }
    await _admin(
        servers, "PUT", "/_emulator/faults",
        {"seed": FAULT_SEED, "faults": {"CreateMediaJobs": SUBMIT_FAULTS}},
    )  # fmt: skip
    gateway = GatewayClient(servers.gateway_address)
    direct = DirectClient(servers.emulator_url)
    sdk = SdkClient(servers.emulator_url, concurrency, retry=3)
    runs: dict[str, list[dict[str, Any]]] = {label: [] for label, _, _ in ROWS}
    numbers = itertools.count()
    try:
        for _ in range(reps):
            for label, client, hot in ROWS:
                before = await _admin(servers, "GET", "/_emulator/counters")
                if client == "sdk":

                    def sdk_submit(hot: bool = hot) -> None:
                        n = next(numbers)
                        sdk.submit(f"bench-{n}", OBJECT_KEY if hot else f"input/bench-{n}.mp4")

                    stats, error = await asyncio.to_thread(
                        closed_loop_threads, sdk_submit, concurrency=concurrency,
                        duration_s=duration_s, warmup_s=0.0, cpu_pids=pids,
                    )  # fmt: skip
                else:

                    async def submit(client: str = client, hot: bool = hot) -> None:
                        n = next(numbers)
                        user_data = f"bench-{n}"
                        key = OBJECT_KEY if hot else f"input/bench-{n}.mp4"
                        if client == "gateway":
                            await gateway.submit(user_data=user_data, object_key=key)
                        else:
                            await direct.submit(user_data=user_data, object_key=key)

                    stats, error = await closed_loop_async(
                        submit, concurrency=concurrency, duration_s=duration_s, warmup_s=0.0,
                        cpu_pids=pids,
                    )  # fmt: skip
                after = await _admin(servers, "GET", "/_emulator/counters")
                runs[label].append(_run_json(stats, error, before, after))
    finally:
        await gateway.close()
        await direct.close()
        sdk.close()
        await _admin(servers, "DELETE", "/_emulator/faults")
    return {
        "faults": SUBMIT_FAULTS,
        "concurrency": concurrency,
        "clients": {client: _summary(client_runs) for client, client_runs in runs.items()},
    }


def _delta(before: dict[str, Any], after: dict[str, Any], *keys: str) -> int:
    def get(counters: dict[str, Any]) -> int:
        value: Any = counters
        for key in keys:
            value = value.get(key, 0) if isinstance(value, dict) else 0
        return int(value)

    return get(after) - get(before)


def _run_json(
    stats: RunStats, error: str | None, before: dict[str, Any], after: dict[str, Any]
) -> dict[str, Any]:
    finished = max(1, stats.finished)
    return {
        **stats.as_dict(),
        "first_error": error,
        "error_rate": (stats.finished - stats.finished_ok) / finished,
        "attempts_per_call": _delta(before, after, "operations", "CreateMediaJobs") / finished,
        "lists_per_call": _delta(before, after, "operations", "DescribeMediaJobs") / finished,
        "jobs_per_success": _delta(before, after, "jobs_created") / max(1, stats.finished_ok),
        "duplicates_per_1000": _delta(before, after, "duplicate_jobs") * 1000 / finished,
    }


def _summary(runs: list[dict[str, Any]]) -> dict[str, Any]:
    keys = (
        "calls_per_s", "p50_ms", "p99_ms", "error_rate", "attempts_per_call", "lists_per_call",
        "duplicates_per_1000",
    )  # fmt: skip
    summary: dict[str, Any] = {key: asdict(Spread.of([run[key] for run in runs])) for key in keys}
    summary["jobs_per_success"] = asdict(Spread.of([run["jobs_per_success"] for run in runs]))
    summary["first_error"] = next((run["first_error"] for run in runs if run["first_error"]), None)
    summary["runs"] = runs
    return summary
