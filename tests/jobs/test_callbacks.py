"""CI's job callbacks, delivered by the emulator (or forged by the test) to the gateway's
receiver: genuine ones wake watchers long before the next poll; forged ones change nothing."""

from __future__ import annotations

import asyncio
import io
from dataclasses import replace
from pathlib import Path
from typing import Any

import aiohttp
import grpc
import pytest

from ci_emulator.config import CallbackSettings
from ci_emulator.server import RunningEmulator
from ci_emulator.state import EmulatorState
from gateway._proto import media_pb2
from gateway.config.settings import Callbacks, Settings, Tracking
from gateway.credentials import Credentials
from gateway.jobs.callbacks import MAX_CALLBACK_BYTES, callback_url
from gateway.model import Target
from tests.conftest import BUCKET, REGION, one_bucket_config, settings_for
from tests.fixtures.servers import StartEmulator
from tests.integration.hold import HOLD_S, Hold
from tests.integration.test_jobs import assert_matches_sample
from tests.jobs.helpers import (
    TOKEN,
    Call,
    Gateway,
    assert_ended,
    gateway,
    json_callback,
    next_detail,
    submit,
    watch,
    xml_callback,
)

M = media_pb2
# The first look comes after the linger; the next would come a minute later, far beyond the
# time these tests take: whatever a watcher learns after its first message came by callback.
SLOW_POLLS = Tracking(poll_initial_s=60.0, poll_max_s=60.0)
RECEIVER = Callbacks(listen="127.0.0.1:0", public_url="auto", token=TOKEN)
TARGET = Target(BUCKET, REGION)


def with_receiver(settings: Settings, endpoint_url: str) -> Settings:
    return replace(settings, endpoint_url=endpoint_url, tracking=SLOW_POLLS, callbacks=RECEIVER)


async def watching_a_waiting_job(gw: Gateway, state: EmulatorState) -> tuple[Call, M.JobsDetail]:
    """A job submitted while CI schedules nothing, a watch on it, and its first (Submitted)
    update: the job stays there until the test lets it go."""
    state.pause_scheduling()
    job = await submit(gw.stub)
    call = watch(gw.stub, job.job_id)
    first = await next_detail(call)
    assert first.state == M.JOB_STATE_SUBMITTED
    return call, first


@pytest.mark.parametrize(
    ("body_format", "as_array"),
    [("XML", False), ("JSON", False), ("JSON", True)],
    ids=["xml", "json-object", "json-array"],
)
async def test_a_callback_wakes_the_watchers_before_the_next_poll(
    emulators: StartEmulator,
    credentials: Credentials,
    bucket_dir: Path,
    body_format: str,
    as_array: bool,
) -> None:
    config = one_bucket_config(
        bucket_dir,
        {credentials.secret_id: credentials.secret_key},
        callbacks=CallbackSettings(backoff_s=0.01, json_array=as_array),
    )
    emulator = await emulators(config)
    async with gateway(with_receiver(settings_for(emulator), emulator.url), credentials) as gw:
        state = emulator.state
        state.pause_scheduling()
        job = await submit(gw.stub, call_back_format=body_format)
        expected_url = callback_url(gw.callback_base, TOKEN, TARGET)
        assert state.jobs[job.job_id].spec.callback == expected_url  # set by the gateway

        calls = [watch(gw.stub, job.job_id) for _ in range(3)]
        for call in calls:
            assert (await next_detail(call)).state == M.JOB_STATE_SUBMITTED
        describes = state.operations["DescribeMediaJob"]

        state.resume_scheduling()
        for call in calls:
            final = await next_detail(call)
            assert final.state == M.JOB_STATE_SUCCESS
            assert_matches_sample(final.operation.media_info)
            await assert_ended(call)
        (delivery,) = await state.wait_for_callbacks(1)
        assert (delivery.url, delivery.status) == (expected_url, 200)
        # One describe: the receiver checking the callback with CI, shared by all watchers.
        assert state.operations["DescribeMediaJob"] == describes + 1


async def test_a_clients_own_callback_is_left_alone(
    settings: Settings, credentials: Credentials, emulator: RunningEmulator
) -> None:
    emulator.state.pause_scheduling()
    async with gateway(with_receiver(settings, emulator.url), credentials) as gw:
        own = await submit(gw.stub, call_back="http://127.0.0.1:9/mine")
        suppressed = await submit(gw.stub, call_back="no")
        defaulted = await submit(gw.stub)
    jobs = emulator.state.jobs
    assert jobs[own.job_id].spec.callback == "http://127.0.0.1:9/mine"
    assert jobs[suppressed.job_id].spec.callback == "no"
    assert (jobs[defaulted.job_id].spec.callback or "").endswith(f"/{TOKEN}/{BUCKET}/{REGION}")


async def test_forged_callbacks_get_4xx_and_change_nothing(
    settings: Settings, credentials: Credentials, emulator: RunningEmulator
) -> None:
    state = emulator.state
    async with gateway(with_receiver(settings, emulator.url), credentials) as gw:
        call, first = await watching_a_waiting_job(gw, state)

        claimed = M.JobsDetail()
        claimed.CopyFrom(first)
        claimed.state, claimed.state_text = M.JOB_STATE_SUCCESS, "Success"  # "it finished"
        unknown = M.JobsDetail(job_id="j" + "0" * 32, state_text="Success")
        elsewhere = M.JobsDetail()
        elsewhere.CopyFrom(claimed)
        elsewhere.input.bucket_id = "other-1250000000"
        url = callback_url(gw.callback_base, TOKEN, TARGET)
        bomb = (
            b'<?xml version="1.0"?><!DOCTYPE r [<!ENTITY a "aaaaaaaaaa">'
            b'<!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;">]><Response><EventName>&b;</EventName>'
            b"</Response>"
        )
        cases: list[tuple[str, str, bytes, int]] = [
            ("wrong token", callback_url(gw.callback_base, "x" * 43, TARGET), b"", 404),
            ("bad bucket in path", url.replace(BUCKET, "Not_A_Bucket"), xml_callback(claimed), 404),
            ("malformed XML", url, b"<Response><EventName>TaskFinish", 400),
            ("neither XML nor JSON", url, b"job done", 400),
            ("entity bomb", url, bomb, 400),
            ("JSON array root", url, b"[]", 400),
            ("no JobsDetail", url, b'{"EventName": "TaskFinish"}', 400),
            ("other event", url, xml_callback(claimed).replace(b"TaskFinish", b"Other"), 400),
            ("another bucket's job", url, xml_callback(elsewhere), 400),
            ("unknown job", url, xml_callback(unknown), 422),
            ("state CI does not report (XML)", url, xml_callback(claimed), 422),
            ("state CI does not report (JSON)", url, json_callback(claimed), 422),
            ("too large", url, b"<" + b"x" * MAX_CALLBACK_BYTES, 413),
        ]
        describes = state.operations["DescribeMediaJob"]
        async with aiohttp.ClientSession() as http:
            for name, target_url, body, status in cases:
                # A BytesIO: aiohttp warns about (and the suite refuses) large raw bodies.
                async with http.post(target_url, data=io.BytesIO(body)) as answer:
                    assert answer.status == status, name
        # Only well-formed callbacks for this bucket were checked with CI, and none believed.
        assert state.operations["DescribeMediaJob"] == describes + 3
        latest = gw.tracker.latest(TARGET, first.job_id)
        assert latest is not None and latest.state == M.JOB_STATE_SUBMITTED

        # The genuine callback still works afterwards.
        state.resume_scheduling()
        assert (await next_detail(call)).state == M.JOB_STATE_SUCCESS
        await assert_ended(call)


async def test_a_callback_being_verified_does_not_hold_back_the_end_of_watches_at_drain(
    settings: Settings, credentials: Credentials, emulator: RunningEmulator
) -> None:
    """A drain ends every watch at once (UNAVAILABLE: its client watches again on another
    replica). A callback the receiver is still checking with CI when the drain begins (CI slow
    to answer; under load one nearly always is) must not hold that back: the receiver's stop
    waits for its requests, so it may come only after the watches have ended."""
    state = emulator.state
    async with gateway(with_receiver(settings, emulator.url), credentials) as gw:
        call, first = await watching_a_waiting_job(gw, state)

        hold = Hold(1)  # every CI request from here on waits inside the emulator
        state.request_hooks.append(hold)
        claimed = M.JobsDetail()
        claimed.CopyFrom(first)
        claimed.state, claimed.state_text = M.JOB_STATE_SUCCESS, "Success"
        url = callback_url(gw.callback_base, TOKEN, TARGET)
        async with aiohttp.ClientSession() as http:
            posted = asyncio.ensure_future(http.post(url, data=io.BytesIO(xml_callback(claimed))))
            try:
                async with asyncio.timeout(HOLD_S / 2):
                    await hold.full.wait()  # the receiver is asking CI about the callback
                stopping = asyncio.ensure_future(gw.running.stop(grace_s=30))
                with pytest.raises(grpc.aio.AioRpcError) as caught:
                    # Well before the hold gives up by itself (HOLD_S): the watch ended while
                    # the callback was still being verified.
                    async with asyncio.timeout(HOLD_S / 2):
                        await call.read()
                assert caught.value.code() is grpc.StatusCode.UNAVAILABLE
                assert not posted.done()
            finally:
                hold.release.set()
                answer = await posted
                answer.release()
            await stopping


@pytest.mark.parametrize(
    "queue",
    [
        {
            "call_back_type": "TDMQ",
            "call_back_mq_config": M.CallBackMqConfig(mq_region="gz", mq_mode="Queue", mq_name="t"),
        },
        {
            "call_back_type": "Kafka",
            "call_back_kafka_config": M.CallBackKafkaConfig(
                region="ap-guangzhou", instance_id="ckafka-1", topic="jobs"
            ),
        },
    ],
    ids=["tdmq", "kafka"],
)
async def test_a_job_reporting_to_a_message_queue_gets_no_gateway_callback(
    emulators: StartEmulator, credentials: Credentials, bucket_dir: Path, queue: dict[str, Any]
) -> None:
    """The caller chose where the job reports (TDMQ, Kafka): the gateway adds no CallBack URL
    of its own beside it (which CI might use instead) and follows the job by polling."""
    config = one_bucket_config(bucket_dir, {credentials.secret_id: credentials.secret_key})
    emulator = await emulators(config)
    async with gateway(with_receiver(settings_for(emulator), emulator.url), credentials) as gw:
        job = await submit(gw.stub, **queue)
    spec = emulator.state.jobs[job.job_id].spec
    assert (spec.callback_type, spec.callback) == (queue["call_back_type"], None)
