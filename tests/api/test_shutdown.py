"""Graceful shutdown of a real `ci-gateway serve` process, run as PID 1 like in a container.

100 calls are held inside a slowed emulator when SIGTERM arrives: readiness turns NOT_SERVING
(the ops port and the plaintext health port say so too), new connections are refused, every
held call still completes OK once the emulator answers, and the process exits 0. As PID 1 of
its own PID namespace (`unshare --pid`), the kernel would ignore SIGTERM if the gateway had not
installed its own handler.
"""

from __future__ import annotations

import asyncio
import os
import signal
from collections.abc import Awaitable, Callable
from pathlib import Path

import aiohttp
import grpc
import pytest
from aiohttp import web

from ci_emulator.hosts import Target
from ci_emulator.server import RunningEmulator
from gateway._proto import service_pb2, service_pb2_grpc
from gateway.api.health import API_SERVICE, NOT_SERVING, OVERALL
from gateway.credentials import Credentials
from tests.api.conftest import get, health_status
from tests.conftest import BUCKET, REGION, SAMPLE_KEY
from tests.fixtures.serve_process import ServeProcess, StartServe, wait_until_serving

CALLS = 100
START_S = 60.0  # a cold interpreter importing grpc, protobuf, aiohttp and lxml
WAIT_S = 30.0


@pytest.fixture
async def start_serve(
    serve_processes: StartServe, emulator: RunningEmulator, credentials: Credentials
) -> Callable[[bool], Awaitable[ServeProcess]]:
    async def start(as_pid_1: bool) -> ServeProcess:
        return await serve_processes(
            "--listen", "127.0.0.1:0",
            "--metrics-listen", "127.0.0.1:0",
            "--health-listen", "127.0.0.1:0",
            "--endpoint-url", emulator.url,
            "--default-bucket", BUCKET,
            "--default-region", REGION,
            "--shutdown-grace-s", "30",
            "--log-format", "json",
            credentials=credentials,
            as_pid_1=as_pid_1,
        )  # fmt: skip

    return start


def gateway_pid(serve: ServeProcess) -> int:
    """The gateway's pid as seen from here: `unshare`'s only child."""
    parent = serve.process.pid
    children = Path(f"/proc/{parent}/task/{parent}/children").read_text().split()
    assert len(children) == 1, children
    return int(children[0])


async def test_sigterm_drains_100_in_flight_calls_as_pid_1(
    start_serve: Callable[[bool], Awaitable[ServeProcess]],
    emulator: RunningEmulator,
    credentials: Credentials,
) -> None:
    arrived = 0
    all_arrived, release = asyncio.Event(), asyncio.Event()

    async def slow_probe(request: web.Request, target: Target) -> web.StreamResponse | None:
        nonlocal arrived
        if target.path == "/" + SAMPLE_KEY:
            arrived += 1
            if arrived == CALLS:
                all_arrived.set()
            await release.wait()
        return None

    emulator.state.request_hooks.append(slow_probe)
    serve = await start_serve(True)
    listening = await serve.line("gateway listening", START_S)
    assert listening["pid"] == 1  # really PID 1 of its namespace
    assert listening["event_loop"] == "uvloop"  # the default where installed: drains on it too
    address, ops = listening["address"], f"http://{listening['ops_address']}"
    health_port = listening["health_address"]
    await wait_until_serving(address)

    async with grpc.aio.insecure_channel(address) as channel:
        stub = service_pb2_grpc.MediaJobServiceStub(channel)
        calls = [
            asyncio.ensure_future(
                stub.GetMediaInfo(service_pb2.GetMediaInfoRequest(object=SAMPLE_KEY), timeout=60)
            )
            for _ in range(CALLS)
        ]
        await asyncio.wait_for(all_arrived.wait(), WAIT_S)
        os.kill(gateway_pid(serve), signal.SIGTERM)

        draining = await serve.line("draining")
        assert draining["in_flight"] == CALLS
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=WAIT_S)) as http:
            assert await get(http, ops + "/readyz") == (503, "not ready: draining\n")
        async with grpc.aio.insecure_channel(health_port) as probe:  # what kubelet's probe sees
            assert await health_status(probe, API_SERVICE) == NOT_SERVING
            assert await health_status(probe, OVERALL) == NOT_SERVING
        async with grpc.aio.insecure_channel(address) as late:
            late_stub = service_pb2_grpc.MediaJobServiceStub(late)
            with pytest.raises(grpc.aio.AioRpcError) as refused:
                await late_stub.GetMediaInfo(
                    service_pb2.GetMediaInfoRequest(object=SAMPLE_KEY), timeout=5
                )
            assert refused.value.code() == grpc.StatusCode.UNAVAILABLE
        assert not any(call.done() for call in calls)  # all still held in the emulator

        release.set()
        replies = await asyncio.wait_for(asyncio.gather(*calls), WAIT_S)
    assert len(replies) == CALLS
    assert all(reply.media_info.format.num_stream for reply in replies)
    assert await serve.wait() == 0
    stopped = await serve.line("stopped", 1)
    assert stopped["cut_off"] == 0
    await serve.line("closed the HTTP session towards CI", 1)
    assert credentials.secret_key not in serve.log


async def test_sigint_with_nothing_in_flight_exits_0_at_once(
    start_serve: Callable[[bool], Awaitable[ServeProcess]],
) -> None:
    serve = await start_serve(False)
    await serve.line("gateway listening", START_S)
    serve.process.send_signal(signal.SIGINT)
    # The 30 s grace is not waited out: nothing is in flight.
    assert await serve.wait(timeout=10) == 0
    assert (await serve.line("stopped", 1))["cut_off"] == 0
