"""Job-completion callbacks, received by a real loopback HTTP server: each format, each source
of the URL, suppression, retries, TDMQ, and that a slow receiver never holds up the jobs."""

from __future__ import annotations

import asyncio
import json
import logging
import socket
from collections import deque
from collections.abc import AsyncIterator
from dataclasses import dataclass, field, replace
from pathlib import Path

import pytest
from aiohttp import web
from lxml import etree

from ci_emulator.callbacks import (
    PUBLIC_HOST,
    CallbackDelivery,
    CallbackTarget,
    LocalOnlyResolver,
    PublicAddressError,
    callback_target,
    is_local_address,
    is_loopback,
)
from ci_emulator.cli import build_config, build_parser
from ci_emulator.config import CallbackSettings, EmulatorConfig
from ci_emulator.jobs import Job, JobSpec
from ci_emulator.queues import MediaQueue, NotifyConfig
from ci_emulator.server import RunningEmulator, start_emulator
from gateway.upstream.xml_codec import parse_document
from tests.ci_emulator.conftest import BUCKET, DONE, TEXT_KEY, VIDEO_KEY, SignedClient
from tests.ci_emulator.test_workflow_jobs import NODES, create_workflow, run_to_end
from tests.fixtures.servers import StartEmulator, serve_app

FAST = CallbackSettings(attempts=3, backoff_s=0.01, timeout_s=5.0)


@dataclass
class Received:
    content_type: str
    body: bytes

    def xml(self) -> etree._Element:
        return parse_document(self.body)

    def json(self) -> dict[str, object]:
        document: dict[str, object] = json.loads(self.body)
        return document


@dataclass
class Receiver:
    """A callback endpoint: records every POST, answers from `script` (then 200)."""

    url: str = ""
    received: list[Received] = field(default_factory=list)
    script: deque[int] = field(default_factory=deque)
    gate: asyncio.Event = field(default_factory=asyncio.Event)
    arrived: asyncio.Event = field(default_factory=asyncio.Event)

    async def handle(self, request: web.Request) -> web.Response:
        assert request.method == "POST"
        self.received.append(
            Received(request.headers.get("Content-Type", ""), await request.read())
        )
        self.arrived.set()
        async with asyncio.timeout(10):  # a held receiver still answers in bounded time
            await self.gate.wait()
        return web.Response(status=self.script.popleft() if self.script else 200)


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    recv = Receiver()
    recv.gate.set()
    app = web.Application()
    app.router.add_post("/{tail:.*}", recv.handle)
    async with serve_app(app) as url:
        recv.url = f"{url}/ci-callback?token=abc"
        try:
            yield recv
        finally:
            recv.gate.set()


async def started(config: EmulatorConfig, settings: CallbackSettings = FAST) -> RunningEmulator:
    return await start_emulator(replace(config, callbacks=settings))


@pytest.fixture
async def emu(emulators: StartEmulator, emulator_config: EmulatorConfig) -> RunningEmulator:
    # Replaces conftest's: quick retries for every test here.
    return await emulators(replace(emulator_config, callbacks=FAST))


def all_strings(value: object) -> bool:
    if isinstance(value, dict):
        return all(all_strings(item) for item in value.values())
    if isinstance(value, list):
        return all(all_strings(item) for item in value)
    return isinstance(value, str)


async def set_queue_notify(client: SignedClient, emu: RunningEmulator, notify: str) -> None:
    queue_id = emu.state.default_queue[BUCKET]
    body = (
        "<Request><Name>q</Name><State>Active</State>"
        f"<NotifyConfig>{notify}</NotifyConfig></Request>"
    )
    (await client.send("PUT", f"/queue/{queue_id}", body=body.encode())).ok()


# ---- formats ---------------------------------------------------------------------------------


async def test_xml_callback_carries_the_described_job(
    client: SignedClient, emu: RunningEmulator, receiver: Receiver
) -> None:
    job_id = await client.submit_ok(CallBack=receiver.url, UserData="cb-xml")
    deliveries = await emu.state.wait_for_callbacks(1, timeout=10)
    assert deliveries == [CallbackDelivery(receiver.url, 200, 1)]
    (got,) = receiver.received
    assert got.content_type == "application/xml"
    root = got.xml()
    assert root.tag == "Response"
    assert [child.tag for child in root] == ["EventName", "JobsDetail"]
    assert root.findtext("EventName") == "TaskFinish"
    described, sent = (await client.describe(job_id)).ok().xml().find("JobsDetail"), root[1]
    assert described is not None
    assert etree.tostring(sent) == etree.tostring(described)
    assert root.findtext("JobsDetail/State") == "Success"
    assert root.findtext("JobsDetail/Progress") == "100"  # as in CI's callback sample
    assert root.findtext("JobsDetail/Operation/UserData") == "cb-xml"
    assert root.findtext("JobsDetail/Operation/MediaInfo/Stream/Video/CodecName") == "h264"


async def test_json_callback_is_an_object_of_strings(
    client: SignedClient, emu: RunningEmulator, receiver: Receiver
) -> None:
    job_id = await client.submit_ok(CallBack=receiver.url, CallBackFormat="JSON")
    await emu.state.wait_for_callbacks(1, timeout=10)
    (got,) = receiver.received
    assert got.content_type == "application/json"
    document = got.json()
    assert document["EventName"] == "TaskFinish"
    detail = document["JobsDetail"]
    assert isinstance(detail, dict)
    assert all_strings(document)
    assert (detail["JobId"], detail["State"], detail["Code"]) == (job_id, "Success", "Success")
    assert detail["Progress"] == "100"
    assert "Message" not in detail  # empty <Message/> is absent, as in CI's JSON sample
    assert detail["Input"] == {"BucketId": BUCKET, "Object": VIDEO_KEY, "Region": "ap-guangzhou"}
    stream = detail["Operation"]["MediaInfo"]["Stream"]
    assert isinstance(stream["Video"], dict) and isinstance(stream["Audio"], dict)
    assert "Subtitle" not in stream
    assert stream["Video"]["Width"] == "320"
    assert detail["Operation"]["MediaInfo"]["Format"]["NumStream"] == "2"


async def test_json_callback_as_an_array_when_configured(
    client: SignedClient, emulator_config: EmulatorConfig, receiver: Receiver
) -> None:
    async with await started(emulator_config, replace(FAST, json_array=True)) as emu:
        client.base_url = emu.url
        job_id = await client.submit_ok(CallBack=receiver.url, CallBackFormat="JSON")
        await emu.state.wait_for_callbacks(1, timeout=10)
    detail = receiver.received[0].json()["JobsDetail"]
    assert isinstance(detail, list) and len(detail) == 1
    assert detail[0]["JobId"] == job_id


async def test_a_failed_job_reports_its_code_and_message(
    client: SignedClient, emu: RunningEmulator, receiver: Receiver
) -> None:
    await client.submit_ok(TEXT_KEY, CallBack=receiver.url, CallBackFormat="JSON")
    await emu.state.wait_for_callbacks(1, timeout=10)
    detail = receiver.received[0].json()["JobsDetail"]
    assert isinstance(detail, dict)
    assert detail["State"] == "Failed"
    assert detail["Code"] != "Success" and detail["Message"]


# ---- where the callback goes ------------------------------------------------------------------


async def test_the_queue_notify_config_is_the_fallback(
    client: SignedClient, emu: RunningEmulator, receiver: Receiver
) -> None:
    await set_queue_notify(
        client, emu, f"<State>On</State><Url>{receiver.url}</Url><ResultFormat>JSON</ResultFormat>"
    )
    first = await client.submit_ok()
    await emu.state.wait_for_callbacks(1, timeout=10)
    assert receiver.received[0].json()["JobsDetail"]["JobId"] == first  # type: ignore[index]
    # The job's CallBackFormat overrides the queue's ResultFormat.
    second = await client.submit_ok(CallBackFormat="XML")
    await emu.state.wait_for_callbacks(2, timeout=10)
    assert receiver.received[1].xml().findtext("JobsDetail/JobId") == second
    assert [d.url for d in emu.state.callbacks] == [receiver.url, receiver.url]


async def test_a_workflow_runs_job_reports_its_workflow_node(
    client: SignedClient, emu: RunningEmulator, receiver: Receiver
) -> None:
    """Through the queue's TaskFinish (a run's node jobs name no CallBack of their own): the
    body is the described job, Workflow node included, an object in JSON (notes §7)."""
    await set_queue_notify(
        client,
        emu,
        f"<State>On</State><Url>{receiver.url}</Url><Event>TaskFinish</Event>"
        "<ResultFormat>JSON</ResultFormat>",
    )
    workflow_id = await create_workflow(client, emu, "reported")
    run = await run_to_end(client, emu, workflow_id)
    deliveries = await emu.state.wait_for_callbacks(len(NODES), timeout=10)
    assert [d.status for d in deliveries] == [200] * len(NODES)
    sent = {}
    for got in receiver.received:
        detail = got.json()["JobsDetail"]
        assert isinstance(detail, dict)
        sent[detail["JobId"]] = detail["Workflow"]
    assert sent == {
        task.job_id: {
            "Name": task.node,
            "RunId": run.run_id,
            "WorkflowId": workflow_id,
            "WorkflowName": "reported",
        }
        for task in run.tasks
    }


async def test_callback_no_suppresses_the_queue_callback(
    client: SignedClient, emu: RunningEmulator, receiver: Receiver
) -> None:
    await set_queue_notify(client, emu, f"<State>On</State><Url>{receiver.url}</Url>")
    silent = await client.submit_ok(CallBack="no")
    await emu.state.wait_for_job_state(silent, DONE, timeout=10)
    # The decision is made synchronously as the job ends: nothing was scheduled.
    assert emu.state.callbacks_scheduled == 0
    loud = await client.submit_ok()
    await emu.state.wait_for_callbacks(1, timeout=10)
    assert [r.xml().findtext("JobsDetail/JobId") for r in receiver.received] == [loud]


async def test_a_queue_callback_that_is_off_sends_nothing(
    client: SignedClient, emu: RunningEmulator, receiver: Receiver
) -> None:
    await set_queue_notify(client, emu, f"<State>Off</State><Url>{receiver.url}</Url>")
    job_id = await client.submit_ok()
    await emu.state.wait_for_job_state(job_id, DONE, timeout=10)
    assert emu.state.callbacks_scheduled == 0


async def test_cancel_reports_only_when_configured(
    client: SignedClient, emulator_config: EmulatorConfig, emu: RunningEmulator, receiver: Receiver
) -> None:
    emu.state.pause_scheduling()
    job_id = await client.submit_ok(CallBack=receiver.url)
    (await client.cancel(job_id)).ok()
    assert emu.state.callbacks_scheduled == 0
    async with await started(emulator_config, replace(FAST, on_cancel=True)) as reporting:
        reporting.state.pause_scheduling()
        client.base_url = reporting.url
        job_id = await client.submit_ok(CallBack=receiver.url)
        (await client.cancel(job_id)).ok()
        await reporting.state.wait_for_callbacks(1, timeout=10)
    assert receiver.received[0].xml().findtext("JobsDetail/State") == "Cancel"


async def test_kafka_callbacks_are_counted_not_delivered(
    client: SignedClient, emu: RunningEmulator
) -> None:
    """A job's CallBackType Kafka (Go and Java SDKs; not on CI's pages, so accepted as the
    tolerant reading): the topic is kept, and the callback counted, as for TDMQ."""
    kafka = "<Region>ap-guangzhou</Region><InstanceId>ckafka-1</InstanceId><Topic>jobs</Topic>"
    job_id = await client.submit_ok(CallBackType="Kafka", CallBackKafkaConfig=kafka)
    await emu.state.wait_for_job_state(job_id, DONE, timeout=10)
    assert emu.state.jobs[job_id].spec.callback_mq == (
        ("Region", "ap-guangzhou"),
        ("InstanceId", "ckafka-1"),
        ("Topic", "jobs"),
    )
    assert emu.state.callbacks_undeliverable == {"Kafka": 1}


async def test_tdmq_callbacks_are_counted_not_delivered(
    client: SignedClient, emu: RunningEmulator, caplog: pytest.LogCaptureFixture
) -> None:
    mq = "<MqRegion>bj</MqRegion><MqMode>Queue</MqMode><MqName>topic</MqName>"
    caplog.set_level(logging.WARNING, logger="ci_emulator.callbacks")
    for _ in range(2):
        job_id = await client.submit_ok(CallBackType="TDMQ", CallBackMqConfig=mq)
        await emu.state.wait_for_job_state(job_id, DONE, timeout=10)
    assert emu.state.callbacks_undeliverable == {"TDMQ": 2}
    assert emu.state.counters()["callbacks"] == {
        "scheduled": 0,
        "delivered": 0,
        "failed": 0,
        "not_delivered_tdmq": 2,
    }
    assert sum("TDMQ" in record.getMessage() for record in caplog.records) == 1


# ---- where a callback may go -------------------------------------------------------------------


async def test_a_callback_beyond_loopback_and_private_networks_is_refused_and_said(
    client: SignedClient,
    emu: RunningEmulator,
    receiver: Receiver,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Issue 11 item 13: the emulator used to POST job data to whatever URL it was given (the
    Go SDK's queue test names `test.com`). A public address is refused before any connection;
    the warning names the URL and the flag that would allow it."""
    caplog.set_level(logging.WARNING, logger="ci_emulator.callbacks")
    public = "http://8.8.8.8:9/ci-callback"
    for _ in range(2):
        job_id = await client.submit_ok(CallBack=public)
        await emu.state.wait_for_job_state(job_id, DONE, timeout=10)
    await client.submit_ok(CallBack=receiver.url)  # loopback: delivered as ever
    deliveries = await emu.state.wait_for_callbacks(3, timeout=10)
    assert sorted(deliveries) == sorted(
        [
            CallbackDelivery(public, None, 0),  # never attempted
            CallbackDelivery(public, None, 0),
            CallbackDelivery(receiver.url, 200, 1),
        ]
    )
    assert emu.state.callbacks_undeliverable == {PUBLIC_HOST: 2}
    (warning,) = [r.getMessage() for r in caplog.records if "refused" in r.getMessage()]
    assert public in warning and "--callback-allow-public-hosts" in warning


@pytest.mark.parametrize(
    ("address", "local"),
    [("127.0.0.1", True), ("::1", True), ("10.1.2.3", True), ("172.16.0.9", True),
     ("192.168.1.20", True), ("fd00::7", True), ("8.8.8.8", False), ("2001:4860::8888", False),
     ("169.254.169.254", False),  # link-local: cloud metadata, never a callback receiver
     ("::ffff:8.8.8.8", False), ("::ffff:10.0.0.1", True), ("fe80::1%eth0", False)],
)  # fmt: skip
def test_local_addresses_are_loopback_or_private(address: str, local: bool) -> None:
    assert is_local_address(address) is local


async def test_the_resolver_refuses_a_name_with_a_public_address() -> None:
    """The session connects through it: a name checked once cannot resolve elsewhere later.
    (IP literals resolve without DNS, so the test needs no network.)"""
    resolver = LocalOnlyResolver()
    try:
        assert [r["host"] for r in await resolver.resolve("127.0.0.1", 80)] == ["127.0.0.1"]
        with pytest.raises(PublicAddressError, match=r"8\.8\.4\.4"):
            await resolver.resolve("8.8.4.4", 80)
    finally:
        await resolver.close()


def test_public_callbacks_are_allowed_only_when_asked(tmp_path: Path) -> None:
    base = ["--bucket", f"b-1250000000:ap-beijing:{tmp_path}", "--credential", "AKIDx:k"]
    assert not build_config(build_parser().parse_args(base), {}).callbacks.allow_public_hosts
    allowed = build_parser().parse_args([*base, "--callback-allow-public-hosts"])
    assert build_config(allowed, {}).callbacks.allow_public_hosts


# ---- delivery ---------------------------------------------------------------------------------


async def test_a_500_is_retried_until_success(
    client: SignedClient, emu: RunningEmulator, receiver: Receiver
) -> None:
    receiver.script.extend([500, 200])
    await client.submit_ok(CallBack=receiver.url)
    assert await emu.state.wait_for_callbacks(1, timeout=10) == [
        CallbackDelivery(receiver.url, 200, 2)
    ]
    assert len(receiver.received) == 2
    assert receiver.received[0].body == receiver.received[1].body


async def test_delivery_gives_up_after_the_last_attempt(
    client: SignedClient, emu: RunningEmulator, receiver: Receiver
) -> None:
    receiver.script.extend([503, 503, 503, 200])
    await client.submit_ok(CallBack=receiver.url)
    assert await emu.state.wait_for_callbacks(1, timeout=10) == [
        CallbackDelivery(receiver.url, 503, 3)
    ]
    assert len(receiver.received) == 3
    assert emu.state.counters()["callbacks"]["failed"] == 1  # type: ignore[index]


async def test_a_refused_connection_is_retried_then_recorded(
    client: SignedClient, emu: RunningEmulator
) -> None:
    with socket.socket() as probe:  # a port that was free a moment ago and has no listener
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    url = f"http://127.0.0.1:{port}/cb"
    await client.submit_ok(CallBack=url)
    assert await emu.state.wait_for_callbacks(1, timeout=10) == [CallbackDelivery(url, None, 3)]


async def test_a_slow_receiver_never_holds_up_jobs(
    client: SignedClient, emu: RunningEmulator, receiver: Receiver
) -> None:
    receiver.gate.clear()
    first = await client.submit_ok(CallBack=receiver.url)
    async with asyncio.timeout(10):
        await receiver.arrived.wait()
    # The callback is stuck in the receiver, yet jobs finish and new ones run.
    assert (await emu.state.wait_for_job_state(first, DONE, timeout=10)).state == "Success"
    second = await client.submit_ok()
    assert (await emu.state.wait_for_job_state(second, DONE, timeout=10)).state == "Success"
    assert emu.state.callbacks == []
    receiver.gate.set()
    assert await emu.state.wait_for_callbacks(1, timeout=10) == [
        CallbackDelivery(receiver.url, 200, 1)
    ]


async def test_closing_the_emulator_abandons_a_pending_delivery(
    client: SignedClient, emu: RunningEmulator, receiver: Receiver
) -> None:
    receiver.gate.clear()
    client.base_url = emu.url
    await client.submit_ok(CallBack=receiver.url)
    async with asyncio.timeout(10):
        await receiver.arrived.wait()
    async with asyncio.timeout(10):
        await emu.close()
    assert emu.state.callbacks_scheduled == 1 and emu.state.callbacks == []


# ---- the pure parts ---------------------------------------------------------------------------


def _job(**spec: object) -> Job:
    fields: dict[str, object] = {"tag": "MediaInfo", "object_key": "a.mp4", "queue_id": "p1"}
    fields.update(spec)
    job = Job("j1", 1, BUCKET, "ap-guangzhou", JobSpec(**fields), 0.0)  # type: ignore[arg-type]
    job.start(1.0)
    job.fail(2.0, "InvalidArgument", "bad")
    return job


def _queue(notify: NotifyConfig) -> MediaQueue:
    return MediaQueue("p1", "q", BUCKET, 0.0, 1, 1, notify=notify)


@pytest.mark.parametrize(
    ("spec", "notify", "expected"),
    [
        ({}, NotifyConfig(), None),
        ({"callback": "http://a/"}, NotifyConfig(), CallbackTarget("Url", "http://a/", "XML")),
        (
            {"callback": "http://a/"},
            NotifyConfig(result_format="JSON"),
            CallbackTarget("Url", "http://a/", "JSON"),
        ),
        (
            {},
            NotifyConfig(url="http://q/", state="On", event="WorkflowFinish"),
            None,
        ),
        (
            {},
            NotifyConfig(url="http://q/", state="On", event="TransCodingFinish"),
            CallbackTarget("Url", "http://q/", "XML"),
        ),
        (
            {"callback_format": "JSON"},
            NotifyConfig(state="On", type="TDMQ", mq_region="bj", mq_name="t"),
            CallbackTarget("TDMQ", "bj/Queue/t", "JSON"),
        ),
        ({"callback": "no"}, NotifyConfig(url="http://q/", state="On"), None),
    ],
)
def test_callback_target_rules(
    spec: dict[str, object], notify: NotifyConfig, expected: CallbackTarget | None
) -> None:
    assert callback_target(_job(**spec), _queue(notify), CallbackSettings()) == expected


@pytest.mark.parametrize(
    ("host", "loopback"),
    [("127.0.0.1", True), ("127.8.9.1", True), ("[::1]", True), ("localhost", True),
     ("10.0.0.1", False), ("callback.demo.com", False)],
)  # fmt: skip
def test_loopback_detection_for_the_non_loopback_warning(host: str, loopback: bool) -> None:
    assert is_loopback(host) is loopback


def test_impossible_callback_settings_are_refused() -> None:
    for values in ({"attempts": 0}, {"backoff_s": -1.0}, {"timeout_s": 0.0}):
        with pytest.raises(ValueError):
            CallbackSettings(**values)
