"""A drain that ends API calls counts them: the `stopped` line's `cut_off` is what an operator
reads after a shutdown to learn whether callers lost answers, so it must say how many did.

Calls are held inside the emulator (a request hook that waits for a release), so they are
certainly in flight when the drain starts; the grace then runs out, or a second signal forces
the end, and every held call is cut.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import grpc
import pytest

from ci_emulator.server import RunningEmulator
from gateway._proto import service_pb2, service_pb2_grpc
from gateway.api.server import RunningGateway, start_gateway
from gateway.config.settings import Settings
from gateway.credentials import Credentials, StaticCredentialsProvider
from tests.conftest import SAMPLE_KEY
from tests.integration.hold import Hold

CALLS = 12
WAIT_S = 10.0
Calls = list[asyncio.Task[service_pb2.MediaInfoResponse]]


@asynccontextmanager
async def held_calls(
    settings: Settings, credentials: Credentials, emulator: RunningEmulator
) -> AsyncIterator[tuple[RunningGateway, Calls, Hold]]:
    """A gateway with `CALLS` GetMediaInfo calls in flight, each held inside the emulator until
    the hold is released (at the end, at the latest); the gateway is stopped at the end."""
    hold = Hold(CALLS)
    emulator.state.request_hooks.append(hold)
    running = await start_gateway(settings, StaticCredentialsProvider(credentials))
    try:
        async with grpc.aio.insecure_channel(running.address) as channel:
            stub = service_pb2_grpc.MediaJobServiceStub(channel)
            request = service_pb2.GetMediaInfoRequest(object=SAMPLE_KEY)
            calls = [
                asyncio.ensure_future(stub.GetMediaInfo(request, timeout=WAIT_S * 3))
                for _ in range(CALLS)
            ]
            await asyncio.wait_for(hold.full.wait(), WAIT_S)
            yield running, calls, hold
    finally:
        hold.release.set()
        await running.stop(grace_s=0)


def stopped_lines(caplog: pytest.LogCaptureFixture) -> list[dict[str, object]]:
    return [
        record.__dict__["fields"]
        for record in caplog.records
        if record.name == "gateway.api.server" and record.getMessage() == "stopped"
    ]


@pytest.mark.parametrize("how", ["grace-ran-out", "forced"])
async def test_a_drain_counts_the_calls_it_cut_off(
    settings: Settings,
    credentials: Credentials,
    emulator: RunningEmulator,
    caplog: pytest.LogCaptureFixture,
    how: str,
) -> None:
    caplog.set_level(logging.INFO, logger="gateway.api.server")
    async with held_calls(settings, credentials, emulator) as (running, calls, _):
        assert running.in_flight.count == CALLS
        if how == "forced":
            running.force_stop()  # the second signal, before the grace could run
            await asyncio.wait_for(running.stop(grace_s=WAIT_S * 3), WAIT_S)
        else:
            await asyncio.wait_for(running.stop(grace_s=0.2), WAIT_S)
        results = await asyncio.gather(*calls, return_exceptions=True)
    assert all(isinstance(result, grpc.aio.AioRpcError) for result in results)
    assert [line["cut_off"] for line in stopped_lines(caplog)] == [CALLS]


async def test_a_drain_that_lets_every_call_finish_cuts_off_none(
    settings: Settings,
    credentials: Credentials,
    emulator: RunningEmulator,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger="gateway.api.server")
    async with held_calls(settings, credentials, emulator) as (running, calls, hold):
        stopping = asyncio.ensure_future(running.stop(grace_s=WAIT_S * 3))
        hold.release.set()  # every held call now gets its answer within the grace
        replies = await asyncio.wait_for(asyncio.gather(*calls), WAIT_S)
        await asyncio.wait_for(stopping, WAIT_S)
    assert all(reply.media_info.format.num_stream for reply in replies)
    assert [line["cut_off"] for line in stopped_lines(caplog)] == [0]
