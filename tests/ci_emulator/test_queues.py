"""Queues: DescribeMediaQueues / UpdateMediaQueue on the wire, and each scheduling rule."""

from __future__ import annotations

import re

import aiohttp
import pytest

from ci_emulator.queues import MediaQueue
from ci_emulator.server import RunningEmulator
from tests.ci_emulator.conftest import BUCKET, DONE, OTHER_BUCKET, Reply, SignedClient

CI_TIME = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\+0800$")
QUEUE_ORDER = [
    "QueueId", "Name", "State", "NotifyConfig", "MaxSize", "MaxConcurrent", "UpdateTime",
    "CreateTime", "Category",
]  # fmt: skip
NOTIFY_ORDER = ["Url", "Event", "Type", "State", "ResultFormat", "MqMode", "MqName", "MqRegion"]


def default_queue(emu: RunningEmulator) -> MediaQueue:
    return emu.state.queues[emu.state.default_queue[BUCKET]]


async def describe_queues(client: SignedClient, **params: str) -> Reply:
    return await client.send("GET", "/queue", params=params)


def queue_ids(reply: Reply) -> list[str]:
    return [node.text or "" for node in reply.ok().xml().findall("QueueList/QueueId")]


async def update_queue(client: SignedClient, queue_id: str, body: str) -> Reply:
    return await client.send(
        "PUT", f"/queue/{queue_id}", body=f"<Request>{body}</Request>".encode()
    )


# ---- DescribeMediaQueues -------------------------------------------------------------------------


async def test_describe_answers_like_the_doc_sample(
    client: SignedClient, emu: RunningEmulator
) -> None:
    reply = (await describe_queues(client)).ok()
    root = reply.xml()
    assert [child.tag for child in root] == [
        "RequestId", "TotalCount", "PageNumber", "PageSize", "QueueList",
    ]  # fmt: skip
    assert root.findtext("RequestId") == reply.headers["x-ci-request-id"]
    assert (
        root.findtext("TotalCount"),
        root.findtext("PageNumber"),
        root.findtext("PageSize"),
    ) == (
        "1",
        "1",
        "10",
    )
    entry = root.find("QueueList")
    assert entry is not None
    assert [child.tag for child in entry] == QUEUE_ORDER
    assert [child.tag for child in entry.find("NotifyConfig")] == NOTIFY_ORDER  # type: ignore[union-attr]
    assert entry.findtext("QueueId") == default_queue(emu).queue_id
    assert (entry.findtext("State"), entry.findtext("Category")) == ("Active", "Transcoding")
    assert (entry.findtext("MaxSize"), entry.findtext("MaxConcurrent")) == ("10000", "10")
    assert entry.findtext("NotifyConfig/State") == "Off"
    assert CI_TIME.match(entry.findtext("CreateTime") or "")
    assert CI_TIME.match(entry.findtext("UpdateTime") or "")


async def test_describe_by_ids_reports_the_missing_ones(
    client: SignedClient, emu: RunningEmulator
) -> None:
    extra = emu.state.add_queue(BUCKET, "extra")
    foreign = emu.state.add_queue(OTHER_BUCKET, "not-yours")
    ids = f"{extra.queue_id},pnothere,{foreign.queue_id}"
    reply = await describe_queues(client, queueIds=ids)
    assert queue_ids(reply) == [extra.queue_id]
    assert [node.text for node in reply.xml().findall("NonExistPIDs/QueueID")] == [
        "pnothere",
        foreign.queue_id,
    ]
    assert reply.xml().findtext("TotalCount") == "1"


async def test_describe_filters_by_state(client: SignedClient, emu: RunningEmulator) -> None:
    paused = emu.state.add_queue(BUCKET, "paused")
    (await update_queue(client, paused.queue_id, "<Name>paused</Name><State>Paused</State>")).ok()
    default = default_queue(emu).queue_id
    assert queue_ids(await describe_queues(client, state="Paused")) == [paused.queue_id]
    assert queue_ids(await describe_queues(client, state="Active")) == [default]
    assert queue_ids(await describe_queues(client, state="All")) == [default, paused.queue_id]


async def test_describe_filters_by_category(client: SignedClient, emu: RunningEmulator) -> None:
    speed = emu.state.add_queue(BUCKET, "speed", category="SpeedTranscoding")
    default = default_queue(emu).queue_id
    assert queue_ids(await describe_queues(client)) == [default]  # Transcoding by default
    assert queue_ids(await describe_queues(client, category="SpeedTranscoding")) == [speed.queue_id]
    assert queue_ids(await describe_queues(client, category="CateAll")) == [default, speed.queue_id]


async def test_describe_pages(client: SignedClient, emu: RunningEmulator) -> None:
    added = [emu.state.add_queue(BUCKET, f"q{i}").queue_id for i in range(4)]
    everything = [default_queue(emu).queue_id, *added]
    first = await describe_queues(client, pageSize="2", pageNumber="1")
    assert queue_ids(first) == everything[:2]
    assert first.xml().findtext("TotalCount") == "5"
    third = await describe_queues(client, pageSize="2", pageNumber="3")
    assert queue_ids(third) == everything[4:]
    beyond = await describe_queues(client, pageSize="2", pageNumber="9")
    assert queue_ids(beyond) == [] and beyond.xml().findtext("TotalCount") == "5"
    # The SDK's defaults: every parameter present, paging ones empty.
    sdk_style = await describe_queues(client, queueIds="", state="All", pageNumber="", pageSize="")
    assert queue_ids(sdk_style) == everything


@pytest.mark.parametrize(
    "params",
    [
        {"queueIds": ",".join(f"p{i}" for i in range(11))},
        {"state": "Running"},
        {"category": "Audio"},
        {"pageNumber": "0"},
        {"pageSize": "-1"},
        {"pageSize": "ten"},
    ],
)
async def test_describe_refuses_bad_parameters(
    client: SignedClient, params: dict[str, str]
) -> None:
    reply = await describe_queues(client, **params)
    assert (reply.status, reply.code) == (400, "InvalidArgument")


# ---- UpdateMediaQueue ----------------------------------------------------------------------------

FULL_UPDATE = (
    "<Name>My-Queue-Media</Name><State>Active</State><NotifyConfig><State>On</State>"
    "<Url>http://callback.demo.com</Url><Type>Url</Type><Event>TaskFinish,WorkflowFinish</Event>"
    "<ResultFormat>JSON</ResultFormat></NotifyConfig>"
)


async def test_update_answers_the_queue_and_changes_it(
    client: SignedClient, emu: RunningEmulator
) -> None:
    queue = default_queue(emu)
    reply = (await update_queue(client, queue.queue_id, FULL_UPDATE)).ok()
    root = reply.xml()
    assert [child.tag for child in root] == ["RequestId", "Queue"]
    assert root.findtext("RequestId") == reply.headers["x-ci-request-id"]
    entry = root.find("Queue")
    assert entry is not None and [child.tag for child in entry] == QUEUE_ORDER
    assert entry.findtext("Name") == "My-Queue-Media"
    assert entry.findtext("NotifyConfig/Url") == "http://callback.demo.com"
    assert entry.findtext("NotifyConfig/Event") == "TaskFinish,WorkflowFinish"
    assert entry.findtext("NotifyConfig/ResultFormat") == "JSON"
    assert (queue.name, queue.notify.state, queue.notify.url) == (
        "My-Queue-Media",
        "On",
        "http://callback.demo.com",
    )
    # The change is what DescribeMediaQueues reports from now on.
    described = (await describe_queues(client)).ok().xml()
    assert described.findtext("QueueList/Name") == "My-Queue-Media"
    assert described.findtext("QueueList/NotifyConfig/State") == "On"


async def test_update_without_notify_config_keeps_it(
    client: SignedClient, emu: RunningEmulator
) -> None:
    queue = default_queue(emu)
    (await update_queue(client, queue.queue_id, FULL_UPDATE)).ok()
    (await update_queue(client, queue.queue_id, "<Name>renamed</Name><State>Active</State>")).ok()
    assert (queue.name, queue.notify.url) == ("renamed", "http://callback.demo.com")


async def test_update_accepts_the_queue_id_in_the_body(
    client: SignedClient, emu: RunningEmulator
) -> None:
    # The Go SDK's test body: QueueID, legacy event name, a URL without a scheme.
    queue_id = default_queue(emu).queue_id
    body = (
        f"<Name>QueueName</Name><QueueID>{queue_id}</QueueID><State>Active</State><NotifyConfig>"
        "<Url>test.com</Url><State>On</State><Type>Url</Type><Event>TransCodingFinish</Event>"
        "</NotifyConfig>"
    )
    reply = (await update_queue(client, queue_id, body)).ok()
    assert reply.xml().findtext("Queue/NotifyConfig/Url") == "test.com"


NAME_129_BYTES = "视" * 43


@pytest.mark.parametrize(
    ("case", "body"),
    [
        ("no Name", "<State>Active</State>"),
        ("Name too long", f"<Name>{NAME_129_BYTES}</Name><State>Active</State>"),
        ("no State", "<Name>q</Name>"),
        ("bad State", "<Name>q</Name><State>Running</State>"),
        ("other QueueID", "<Name>q</Name><QueueID>pother</QueueID><State>Active</State>"),
        ("notify state", "<Name>q</Name><State>Active</State><NotifyConfig><State>Yes</State>"
         "<Url>http://x</Url></NotifyConfig>"),
        ("notify type", "<Name>q</Name><State>Active</State><NotifyConfig><Type>Sms</Type>"
         "</NotifyConfig>"),
        ("kafka without config", "<Name>q</Name><State>Active</State><NotifyConfig>"
         "<State>On</State><Type>Kafka</Type></NotifyConfig>"),
        ("notify format", "<Name>q</Name><State>Active</State><NotifyConfig><ResultFormat>YAML"
         "</ResultFormat></NotifyConfig>"),
        ("notify event", "<Name>q</Name><State>Active</State><NotifyConfig><Event>Done</Event>"
         "</NotifyConfig>"),
        ("on without url", "<Name>q</Name><State>Active</State><NotifyConfig><State>On</State>"
         "</NotifyConfig>"),
        ("tdmq without mq", "<Name>q</Name><State>Active</State><NotifyConfig><State>On</State>"
         "<Type>TDMQ</Type></NotifyConfig>"),
    ],
)  # fmt: skip
async def test_update_refusals(
    client: SignedClient, emu: RunningEmulator, case: str, body: str
) -> None:
    queue = default_queue(emu)
    before = (queue.name, queue.state, queue.notify)
    reply = await update_queue(client, queue.queue_id, body)
    assert (reply.status, reply.code) == (400, "InvalidArgument"), case
    assert (queue.name, queue.state, queue.notify) == before


async def test_a_name_of_exactly_128_bytes_is_accepted(
    client: SignedClient, emu: RunningEmulator
) -> None:
    name = "视" * 42 + "ab"
    assert len(name.encode()) == 128
    queue_id = default_queue(emu).queue_id
    (await update_queue(client, queue_id, f"<Name>{name}</Name><State>Active</State>")).ok()
    assert default_queue(emu).name == name


async def test_update_of_an_unknown_or_foreign_queue_is_invalid_argument(
    client: SignedClient, emu: RunningEmulator
) -> None:
    foreign = emu.state.add_queue(OTHER_BUCKET, "theirs")
    for queue_id in ("pnothere", foreign.queue_id):
        reply = await update_queue(client, queue_id, "<Name>q</Name><State>Paused</State>")
        assert (reply.status, reply.code) == (400, "InvalidArgument")
    assert foreign.state == "Active"


async def test_update_needs_a_request_body(client: SignedClient, emu: RunningEmulator) -> None:
    queue_id = default_queue(emu).queue_id
    wrong_root = await client.send("PUT", f"/queue/{queue_id}", body=b"<Queue/>")
    assert (wrong_root.status, wrong_root.code) == (400, "InvalidArgument")
    empty = await client.send("PUT", f"/queue/{queue_id}", body=b"")
    assert (empty.status, empty.code) == (400, "MissingContent")


# ---- scheduling rules ----------------------------------------------------------------------------


async def test_a_paused_queue_holds_its_jobs_in_pause_and_resumes_them(
    client: SignedClient, emu: RunningEmulator
) -> None:
    queue = default_queue(emu)
    emu.state.pause_scheduling()
    waiting = [await client.submit_ok() for _ in range(2)]
    (await update_queue(client, queue.queue_id, "<Name>q</Name><State>Paused</State>")).ok()
    described = (await client.describe(*waiting)).ok().xml()
    assert [node.text for node in described.findall("JobsDetail/State")] == ["Pause", "Pause"]
    listed = (await client.list_jobs({"states": "Pause"})).ok().xml()
    assert len(listed.findall("JobsDetail")) == 2

    # A job in another, active queue runs: the scheduling pass that starts it also saw the
    # paused queue and left its jobs alone.
    active = emu.state.add_queue(BUCKET, "active")
    emu.state.resume_scheduling()
    other = await client.submit_ok(QueueId=active.queue_id)
    await emu.state.wait_for_job_state(other, DONE, timeout=10)
    assert [emu.state.jobs[job_id].state for job_id in waiting] == ["Pause", "Pause"]
    assert other in emu.state.start_order and not set(waiting) & set(emu.state.start_order)

    (await update_queue(client, queue.queue_id, "<Name>q</Name><State>Active</State>")).ok()
    for job_id in waiting:
        assert (await emu.state.wait_for_job_state(job_id, DONE, timeout=10)).state == "Success"


async def test_a_paused_queue_refuses_new_jobs(client: SignedClient, emu: RunningEmulator) -> None:
    queue_id = default_queue(emu).queue_id
    (await update_queue(client, queue_id, "<Name>q</Name><State>Paused</State>")).ok()
    reply = await client.submit()
    assert (reply.status, reply.code) == (403, "QueuePaused")
    assert emu.state.jobs_created == 0


async def test_a_paused_job_can_be_cancelled(client: SignedClient, emu: RunningEmulator) -> None:
    queue_id = default_queue(emu).queue_id
    emu.state.pause_scheduling()
    job_id = await client.submit_ok()
    (await update_queue(client, queue_id, "<Name>q</Name><State>Paused</State>")).ok()
    (await client.cancel(job_id)).ok()
    (await update_queue(client, queue_id, "<Name>q</Name><State>Active</State>")).ok()
    assert emu.state.jobs[job_id].state == "Cancel"
    assert default_queue(emu).waiting_count == 0


async def test_max_concurrent_bounds_a_queues_running_jobs(
    client: SignedClient, emu: RunningEmulator
) -> None:
    narrow = emu.state.add_queue(BUCKET, "narrow", max_concurrent=2)
    emu.state.hold_running()
    ids = [await client.submit_ok(QueueId=narrow.queue_id) for _ in range(5)]
    await emu.state.wait_for_job_state(ids[0], {"Running"}, timeout=10)
    await emu.state.wait_for_job_state(ids[1], {"Running"}, timeout=10)
    emu.state.release_running()
    for job_id in ids:
        await emu.state.wait_for_job_state(job_id, DONE, timeout=10)
    assert narrow.peak_running == 2
    assert emu.state.start_order == ids


async def test_max_size_overflow_is_queue_saturated(
    client: SignedClient, emu: RunningEmulator
) -> None:
    small = emu.state.add_queue(BUCKET, "small", max_size=1)
    emu.state.pause_scheduling()
    await client.submit_ok(QueueId=small.queue_id)
    reply = await client.submit(QueueId=small.queue_id)
    assert (reply.status, reply.code) == (403, "QueueSaturated")
    (await client.submit()).ok()  # the default queue is not full
    assert emu.state.jobs_created == 2


async def test_job_level_two_before_one_before_zero_within_a_queue(
    client: SignedClient, emu: RunningEmulator
) -> None:
    serial = emu.state.add_queue(BUCKET, "serial", max_concurrent=1)
    emu.state.pause_scheduling()
    ids = {
        level: await client.submit_ok(QueueId=serial.queue_id, JobLevel=level)
        for level in ("0", "1", "2")
    }
    emu.state.resume_scheduling()
    for job_id in ids.values():
        await emu.state.wait_for_job_state(job_id, DONE, timeout=10)
    assert emu.state.start_order == [ids["2"], ids["1"], ids["0"]]


async def test_admin_adds_a_queue_for_out_of_process_users(
    client: SignedClient, emu: RunningEmulator
) -> None:
    async with aiohttp.ClientSession() as session:
        url = f"{emu.url}/_emulator/queues"
        body = {"bucket": BUCKET, "name": "from-admin", "max_concurrent": 3, "max_size": 7}
        async with session.post(url, json=body) as response:
            assert response.status == 200
            queue_id = (await response.json())["queue_id"]
        bad_bodies: list[object] = [{"bucket": "nobucket-1"}, {"bucket": BUCKET, "max_size": 0}, []]
        for bad in bad_bodies:
            async with session.post(url, json=bad) as response:
                assert response.status == 400
    reply = await describe_queues(client, queueIds=queue_id)
    entry = reply.ok().xml().find("QueueList")
    assert entry is not None
    assert (entry.findtext("Name"), entry.findtext("MaxConcurrent"), entry.findtext("MaxSize")) == (
        "from-admin",
        "3",
        "7",
    )
    assert len(emu.state.queues_of(BUCKET)) == 2


async def test_the_waiting_count_follows_submits_cancels_and_starts(
    client: SignedClient, emu: RunningEmulator
) -> None:
    queue = default_queue(emu)
    emu.state.pause_scheduling()
    ids = [await client.submit_ok() for _ in range(5)]
    for job_id in ids[:2]:
        (await client.cancel(job_id)).ok()
    assert queue.waiting_count == 3 == sum(1 for _ in queue.waiting_jobs())
    queue.max_size = 4
    await client.submit_ok()
    assert (await client.submit()).code == "QueueSaturated"
    emu.state.resume_scheduling()
    for job_id in ids[2:]:
        await emu.state.wait_for_job_state(job_id, DONE, timeout=10)
    assert queue.waiting_count == 0
