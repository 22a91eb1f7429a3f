"""Two gateway replicas sharing a real Redis: callbacks and exactly-once submits cross over."""

from __future__ import annotations

from dataclasses import replace

import grpc
import pytest
import redis.asyncio as aioredis

from ci_emulator.server import RunningEmulator
from gateway._proto import media_pb2
from gateway.config.settings import Callbacks, Settings, Shared, Tracking
from gateway.credentials import Credentials
from gateway.jobs.callbacks import callback_url
from gateway.jobs.redis_store import RedisSubmitStore
from gateway.model import Target
from tests.conftest import BUCKET, REGION, SAMPLE_KEY
from tests.integration.test_jobs import assert_matches_sample
from tests.integration.test_resilience import retry_in_doubt_on_two_replicas
from tests.jobs.conftest import free_port
from tests.jobs.helpers import TOKEN, assert_ended, gateway, next_detail, submit, watch

M = media_pb2
SLOW_POLLS = Tracking(poll_initial_s=60.0, poll_max_s=60.0)  # beyond the test: no second look


async def test_b_relays_a_callback_to_as_watcher_and_returns_as_job_for_its_request_id(
    settings: Settings,
    credentials: Credentials,
    emulator: RunningEmulator,
    redis_url: str,
    redis_client: object,  # flushes the database first
) -> None:
    # Both replicas hand CI the same CallBack URL, as behind one load balancer; CI reaches B.
    b_port = free_port()
    public = f"http://127.0.0.1:{b_port}"
    shared = Shared(redis_url=redis_url, fanout="redis", submit_store="redis")

    def replica(listen: str) -> Settings:
        callbacks = Callbacks(listen=listen, public_url=public, token=TOKEN)
        return replace(settings, tracking=SLOW_POLLS, callbacks=callbacks, shared=shared)

    state = emulator.state
    state.pause_scheduling()
    async with (
        gateway(replica("127.0.0.1:0"), credentials) as a,
        gateway(replica(f"127.0.0.1:{b_port}"), credentials) as b,
    ):
        request_id = "watch-replicas-0001"
        on_a = await submit(a.stub, request_id=request_id, operation=M.Operation(user_data="u"))
        on_b = await submit(b.stub, request_id=request_id, operation=M.Operation(user_data="u"))
        assert on_b.job_id == on_a.job_id
        assert state.jobs_created == 1
        assert state.jobs[on_a.job_id].spec.callback == callback_url(
            public, TOKEN, Target(BUCKET, REGION)
        )

        call = watch(a.stub, on_a.job_id)
        assert (await next_detail(call)).state == M.JOB_STATE_SUBMITTED

        state.resume_scheduling()
        final = await next_detail(call)  # via CI -> B's receiver -> Redis -> A's tracker
        assert final.state == M.JOB_STATE_SUCCESS
        assert final.operation.user_data == "u"
        assert_matches_sample(final.operation.media_info)
        await assert_ended(call)
        (delivery,) = await state.wait_for_callbacks(1)
        assert delivery.url.startswith(public) and delivery.status == 200
        assert b.tracker.stats().watchers == 0  # B had nobody watching: it only relayed


async def test_a_different_request_under_the_same_id_is_refused_on_the_other_replica(
    settings: Settings,
    credentials: Credentials,
    emulator: RunningEmulator,
    redis_url: str,
    redis_client: object,
) -> None:
    shared = replace(settings, shared=Shared(redis_url=redis_url, submit_store="redis"))
    emulator.state.pause_scheduling()
    async with gateway(shared, credentials) as a, gateway(shared, credentials) as b:
        await submit(a.stub, request_id="reused-1")
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await submit(b.stub, SAMPLE_KEY.replace("sample", "other"), request_id="reused-1")
        assert caught.value.code() is grpc.StatusCode.INVALID_ARGUMENT
    assert emulator.state.jobs_created == 1


async def test_two_replicas_retrying_a_submit_in_doubt_through_redis_create_one_job(
    settings: Settings,
    credentials: Credentials,
    emulator: RunningEmulator,
    redis_client: aioredis.Redis,  # flushes the database first
) -> None:
    """The Redis store's take-over is atomic too (`WATCH`): of two replicas retrying a record
    in doubt at once, one leads and the other waits for its outcome."""
    store = RedisSubmitStore(redis_client)
    answers = await retry_in_doubt_on_two_replicas(settings, credentials, emulator, store)
    assert len({answer.jobs_detail.job_id for answer in answers}) == 1
    assert emulator.state.jobs_created == 1
