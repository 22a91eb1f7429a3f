"""Where the wall time of one call goes at concurrency 1: `python -m bench.latency_trace`.

Issue 16 asks for p50 at concurrency 1 at most 0.6 ms above the direct signed call. This
harness runs the emulator, the gateway as `ci-gateway serve` runs it (`bench.serve gateway`:
INFO access line per RPC, metrics, exactly-once submit, validation, rich errors) and, beside
them, the bare grpc.aio server (`--noop`, the gRPC floor, on asyncio's loop and on uvloop as
the gateway runs), pinned as `bench.procs` pins them
(emulator on one CPU; gateways and this sequential client on the other), and reads the time of
one call three ways, all in one run:

1. **p50**, `--reps` interleaved blocks of `--calls` back-to-back calls per client (gateway,
   `--baseline-src`'s gateway if given, the direct aiohttp call, the direct call through the
   gateway's own `Transport`, the no-op gRPC servers (submit only: they answer nothing else),
   and for describe a gateway with no code of its own (`zero-logic`: `bench.ablate`'s `send`,
   grpc.aio on uvloop making one signed GET through `Transport`)), so the machine's drift (2
   CPUs shared with other work) lands on all of them; medians of the blocks' p50.
2. **CPU on the path**: each process's threads' `/proc/<pid>/task/<tid>/schedstat` around
   every block: time run and time waited runnable (a CPU busy with something else) per call,
   for the event loop's thread and for the rest (grpc's threads). At concurrency 1 the client,
   the gateway and the emulator take turns, so the wall time is mostly the sum of these.
3. **Stages** (when `perf` is installed and may trace: `--trace-calls`, 0 to skip): syscall
   tracepoints of the client, the gateway and the emulator recorded with `perf record -k mono`
   (CLOCK_MONOTONIC, the clock `time.perf_counter` reads), while the client times each call
   itself. For each call: the client's gRPC bytes sent, read by grpc's threads in the gateway,
   the event loop woken, the request written to CI, read by the emulator, its answer written,
   read by the gateway, the access line written, the reply sent, read by the client, the call
   done. The same for the direct call (sent, read by CI, answered, read back, done). Medians
   over the calls, as offsets from the call's start, and between two stages who held each
   CPU (`bench.latency_stages.WHO`): a stage's time is either someone's CPU or a wait.

Bounded: a fixed number of calls per block, every child stopped by its own pid (`bench.procs`),
`perf` stopped by its pid with SIGINT and waited for. Linux only (pinning, /proc, perf).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import functools
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from bench import latency_stages
from bench.clients import DirectClient, GatewayClient, TransportDirectClient
from bench.common import pin
from bench.procs import child, default_cpus
from bench.ratio import BASELINE, DIRECT, DIRECT_OWN, FLOOR, FLOOR_UVLOOP, GATEWAY
from gateway._proto import service_pb2

Call = Callable[[], Awaitable[object]]
Client = GatewayClient | DirectClient | TransportDirectClient

PERF = shutil.which("perf") or ""

ZERO_LOGIC = "zero-logic"  # the other clients' names are the ratio item's

# ---- CPU per call from schedstat ------------------------------------------------------------


def _schedstat(pid: int) -> dict[int, tuple[int, int]]:
    """Per thread of `pid`: (ns run on a CPU, ns waited runnable) so far."""
    out: dict[int, tuple[int, int]] = {}
    with contextlib.suppress(FileNotFoundError):
        for tid in os.listdir(f"/proc/{pid}/task"):
            with contextlib.suppress(FileNotFoundError):
                run, wait, _slices = Path(f"/proc/{pid}/task/{tid}/schedstat").read_text().split()
                out[int(tid)] = (int(run), int(wait))
    return out


@dataclass
class _Cpu:
    """µs per call of one process, split as the loop's thread (the process's main thread)
    and the others."""

    main_run: float = 0.0
    main_wait: float = 0.0
    other_run: float = 0.0
    other_wait: float = 0.0

    @classmethod
    def between(
        cls, pid: int, before: dict[int, tuple[int, int]], after: dict[int, tuple[int, int]], n: int
    ) -> _Cpu:
        cpu = cls()
        for tid, (run, wait) in after.items():
            run0, wait0 = before.get(tid, (0, 0))
            if tid == pid:
                cpu.main_run += (run - run0) / n / 1000
                cpu.main_wait += (wait - wait0) / n / 1000
            else:
                cpu.other_run += (run - run0) / n / 1000
                cpu.other_wait += (wait - wait0) / n / 1000
        return cpu


@dataclass
class _Cell:
    p50_ms: list[float] = field(default_factory=list)
    cpu: dict[str, list[_Cpu]] = field(default_factory=dict)  # per process role


async def _block(call: Call, calls: int) -> float:
    latencies = []
    for _ in range(calls):
        began = time.perf_counter()
        await call()
        latencies.append(time.perf_counter() - began)
    return statistics.median(latencies) * 1000


# ---- stages from perf tracepoints -----------------------------------------------------------


@contextlib.contextmanager
def _perf(pids: Sequence[int], folder: Path) -> Iterator[None]:
    """Two recordings while the block runs: the syscalls of `pids`, and every CPU's switches."""
    commands = [
        ["-e", latency_stages.SYSCALLS, "-p", ",".join(map(str, pids)), "-o", str(folder / "sys")],
        ["-e", latency_stages.SWITCHES, "-a", "-o", str(folder / "sched")],
    ]
    processes = [
        subprocess.Popen(  # noqa: S603 - perf, found on PATH, with our own arguments
            [PERF, "record", "-q", "-k", "mono", *command],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        for command in commands
    ]
    try:
        time.sleep(1.0)  # perf attaches to every thread before the first call is timed
        yield
    finally:
        for process in processes:
            process.send_signal(signal.SIGINT)
        for process in processes:
            try:
                process.wait(30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(5)


def _script(data: Path, fields: str) -> str:
    return subprocess.run(  # noqa: S603 - perf, found on PATH, with our own arguments
        [PERF, "script", "-i", str(data), "-F", fields, "--ns"],
        capture_output=True,
        text=True,
        timeout=300,
        check=True,
    ).stdout


def _threads(pid: int) -> list[int]:
    with contextlib.suppress(FileNotFoundError):
        return [int(tid) for tid in os.listdir(f"/proc/{pid}/task")]
    return []


async def _trace(
    call: Call,
    calls: int,
    *,
    client: int,
    gateway: int | None,
    emulator: int,
    cpus: dict[str, int],
) -> tuple[list[str], list[dict[str, float]]]:
    """`calls` back-to-back calls traced: the stages' table and each call's stages."""
    roles = dict.fromkeys(_threads(client), "client") | dict.fromkeys(
        _threads(emulator), "emulator"
    )
    if gateway is not None:
        roles |= dict.fromkeys(_threads(gateway), "gateway threads") | {gateway: "gateway loop"}
    windows: list[tuple[float, float]] = []
    with tempfile.TemporaryDirectory(prefix="latency-trace-") as name:
        folder = Path(name)
        traced = [client, emulator] if gateway is None else [client, gateway, emulator]
        with _perf(traced, folder):
            for _ in range(calls):
                began = time.perf_counter()
                await call()
                windows.append((began, time.perf_counter()))
        if not ((folder / "sys").exists() and (folder / "sched").exists()):
            # perf is there but may not trace (perf_event_paranoid, no root): say so, go on.
            return [
                "(perf recorded nothing: tracing needs root or kernel.perf_event_paranoid <= -1)"
            ], []
        events = latency_stages.parse_syscalls(_script(folder / "sys", "pid,tid,time,event,trace"))
        occupancy = latency_stages.Occupancy(
            _script(folder / "sched", "cpu,time,event,trace"), roles
        )
    rows = latency_stages.stages(events, windows, client=client, gateway=gateway, emulator=emulator)
    named = latency_stages.DIRECT_STAGES if gateway is None else latency_stages.GATEWAY_STAGES
    return latency_stages.table(rows, named, occupancy, windows, cpus), rows


# ---- the run --------------------------------------------------------------------------------


async def _run(args: argparse.Namespace) -> None:
    emulator_cpu, gateway_cpu = default_cpus()
    pin(gateway_cpu if args.client_cpu is None else args.client_cpu)
    me = os.getpid()
    with contextlib.ExitStack() as stack:
        emulator = stack.enter_context(
            child(["emulator", "--cpu", str(emulator_cpu)], "latency-emulator")
        )
        url = str(emulator.info["url"])
        gateways = {GATEWAY: [], FLOOR: ["--noop"], FLOOR_UVLOOP: ["--noop", "--uvloop"]}
        if args.baseline_src:
            gateways[BASELINE] = ["--src", args.baseline_src]
        clients: dict[str, Client] = {}
        pids: dict[str, int] = {}
        for role, extra in gateways.items():
            gateway = stack.enter_context(
                child(
                    ["gateway", "--cpu", str(gateway_cpu), "--endpoint", url, *extra],
                    f"latency-{role}",
                )
            )
            clients[role] = GatewayClient(str(gateway.info["address"]))
            pids[role] = gateway.pid
        clients[DIRECT] = DirectClient(url)
        clients[DIRECT_OWN] = TransportDirectClient(url)
        try:
            gateway_client = clients[GATEWAY]
            assert isinstance(gateway_client, GatewayClient)
            job_id = await gateway_client.submit()
            zero = stack.enter_context(_zero_logic(url, job_id, gateway_cpu))
            pids[ZERO_LOGIC] = zero.pid
            clients[ZERO_LOGIC] = GatewayClient(zero.address)
            cpus = {"gateway's": gateway_cpu, "emulator's": emulator_cpu}
            await _measure(args, clients, pids, emulator.pid, me, cpus, job_id)
        finally:
            for client in clients.values():
                await client.close()


@dataclass(frozen=True)
class _Server:
    pid: int
    address: str


@contextlib.contextmanager
def _zero_logic(url: str, job_id: str, cpu: int) -> Iterator[_Server]:
    """`bench.ablate`'s `send` variant: a grpc.aio server on uvloop whose DescribeMediaJobs
    makes one signed GET of `job_id` through the gateway's `Transport` and answers empty: a
    gateway with no code of its own, what grpc.aio and the HTTP leg cost together."""
    with socket.socket() as probe:  # a free port (the variant takes one, not 0)
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    with tempfile.TemporaryDirectory(prefix="latency-zero-") as folder:
        process = subprocess.Popen(  # noqa: S603 - our own interpreter and module
            [sys.executable, "-m", "bench.ablate", "serve", "send", str(port), url, job_id,
             str(cpu), str(Path(folder) / "access.log")],
            stdout=subprocess.PIPE, text=True, cwd=Path(__file__).resolve().parent.parent,
        )  # fmt: skip
        try:
            assert process.stdout is not None
            if process.stdout.readline().strip() != "ready":
                raise RuntimeError("the zero-logic server did not start")
            yield _Server(process.pid, f"127.0.0.1:{port}")
        finally:
            process.terminate()
            try:
                process.wait(10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(5)
            if process.stdout is not None:
                process.stdout.close()


def _calls(clients: dict[str, Client], op: str, job_id: str) -> dict[str, Call]:
    calls: dict[str, Call] = {}
    for role, client in clients.items():
        if op == "describe" and role in (FLOOR, FLOOR_UVLOOP):
            continue  # the floor answers submits only without --canned-dir
        if role == ZERO_LOGIC:
            if op == "describe":  # the only RPC it serves; its answer is empty
                assert isinstance(client, GatewayClient)
                request = service_pb2.DescribeMediaJobsRequest(job_ids=[job_id])
                calls[role] = functools.partial(client._stub.DescribeMediaJobs, request)
            continue
        calls[role] = (
            client.submit if op == "submit" else functools.partial(client.describe, job_id)
        )
    return calls


async def _measure(
    args: argparse.Namespace,
    clients: dict[str, Client],
    pids: dict[str, int],
    emu: int,
    me: int,
    cpus: dict[str, int],
    job_id: str,
) -> None:
    for op in args.ops:
        calls = _calls(clients, op, job_id)
        for call in calls.values():  # warm every path (connections, caches) before timing
            for _ in range(args.warmup):
                await call()
        cells = {role: _Cell() for role in calls}
        for rep in range(args.reps):
            order = list(calls)
            order = order[rep % len(order) :] + order[: rep % len(order)]
            for role in order:
                roles = {"client": me, "emulator": emu} | (
                    {role: pids[role]} if role in pids else {}
                )
                before = {r: _schedstat(p) for r, p in roles.items()}
                cells[role].p50_ms.append(await _block(calls[role], args.calls))
                for r, p in roles.items():
                    cpu = _Cpu.between(p, before[r], _schedstat(p), args.calls)
                    cells[role].cpu.setdefault("server" if r == role else r, []).append(cpu)
        _report_p50(op, cells, args)
        if args.trace_calls and PERF:
            # The floor's stages too (submit): grpc.aio's own hand-offs, without the gateway.
            traced = [
                (GATEWAY, pids[GATEWAY]),
                (FLOOR_UVLOOP, pids[FLOOR_UVLOOP]),
                (ZERO_LOGIC, pids[ZERO_LOGIC]),
                (DIRECT, None),
            ]
            for role, gateway in traced:
                if role not in calls:
                    continue
                lines, _ = await _trace(
                    calls[role],
                    args.trace_calls,
                    client=me,
                    gateway=gateway,
                    emulator=emu,
                    cpus=cpus,
                )
                print(f"\n#### {op}: stages of one {role} call (median of {args.trace_calls})\n")
                print("\n".join(lines))
        elif args.trace_calls:
            print("\n(perf not found: no stage trace)")


def _report_p50(op: str, cells: dict[str, _Cell], args: argparse.Namespace) -> None:
    direct = statistics.median(cells[DIRECT].p50_ms)
    print(
        f"\n#### {op}: p50 at concurrency 1 ({args.reps} interleaved blocks x {args.calls} calls)\n"
    )
    print(
        "| client | p50 ms median [min-max] | over direct | server loop run / wait µs | "
        "server other threads run / wait | emulator run / wait | client run / wait |"
    )
    print("|---|---|---|---|---|---|---|")
    for role, cell in cells.items():
        p50 = statistics.median(cell.p50_ms)
        client = cell.cpu["client"]
        client_run = statistics.median(c.main_run + c.other_run for c in client)
        client_wait = statistics.median(c.main_wait + c.other_wait for c in client)
        print(
            f"| {role} | {p50:.3f} [{min(cell.p50_ms):.3f}-{max(cell.p50_ms):.3f}] | "
            f"{p50 - direct:+.3f} | {_cpu(cell, 'server', 'main')} | "
            f"{_cpu(cell, 'server', 'other')} | {_cpu(cell, 'emulator', 'main')} | "
            f"{client_run:.0f} / {client_wait:.0f} |"
        )


def _cpu(cell: _Cell, role: str, part: str) -> str:
    """`run / wait` µs per call of `role`'s `part` (main or other threads), median of blocks."""
    runs = cell.cpu.get(role)
    if not runs:
        return "-"
    run = statistics.median(getattr(c, f"{part}_run") for c in runs)
    wait = statistics.median(getattr(c, f"{part}_wait") for c in runs)
    return f"{run:.0f} / {wait:.0f}"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.latency_trace", description=__doc__)
    parser.add_argument("--ops", default="submit,describe", type=lambda s: s.split(","))
    parser.add_argument("--calls", type=int, default=300, help="calls per block")
    parser.add_argument("--reps", type=int, default=7, help="interleaved blocks per client")
    parser.add_argument("--warmup", type=int, default=200, help="calls per client before timing")
    parser.add_argument("--trace-calls", type=int, default=200, help="0: no perf trace")
    parser.add_argument("--baseline-src", default="", help="also a gateway imported from here")
    parser.add_argument(
        "--client-cpu", type=int, default=None, help="pin the client here (default: the gateway's)"
    )
    args = parser.parse_args(argv)
    asyncio.run(_run(args))
    return 0


if __name__ == "__main__":
    sys.exit(main())
