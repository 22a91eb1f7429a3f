"""MediaQueueService end to end through the emulator: describe, update (pause, rename, notify),
and what a submit to a paused or full queue tells the caller."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import grpc
import pytest
from lxml import etree

from ci_emulator.queues import QueueState
from ci_emulator.server import RunningEmulator
from gateway._proto import media_pb2, queues_pb2, service_pb2
from gateway.api.server import start_gateway
from gateway.config.settings import Retry
from gateway.credentials import Credentials, StaticCredentialsProvider
from tests.conftest import BUCKET, SAMPLE_KEY, one_bucket_config, settings_for
from tests.fixtures.servers import StartEmulator
from tests.integration.helpers import rich_error
from tests.resources.conftest import Stubs, stubs_on

SUBMIT = service_pb2.SubmitMediaJobRequest(
    request=media_pb2.Request(input=media_pb2.Input(object=SAMPLE_KEY))
)


def default_queue_id(emulator: RunningEmulator) -> str:
    return emulator.state.default_queue[BUCKET]


async def test_describe_lists_the_bucket_queue_with_its_bounds(
    stubs: Stubs, emulator: RunningEmulator
) -> None:
    reply = await stubs.queues.DescribeMediaQueues(queues_pb2.DescribeMediaQueuesRequest())
    assert (reply.total_count, reply.page_number, reply.page_size) == ("1", "1", "10")
    (queue,) = reply.queue_list
    emulated = emulator.state.queues[default_queue_id(emulator)]
    assert queue.queue_id == emulated.queue_id
    assert (queue.state, queue.state_text) == (queues_pb2.QUEUE_STATE_ACTIVE, "Active")
    assert (queue.max_size, queue.max_concurrent) == (
        str(emulated.max_size),
        str(emulated.max_concurrent),
    )
    assert queue.category == "Transcoding"
    assert queue.create_time and queue.notify_config.state == "Off"
    assert reply.request_id and not reply.HasField("non_exist_pids")


async def test_describe_filters_pages_and_names_unknown_ids(
    stubs: Stubs, emulator: RunningEmulator
) -> None:
    second = emulator.state.add_queue(BUCKET, "second")
    paused = emulator.state.add_queue(BUCKET, "paused")
    emulator.state.set_queue_state(paused.queue_id, QueueState.PAUSED)
    only_paused = await stubs.queues.DescribeMediaQueues(
        queues_pb2.DescribeMediaQueuesRequest(state=queues_pb2.QUEUE_STATE_PAUSED)
    )
    assert [q.queue_id for q in only_paused.queue_list] == [paused.queue_id]
    page = await stubs.queues.DescribeMediaQueues(
        queues_pb2.DescribeMediaQueuesRequest(page_number=2, page_size=2)
    )
    assert page.total_count == "3" and [q.queue_id for q in page.queue_list] == [paused.queue_id]
    by_id = await stubs.queues.DescribeMediaQueues(
        queues_pb2.DescribeMediaQueuesRequest(queue_ids=[second.queue_id, "pnotthere"])
    )
    assert [q.queue_id for q in by_id.queue_list] == [second.queue_id]
    assert list(by_id.non_exist_pids.queue_id) == ["pnotthere"]


async def test_describe_refuses_bad_input_before_ci(stubs: Stubs) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await stubs.queues.DescribeMediaQueues(
            queues_pb2.DescribeMediaQueuesRequest(queue_ids=["a,b"], page_size=1000)
        )
    error = rich_error(caught.value)
    assert error.code is grpc.StatusCode.INVALID_ARGUMENT
    assert set(error.violations) == {"queue_ids[0]", "page_size"}


async def test_pausing_by_state_alone_keeps_the_name_and_refuses_submits(
    stubs: Stubs, emulator: RunningEmulator
) -> None:
    queue_id = default_queue_id(emulator)
    paused = await stubs.queues.UpdateMediaQueue(
        queues_pb2.UpdateMediaQueueRequest(
            queue=queues_pb2.MediaQueue(queue_id=queue_id, state=queues_pb2.QUEUE_STATE_PAUSED)
        )
    )
    assert paused.queue.state == queues_pb2.QUEUE_STATE_PAUSED
    assert paused.queue.name == "default"  # read back and sent again: CI wants it
    assert emulator.state.queues[queue_id].state == "Paused"

    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await stubs.jobs.SubmitMediaJob(SUBMIT)
    error = rich_error(caught.value)
    assert error.code is grpc.StatusCode.FAILED_PRECONDITION
    assert error.error_info is not None and error.error_info.reason == "QUEUE_PAUSED"
    assert "UpdateMediaQueue" in error.error_info.metadata["action"]

    await stubs.queues.UpdateMediaQueue(
        queues_pb2.UpdateMediaQueueRequest(
            queue=queues_pb2.MediaQueue(queue_id=queue_id, state=queues_pb2.QUEUE_STATE_ACTIVE)
        )
    )
    submitted = await stubs.jobs.SubmitMediaJob(SUBMIT)
    assert submitted.jobs_detail.job_id


async def test_update_renames_and_sets_the_notify_config(
    stubs: Stubs, emulator: RunningEmulator
) -> None:
    queue_id = default_queue_id(emulator)
    notify = queues_pb2.QueueNotifyConfig(
        url="http://127.0.0.1:9/ci",
        event="TaskFinish,WorkflowFinish",
        type="Url",
        state="On",
        result_format="JSON",
    )
    reply = await stubs.queues.UpdateMediaQueue(
        queues_pb2.UpdateMediaQueueRequest(
            queue=queues_pb2.MediaQueue(queue_id=queue_id, name="transcodes", notify_config=notify)
        )
    )
    assert reply.queue.name == "transcodes"
    assert reply.queue.state == queues_pb2.QUEUE_STATE_ACTIVE  # kept: read back from CI
    assert reply.queue.notify_config.url == notify.url
    assert reply.queue.notify_config.event == notify.event
    assert emulator.state.queues[queue_id].notify.result_format == "JSON"

    tdmq = queues_pb2.QueueNotifyConfig(
        type="TDMQ", state="On", event="TaskFinish", mq_mode="Queue", mq_name="jobs", mq_region="gz"
    )
    reply = await stubs.queues.UpdateMediaQueue(
        queues_pb2.UpdateMediaQueueRequest(
            queue=queues_pb2.MediaQueue(queue_id=queue_id, notify_config=tdmq)
        )
    )
    assert (reply.queue.notify_config.type, reply.queue.notify_config.mq_name) == ("TDMQ", "jobs")
    assert reply.queue.name == "transcodes"


async def test_pausing_by_state_alone_sends_the_queues_notify_config_again(
    stubs: Stubs, emulator: RunningEmulator
) -> None:
    """CI's older documentation makes NotifyConfig required on every update (notes §8.2), and
    whether leaving it out keeps or clears it is not documented: the gateway sends the queue's
    own, read back with its name, so a pause keeps the queue's callback under every reading."""
    queue_id = default_queue_id(emulator)
    notify = queues_pb2.QueueNotifyConfig(
        url="http://127.0.0.1:9/ci", event="TaskFinish", type="Url", state="On"
    )
    await stubs.queues.UpdateMediaQueue(
        queues_pb2.UpdateMediaQueueRequest(
            queue=queues_pb2.MediaQueue(queue_id=queue_id, notify_config=notify)
        )
    )
    bodies: list[tuple[str, str, bytes]] = []
    emulator.state.bodies = bodies
    paused = await stubs.queues.UpdateMediaQueue(
        queues_pb2.UpdateMediaQueueRequest(
            queue=queues_pb2.MediaQueue(queue_id=queue_id, state=queues_pb2.QUEUE_STATE_PAUSED)
        )
    )
    ((method, path, body),) = bodies
    assert (method, path) == ("PUT", f"/queue/{queue_id}")
    sent = etree.fromstring(body)
    assert sent.findtext("NotifyConfig/Url") == notify.url
    assert sent.findtext("NotifyConfig/State") == "On"
    assert sent.findtext("State") == "Paused"
    assert paused.queue.notify_config.url == notify.url


@pytest.mark.parametrize(
    "empty",
    [
        queues_pb2.QueueNotifyConfig(),
        # Set, but holding only what the codec leaves out: written as nothing all the same.
        queues_pb2.QueueNotifyConfig(kafka_config=media_pb2.CallBackKafkaConfig()),
    ],
    ids=["empty", "empty kafka_config"],
)
async def test_a_set_but_empty_notify_config_turns_the_callbacks_off(
    stubs: Stubs, emulator: RunningEmulator, empty: queues_pb2.QueueNotifyConfig
) -> None:
    """A set NotifyConfig replaces the queue's whole, and CI documents every child of it as
    optional, `State` defaulting to Off (UpdateMediaQueue, notes §8.2): an empty one is the
    callbacks switched off. It was written as no node at all, and CI kept the old one."""
    queue_id = default_queue_id(emulator)
    on = queues_pb2.QueueNotifyConfig(
        url="http://127.0.0.1:9/ci", event="TaskFinish", type="Url", state="On"
    )
    await stubs.queues.UpdateMediaQueue(
        queues_pb2.UpdateMediaQueueRequest(
            queue=queues_pb2.MediaQueue(queue_id=queue_id, notify_config=on)
        )
    )
    bodies: list[tuple[str, str, bytes]] = []
    emulator.state.bodies = bodies
    request = queues_pb2.UpdateMediaQueueRequest(
        queue=queues_pb2.MediaQueue(queue_id=queue_id, notify_config=empty)
    )
    assert request.queue.HasField("notify_config")
    reply = await stubs.queues.UpdateMediaQueue(request)
    ((_, _, body),) = bodies  # the name and state were read first: the write is the one body
    sent = etree.fromstring(body).find("NotifyConfig")
    assert sent is not None and [(n.tag, n.text) for n in sent] == [("State", "Off")]
    assert (reply.queue.notify_config.state, reply.queue.notify_config.url) == ("Off", "")
    assert emulator.state.queues[queue_id].notify.state == "Off"


async def test_update_of_an_unknown_queue_is_not_found(stubs: Stubs) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await stubs.queues.UpdateMediaQueue(
            queues_pb2.UpdateMediaQueueRequest(
                queue=queues_pb2.MediaQueue(
                    queue_id="pnotthere", state=queues_pb2.QUEUE_STATE_PAUSED
                )
            )
        )
    assert caught.value.code() is grpc.StatusCode.NOT_FOUND


async def test_a_full_queue_says_retry_later(
    emulators: StartEmulator, bucket_dir: Path, credentials: Credentials
) -> None:
    emulator = await emulators(
        one_bucket_config(
            bucket_dir, {credentials.secret_id: credentials.secret_key}, queue_max_size=1
        )
    )
    emulator.state.pause_scheduling()
    settings = replace(settings_for(emulator), retry=Retry(max_attempts=1))
    gateway = await start_gateway(settings, StaticCredentialsProvider(credentials))
    try:
        async with grpc.aio.insecure_channel(gateway.address) as channel:
            stubs = stubs_on(channel)
            await stubs.jobs.SubmitMediaJob(SUBMIT)
            with pytest.raises(grpc.aio.AioRpcError) as caught:
                await stubs.jobs.SubmitMediaJob(SUBMIT)
    finally:
        await gateway.stop(grace_s=0)
    error = rich_error(caught.value)
    assert error.code is grpc.StatusCode.RESOURCE_EXHAUSTED
    assert error.error_info is not None and error.error_info.reason == "QUEUE_SATURATED"
    assert error.retry_info is not None
    assert "MaxSize" in error.error_info.metadata["action"]


async def test_a_kafka_notify_config_round_trips(stubs: Stubs, emulator: RunningEmulator) -> None:
    kafka = queues_pb2.QueueNotifyConfig(
        type="Kafka",
        state="On",
        event="TaskFinish",
        kafka_config=media_pb2.CallBackKafkaConfig(
            region="ap-guangzhou", instance_id="ckafka-1", topic="jobs"
        ),
    )
    reply = await stubs.queues.UpdateMediaQueue(
        queues_pb2.UpdateMediaQueueRequest(
            queue=queues_pb2.MediaQueue(queue_id=default_queue_id(emulator), notify_config=kafka)
        )
    )
    assert reply.queue.notify_config.kafka_config == kafka.kafka_config
    assert emulator.state.queues[default_queue_id(emulator)].notify.kafka == (
        ("Region", "ap-guangzhou"),
        ("InstanceId", "ckafka-1"),
        ("Topic", "jobs"),
    )
    done = await stubs.jobs.SubmitMediaJob(SUBMIT)
    await emulator.state.wait_for_job_state(done.jobs_detail.job_id, {"Success"})
    assert emulator.state.callbacks_undeliverable["Kafka"] == 1  # counted, never sent


async def test_a_tdmq_or_kafka_notify_config_is_checked_before_ci(
    stubs: Stubs, emulator: RunningEmulator
) -> None:
    """TDMQ's MqRegion and MqMode are closed sets, and a callback switched On needs somewhere to
    go (MqRegion + MqName; KafkaConfig Region, InstanceId, Topic): notes §2.2, §8.1, catalogue
    §2.4. CI (and the emulator) refuse such a queue; the gateway names the fields first."""
    cases = [
        (
            queues_pb2.QueueNotifyConfig(type="TDMQ", state="On", mq_mode="Fifo"),
            {"mq_mode", "mq_region", "mq_name"},
        ),
        (queues_pb2.QueueNotifyConfig(type="TDMQ", state="Off", mq_region="sz"), {"mq_region"}),
        (
            queues_pb2.QueueNotifyConfig(
                type="Kafka", state="On", kafka_config=media_pb2.CallBackKafkaConfig(region="gz")
            ),
            {"kafka_config.instance_id", "kafka_config.topic"},
        ),
    ]
    for notify, fields in cases:
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await stubs.queues.UpdateMediaQueue(
                queues_pb2.UpdateMediaQueueRequest(
                    queue=queues_pb2.MediaQueue(
                        queue_id=default_queue_id(emulator),
                        name="default",
                        state=queues_pb2.QUEUE_STATE_ACTIVE,
                        notify_config=notify,
                    )
                )
            )
        error = rich_error(caught.value)
        assert error.code is grpc.StatusCode.INVALID_ARGUMENT
        assert set(error.violations) == {f"queue.notify_config.{f}" for f in fields}, notify
