"""Where the gateway's CPU per call goes under load, by ablation: `python -m bench.ablate`.

`bench.inproc` times the gateway's own Python in a hot loop; under load the same code may cost
more (cold caches, grpc's and the transport's loop passes in between, per-call objects grpc
makes only in a real server). This harness measures it where it is paid: each *variant* is a
real `grpc.aio` server process on uvloop, pinned to the client-side CPU as `bench.procs` pins
the gateway, answering `DescribeMediaJobs` while a `grpc.aio` client in this process loads it
at concurrency `--concurrency` (closed loop, `bench.loadgen`). The figure is the server
process's CPU (user + system, all threads, `/proc/<pid>/stat`) per completed call. Every
variant runs for `--seconds` per repetition, repetitions interleaved (rep 1 of every variant,
then rep 2, ...), so the machine's drift spreads over all of them; the table gives the median
and [min-max] of `--reps` repetitions, and the difference from the variant before it.

The variants put the gateway's pieces back one at a time, on the same emulator:

* `noop`: a bare grpc.aio server answering an empty `DescribeMediaJobsResponse` at once;
* `send`: + one signed GET through the gateway's `Transport` (the zero-logic gateway);
* `answer`: `send` answering the gateway's real describe answer (CI's, decoded once at start):
  what grpc's serializing and sending a full answer adds;
* `ctx`: `send` + the calls on grpc's context the real server makes per RPC (`invocation_metadata`,
  `time_remaining` twice, `set_trailing_metadata` and `trailing_metadata`, `code`, `peer`,
  `peer_identities`): what grpc's Cython context costs on its own;
* `chain`: `send` inside the server's interceptor chain (`api_interceptors`: observability with
  metrics, client access, the malformed-request guard), log level WARNING (no access line);
* `chain+log`: the same with the JSON access line at INFO, to a file;
* `service`: the real `MediaJobService` + `CiClient` (validation, signing, retry, decode,
  telemetry), registered without interceptors, log level WARNING;
* `service+chain+log`: the service inside the chain, access line at INFO;
* `gateway`: `start_gateway` as `ci-gateway serve` runs it (the chain, the service, health,
  reflection, server options), access line at INFO to a file;
* `gateway+freeze`: the same with `gc.freeze()` once started (start-up's objects never scanned
  again by a collection);
* `gateway-gc`: the same with the cyclic collector off (a diagnostic: what collections cost);
* `gateway+nourandom`: `os.urandom` (which releases the GIL around `getrandom`, twice per call
  for the request ids) replaced by `random.randbytes`, which does not (a diagnostic: does
  handing the GIL to grpc's poller thread at each syscall cost switches?);
* `gateway+nowrite`: the access line formatted as always but kept in memory, no `write`
  syscall (a diagnostic: the same question for the log's write).

`--variants` picks some (comma-separated). `--baseline-src DIR` runs each variant twice, on
DIR's `gateway/` (`variant@base`, the revision before a change) and on this tree's, side by
side in every repetition: a change's gain under load, measured in one run.

Bounded: each cell is a `--seconds` window (at most `bench.loadgen`'s call cap), each child
lives at most as long as the run and is stopped by its own pid. Linux only (pinning, /proc).
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import gc
import json
import os
import statistics
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import grpc

from bench.clients import RPC_TIMEOUT_S, GatewayClient, _signed_headers
from bench.common import BUCKET, REGION, ROOT, SECRET_ID, SECRET_KEY
from bench.loadgen import closed_loop_async
from bench.procs import Servers, child, default_cpus
from bench.throughput import seed_jobs
from gateway._proto import service_pb2, service_pb2_grpc


class _Discard:
    """A log stream that keeps the lines in memory (no write syscall, no GIL release)."""

    def __init__(self) -> None:
        self.count = 0

    def write(self, text: str) -> int:
        self.count += 1
        return len(text)

    def flush(self) -> None:
        pass


VARIANTS = (
    "noop",
    "send",
    "answer",
    "ctx",
    "chain",
    "chain+log",
    "service",
    "service+chain+log",
    "gateway",
    "gateway+freeze",
    "gateway-gc",
    "gateway+nourandom",
    "gateway+nowrite",
)
PORT_BASE = 50300
BASE = "@base"  # a variant run on `--baseline-src`'s gateway package
_TICKS = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


def _threads(pid: int) -> dict[str, tuple[bool, float, int]]:
    """Per thread of `pid`: (is the main thread, CPU seconds, context switches so far)."""
    out: dict[str, tuple[bool, float, int]] = {}
    for tid in os.listdir(f"/proc/{pid}/task"):
        try:
            stat = Path(f"/proc/{pid}/task/{tid}/stat").read_text()
            status = Path(f"/proc/{pid}/task/{tid}/status").read_text()
        except FileNotFoundError:  # a thread that ended meanwhile
            continue
        fields = stat.rsplit(")", 1)[1].split()
        cpu = (int(fields[11]) + int(fields[12])) / _TICKS
        switches = sum(
            int(line.split()[1]) for line in status.splitlines() if "ctxt_switches" in line
        )
        out[tid] = (tid == str(pid), cpu, switches)
    return out


@dataclasses.dataclass
class _Cell:
    us: float  # server CPU per call, all threads, over the measured window
    main_us: float  # the event loop's thread, per call (warm-up included)
    other_us: float  # every other thread (grpc's poller), per call (warm-up included)
    switches: float  # context switches of all threads per call (warm-up included)


# ---- the server side (`python -m bench.ablate serve VARIANT ...`) --------------------------


def _settings(endpoint: str, level: str) -> Any:
    from gateway.config.settings import Settings

    settings = Settings(
        listen="127.0.0.1:0", default_bucket=BUCKET, default_region=REGION, endpoint_url=endpoint
    )
    return dataclasses.replace(settings, log_level=level)


class _ZeroLogic(service_pb2_grpc.MediaJobServiceServicer):
    """DescribeMediaJobs as one signed GET to CI and an empty answer (`send`, `ctx`, `chain`)."""

    def __init__(self, endpoint: str, job_id: str, *, touch_context: bool) -> None:
        from gateway.upstream.transport import Transport

        self._transport = Transport(max_body_bytes=1 << 24)
        self._url = endpoint.rstrip("/")
        self._path = f"/jobs/{job_id}"
        self._touch = touch_context
        self.answer = service_pb2.DescribeMediaJobsResponse()

    async def keep_answer(self) -> None:
        """Answer every call with the gateway's answer to CI's real describe (`answer`)."""
        from gateway.jobs.outputs import fill_outputs
        from gateway.jobs.submit import strip_markers
        from gateway.upstream import xml_codec
        from gateway.upstream.transport import HttpRequest

        headers = _signed_headers("GET", self._path, {}, None)
        request = HttpRequest("GET", self._url + self._path, headers, None)
        body = (await self._transport.send(request, connect_timeout=5, total_timeout=30)).body
        answer = xml_codec.decode(body, service_pb2.DescribeMediaJobsResponse, root="Response")
        strip_markers(list(answer.jobs_detail))
        fill_outputs(answer.jobs_detail)
        self.answer = answer

    async def DescribeMediaJobs(self, request: Any, context: Any) -> Any:
        from gateway.upstream.transport import HttpRequest

        if self._touch:  # what the real server asks of grpc's context on a successful call
            context.invocation_metadata()
            context.time_remaining()
            context.time_remaining()
            context.set_trailing_metadata((("x-ci-request-id", "r"),))
            context.set_trailing_metadata((*context.trailing_metadata(), ("x-request-id", "q")))
            context.code()
            context.peer()
            context.peer_identities()
        headers = _signed_headers("GET", self._path, {}, None)
        request_ = HttpRequest("GET", self._url + self._path, headers, None)
        answer = await self._transport.send(request_, connect_timeout=5, total_timeout=30)
        if answer.status != 200:
            raise RuntimeError(f"CI answered {answer.status}")
        return self.answer


async def _serve(variant: str, port: int, endpoint: str, job_id: str, log_path: str) -> None:
    from gateway import logs
    from gateway.access.interceptor import ClientAccess
    from gateway.api.interceptors import InFlight
    from gateway.api.metrics import GatewayMetrics
    from gateway.api.server import (
        api_interceptors,
        media_job_service,
        start_gateway,
        upstream_telemetry,
    )
    from gateway.credentials import Credentials, StaticCredentialsProvider
    from gateway.jobs.runtime import start_tracking
    from gateway.upstream.client import CiClient
    from gateway.upstream.transport import Transport

    level = "INFO" if variant.endswith("log") or variant.startswith("gateway") else "WARNING"
    settings = _settings(endpoint, level)
    stream: Any = await asyncio.to_thread(Path(log_path).open, "w")  # as long as the process
    if variant == "gateway+nowrite":
        stream = _Discard()
    elif variant == "gateway+nourandom":
        import random

        os.urandom = random.randbytes
    logs.configure(settings.log_level, settings.log_format, stream=stream)
    credentials = StaticCredentialsProvider(Credentials(SECRET_ID, SECRET_KEY))
    address = f"127.0.0.1:{port}"
    if variant.startswith("gateway"):
        settings = dataclasses.replace(settings, listen=address)
        running = await start_gateway(settings, credentials)
        if variant == "gateway+freeze":
            gc.freeze()
        elif variant == "gateway-gc":
            gc.disable()
        print("ready", flush=True)
        await running.server.wait_for_termination()
        return
    interceptors: list[Any] = []
    if variant in ("chain", "chain+log", "service+chain+log"):
        interceptors = [
            api_interceptors(settings, ClientAccess.sidecar(), GatewayMetrics(), InFlight())
        ]
    server = grpc.aio.server(interceptors=interceptors, options=[("grpc.so_reuseport", 0)])
    servicer: Any
    if variant == "noop":
        # Any: the generated base declares the other RPCs abstract (UNIMPLEMENTED at run time).
        noop: Any = _Noop
        servicer = noop()
    elif variant.startswith("service"):
        client = CiClient(
            settings=settings,
            credentials=credentials,
            transport=Transport(max_body_bytes=settings.max_response_bytes),
            telemetry=upstream_telemetry(GatewayMetrics()),
        )
        servicer = media_job_service(client, settings, await start_tracking(settings, client))
    else:
        zero_logic: Any = _ZeroLogic
        servicer = zero_logic(endpoint, job_id, touch_context=variant == "ctx")
        if variant == "answer":
            await servicer.keep_answer()
    service_pb2_grpc.add_MediaJobServiceServicer_to_server(servicer, server)
    server.add_insecure_port(address)
    await server.start()
    print("ready", flush=True)
    await server.wait_for_termination()


class _Noop(service_pb2_grpc.MediaJobServiceServicer):
    async def DescribeMediaJobs(self, request: Any, context: Any) -> Any:
        return service_pb2.DescribeMediaJobsResponse()


def _serve_main(argv: Sequence[str]) -> None:
    variant, port, endpoint, job_id, cpu, log_path = argv
    import uvloop

    os.sched_setaffinity(0, {int(cpu)})
    uvloop.run(_serve(variant, int(port), endpoint, job_id, log_path))


# ---- the driver ----------------------------------------------------------------------------


def _command(variant: str, baseline_src: str) -> list[str]:
    """The child's command line: this tree's `gateway`, or with `@base` (`--baseline-src`)
    the `gateway` package of that folder, imported before this tree's (bench stays this
    tree's)."""
    if not variant.endswith(BASE):
        return [sys.executable, "-m", "bench.ablate", "serve"]
    start = (
        f"import runpy, sys; sys.path.insert(0, {baseline_src!r}); "
        "runpy.run_module('bench.ablate', run_name='__main__')"
    )
    return [sys.executable, "-c", start, "serve"]


async def _measure(
    variants: Sequence[str], reps: int, seconds: float, concurrency: int, baseline_src: str = ""
) -> dict[str, list[_Cell]]:
    emulator_cpu, gateway_cpu = default_cpus()
    logs_dir = Path(tempfile.mkdtemp(prefix="ablate-"))
    with (
        child(["emulator", "--cpu", str(emulator_cpu), "--delay-s", "0"], "emulator") as emulator,
        child(
            ["gateway", "--cpu", str(gateway_cpu), "--endpoint", emulator.info["url"]], "gateway"
        ) as seeder,
    ):
        job_id = (await seed_jobs(Servers(emulator, seeder), count=1))[0]
        processes: dict[str, tuple[subprocess.Popen[str], str]] = {}
        results: dict[str, list[_Cell]] = {v: [] for v in variants}
        try:
            for index, variant in enumerate(variants):
                port = PORT_BASE + index
                name = variant.removesuffix(BASE)
                args = [name, str(port), emulator.info["url"], job_id, str(gateway_cpu)]
                args.append(str(logs_dir / f"{index}.log"))
                # Blocking, but before any measuring starts.
                process = subprocess.Popen(  # noqa: S603, ASYNC220 - our own interpreter
                    [*_command(variant, baseline_src), *args],
                    stdout=subprocess.PIPE,
                    text=True,
                    cwd=ROOT,
                )
                assert process.stdout is not None
                if process.stdout.readline().strip() != "ready":
                    raise RuntimeError(f"variant {variant} did not start")
                processes[variant] = (process, f"127.0.0.1:{port}")
            request = service_pb2.DescribeMediaJobsRequest(job_ids=[job_id])
            for rep in range(reps):
                order = list(variants) if rep % 2 == 0 else list(reversed(variants))
                for variant in order:
                    process, address = processes[variant]
                    client = GatewayClient(address)
                    stub = client._stub

                    async def call(stub: Any = stub) -> None:
                        await stub.DescribeMediaJobs(request, timeout=RPC_TIMEOUT_S)

                    before = _threads(process.pid)
                    stats, error = await closed_loop_async(
                        call,
                        concurrency=concurrency,
                        duration_s=seconds,
                        warmup_s=0.3,
                        cpu_pids={"server": process.pid},
                    )
                    after = _threads(process.pid)
                    await client.close()
                    if error:
                        raise RuntimeError(f"{variant}: {error}")
                    calls = max(stats.finished, 1)
                    main = other = switches = 0.0
                    for tid, (is_main, cpu, switched) in after.items():
                        _, cpu_before, switched_before = before.get(tid, (is_main, 0.0, 0))
                        if is_main:
                            main += cpu - cpu_before
                        else:
                            other += cpu - cpu_before
                        switches += switched - switched_before
                    results[variant].append(
                        _Cell(
                            stats.cpu_us_per_call["server"],
                            main / calls * 1e6,
                            other / calls * 1e6,
                            switches / calls,
                        )
                    )
        finally:
            for process, _ in processes.values():
                process.terminate()
                process.wait(5)
        return results


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["serve"]:
        _serve_main(argv[1:])
        return 0
    parser = argparse.ArgumentParser(prog="python -m bench.ablate", description=__doc__)
    parser.add_argument("--variants", default=",".join(VARIANTS))
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=3.0)
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--json", default="", help="also write the figures to this file")
    parser.add_argument(
        "--baseline-src",
        default="",
        help="a folder holding another revision's gateway/ (git archive REV gateway | tar -x "
        "-C DIR): each variant also runs on it (`variant@base`), interleaved with this tree's",
    )
    args = parser.parse_args(argv)
    variants = [v for v in args.variants.split(",") if v]
    unknown = {v.removesuffix(BASE) for v in variants} - set(VARIANTS)
    if unknown:
        parser.error(f"unknown variants: {sorted(unknown)}")
    if args.baseline_src:
        variants = [v for variant in variants for v in (variant + BASE, variant)]
    results = asyncio.run(
        _measure(variants, args.reps, args.seconds, args.concurrency, args.baseline_src)
    )
    print(f"µs of server CPU per DescribeMediaJobs at concurrency {args.concurrency}")
    print(
        "| variant | µs per call | [min-max] | vs previous | loop thread µs | other threads µs "
        "| switches per call |"
    )
    print("|---|---|---|---|---|---|---|")
    previous: float | None = None
    for variant in variants:
        cells = results[variant]
        values = [cell.us for cell in cells]
        median = statistics.median(values)
        delta = "" if previous is None else f"{median - previous:+.0f}"
        main = statistics.median(cell.main_us for cell in cells)
        other = statistics.median(cell.other_us for cell in cells)
        switches = statistics.median(cell.switches for cell in cells)
        print(
            f"| {variant} | {median:.0f} | [{min(values):.0f}-{max(values):.0f}] | {delta} "
            f"| {main:.0f} | {other:.0f} | {switches:.2f} |"
        )
        previous = median
    if args.json:
        data = {v: [dataclasses.asdict(cell) for cell in cells] for v, cells in results.items()}
        Path(args.json).write_text(json.dumps(data, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
