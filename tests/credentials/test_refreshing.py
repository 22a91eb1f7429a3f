"""Temporary credentials are renewed before they expire, and an expired token is never sent.

Time is a `FakeClock` shared by the provider, the CI client's signer and the emulator, so an
hour of credential lifetime passes in microseconds and every window boundary is exact. STS is a
test double that mints credentials and tells the emulator about them, as CAM would.
"""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

import pytest

from ci_emulator.server import RunningEmulator
from gateway import rpc_context
from gateway.config.settings import Settings
from gateway.credentials import Credentials, has_valid_credentials
from gateway.credentials.refreshing import FetchError, RefreshingCredentialsProvider
from gateway.errors import NoCredentialsError, Reason, UpstreamError
from gateway.logs import JsonFormatter
from gateway.model import Target
from gateway.rpc_context import RpcScope
from gateway.upstream.client import CiClient
from gateway.upstream.retry import Deadline
from gateway.upstream.transport import Transport
from tests.access.helpers import (
    FakeClock,
    FakeSleep,
    RecordingCredentials,
    canary_credentials,
    log_text,
)
from tests.conftest import BUCKET, REGION, one_bucket_config
from tests.fixtures.servers import StartEmulator

LIFETIME_S = 3600.0
MINUTE = 60.0


class StsDouble:
    """Mints temporary credentials valid for `lifetime_s` from the clock's now; can be made to
    fail, or to wait at a gate so a test can look at the world while a fetch is in flight."""

    def __init__(self, clock: FakeClock, registry: RecordingCredentials | None = None) -> None:
        self.clock = clock
        self.registry = registry
        self.calls = 0
        self.issued: list[Credentials] = []
        self.failing = False
        self.lifetime_s = LIFETIME_S
        self.gate: asyncio.Event | None = None

    async def __call__(self) -> Credentials:
        self.calls += 1
        if self.gate is not None:
            await self.gate.wait()
        if self.failing:
            raise FetchError("STS AssumeRole failed: InternalError (RequestId r-1)")
        fresh = canary_credentials(
            f"tmp{len(self.issued)}", token=True, expires_at=self.clock() + self.lifetime_s
        )
        self.issued.append(fresh)
        if self.registry is not None:
            self.registry.add(fresh)
        return fresh


def provider_for(sts: StsDouble, **kwargs: object) -> RefreshingCredentialsProvider:
    return RefreshingCredentialsProvider(sts, name="sts:test", clock=sts.clock, **kwargs)  # type: ignore[arg-type]


async def test_advisory_window_renews_in_the_background_while_calls_keep_the_old_keys() -> None:
    clock = FakeClock()
    sts = StsDouble(clock)
    provider = provider_for(sts)
    await provider.start()
    try:
        first = await provider.get()
        clock.advance(LIFETIME_S - 16 * MINUTE)
        assert await provider.get() is first and sts.calls == 1  # not in any window yet

        clock.advance(2 * MINUTE)  # 14 min left: advisory
        sts.gate = asyncio.Event()
        assert await provider.get() is first  # returned at once, refresh started behind it
        await asyncio.sleep(0)  # let the background fetch reach the gate
        assert sts.calls == 2
        assert await provider.get() is first  # still in flight: old keys, no second fetch
        assert sts.calls == 2
        sts.gate.set()
        await asyncio.wait_for(provider.wait_for_generation(2), 5)
        assert sts.calls == 2
        assert await provider.get() is sts.issued[1]
    finally:
        await provider.close()


async def test_mandatory_window_callers_share_one_refresh_and_get_the_new_keys() -> None:
    clock = FakeClock()
    sts = StsDouble(clock)
    provider = provider_for(sts)
    await provider.start()
    try:
        clock.advance(LIFETIME_S - 9 * MINUTE)  # 9 min left: mandatory
        sts.gate = asyncio.Event()
        waiting = [asyncio.create_task(provider.get()) for _ in range(20)]
        await asyncio.sleep(0)
        assert not any(task.done() for task in waiting)  # they wait for the new keys
        sts.gate.set()
        results = await asyncio.wait_for(asyncio.gather(*waiting), 5)
        assert sts.calls == 2  # one fetch for all twenty
        assert all(result is sts.issued[1] for result in results)
    finally:
        await provider.close()


async def test_a_caller_giving_up_does_not_cancel_the_shared_refresh() -> None:
    clock = FakeClock()
    sts = StsDouble(clock)
    provider = provider_for(sts)
    await provider.start()
    try:
        clock.advance(LIFETIME_S - 9 * MINUTE)
        sts.gate = asyncio.Event()
        impatient = asyncio.create_task(provider.get())
        await asyncio.sleep(0)
        impatient.cancel()
        with pytest.raises(asyncio.CancelledError):
            await impatient
        sts.gate.set()
        await asyncio.wait_for(provider.wait_for_generation(2), 5)
        assert sts.calls == 2
    finally:
        await provider.close()


async def test_failed_refresh_keeps_valid_keys_then_refuses_rather_than_send_expired_ones(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    clock = FakeClock()
    sts = StsDouble(clock)
    provider = provider_for(sts)
    await provider.start()
    try:
        current = await provider.get()
        sts.failing = True
        clock.advance(LIFETIME_S - 9 * MINUTE)
        assert await provider.get() is current  # refresh failed, keys still good for 9 min
        assert has_valid_credentials(provider)
        # Later calls neither wait for nor start another fetch: that is the backoff's to do.
        for _ in range(5):
            assert await provider.get() is current
        assert sts.calls == 2
        assert "refresh failed" in caplog.text and "InternalError" in log_text(caplog)

        clock.advance(8 * MINUTE + 10)  # 50 s left: an attempt could reach CI after expiry
        with pytest.raises(NoCredentialsError, match="renewing them failed") as refused:
            await provider.get()
        assert refused.value.reason is Reason.CREDENTIALS_UNAVAILABLE
        assert not has_valid_credentials(provider)

        sts.failing = False  # STS is back: the retry the refusal started renews them
        await asyncio.wait_for(provider.wait_for_generation(2), 5)
        assert await provider.get() is sts.issued[1]
        logged = log_text(caplog)
        assert current.secret_key not in logged and str(current.token) not in logged
    finally:
        await provider.close()


async def test_credentials_that_arrive_already_expiring_are_refused() -> None:
    clock = FakeClock()
    sts = StsDouble(clock)
    sts.lifetime_s = 30  # inside the safety margin from the start
    provider = provider_for(sts)
    await provider.start()
    try:
        with pytest.raises(NoCredentialsError, match="yet"):
            await provider.get()
        assert provider.generation == 0
    finally:
        await provider.close()


async def test_background_refresh_is_jittered_before_the_advisory_window_and_backs_off() -> None:
    clock = FakeClock()
    sts = StsDouble(clock)
    sleep = FakeSleep(clock)
    provider = provider_for(sts, sleep=sleep, rng=lambda: 0.5, jitter_s=120.0)
    await provider.start()
    try:
        # Due 15 min before expiry, minus half of the 2-minute jitter.
        assert await sleep.next_delay() == LIFETIME_S - 15 * MINUTE - MINUTE
        sleep.release()  # the clock moves there; no call needed to trigger the refresh
        assert await sleep.next_delay() == LIFETIME_S - 15 * MINUTE - MINUTE
        assert sts.calls == 2 and provider.generation == 2

        sts.failing = True
        sleep.release()
        delays = []
        for _ in range(6):
            delays.append(await sleep.next_delay())
            sleep.release()
        assert delays == [5.0, 10.0, 20.0, 40.0, 60.0, 60.0]  # capped backoff after failures
    finally:
        await provider.close()


async def test_short_lived_credentials_get_proportionally_shorter_windows() -> None:
    clock = FakeClock()
    sts = StsDouble(clock)
    sts.lifetime_s = 900.0  # 15 min: the standard windows would refresh on every call
    provider = provider_for(sts)
    await provider.start()
    try:
        clock.advance(400)  # 500 s left: beyond half the lifetime, no refresh yet
        await provider.get()
        assert sts.calls == 1
        clock.advance(100)  # 400 s left: advisory (half of 900 s)
        await provider.get()
        await asyncio.wait_for(provider.wait_for_generation(2), 5)
        assert sts.calls == 2
    finally:
        await provider.close()


# End to end: the CI client signs with the provider's credentials against the emulator. -------


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def registry(clock: FakeClock) -> RecordingCredentials:
    return RecordingCredentials(clock=clock)


@pytest.fixture
async def timed_emulator(
    emulators: StartEmulator, bucket_dir: Path, clock: FakeClock, registry: RecordingCredentials
) -> RunningEmulator:
    return await emulators(one_bucket_config(bucket_dir, registry, clock=clock))


async def test_the_gateway_renews_before_expiry_and_never_sends_an_expired_token(
    clock: FakeClock, registry: RecordingCredentials, timed_emulator: RunningEmulator
) -> None:
    sts = StsDouble(clock, registry)
    provider = provider_for(sts)
    client = CiClient(
        settings=Settings(endpoint_url=timed_emulator.url),
        credentials=provider,
        transport=Transport(max_body_bytes=1 << 20),
        clock=clock,
    )
    target = Target(BUCKET, REGION)

    async def call() -> None:
        await client.list_jobs(target, {"tag": "MediaInfo"}, Deadline(10))

    await provider.start()
    try:
        await call()
        clock.advance(LIFETIME_S - 14 * MINUTE)  # advisory: the call uses the current keys
        await call()
        await asyncio.wait_for(provider.wait_for_generation(2), 5)
        await call()
        assert registry.ids == [c.secret_id for c in sts.issued[:1] * 2 + sts.issued[1:2]]

        sts.failing = True
        clock.advance(LIFETIME_S - 9 * MINUTE)  # mandatory, refresh fails: still valid, used
        await call()
        clock.advance(8 * MINUTE + 10)  # 50 s left and no renewal: refuse, send nothing
        sent = len(registry.seen)
        with pytest.raises(NoCredentialsError):
            await call()
        assert len(registry.seen) == sent

        clock.advance(MINUTE)  # now really expired: the emulator would refuse the token...
        sts.failing = False
        # ... but the retry the refusal started (its backoff had run out) renews them
        await asyncio.wait_for(provider.wait_for_generation(2), 5)
        await call()
        assert registry.ids[-1] == sts.issued[-1].secret_id
    finally:
        await provider.close()
        await client.close()

    expiry = {c.secret_id: c.expires_at or 0.0 for c in sts.issued}
    for secret_id, at in registry.seen:
        assert at < expiry[secret_id], "sent an expired token"


async def test_the_emulator_refuses_an_expired_token_so_the_check_above_means_something(
    clock: FakeClock, registry: RecordingCredentials, timed_emulator: RunningEmulator
) -> None:
    """Control: with expiry ignored (static credentials), CI answers ExpiredToken."""
    from gateway.credentials import StaticCredentialsProvider

    expired = canary_credentials("late", token=True, expires_at=clock() + 30)
    registry.add(expired)
    clock.advance(60)
    client = CiClient(
        settings=Settings(endpoint_url=timed_emulator.url),
        credentials=StaticCredentialsProvider(
            Credentials(expired.secret_id, expired.secret_key, expired.token), clock=clock
        ),
        transport=Transport(max_body_bytes=1 << 20),
        clock=clock,
    )
    try:
        with pytest.raises(UpstreamError) as caught:
            await client.list_jobs(Target(BUCKET, REGION), {"tag": "MediaInfo"}, Deadline(10))
        assert caught.value.code == "ExpiredToken"
    finally:
        await client.close()


class FormattedAtEmit(logging.Handler):
    """Each record as the gateway's JSON formatter writes it when it is logged: the request id
    comes from the RPC scope current at that moment (caplog formats later, outside it)."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.setFormatter(JsonFormatter())
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(self.format(record))


async def test_a_refresh_runs_outside_the_scope_of_the_call_that_started_it() -> None:
    """The fetch serves every caller: it must not run, nor log (a failed refresh's WARNING), as
    part of whichever call happened to start it, as if that call had failed."""
    clock = FakeClock()
    sts = StsDouble(clock)
    scopes: list[RpcScope | None] = []
    fetch = sts.__call__

    async def recording() -> Credentials:
        scopes.append(rpc_context.current())
        return await fetch()

    provider = RefreshingCredentialsProvider(recording, name="sts:test", clock=clock)
    handler = FormattedAtEmit()
    logging.getLogger("gateway.credentials").addHandler(handler)
    await provider.start()
    try:
        current = await provider.get()
        sts.failing = True
        clock.advance(LIFETIME_S - 9 * MINUTE)  # the mandatory window: this call waits
        scope = RpcScope("/ci.media.v1.MediaJobService/SubmitMediaJob", "call-7")
        token = rpc_context.enter(scope)
        try:
            assert await provider.get() is current
        finally:
            rpc_context.leave(token)
    finally:
        logging.getLogger("gateway.credentials").removeHandler(handler)
        await provider.close()
    assert scopes == [None, None]
    [failed] = [line for line in handler.lines if "refresh failed" in line]
    assert "request_id" not in failed and "call-7" not in failed
