"""The gateway's own Python per call, in process: `python -m bench.inproc`.

What issue 16 asks us to cut is the CPU the gateway spends per RPC on its own code. Under load
that figure drowns in grpc's and aiohttp's work and in the machine's noise (two shared CPUs),
so this harness takes both out and keeps everything else as `ci-gateway serve` runs it:

* the server's interceptor chain as `gateway.api.server.api_interceptors` builds it
  (observability with metrics and the JSON access line at INFO, calls counted in flight with
  the server's bounds as `api_in_flight` builds them, client access in sidecar mode, the
  malformed-request guard), asked for the handler on every call as grpc asks;
* `MediaJobService` as `gateway.api.server.media_job_service` builds it, on the tracking
  runtime of the default settings (embedded submit store: exactly-once on, validation, rich
  errors), with the request read (deserialized) and the answer serialized by the handler's
  own functions;
* the real `CiClient` (headers, Content-MD5, signing, retry, telemetry sinks, decode), whose
  `Transport` answers at once with CI's answers saved in `bench/answers/` (the emulator's, as
  `bench.throughput.capture_bodies` gets them): no socket, no aiohttp.

Each call runs in a task of its own, as grpc.aio runs each RPC. Two ways to read it:

* wall time: `--reps` batches of `--calls` calls per operation; the figure is the fastest
  batch's µs per call (the median and slowest are shown: a loaded machine only slows batches);
* instructions (`--callgrind`): the same operation run under `valgrind --tool=callgrind` with
  `--calls N` and `2N`, and the difference divided by N: the instructions of N calls, without
  the start-up. `time.time` is frozen in those runs before `gateway` is imported (`_FROZEN`):
  with the wall clock running, the signing window, the log's cached timestamp and the store's
  clock turned over every few dozen calls as valgrind's speed varied, and one tree's count
  moved by up to 5k instructions between runs; frozen, runs agree within ~0.5% (sessions 11
  and 12 measured their steps so). Repeatable on a busy machine, where the wall time is not.

The access log goes to a temporary file, and the run checks that it holds one line per call.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import tempfile
import time
from collections.abc import Callable, Coroutine, Sequence
from pathlib import Path
from typing import Any

import grpc
from multidict import CIMultiDict, CIMultiDictProxy

from bench.common import (
    BUCKET,
    OBJECT_KEY,
    REGION,
    SECRET_ID,
    SECRET_KEY,
    Spread,
    callgrind_per_call,
)
from gateway import logs
from gateway._proto import media_pb2, service_pb2, service_pb2_grpc
from gateway.access.interceptor import ClientAccess
from gateway.api.metrics import GatewayMetrics
from gateway.api.server import (
    api_in_flight,
    api_interceptors,
    media_job_service,
    upstream_telemetry,
)
from gateway.config.settings import Settings
from gateway.credentials import Credentials, StaticCredentialsProvider
from gateway.jobs.runtime import start_tracking
from gateway.upstream.client import CiClient
from gateway.upstream.transport import HttpRequest, HttpResponse, Transport

ANSWERS = Path(__file__).resolve().parent / "answers"
SERVICE = "/ci.media.v1.MediaJobService/"
OPERATIONS = ("submit", "describe", "list")
USER_AGENT = "grpc-python-asyncio/1.66.0 grpc-c/43.0.0 (linux; chttp2)"
CALLER_DEADLINE_S = 30.0


class CannedTransport(Transport):
    """CI answering at once: a submit gets the saved submit answer, a GET of `/jobs` the saved
    list of 10, a GET of `/jobs/<id>` the saved describe."""

    def __init__(self) -> None:
        super().__init__(max_body_bytes=1)
        headers = CIMultiDict(
            {
                "Content-Type": "application/xml",
                "x-ci-request-id": "NjVmZTdhYjVfNmM3ZDIwMDlfYmVuY2g=",
                "Server": "tencent-ci",
            }
        )
        self._headers = CIMultiDictProxy(headers)
        self._bodies = {name: (ANSWERS / f"{name}.xml").read_bytes() for name in OPERATIONS}
        self.sent = 0

    async def send(
        self, request: HttpRequest, *, connect_timeout: float, total_timeout: float
    ) -> HttpResponse:
        self.sent += 1
        if request.method == "POST":
            name = "submit"
        elif request.url.split("?", 1)[0].endswith("/jobs"):
            name = "list"
        else:
            name = "describe"
        return HttpResponse(200, "OK", self._headers, self._bodies[name])

    async def close(self) -> None:
        pass


class _Server:
    """Collects what `add_MediaJobServiceServicer_to_server` registers."""

    def __init__(self) -> None:
        self.handlers: dict[str, Any] = {}

    def add_generic_rpc_handlers(self, handlers: Sequence[Any]) -> None:
        pass

    def add_registered_method_handlers(self, service: str, handlers: dict[str, Any]) -> None:
        for name, handler in handlers.items():
            self.handlers[f"/{service}/{name}"] = handler


class _Details:
    __slots__ = ("invocation_metadata", "method")

    def __init__(self, method: str, metadata: tuple[tuple[str, str], ...]) -> None:
        self.method = method
        self.invocation_metadata = metadata


class FakeContext:
    """The parts of `grpc.aio.ServicerContext` the gateway touches on a successful call."""

    def __init__(
        self,
        metadata: tuple[tuple[str, str], ...],
        request: bytes,
        deserializer: Callable[[bytes], Any],
    ) -> None:
        self._metadata = metadata
        self._trailers: tuple[tuple[str, str], ...] = ()
        self._request = request
        self._deserializer = deserializer

    async def read(self) -> Any:
        """The call's request, deserialized as grpc's `read` does it (at once: it has come)."""
        return self._deserializer(self._request)

    def invocation_metadata(self) -> tuple[tuple[str, str], ...]:
        return self._metadata

    def set_trailing_metadata(self, metadata: tuple[tuple[str, str], ...]) -> None:
        self._trailers = tuple(metadata)

    def trailing_metadata(self) -> tuple[tuple[str, str], ...]:
        return self._trailers

    def time_remaining(self) -> float:
        return CALLER_DEADLINE_S

    def peer(self) -> str:
        return "ipv4:127.0.0.1:51234"

    def peer_identities(self) -> None:
        return None

    def auth_context(self) -> dict[str, list[bytes]]:
        return {}

    def code(self) -> None:
        return None

    async def abort(self, code: grpc.StatusCode, details: str = "", metadata: Any = ()) -> None:
        raise AssertionError(f"the harness's call failed: {code.name} {details}")


REQUESTS: dict[str, tuple[str, bytes]] = {
    "submit": (
        "SubmitMediaJob",
        service_pb2.SubmitMediaJobRequest(
            request=media_pb2.Request(tag="MediaInfo", input=media_pb2.Input(object=OBJECT_KEY))
        ).SerializeToString(),
    ),
    "describe": (
        "DescribeMediaJobs",
        service_pb2.DescribeMediaJobsRequest(
            job_ids=["j01551e51ad8cc611028369d37cdd7c21"]
        ).SerializeToString(),
    ),
    "list": (
        "ListMediaJobs",
        service_pb2.ListMediaJobsRequest(size=10).SerializeToString(),
    ),
}


class Harness:
    """The gateway's per-call path, assembled as `start_gateway` assembles it."""

    def __init__(self, log_path: Path) -> None:
        self.log_path = log_path
        self.transport = CannedTransport()
        self._stack = contextlib.AsyncExitStack()
        self.calls = 0

    async def __aenter__(self) -> Harness:
        settings = Settings(
            listen="127.0.0.1:0",
            default_bucket=BUCKET,
            default_region=REGION,
            endpoint_url="http://127.0.0.1:9",
        )
        stream = self._stack.enter_context(self.log_path.open("w"))
        logs.configure(settings.log_level, settings.log_format, stream=stream)
        metrics = GatewayMetrics()
        client = CiClient(
            settings=settings,
            credentials=StaticCredentialsProvider(Credentials(SECRET_ID, SECRET_KEY)),
            transport=self.transport,
            telemetry=upstream_telemetry(metrics),
        )
        tracking = await start_tracking(settings, client)
        self._stack.push_async_callback(tracking.close)
        server = _Server()
        service_pb2_grpc.add_MediaJobServiceServicer_to_server(
            media_job_service(client, settings, tracking),
            server,  # type: ignore[arg-type]
        )
        self._registered = server.handlers
        # Counted as the server counts its calls: the cap, request memory, receive time-out.
        self._chain = api_interceptors(
            settings, ClientAccess.sidecar(), metrics, api_in_flight(settings)
        )
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self._stack.aclose()

    async def _continuation(self, details: grpc.HandlerCallDetails) -> Any:
        return self._registered.get(details.method)

    def call(self, operation: str) -> Callable[[], Coroutine[Any, Any, bytes]]:
        """One RPC of `operation` as grpc.aio serves it: handler lookup through the chain, the
        wrapped behavior (which reads and deserializes the request), serialize."""
        name, raw = REQUESTS[operation]
        method = SERVICE + name
        metadata = (("user-agent", USER_AGENT),)
        details = _Details(method, metadata)
        chain = self._chain
        continuation = self._continuation

        async def rpc() -> bytes:
            handler: Any = await chain.intercept_service(continuation, details)  # type: ignore[arg-type]
            # The API's methods read their own request (`gateway.api.receive_timeout`).
            context = FakeContext(metadata, raw, handler.request_deserializer)
            response = await handler.stream_unary(None, context)
            self.calls += 1
            return bytes(handler.response_serializer(response))

        return rpc

    def access_lines(self) -> int:
        for handler in logging.getLogger().handlers:
            handler.flush()
        with self.log_path.open("rb") as log:
            return sum(1 for line in log if b'"logger":"gateway.access"' in line)


async def _batch(rpc: Callable[[], Coroutine[Any, Any, bytes]], calls: int) -> float:
    """µs per call over `calls` calls, each in a task of its own."""
    loop = asyncio.get_running_loop()
    started = time.perf_counter()
    for _ in range(calls):
        await loop.create_task(rpc())
    return (time.perf_counter() - started) / calls * 1e6


async def measure(operations: Sequence[str], *, calls: int, reps: int, warmup: int) -> None:
    with tempfile.TemporaryDirectory(prefix="ci-bench-inproc-") as folder:
        async with Harness(Path(folder) / "gateway.log") as harness:
            for operation in operations:
                rpc = harness.call(operation)
                await _batch(rpc, warmup)
                batches = [await _batch(rpc, calls) for _ in range(reps)]
                spread = Spread.of(batches)
                print(
                    f"{operation:9s} {min(batches):7.1f} µs/call (fastest of {reps} x {calls}; "
                    f"median {spread.median:.1f}, slowest {spread.max:.1f})",
                    flush=True,
                )
            lines = harness.access_lines()
            if lines != harness.calls:
                raise SystemExit(f"{lines} access lines for {harness.calls} calls")


# This module run with `time.time` frozen at its first reading, set before anything imports it.
_FROZEN = (
    "import runpy, time; now = time.time(); time.time = lambda: now; "
    "runpy.run_module('bench.inproc', run_name='__main__', alter_sys=True)"
)


def _argv(operation: str, warmup: int) -> Callable[[int], list[str]]:
    def argv(calls: int) -> list[str]:
        options = ["--only", operation, "--calls", str(calls), "--reps", "1", "--warmup"]
        return ["-c", _FROZEN, *options, str(warmup)]

    return argv


def callgrind(operations: Sequence[str], *, calls: int, warmup: int) -> None:
    for operation in operations:
        per_call = callgrind_per_call(_argv(operation, warmup), calls)
        print(f"{operation:9s} {per_call:10,.0f} instructions/call ({calls} calls)", flush=True)


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.inproc", description=__doc__)
    parser.add_argument("--only", default=",".join(OPERATIONS), help="submit,describe,list")
    parser.add_argument("--calls", type=int, default=2000, help="calls per batch")
    parser.add_argument("--reps", type=int, default=7, help="batches per operation")
    parser.add_argument("--warmup", type=int, default=300, help="calls before the batches")
    parser.add_argument(
        "--callgrind", action="store_true", help="instructions per call (valgrind) instead"
    )
    args = parser.parse_args(argv)
    operations = [name for name in args.only.split(",") if name]
    unknown = set(operations) - set(OPERATIONS)
    if unknown:
        parser.error(f"unknown operations: {', '.join(sorted(unknown))}")
    if args.callgrind:
        callgrind(operations, calls=args.calls, warmup=args.warmup)
    else:
        asyncio.run(measure(operations, calls=args.calls, reps=args.reps, warmup=args.warmup))


if __name__ == "__main__":
    main()
