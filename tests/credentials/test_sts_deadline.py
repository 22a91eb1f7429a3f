"""A call waits for temporary credentials no longer than its own deadline allows.

STS is the loopback stand-in (`tests.fixtures.accounts.StsEndpoint`) reached through Tencent's
SDK, made to hang (each request held until the test releases it), so a call that waited for it
would wait out the SDK's 10 s time-out. A call with a short deadline instead:

- without usable keys in hand (the first keys), fails near its deadline with UNAVAILABLE
  (CREDENTIALS_UNAVAILABLE: nothing was sent to CI), naming the source and no secret;
- with usable keys in hand (the mandatory window, before expiry), waits for the new ones for
  part of its time and then signs with those it has: served, within its deadline.

Either way the one fetch goes on, and the calls after it get the new keys once STS answers.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator

import grpc
import pytest

from ci_emulator.server import RunningEmulator
from gateway._proto import service_pb2, service_pb2_grpc
from gateway.config.settings import Settings
from gateway.credentials import Credentials
from gateway.credentials.refreshing import RefreshingCredentialsProvider
from gateway.errors import NoCredentialsError, Reason
from gateway.model import Target
from gateway.upstream.client import CiClient
from gateway.upstream.retry import Deadline
from gateway.upstream.transport import Transport
from tests.access.helpers import (
    CANARY,
    FakeClock,
    FakeSleep,
    RecordingCredentials,
    assert_no_canary,
    log_text,
)
from tests.conftest import BUCKET, REGION, SAMPLE_KEY
from tests.credentials.test_sts import fetcher
from tests.fixtures.accounts import ROLE, Serve, StsEndpoint

SHORT_S = 2.0
# A short call's end past its deadline, at most: far below the SDK's 10 s time-out.
LATE_S = 1.0
WAIT_S = 5.0
TARGET = Target(BUCKET, REGION)


@pytest.fixture
async def hanging_sts(sts: StsEndpoint) -> AsyncIterator[StsEndpoint]:
    """STS holding every request until the test sets its gate (at the end, at the latest:
    never leave the SDK's worker thread waiting)."""
    sts.gate = asyncio.Event()
    try:
        yield sts
    finally:
        sts.gate.set()


def secrets_of(sts: StsEndpoint, base: Credentials) -> list[str]:
    issued = [c.secret_key for c in sts.issued] + [str(c.token) for c in sts.issued]
    return [base.secret_key, *issued, CANARY]


async def test_a_call_waits_for_the_first_keys_no_longer_than_its_deadline(
    hanging_sts: StsEndpoint,
    emulator2: RunningEmulator,
    settings2: Settings,
    seen: RecordingCredentials,
    upstream_keys: Credentials,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    sts = hanging_sts
    provider = RefreshingCredentialsProvider(fetcher(sts, upstream_keys), name=f"sts:{ROLE}")
    client = CiClient(
        settings=settings2, credentials=provider, transport=Transport(max_body_bytes=1 << 20)
    )
    errors: list[NoCredentialsError] = []
    try:
        for _ in range(2):  # the second joins the fetch the first started
            started = time.monotonic()
            with pytest.raises(NoCredentialsError) as caught:
                await asyncio.wait_for(
                    client.get_media_info(TARGET, SAMPLE_KEY, "", Deadline(SHORT_S)), SHORT_S * 15
                )
            assert time.monotonic() - started < SHORT_S + LATE_S
            errors.append(caught.value)
        assert len(sts.requests) == 1  # one fetch, still held by STS
        assert seen.ids == []  # nothing sent to CI

        assert sts.gate is not None
        sts.gate.set()  # STS answers: the fetch the short calls gave up on ends
        await asyncio.wait_for(provider.wait_for_generation(1), WAIT_S)
        await client.get_media_info(TARGET, SAMPLE_KEY, "", Deadline(WAIT_S))
        assert seen.ids == [sts.issued[0].secret_id]
        assert len(sts.requests) == 1
    finally:
        await provider.close()
        await client.close()
    for error in errors:
        assert error.status is grpc.StatusCode.UNAVAILABLE
        assert error.reason is Reason.CREDENTIALS_UNAVAILABLE
        assert f"sts:{ROLE}" in str(error) and "deadline" in str(error)
    assert_no_canary([*map(str, errors), log_text(caplog)], secrets_of(sts, upstream_keys))


async def test_in_the_mandatory_window_a_short_call_signs_with_the_keys_in_hand(
    hanging_sts: StsEndpoint,
    serve: Serve,
    seen: RecordingCredentials,
    upstream_keys: Credentials,
) -> None:
    """The last 9 minutes of the keys (the provider's clock is moved; CI's is real, so the keys
    stay good for CI), the refresh hanging in STS: a call with a 2 s deadline is answered in
    time, signed with the keys in hand, instead of DEADLINE_EXCEEDED while it waits for STS."""
    sts = hanging_sts
    gate, sts.gate = sts.gate, None  # the first keys come at once
    clock = FakeClock()
    sts.clock = clock
    background = FakeSleep()  # the renewal loop sleeps until the test says
    provider = RefreshingCredentialsProvider(
        fetcher(sts, upstream_keys), name=f"sts:{ROLE}", clock=clock, sleep=background
    )
    await provider.start()
    try:
        gateway = await serve(credentials=provider)
        first = sts.issued[0]
        await background.next_delay()
        clock.advance((first.expires_at or 0.0) - clock() - 9 * 60)  # the mandatory window
        sts.gate = gate
        async with grpc.aio.insecure_channel(gateway.address) as channel:
            stub = service_pb2_grpc.MediaJobServiceStub(channel)
            request = service_pb2.ListMediaJobsRequest(size=1)
            for _ in range(2):  # the second joins the refresh the first started
                started = time.monotonic()
                await stub.ListMediaJobs(request, timeout=SHORT_S)
                assert time.monotonic() - started < SHORT_S
            # Two listings, signed with the keys in hand. The look-up of the queue they would
            # name runs under a deadline of its own (`default_queue.LOOKUP_TIMEOUT_S`), so it
            # waits for the refresh; each listing waits for it half its time, then goes without.
            assert seen.ids == [first.secret_id] * 2
            await sts.wait_for_requests(2)
            assert len(sts.requests) == 2  # one refresh, held by STS

            assert sts.gate is not None
            sts.gate.set()
            await asyncio.wait_for(provider.wait_for_generation(2), WAIT_S)
            await stub.ListMediaJobs(request, timeout=SHORT_S)
            assert seen.ids[-1] == sts.issued[1].secret_id
    finally:
        await provider.close()
