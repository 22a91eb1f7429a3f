"""Instructions per call of whole processes, over real gRPC and real HTTP:
`python -m bench.instructions`.

Why: issue 16's headline (`bench.ratio`) divides CPU seconds measured under load on two shared
CPUs, and those moved 15-30% between hosts and between runs of one tree (bench/README: the
floors themselves ran slower in s13-final than in s12-final). `bench.inproc --callgrind`
counts our own Python steadily, but without grpc's, the sockets' or the floors' work, so it
says how much we cut, not where we stand. This item counts, with callgrind, the user-space
instructions per call of the three processes the headline divides:

- the gateway as `bench.serve gateway` runs it (the production defaults: access line per RPC,
  metrics, exactly-once, validation), called over a real gRPC channel by this process and
  calling the emulator over real HTTP;
- the gRPC floor: the bare grpc.aio server (`bench.serve gateway --noop`) answering the bytes
  the gateway would answer to the same CI answers (captured first, as `bench.ratio` does);
- the HTTP floor: the direct signed aiohttp client (`bench.clients.DirectClient`), in a process
  of its own, calling the emulator;

and divides the first by the sum of the other two. A served process is zeroed after its warm-up
and dumped after `--calls` calls (`callgrind_control`); the client process, whose calls are its
whole life, is counted over `--calls` and twice as many and differenced, as `bench.inproc` does.
Runs of one tree agree within 1-3% (a served process's own polling depends on timing), so
compare revisions within one run (`--baseline-src`).

What it cannot see: the kernel's work (syscalls, context switches; callgrind counts user space)
and how fast each instruction runs (interpreted Python runs fewer instructions a microsecond
than grpc's C++ or aiohttp's C parser). The CPU ratio of `bench.ratio` is the goal; this one
says which of the two a gap is made of. valgrind runs one thread at a time, so grpc's poller
thread hands over differently than under load: read a figure as that process's work per call,
not as its cost in time.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import re
import subprocess
import tempfile
from collections.abc import Awaitable, Callable, Iterator, Sequence
from pathlib import Path

from bench.clients import DirectClient, GatewayClient
from bench.common import callgrind_per_call
from bench.procs import Child, child, default_cpus, servers
from bench.throughput import capture_bodies, seed_jobs

OPERATIONS = ("submit", "describe", "list")
# Under valgrind a gateway starts in ~20-60 s on two busy CPUs, not in one or two.
VALGRIND_START_S = 300.0
CONTROL_TIMEOUT_S = 120.0
# The direct client's calls before those counted (the same in both runs: they cancel out).
WARMUP_DIRECT = 50
# A dump's line with its total: `summary:` (callgrind 3.19's) or `totals:` (others').
_TOTAL = re.compile(rb"^(?:summary|totals):\s+(\d+)", re.MULTILINE)


def total_instructions(dump: bytes) -> int:
    """The instruction total of one callgrind output file."""
    found = _TOTAL.search(dump)
    if found is None:
        raise ValueError("no summary or totals line: not a callgrind output file")
    return int(found[1])


def _callgrind(out_file: Path) -> list[str]:
    return ["valgrind", "--tool=callgrind", f"--callgrind-out-file={out_file}"]


def _control(option: str, pid: int) -> None:
    subprocess.run(  # noqa: S603 - valgrind's own tool, a pid of ours
        ["callgrind_control", option, str(pid)],  # noqa: S607
        check=True,
        capture_output=True,
        timeout=CONTROL_TIMEOUT_S,
    )


def _operation(client: DirectClient | GatewayClient, name: str, job_id: str) -> Awaitable[object]:
    if name == "submit":
        return client.submit()
    if name == "describe":
        return client.describe(job_id)
    return client.list()


async def _drive(address: str, operation: str, job_id: str, calls: int) -> None:
    client = GatewayClient(address)
    try:
        for _ in range(calls):
            await _operation(client, operation, job_id)
    finally:
        await client.close()


def served(
    server: Child, folder: Path, operation: str, job_id: str, *, calls: int, warmup: int
) -> int:
    """Instructions per call of `server` (started under callgrind, its output in `folder`)."""
    address = str(server.info["address"])
    asyncio.run(_drive(address, operation, job_id, warmup))
    _control("--zero", server.pid)
    asyncio.run(_drive(address, operation, job_id, calls))
    _control("--dump", server.pid)
    # callgrind numbers its dumps `<out>.<pid>.1`, `.2`, ...: the newest is this one.
    dumps = sorted(folder.glob(f"*.{server.pid}.*"), key=lambda dump: int(dump.suffix[1:]))
    if not dumps:
        raise RuntimeError(f"no callgrind dump of pid {server.pid} in {folder}")
    return total_instructions(dumps[-1].read_bytes()) // calls


def direct(url: str, operation: str, job_id: str, *, calls: int) -> int:
    """Instructions per call of the direct client, in a process of its own whose whole life is
    its calls (`callgrind_per_call`: `calls` and twice as many, differenced)."""

    def argv(count: int) -> list[str]:
        return [
            *("-m", "bench.instructions", "direct", "--url", url, "--operation", operation),
            *("--job-id", job_id, "--calls", str(count)),
        ]

    return round(callgrind_per_call(argv, calls))


async def _direct_calls(url: str, operation: str, job_id: str, calls: int) -> None:
    """The direct client's process: a warm-up the difference cancels out, then `calls`."""
    client = DirectClient(url)
    try:
        for _ in range(WARMUP_DIRECT + calls):
            await _operation(client, operation, job_id)
    finally:
        await client.close()


@contextlib.contextmanager
def _under_callgrind(args: list[str], what: str, folder: Path) -> Iterator[Child]:
    with child(
        args,
        what,
        wrapper=_callgrind(folder / f"{what}.%p"),
        start_timeout_s=VALGRIND_START_S,
    ) as server:
        yield server


def measure(
    operations: Sequence[str],
    *,
    calls: int,
    warmup: int,
    baseline_src: Path | None,
    report: Callable[[str], None] = print,
) -> dict[str, dict[str, int]]:
    """{operation: {process: instructions per call}} for the gateway, the floors and, with
    `baseline_src`, another revision's gateway."""
    results: dict[str, dict[str, int]] = {operation: {} for operation in operations}
    with contextlib.ExitStack() as stack:
        folder = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="ci-bench-cg-")))
        # A plain gateway seeds the jobs (a list of 10 finished ones, a describe of one) and
        # the floor's canned answers are CI's answers to them.
        emulator_cpu, gateway_cpu = default_cpus()
        pair = stack.enter_context(servers(emulator_cpu=emulator_cpu, gateway_cpu=gateway_cpu))
        job_ids = asyncio.run(seed_jobs(pair, count=12))
        job_id = job_ids[0]
        canned = folder / "canned"
        canned.mkdir()
        for name, body in asyncio.run(capture_bodies(pair.emulator_url, job_id)).items():
            (canned / f"{name}.xml").write_bytes(body)
        common = ["gateway", "--endpoint", pair.emulator_url]
        processes = {
            "gateway": common,
            "gRPC floor": [*common, "--noop", "--canned-dir", str(canned)],
        }
        if baseline_src is not None:
            processes["baseline"] = [*common, "--src", str(baseline_src)]
        for what, args in processes.items():
            slug = what.replace(" ", "-")
            with _under_callgrind(args, slug, folder) as server:
                for operation in operations:
                    count = served(server, folder, operation, job_id, calls=calls, warmup=warmup)
                    results[operation][what] = count
                    report(f"{operation:9s} {what:11s} {count:12,d} instructions/call")
        for operation in operations:
            count = direct(pair.emulator_url, operation, job_id, calls=calls)
            results[operation]["HTTP floor"] = count
            report(f"{operation:9s} {'HTTP floor':11s} {count:12,d} instructions/call")
    return results


def render(results: dict[str, dict[str, int]]) -> list[str]:
    baseline = any("baseline" in row for row in results.values())
    head = "| operation | gateway | gRPC floor | HTTP floor | **ratio** |"
    rule = "|---|---|---|---|---|"
    if baseline:
        head += " baseline | baseline ratio |"
        rule += "---|---|"
    lines = [
        "Instructions per call (callgrind, user space), whole processes; ratio = gateway / "
        "(gRPC floor + HTTP floor), the headline's quotient in instructions.",
        "",
        head,
        rule,
    ]
    for operation, row in results.items():
        floors = row["gRPC floor"] + row["HTTP floor"]
        line = (
            f"| {operation} | {row['gateway']:,d} | {row['gRPC floor']:,d} | "
            f"{row['HTTP floor']:,d} | **{row['gateway'] / floors:.2f}** |"
        )
        if baseline:
            line += f" {row['baseline']:,d} | {row['baseline'] / floors:.2f} |"
        lines.append(line)
    return lines


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.instructions", description=__doc__)
    commands = parser.add_subparsers(dest="command")
    run = commands.add_parser("run", help="measure (the default)")
    for command in (parser, run):
        command.add_argument("--only", default=",".join(OPERATIONS), help="submit,describe,list")
        command.add_argument("--calls", type=int, default=200, help="calls counted")
        command.add_argument("--warmup", type=int, default=100, help="calls before counting")
        command.add_argument(
            "--baseline-src", type=Path, help="another revision's gateway/ (`git archive`)"
        )
    client = commands.add_parser("direct", help="(internal) the HTTP floor's process")
    client.add_argument("--url", required=True)
    client.add_argument("--operation", choices=OPERATIONS, required=True)
    client.add_argument("--job-id", required=True)
    client.add_argument("--calls", type=int, required=True)
    args = parser.parse_args(argv)
    if args.command == "direct":
        asyncio.run(_direct_calls(args.url, args.operation, args.job_id, args.calls))
        return
    operations = [name for name in args.only.split(",") if name]
    unknown = set(operations) - set(OPERATIONS)
    if unknown:
        parser.error(f"unknown operations: {', '.join(sorted(unknown))}")
    results = measure(
        operations, calls=args.calls, warmup=args.warmup, baseline_src=args.baseline_src
    )
    print("\n".join(render(results)))


if __name__ == "__main__":
    main()
