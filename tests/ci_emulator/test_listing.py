"""DescribeMediaJobs (`GET /jobs`): paging, ordering, every filter, and every bad parameter."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, replace

import aiohttp
import pytest

from ci_emulator.config import EmulatorConfig
from ci_emulator.faults import FaultSpec
from ci_emulator.server import RunningEmulator
from ci_emulator.timefmt import format_ci_time
from tests.ci_emulator.conftest import BUCKET, DONE, MISSING_KEY, VIDEO_KEY, Reply, SignedClient
from tests.fixtures.servers import StartEmulator


def job_ids(reply: Reply) -> list[str]:
    return [detail.findtext("JobId") or "" for detail in reply.ok().xml().findall("JobsDetail")]


def next_token(reply: Reply) -> str | None:
    node = reply.xml().find("NextToken")
    assert node is not None, "NextToken is always present"
    return node.text


async def test_paging_over_three_pages(client: SignedClient, emu: RunningEmulator) -> None:
    emu.state.pause_scheduling()
    submitted = [await client.submit_ok() for _ in range(7)]
    for order, expected in (("Desc", submitted[::-1]), ("Asc", submitted)):
        pages: list[list[str]] = []
        token = ""
        for _ in range(5):  # bounded: 7 jobs at 3 per page is 3 pages
            reply = await client.list_jobs({"size": "3", "orderByTime": order, "nextToken": token})
            pages.append(job_ids(reply))
            token = next_token(reply) or ""
            if not token:
                assert b"<NextToken></NextToken>" in reply.body
                break
        assert [len(page) for page in pages] == [3, 3, 1]
        assert [job for page in pages for job in page] == expected


async def test_default_is_desc_size_ten_all_states(
    client: SignedClient, emu: RunningEmulator
) -> None:
    emu.state.pause_scheduling()
    submitted = [await client.submit_ok() for _ in range(11)]
    reply = await client.list_jobs()
    assert job_ids(reply) == submitted[::-1][:10]
    assert next_token(reply)
    detail = reply.xml().find("JobsDetail")
    assert detail is not None and detail.find("Input/BucketId") is not None


async def test_a_last_page_exactly_full_has_an_empty_token(
    client: SignedClient, emu: RunningEmulator
) -> None:
    emu.state.pause_scheduling()
    for _ in range(2):
        await client.submit_ok()
    reply = await client.list_jobs({"size": "2"})
    assert len(job_ids(reply)) == 2 and next_token(reply) is None


async def test_an_empty_list_is_200_with_an_empty_token(client: SignedClient) -> None:
    reply = (await client.list_jobs()).ok()
    assert [child.tag for child in reply.xml()] == ["NextToken"]


async def test_filter_by_state(client: SignedClient, emu: RunningEmulator) -> None:
    done = await client.submit_ok()
    failed = await client.submit_ok(MISSING_KEY)
    await emu.state.wait_for_job_state(done, DONE, timeout=10)
    await emu.state.wait_for_job_state(failed, DONE, timeout=10)
    emu.state.pause_scheduling()
    waiting = await client.submit_ok()
    cancelled = await client.submit_ok()
    (await client.cancel(cancelled)).ok()
    cases = {
        "Success": [done],
        "Failed": [failed],
        "Submitted": [waiting],
        "Cancel": [cancelled],
        "Running": [],
        "Success,Cancel": [cancelled, done],
        " Failed , Submitted ": [waiting, failed],
        "All": [cancelled, waiting, failed, done],
        "All,Success": [cancelled, waiting, failed, done],
        "": [cancelled, waiting, failed, done],
    }
    for states, expected in cases.items():
        assert job_ids(await client.list_jobs({"states": states})) == expected, states


async def test_filter_by_queue_and_object(client: SignedClient, emu: RunningEmulator) -> None:
    emu.state.pause_scheduling()
    video = await client.submit_ok()
    missing = await client.submit_ok(MISSING_KEY)
    queue = emu.state.default_queue[BUCKET]
    assert job_ids(await client.list_jobs({"queueId": queue})) == [missing, video]
    assert job_ids(await client.list_jobs({"inputObject": VIDEO_KEY})) == [video]
    assert job_ids(await client.list_jobs({"inputObject": "input/"})) == []


async def test_filter_by_tag_workflow_and_batch(client: SignedClient, emu: RunningEmulator) -> None:
    emu.state.pause_scheduling()
    await client.submit_ok()
    assert job_ids(await client.list_jobs({"tag": "Transcode"})) == []
    # No run of that workflow started a job (test_workflow_jobs lists those), and the emulator
    # runs no batch jobs: these match nothing.
    assert job_ids(await client.list_jobs({"workflowId": "w123"})) == []
    assert job_ids(await client.list_jobs({"inventoryTriggerJobId": "b123"})) == []
    assert len(job_ids(await client.list_jobs({"workflowId": ""}))) == 1


@dataclass
class FakeClock:
    now: float = 1_700_000_000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
async def pinned(
    emulators: StartEmulator, emulator_config: EmulatorConfig, clock: FakeClock
) -> AsyncIterator[tuple[RunningEmulator, SignedClient]]:
    emu = await emulators(replace(emulator_config, clock=clock))
    async with aiohttp.ClientSession() as session:
        yield emu, SignedClient(session, emu.url, now=clock)


async def test_filter_by_creation_time(
    pinned: tuple[RunningEmulator, SignedClient], clock: FakeClock
) -> None:
    emu, client = pinned
    emu.state.pause_scheduling()
    times = [1_700_000_000.0, 1_700_000_100.5, 1_700_000_200.0]
    ids = []
    for moment in times:
        clock.now = moment
        ids.append(await client.submit_ok())
    middle = format_ci_time(times[1])
    assert middle == "2023-11-15T06:15:00+0800"
    assert job_ids(await client.list_jobs({"startCreationTime": middle})) == ids[:0:-1]
    assert job_ids(await client.list_jobs({"endCreationTime": middle})) == ids[1::-1]
    both = {"startCreationTime": middle, "endCreationTime": middle}
    assert job_ids(await client.list_jobs(both)) == [ids[1]]
    # The same instant in UTC selects the same job.
    utc = {"startCreationTime": "2023-11-14T22:15:00+0000", "endCreationTime": middle}
    assert job_ids(await client.list_jobs(utc)) == [ids[1]]


async def test_creation_time_uses_the_emulator_clock(
    pinned: tuple[RunningEmulator, SignedClient],
) -> None:
    _, client = pinned
    reply = (await client.submit()).ok()
    assert reply.xml().findtext("JobsDetail/CreationTime") == "2023-11-15T06:13:20+0800"


async def test_a_lagging_listing_shows_a_job_only_once_the_lag_has_passed(
    pinned: tuple[RunningEmulator, SignedClient], clock: FakeClock
) -> None:
    """`listing_lag_s`: a job exists (and describes) at once, but is listed only that long
    after its creation, by the emulator's clock: CI still committing, or a lagging index."""
    emu, client = pinned
    emu.state.pause_scheduling()
    emu.state.faults.set("DescribeMediaJobs", FaultSpec(listing_lag_s=2.0))
    first = await client.submit_ok()
    assert job_ids(await client.list_jobs()) == []
    described = (await client.describe(first)).ok().xml()
    assert described.findtext("JobsDetail/JobId") == first
    clock.now += 1.0
    second = await client.submit_ok()
    assert job_ids(await client.list_jobs()) == []
    clock.now += 1.0
    assert job_ids(await client.list_jobs()) == [first]
    clock.now += 1.0
    assert job_ids(await client.list_jobs()) == [second, first]
    assert emu.state.faults.injected["DescribeMediaJobs:listing_lag"] == 4
    emu.state.faults.clear()  # without the lag, a job is listed at once again
    third = await client.submit_ok()
    assert job_ids(await client.list_jobs()) == [third, second, first]


LIST_REFUSALS: list[tuple[str, dict[str, str]]] = [
    ("no tag", {"tag": ""}),
    ("unknown state", {"states": "Done"}),
    ("lower-case state", {"states": "success"}),
    ("order", {"orderByTime": "Newest"}),
    ("size 0", {"size": "0"}),
    ("size 101", {"size": "101"}),
    ("size word", {"size": "ten"}),
    ("size negative", {"size": "-1"}),
    ("token garbage", {"nextToken": "garbage!"}),
    ("token base64 of junk", {"nextToken": "aGVsbG8="}),
    ("start time format", {"startCreationTime": "2023-11-15 06:15:00"}),
    ("end time no offset", {"endCreationTime": "2023-11-15T06:15:00"}),
    ("unknown queue", {"queueId": "p" + "0" * 32}),
]


@pytest.mark.parametrize(("case", "params"), LIST_REFUSALS, ids=[r[0] for r in LIST_REFUSALS])
async def test_list_refusals(client: SignedClient, case: str, params: dict[str, str]) -> None:
    reply = await client.list_jobs(params)
    assert (reply.status, reply.code) == (400, "InvalidArgument"), reply.body


async def test_a_missing_tag_param_is_invalid(client: SignedClient) -> None:
    reply = await client.send("GET", "/jobs", params={"states": "All"})
    assert (reply.status, reply.code) == (400, "InvalidArgument")


async def test_a_token_is_bound_to_its_order(client: SignedClient, emu: RunningEmulator) -> None:
    emu.state.pause_scheduling()
    for _ in range(3):
        await client.submit_ok()
    token = next_token(await client.list_jobs({"size": "1"}))
    assert token
    reply = await client.list_jobs({"size": "1", "orderByTime": "Asc", "nextToken": token})
    assert (reply.status, reply.code) == (400, "InvalidArgument")


async def test_a_token_survives_new_jobs(client: SignedClient, emu: RunningEmulator) -> None:
    emu.state.pause_scheduling()
    first = [await client.submit_ok() for _ in range(3)]
    reply = await client.list_jobs({"size": "2"})
    assert job_ids(reply) == first[:0:-1]
    await client.submit_ok()  # newer than the cursor: a Desc listing never shows it later
    rest = await client.list_jobs({"size": "2", "nextToken": next_token(reply) or ""})
    assert job_ids(rest) == [first[0]]


async def test_unknown_params_are_ignored(client: SignedClient) -> None:
    (await client.list_jobs({"somethingNew": "1"})).ok()
