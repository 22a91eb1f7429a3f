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
from dataclasses import replace

import aiohttp
import grpc
import pytest

from ci_emulator.server import RunningEmulator
from gateway._proto import media_pb2, service_pb2, service_pb2_grpc
from gateway.api.server import RunningGateway, start_gateway
from gateway.config.settings import Callbacks, Settings
from gateway.credentials import Credentials, StaticCredentialsProvider
from gateway.jobs.callbacks import callback_url
from gateway.model import Target
from tests.conftest import BUCKET, REGION, SAMPLE_KEY
from tests.integration.helpers import rich_error
from tests.integration.hold import Hold
from tests.jobs.helpers import TOKEN, xml_callback

CALLS = 12
WAIT_S = 10.0
# A drain with a grace of 0 and nothing in flight on the API port: well under the receiver's
# 10 s verify time-out towards CI.
DRAIN_BOUND_S = 3.0
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
    # Each ended by the gateway itself, with a status that says why (not grpc's bare one).
    reasons = [rich_error(result).error_info for result in results]  # type: ignore[arg-type]
    assert [info.reason if info else None for info in reasons] == ["SHUTTING_DOWN"] * CALLS
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


async def test_a_callback_being_checked_with_ci_does_not_hold_the_drain_past_its_grace(
    settings: Settings, credentials: Credentials, emulator: RunningEmulator
) -> None:
    """The drain's bound is `shutdown_grace_s` (what the README tells operators to keep, with
    the preStop sleep, below the pod's terminationGracePeriodSeconds): a callback the receiver
    is still checking with CI when it begins must not add its verify time-out to it."""
    hold = Hold(1)
    running = await start_gateway(
        replace(
            settings, callbacks=Callbacks(listen="127.0.0.1:0", public_url="auto", token=TOKEN)
        ),
        StaticCredentialsProvider(credentials),
    )
    try:
        assert running.tracking.receiver is not None
        url = callback_url(running.tracking.receiver.base_url, TOKEN, Target(BUCKET, REGION))
        emulator.state.request_hooks.append(hold)
        claimed = media_pb2.JobsDetail(job_id="j" + "0" * 32, state_text="Success")
        async with aiohttp.ClientSession() as http:
            posted = asyncio.ensure_future(http.post(url, data=xml_callback(claimed)))
            await asyncio.wait_for(hold.full.wait(), WAIT_S)  # the receiver is asking CI
            await asyncio.wait_for(running.stop(grace_s=0), DRAIN_BOUND_S)
            posted.cancel()
            await asyncio.gather(posted, return_exceptions=True)
    finally:
        hold.release.set()
        await running.stop(grace_s=0)
