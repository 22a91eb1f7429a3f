"""The headline of issue 16: the gateway's CPU per call against the sum of its two floors.

    ratio = gateway CPU per call / (gRPC floor CPU per call + HTTP floor CPU per call)

for SubmitMediaJob, DescribeMediaJobs (one finished job) and ListMediaJobs (size 10), at each
concurrency (1 and 64 by default), all measured in one run on one machine:

* **gateway**: the gateway process (`bench.serve gateway`, production defaults: INFO access log
  as JSON lines on stderr, metrics, exactly-once submit, validation, rich errors), CPU from
  `/proc/<pid>/stat` over the measured window, divided by the calls completed;
* **gRPC floor**: a bare `grpc.aio` server (`bench.serve gateway --noop`) answering the same
  RPC at once with the answer the gateway would give (decoded from CI's real answers saved
  first, `--canned-dir`), so it receives, deserializes, serializes and sends the same bytes;
  also on uvloop (`floor-uvloop`), for a gateway that runs on uvloop;
* **HTTP floor**: the direct signed aiohttp client (`bench.clients.DirectClient`): this load
  generator's own CPU per call while it calls the emulator without any gateway.

The gateway, the floors and the load generator share one CPU, the emulator has the other
(`bench.procs`); idle processes cost nothing measurable, and each is charged only for the
window of its own cells. With `--baseline-src`, a second gateway imported from that folder (an
earlier revision's `gateway/`) runs beside this tree's, so before and after come from one run.

Every repetition starts fresh processes, seeds 50 finished jobs, runs the reads (which list
the 10 newest jobs: the seeded ones), then the submits, with the clients' order rotated from one
repetition to the next; the ratio is computed per repetition and reported as median [min-max].
After each repetition the gateway's log is read: it must hold one access-log line per RPC it
served (the figure is printed), so the access log was really on while measured.
"""

from __future__ import annotations

import contextlib
import os
import random
import tempfile
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

from bench.clients import DirectClient, GatewayClient, TransportDirectClient
from bench.common import RESULTS_DIR, RunStats, Spread, Summary
from bench.loadgen import closed_loop_async
from bench.procs import Child, child, servers
from bench.throughput import LoadPlan, capture_bodies, seed_jobs

OPERATIONS = ("describe", "list", "submit")  # reads first: they list the seeded jobs
GATEWAY, BASELINE, DIRECT, DIRECT_OWN, FLOOR, FLOOR_UVLOOP = (
    "gateway",
    "baseline",
    "direct",
    "direct-own",
    "floor",
    "floor-uvloop",
)
Client = GatewayClient | DirectClient | TransportDirectClient
ACCESS_LINE = b'"logger":"gateway.access"'

Call = Callable[[], Awaitable[object]]


def _calls(client: Client, ids: Sequence[str], rng: random.Random) -> Any:
    return {
        "submit": client.submit,
        "describe": lambda: client.describe(rng.choice(ids)),
        "list": client.list,
    }


def _log_lines(path: Path) -> int:
    with path.open("rb") as log:
        return sum(1 for line in log if ACCESS_LINE in line)


async def _one_rep(
    rep: int,
    plan: LoadPlan,
    cpus: tuple[int, int],
    baseline_src: Path | None,
    uvloop_gateway: bool,
) -> tuple[dict[tuple[str, str, int], RunStats], dict[str, Any]]:
    """Fresh processes, 50 seeded jobs, every (operation, client, concurrency) cell once."""
    cells: dict[tuple[str, str, int], RunStats] = {}
    info: dict[str, Any] = {}
    rng = random.Random(rep)
    with contextlib.ExitStack() as stack:
        pair = stack.enter_context(
            servers(emulator_cpu=cpus[0], gateway_cpu=cpus[1], uvloop=uvloop_gateway)
        )
        ids = await seed_jobs(pair)
        bodies = await capture_bodies(pair.emulator_url, ids[0])
        folder = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="ci-bench-canned-")))
        for name, body in bodies.items():
            (folder / f"{name}.xml").write_bytes(body)
        common = ["gateway", "--cpu", str(cpus[1]), "--endpoint", pair.emulator_url]
        noop = [*common, "--noop", "--canned-dir", str(folder)]
        servers_of: dict[str, Child] = {GATEWAY: pair.gateway}
        servers_of[FLOOR] = stack.enter_context(child(noop, "floor"))
        servers_of[FLOOR_UVLOOP] = stack.enter_context(child([*noop, "--uvloop"], "floor-uvloop"))
        if baseline_src is not None:
            servers_of[BASELINE] = stack.enter_context(
                child([*common, "--src", str(baseline_src)], "gateway-baseline")
            )
        pids = {name: server.pid for name, server in servers_of.items()}
        pids |= {"emulator": pair.emulator.pid, "loadgen": os.getpid()}
        clients: dict[str, Client] = {
            name: GatewayClient(server.info["address"]) for name, server in servers_of.items()
        }
        clients[DIRECT] = DirectClient(pair.emulator_url)
        clients[DIRECT_OWN] = TransportDirectClient(pair.emulator_url)
        finished = dict.fromkeys((GATEWAY, BASELINE), 0)
        finished[GATEWAY] = len(ids)  # the seeding submits went through this tree's gateway
        baseline = [BASELINE] if baseline_src else []
        order = [GATEWAY, *baseline, DIRECT, DIRECT_OWN, FLOOR, FLOOR_UVLOOP]
        shift = rep % len(order)
        order = order[shift:] + order[:shift]
        try:
            for operation in OPERATIONS:
                for concurrency in plan.concurrencies:
                    for name in order:
                        call: Call = _calls(clients[name], ids, rng)[operation]
                        stats, error = await closed_loop_async(
                            call,
                            concurrency=concurrency,
                            duration_s=plan.duration_s,
                            warmup_s=plan.warmup_s,
                            cpu_pids=pids,
                        )
                        if error:
                            raise RuntimeError(f"{operation} via {name}: {error}")
                        cells[(operation, name, concurrency)] = stats
                        if name in finished:
                            finished[name] += stats.finished
        finally:
            for client in clients.values():
                await client.close()
        info["sources"] = {
            name: server.info.get("source") or server.info.get("loop")
            for name, server in servers_of.items()
        }
        info["loops"] = {name: server.info.get("loop") for name, server in servers_of.items()}
        info["answer_bytes"] = {name: len(body) for name, body in bodies.items()}
    # Stopped: every log line is on disk. One access-log line per RPC served, or the access
    # log was not on while measured.
    logs = RESULTS_DIR / "logs"
    info["access_lines_per_rpc"] = {
        GATEWAY: _log_lines(logs / "gateway.log") / finished[GATEWAY],
        **(
            {BASELINE: _log_lines(logs / "gateway-baseline.log") / finished[BASELINE]}
            if baseline_src
            else {}
        ),
    }
    return cells, info


async def run_ratio(
    plan: LoadPlan,
    cpus: tuple[int, int],
    baseline_src: Path | None = None,
    *,
    uvloop_gateway: bool = False,
) -> dict[str, Any]:
    runs: dict[tuple[str, str, int], list[RunStats]] = {}
    infos = []
    for rep in range(plan.reps):
        cells, info = await _one_rep(rep, plan, cpus, baseline_src, uvloop_gateway)
        infos.append(info)
        for cell, stats in cells.items():
            runs.setdefault(cell, []).append(stats)
    gateways = [GATEWAY, *([BASELINE] if baseline_src else [])]
    rows = []
    for operation in OPERATIONS:
        for concurrency in plan.concurrencies:
            for name in gateways:
                rows.append(_row(runs, operation, name, concurrency))
    return {
        "rows": rows,
        "cells": [
            {"operation": op, "client": name, "concurrency": conc, **Summary.of(r).as_dict()}
            for (op, name, conc), r in runs.items()
        ],
        "reps": infos,
        "baseline_src": str(baseline_src) if baseline_src else None,
    }


def _cpu(stats: RunStats, role: str) -> float:
    return float(stats.cpu_us_per_call.get(role, float("nan")))


def _row(
    runs: dict[tuple[str, str, int], list[RunStats]], operation: str, name: str, concurrency: int
) -> dict[str, Any]:
    """One gateway's figures for one operation and concurrency, each ratio per repetition."""
    gw = runs[(operation, name, concurrency)]
    direct = runs[(operation, DIRECT, concurrency)]
    floor = runs[(operation, FLOOR, concurrency)]
    floor_uv = runs[(operation, FLOOR_UVLOOP, concurrency)]
    own = runs[(operation, DIRECT_OWN, concurrency)]
    reps = range(len(gw))
    ratio = [_cpu(gw[i], name) / (_cpu(floor[i], FLOOR) + _cpu(direct[i], "loadgen")) for i in reps]
    strict = [
        _cpu(gw[i], name) / (_cpu(floor_uv[i], FLOOR_UVLOOP) + _cpu(direct[i], "loadgen"))
        for i in reps
    ]
    # The stricter reading: both floors of the gateway's own stack (uvloop, its own HTTP client).
    own_stack = [
        _cpu(gw[i], name) / (_cpu(floor_uv[i], FLOOR_UVLOOP) + _cpu(own[i], "loadgen"))
        for i in reps
    ]
    above = [gw[i].p50_ms - direct[i].p50_ms for i in reps]
    figures = {
        "gateway_us": Spread.of([_cpu(r, name) for r in gw]),
        "grpc_floor_us": Spread.of([_cpu(r, FLOOR) for r in floor]),
        "grpc_floor_uvloop_us": Spread.of([_cpu(r, FLOOR_UVLOOP) for r in floor_uv]),
        "http_floor_us": Spread.of([_cpu(r, "loadgen") for r in direct]),
        "http_floor_own_us": Spread.of([_cpu(r, "loadgen") for r in own]),
        "ratio": Spread.of(ratio),
        "ratio_vs_uvloop_floor": Spread.of(strict),
        "ratio_vs_own_stack": Spread.of(own_stack),
        "gateway_calls_per_s": Spread.of([r.calls_per_s for r in gw]),
        "gateway_p50_ms": Spread.of([r.p50_ms for r in gw]),
        "direct_p50_ms": Spread.of([r.p50_ms for r in direct]),
        "p50_above_direct_ms": Spread.of(above),
        "grpc_client_us": Spread.of([_cpu(r, "loadgen") for r in gw]),
    }
    return {
        "operation": operation,
        "gateway": name,
        "concurrency": concurrency,
        **{key: asdict(value) for key, value in figures.items()},
    }


NAMES = {"submit": "SubmitMediaJob", "describe": "DescribeMediaJobs", "list": "ListMediaJobs(10)"}


def render(result: dict[str, Any], baseline_label: str = "baseline") -> list[str]:
    """The headline table: one row per operation, concurrency and gateway."""
    lines = [
        "ratio = gateway CPU / (gRPC floor CPU + HTTP floor CPU) per call; goal <= 1.25 "
        "(and p50 at concurrency 1 <= 0.6 ms above the direct call). µs of CPU per call; "
        "median [min-max] of the repetitions. 'own stack' divides by the floors of the "
        "gateway's own stack instead: the bare server on uvloop + the direct call through the "
        "gateway's HTTP client (`Transport`).",
        "",
        "| operation | conc | gateway | gateway µs | gRPC floor µs | HTTP floor µs | **ratio** "
        "| ratio vs uvloop floor | own-stack HTTP floor µs | ratio vs own stack "
        "| p50 ms | direct p50 ms | p50 above direct ms | calls/s |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for row in result["rows"]:
        spread = {k: Spread(**v) for k, v in row.items() if isinstance(v, dict)}
        label = baseline_label if row["gateway"] == BASELINE else "this tree"
        lines.append(
            f"| {NAMES[row['operation']]} | {row['concurrency']} | {label} "
            f"| {spread['gateway_us'].fmt()} | {spread['grpc_floor_us'].fmt()} "
            f"| {spread['http_floor_us'].fmt()} | **{spread['ratio'].fmt(2)}** "
            f"| {spread['ratio_vs_uvloop_floor'].fmt(2)} | {spread['http_floor_own_us'].fmt()} "
            f"| {spread['ratio_vs_own_stack'].fmt(2)} | {spread['gateway_p50_ms'].fmt(2)} "
            f"| {spread['direct_p50_ms'].fmt(2)} | {spread['p50_above_direct_ms'].fmt(2)} "
            f"| {spread['gateway_calls_per_s'].fmt()} |"
        )
    lines.append("")
    access = [rep["access_lines_per_rpc"] for rep in result["reps"]]
    loops = result["reps"][0]["loops"] if result["reps"] else {}
    sizes = result["reps"][0]["answer_bytes"] if result["reps"] else {}
    lines.append(
        f"Access-log lines per RPC served, per repetition: {access}; event loops: {loops}; "
        f"CI answer bytes: {sizes}."
    )
    return lines
