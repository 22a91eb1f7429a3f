"""Issue 11 item 6: the gateway's memory under hostile upstream answers.

Not a test: run it from the repository root with ``.venv/bin/python -m bench.hostile_memory``.

    this process ──> hostile upstream (aiohttp, loopback): every request gets a 200 whose body
       │             is just under the gateway's 4 MiB answer limit and holds more elements than
       │             the XML codec accepts (`xml_codec.MAX_ELEMENTS`), so every call is refused
       └──spawn──> the gateway (`python -m bench.serve gateway`), its RSS read from /proc

The gateway must refuse each such answer (UNAVAILABLE, UPSTREAM_PROTOCOL_ERROR) without its
memory growing with the number of refusals: the figure is the RSS peak while `concurrency`
calls are refused together, and the RSS `settle_s` after the last one ended, against the RSS
at rest (after a few ordinary calls have warmed pools and caches). Every loop is bounded by a
call count; sampling is bounded by a deadline.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import sys
import time
from collections import Counter
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import grpc
from aiohttp import web

from bench.common import RESULTS_DIR, rss_mb
from bench.procs import child, default_cpus
from gateway._proto import service_pb2, service_pb2_grpc
from gateway.upstream import xml_codec

DESCRIBE = service_pb2.DescribeMediaJobsRequest(job_ids=["j" + "0" * 32])
GOOD_ANSWER = f"<Response><NonExistJobIds>{DESCRIBE.job_ids[0]}</NonExistJobIds></Response>"
SAMPLE_EVERY_S = 0.05
WARMUP_CALLS = 20
CALL_TIMEOUT_S = 60.0


def hostile_body(max_bytes: int = xml_codec.DEFAULT_MAX_BYTES) -> bytes:
    """A well-formed `<Response>` just under `max_bytes` with ~1.6x `MAX_ELEMENTS` elements."""
    element = b"<NextToken>x</NextToken>"
    count = (max_bytes - 64) // len(element)
    assert count > xml_codec.MAX_ELEMENTS
    return b"<Response>" + element * count + b"</Response>"


@dataclass
class Upstream:
    """The hostile peer: good answers until `hostile` is set, then `body` to every request."""

    body: bytes
    url: str = ""
    hostile: bool = False
    answers: Counter[str] = field(default_factory=Counter)

    async def handle(self, request: web.Request) -> web.Response:
        await request.read()
        kind = "hostile" if self.hostile else "good"
        self.answers[kind] += 1
        body = self.body if self.hostile else GOOD_ANSWER.encode()
        return web.Response(body=body, content_type="application/xml")


@contextlib.asynccontextmanager
async def hostile_upstream(body: bytes) -> AsyncIterator[Upstream]:
    upstream = Upstream(body)
    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", upstream.handle)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    try:
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        upstream.url = f"http://127.0.0.1:{runner.addresses[0][1]}"
        yield upstream
    finally:
        await runner.cleanup()


async def measure(*, concurrency: int, rounds: int, settle_s: float, cpu: int) -> dict[str, Any]:
    async with hostile_upstream(hostile_body()) as upstream:
        gateway_args = ["gateway", "--cpu", str(cpu), "--endpoint", upstream.url]
        with child(gateway_args, "gateway") as gateway:
            async with grpc.aio.insecure_channel(gateway.info["address"]) as channel:
                stub = service_pb2_grpc.MediaJobServiceStub(channel)
                for _ in range(WARMUP_CALLS):  # pools, caches and allocator arenas
                    await stub.DescribeMediaJobs(DESCRIBE, timeout=CALL_TIMEOUT_S)
                await asyncio.sleep(1.0)
                upstream.hostile = True
                result = await _refuse_and_settle(stub, gateway.pid, concurrency, rounds, settle_s)
    return {
        "body_bytes": len(upstream.body),
        "body_elements": upstream.body.count(b"<") // 2 - 1,  # start + end tags, minus the root
        "max_elements": xml_codec.MAX_ELEMENTS,
        "concurrency": concurrency,
        "rounds": rounds,
        **result,
        "upstream_answers": dict(upstream.answers),
    }


async def _refuse_and_settle(
    stub: service_pb2_grpc.MediaJobServiceAsyncStub,
    pid: int,
    concurrency: int,
    rounds: int,
    settle_s: float,
) -> dict[str, Any]:
    rest = rss_mb(pid)
    outcomes: Counter[str] = Counter()
    samples: list[tuple[float, float]] = []
    started = time.monotonic()

    async def one() -> None:
        try:
            await stub.DescribeMediaJobs(DESCRIBE, timeout=CALL_TIMEOUT_S)
            outcomes["OK"] += 1
        except grpc.aio.AioRpcError as error:
            outcomes[error.code().name] += 1

    async def sample(until: asyncio.Event) -> None:
        deadline = started + rounds * CALL_TIMEOUT_S  # bounded even if a call never ends
        while not until.is_set() and time.monotonic() < deadline:
            samples.append((round(time.monotonic() - started, 2), rss_mb(pid)))
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(until.wait(), SAMPLE_EVERY_S)

    done = asyncio.Event()
    sampler = asyncio.create_task(sample(done))
    for _ in range(rounds):
        await asyncio.gather(*(one() for _ in range(concurrency)))
    refused_in_s = time.monotonic() - started
    done.set()
    await sampler
    settled = time.monotonic()
    # Bounded by `settle_s`: one sample per half second, the last one at `settle_s`.
    while (elapsed := time.monotonic() - settled) < settle_s:
        samples.append((round(refused_in_s + elapsed, 2), rss_mb(pid)))
        await asyncio.sleep(min(0.5, settle_s - elapsed))
    after = rss_mb(pid)
    return {
        "refused_in_s": round(refused_in_s, 2),
        "rest_mb": round(rest, 1),
        "peak_mb": round(max([rss for _, rss in samples] + [after]), 1),
        "after_mb": round(after, 1),
        "settle_s": settle_s,
        "after_minus_rest_mb": round(after - rest, 1),
        "outcomes": dict(outcomes),
        "samples": samples,
    }


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m bench.hostile_memory")
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--rounds", type=int, default=1, help="batches of --concurrency calls")
    parser.add_argument("--settle-s", type=float, default=5.0)
    parser.add_argument("--cpu", type=int, default=None, help="pin the gateway to this CPU")
    parser.add_argument("--name", default="hostile_memory")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    cpu = args.cpu if args.cpu is not None else default_cpus()[1]
    result = asyncio.run(
        measure(concurrency=args.concurrency, rounds=args.rounds, settle_s=args.settle_s, cpu=cpu)
    )
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    (RESULTS_DIR / f"{args.name}.json").write_text(json.dumps(result, indent=2))
    summary = {k: v for k, v in result.items() if k != "samples"}
    sys.stdout.write(json.dumps(summary, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
