"""The server processes of a benchmark: `python -m bench.serve emulator|gateway|otlp ...`.

Each pins itself to one CPU before it starts anything (threads inherit the mask), prints one
JSON line (`url` or `address`, `pid`, `cpus`) once it is listening, and serves until SIGTERM,
SIGINT, or its `--max-lifetime-s` (so a benchmark that crashed cannot leave a server behind for
long). Keys come from BENCH_SECRET_ID / BENCH_SECRET_KEY, never argv.

The emulator is the project's own (`ci_emulator.start_emulator`), configured for load:

* jobs are cheap: the sample video is probed once at start-up and every job "probes" to that
  cached answer, so a describe returns a real, full MediaInfo but no job costs FFmpeg time;
* the queue is large and runs many jobs at once, so jobs finish at once and the waiting list
  stays short (`MediaQueue.is_full` walks the whole waiting list on every submit: with the
  scheduler paused, submits slow down linearly with the jobs already submitted);
* `--delay-s` adds a request hook that holds every CI request that long (a slow CI).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import json
import os
import signal
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from bench.common import BUCKET, ENV_SECRET_ID, ENV_SECRET_KEY, OBJECT_KEY, REGION, pin

if TYPE_CHECKING:
    from google.protobuf.message import Message

M = TypeVar("M", bound="Message")

DEFAULT_MAX_LIFETIME_S = 1800.0


def _keys() -> tuple[str, str]:
    try:
        return os.environ[ENV_SECRET_ID], os.environ[ENV_SECRET_KEY]
    except KeyError as exc:
        raise SystemExit(f"set {ENV_SECRET_ID} and {ENV_SECRET_KEY}") from exc


def _announce(**fields: Any) -> None:
    sys.stdout.write(json.dumps({**fields, "pid": os.getpid(), "cpus": pin(None)}) + "\n")
    sys.stdout.flush()


async def _until_stopped(max_lifetime_s: float) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stop.wait(), max_lifetime_s)


async def run_emulator(args: argparse.Namespace) -> None:
    from aiohttp import web

    from ci_emulator.config import BucketConfig, EmulatorConfig
    from ci_emulator.hosts import Target
    from ci_emulator.probe import probe
    from ci_emulator.probe_types import MediaInfo
    from ci_emulator.samples import make_h264_aac_mp4
    from ci_emulator.server import start_emulator

    secret_id, secret_key = _keys()
    with tempfile.TemporaryDirectory(prefix="ci-bench-") as folder:
        root = Path(folder)
        video = root / OBJECT_KEY
        video.parent.mkdir(parents=True)
        make_h264_aac_mp4(video, seconds=1.0, width=320, height=240)
        cached: MediaInfo = probe(video)

        async def cached_probe(path: Path) -> MediaInfo:
            return cached

        config = EmulatorConfig(
            buckets=(BucketConfig(BUCKET, REGION, root),),
            credentials={secret_id: secret_key},
            queue_max_concurrent=100_000,
            queue_max_size=10_000_000,
            probe=cached_probe,
        )
        emulator = await start_emulator(config, port=0)
        try:
            if args.delay_s > 0:
                delay_s: float = args.delay_s

                async def slow_ci(request: web.Request, target: Target) -> None:
                    await asyncio.sleep(delay_s)
                    return None

                emulator.state.request_hooks.append(slow_ci)
            _announce(url=emulator.url)
            await _until_stopped(args.max_lifetime_s)
        finally:
            await emulator.close()


async def run_gateway(args: argparse.Namespace) -> None:
    import gateway as gateway_package
    from gateway import logs
    from gateway.api.server import start_gateway
    from gateway.config.settings import Settings
    from gateway.credentials import Credentials, StaticCredentialsProvider

    secret_id, secret_key = _keys()
    # The production defaults (`ci-gateway serve`): INFO, JSON lines on stderr, so one access-log
    # line per RPC is written and paid for, as in a deployment (stderr is a file under
    # bench/results/logs/ here, a pipe to the container runtime there).
    settings = Settings(
        listen="127.0.0.1:0",
        default_bucket=BUCKET,
        default_region=REGION,
        endpoint_url=args.endpoint,
    )
    if args.log_level:
        settings = dataclasses.replace(settings, log_level=args.log_level)
    logs.configure(settings.log_level, settings.log_format)
    if args.max_in_flight:
        # `[retry] max_in_flight_upstream` and `max_in_flight_rpcs` (512 each by default, sized
        # to the shipped pods' memory): beyond them the gateway sheds calls at once. The memory
        # benchmark raises both so that 1,000 calls are really held upstream.
        retry = dataclasses.replace(
            settings.retry,
            max_in_flight_upstream=args.max_in_flight,
            max_in_flight_rpcs=max(settings.retry.max_in_flight_rpcs, args.max_in_flight),
        )
        settings = dataclasses.replace(settings, retry=retry)
    if args.max_watchers_per_client:
        # `[tracking] max_watchers_per_client` (100 by default) and `max_watchers` (400): the
        # load generator is one client (one loopback peer), and the watch item opens a stream
        # per job, up to 1,000.
        tracking = dataclasses.replace(
            settings.tracking,
            max_watchers_per_client=args.max_watchers_per_client,
            max_watchers=max(settings.tracking.max_watchers, args.max_watchers_per_client),
        )
        settings = dataclasses.replace(settings, tracking=tracking)
    if args.tracing:
        # `[tracing] enabled`; where spans go is the OTEL_* environment `bench.procs` sets.
        from gateway.config.settings import Tracing

        settings = dataclasses.replace(settings, tracing=Tracing(enabled=True))
    gateway = await start_gateway(
        settings, StaticCredentialsProvider(Credentials(secret_id, secret_key))
    )
    try:
        _announce(
            address=gateway.address,
            loop=type(asyncio.get_running_loop()).__module__,
            source=str(Path(gateway_package.__file__ or "").parent.parent),
        )
        await _until_stopped(args.max_lifetime_s)
    finally:
        await gateway.stop(grace_s=0)


async def run_noop_gateway(args: argparse.Namespace) -> None:
    """The gRPC floor: the same service on a bare `grpc.aio` server that answers at once with a
    canned answer (no validation, no CI call). What it costs per call is what grpc.aio itself
    costs, which no change inside the gateway's own modules can remove.

    With `--canned-dir`, the answers are what the gateway returns for the CI answers saved there
    (`submit.xml`, `describe.xml`, `list.xml`: decoded, markers stripped, outputs filled), so
    the floor serializes and sends the same bytes the gateway does; without it, SubmitMediaJob
    answers a small hand-made job and the reads are UNIMPLEMENTED."""
    import grpc

    from gateway._proto import media_pb2, service_pb2, service_pb2_grpc

    canned_submit = service_pb2.SubmitMediaJobResponse(
        jobs_detail=media_pb2.JobsDetail(
            code="Success", message="Success", job_id="j" + "0" * 32, state_text="Submitted",
            state=media_pb2.JOB_STATE_SUBMITTED, tag="MediaInfo", queue_id="p" + "0" * 32,
            creation_time="2026-01-01T00:00:00+0800",
            input=media_pb2.Input(object=OBJECT_KEY),
        )
    )  # fmt: skip
    canned_describe = service_pb2.DescribeMediaJobsResponse()
    canned_list = service_pb2.ListMediaJobsResponse()
    if args.canned_dir:
        folder = Path(args.canned_dir)
        canned_submit = _as_gateway_answers(
            folder / "submit.xml", service_pb2.SubmitMediaJobResponse
        )
        canned_describe = _as_gateway_answers(
            folder / "describe.xml", service_pb2.DescribeMediaJobsResponse
        )
        canned_list = _as_gateway_answers(folder / "list.xml", service_pb2.ListMediaJobsResponse)

    class Noop(service_pb2_grpc.MediaJobServiceServicer):
        async def SubmitMediaJob(
            self, request: service_pb2.SubmitMediaJobRequest, context: Any
        ) -> service_pb2.SubmitMediaJobResponse:
            return canned_submit

        async def DescribeMediaJobs(
            self, request: service_pb2.DescribeMediaJobsRequest, context: Any
        ) -> service_pb2.DescribeMediaJobsResponse:
            return canned_describe

        async def ListMediaJobs(
            self, request: service_pb2.ListMediaJobsRequest, context: Any
        ) -> service_pb2.ListMediaJobsResponse:
            return canned_list

    server = grpc.aio.server()
    # Any: the generated stub's servicer base may declare further RPCs abstract; unanswered
    # ones are UNIMPLEMENTED at run time, which is all a floor needs.
    servicer_type: Any = Noop
    service_pb2_grpc.add_MediaJobServiceServicer_to_server(servicer_type(), server)
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    try:
        _announce(address=f"127.0.0.1:{port}", loop=type(asyncio.get_running_loop()).__module__)
        await _until_stopped(args.max_lifetime_s)
    finally:
        await server.stop(0)


def _as_gateway_answers(path: Path, response_type: type[M]) -> M:
    """CI's saved answer as the gateway turns it into its own: decoded, markers stripped,
    outputs filled (`gateway.api.service`)."""
    from gateway._proto import media_pb2
    from gateway.jobs.outputs import fill_outputs
    from gateway.jobs.submit import strip_markers
    from gateway.upstream import xml_codec

    message = xml_codec.decode(path.read_bytes(), response_type, root="Response")
    found: Any = getattr(message, "jobs_detail")  # noqa: B009 - singular or repeated
    jobs: list[media_pb2.JobsDetail] = (
        [found] if isinstance(found, media_pb2.JobsDetail) else list(found)
    )
    strip_markers(jobs)
    fill_outputs(jobs)
    return message


async def run_otlp_receiver(args: argparse.Namespace) -> dict[str, int]:
    """An OTLP/gRPC trace receiver (a collector's front door, from `opentelemetry-proto`'s
    generated service) that only counts what it gets; the counts go to `--count-file` when it
    stops, so the tracing benchmark can tell that spans were really exported."""
    import grpc
    from opentelemetry.proto.collector.trace.v1 import trace_service_pb2, trace_service_pb2_grpc

    counts = {"requests": 0, "spans": 0}

    class Receiver(trace_service_pb2_grpc.TraceServiceServicer):
        async def Export(
            self, request: trace_service_pb2.ExportTraceServiceRequest, context: Any
        ) -> trace_service_pb2.ExportTraceServiceResponse:
            counts["requests"] += 1
            counts["spans"] += sum(
                len(scope.spans) for spans in request.resource_spans for scope in spans.scope_spans
            )
            return trace_service_pb2.ExportTraceServiceResponse()

    server = grpc.aio.server()
    trace_service_pb2_grpc.add_TraceServiceServicer_to_server(Receiver(), server)  # type: ignore[no-untyped-call]
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    try:
        _announce(endpoint=f"http://127.0.0.1:{port}")
        await _until_stopped(args.max_lifetime_s)
    finally:
        await server.stop(1)
    return counts


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m bench.serve")
    sub = parser.add_subparsers(dest="role", required=True)
    emulator = sub.add_parser("emulator")
    emulator.add_argument("--delay-s", type=float, default=0.0)
    gateway = sub.add_parser("gateway")
    gateway.add_argument("--endpoint", required=True, help="the emulator's URL")
    gateway.add_argument("--uvloop", action="store_true", help="run on uvloop (a variant)")
    gateway.add_argument(
        "--event-loop", default="auto", help="the gateway's `event_loop` setting (as serve's)"
    )
    gateway.add_argument("--noop", action="store_true", help="bare grpc.aio, canned answers")
    gateway.add_argument(
        "--canned-dir", default="", help="--noop: answer as the gateway would to these CI answers"
    )
    gateway.add_argument(
        "--max-in-flight", type=int, default=0, help="[retry] max_in_flight_upstream"
    )
    gateway.add_argument(
        "--max-watchers-per-client", type=int, default=0, help="[tracking] max_watchers_per_client"
    )
    gateway.add_argument("--tracing", action="store_true", help="[tracing] enabled = true")
    gateway.add_argument("--src", default="", help="import `gateway` from this folder instead")
    gateway.add_argument(
        "--log-level", default="", help="instead of the default (INFO: an access-log line per RPC)"
    )
    otlp = sub.add_parser("otlp")
    otlp.add_argument("--count-file", required=True, help="JSON counts written at exit")
    for role in (emulator, gateway, otlp):
        role.add_argument("--cpu", type=int, default=None, help="pin to this CPU")
        role.add_argument("--max-lifetime-s", type=float, default=DEFAULT_MAX_LIFETIME_S)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    pin(args.cpu)
    if args.role == "emulator":
        asyncio.run(run_emulator(args))
        return 0
    if args.role == "otlp":
        counts = asyncio.run(run_otlp_receiver(args))
        Path(args.count_file).write_text(json.dumps(counts))
        return 0
    if args.noop:
        if args.uvloop:
            import uvloop

            uvloop.run(run_noop_gateway(args))
        else:
            asyncio.run(run_noop_gateway(args))
        return 0
    if args.src:
        # Another revision's gateway (a baseline): found before this tree's on sys.path. This
        # tree's `gateway` is already imported (bench.common signs with it), so it is forgotten
        # first; otherwise every import below would resolve to this tree again, and the
        # "baseline" would be this tree.
        for name in [name for name in sys.modules if name.partition(".")[0] == "gateway"]:
            del sys.modules[name]
        sys.path.insert(0, args.src)
    # As `ci-gateway serve` runs it: a revision before `gateway.api.process` ran asyncio.run.
    try:
        from gateway.api.process import run
    except ImportError:
        if args.uvloop:
            import uvloop

            uvloop.run(run_gateway(args))
        else:
            asyncio.run(run_gateway(args))
        return 0
    run(run_gateway(args), event_loop="uvloop" if args.uvloop else args.event_loop)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
