"""`queueId` on DescribeMediaJobs: every version of CI's page marks it required, the SDKs send it
only when set (`gateway.upstream.default_queue`). Against the emulator made to require it, as
the documentation reads, a caller's listing and the exactly-once recovery still work; where
naming a queue would change the answer (a bucket of several), the listing goes without.

The emulator itself accepts a listing without `queueId` (the SDKs' evidence that CI does): a
request hook plays the documented reading here, refusing such a listing the way CI refuses a
missing required parameter (InvalidArgument 400)."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING
from urllib.parse import parse_qsl

import grpc
import pytest
from aiohttp import web

from ci_emulator.errors import invalid_argument
from ci_emulator.faults import FaultSpec
from ci_emulator.hosts import Target as EmulatorTarget
from ci_emulator.server import RunningEmulator
from gateway._proto import media_pb2, service_pb2, service_pb2_grpc
from gateway.api.server import start_gateway
from gateway.credentials import Credentials, StaticCredentialsProvider
from gateway.upstream.client import LOOKUP_TASK_NAME
from tests.conftest import BUCKET, SAMPLE_KEY
from tests.integration.hold import Hold

if TYPE_CHECKING:
    from gateway._proto.service_pb2_grpc import MediaJobServiceAsyncStub as Stub
    from gateway.api.server import RunningGateway
    from gateway.config.settings import Settings

LIST = service_pb2.ListMediaJobsRequest(tag="MediaInfo")


def submit(
    request_id: str = "", queue_id: str = "", queue_type: str = ""
) -> service_pb2.SubmitMediaJobRequest:
    return service_pb2.SubmitMediaJobRequest(
        request_id=request_id,
        request=media_pb2.Request(
            input=media_pb2.Input(object=SAMPLE_KEY), queue_id=queue_id, queue_type=queue_type
        ),
    )


@contextmanager
def queue_id_required(
    emulator: RunningEmulator, *, refuse: bool = True
) -> Iterator[list[dict[str, str]]]:
    """Refuse `GET /jobs` without `queueId` (unless not `refuse`); yields the query of every
    listing that came."""
    listings: list[dict[str, str]] = []

    async def hook(request: web.Request, target: EmulatorTarget) -> None:
        if request.method == "GET" and target.path == "/jobs":
            query = dict(parse_qsl(request.rel_url.raw_query_string, keep_blank_values=True))
            listings.append(query)
            if refuse and not query.get("queueId"):
                raise invalid_argument("queueId is required")

    emulator.state.request_hooks.append(hook)
    try:
        yield listings
    finally:
        emulator.state.request_hooks.remove(hook)


async def test_a_listing_names_the_buckets_only_queue(
    stub: Stub, emulator: RunningEmulator
) -> None:
    job = (await stub.SubmitMediaJob(submit(), timeout=10)).jobs_detail
    queue_id = emulator.state.default_queue[BUCKET]
    lookups = emulator.state.operations["DescribeMediaQueues"]
    with queue_id_required(emulator) as listings:
        first = await stub.ListMediaJobs(LIST, timeout=10)
        again = await stub.ListMediaJobs(LIST, timeout=10)
    assert [detail.job_id for detail in first.jobs_detail] == [job.job_id]
    assert [detail.job_id for detail in again.jobs_detail] == [job.job_id]
    assert [listing["queueId"] for listing in listings] == [queue_id, queue_id]
    # Looked up once, then remembered.
    assert emulator.state.operations["DescribeMediaQueues"] - lookups == 1


async def test_a_bucket_of_several_queues_is_listed_whole(
    stub: Stub, emulator: RunningEmulator
) -> None:
    """Naming one queue would hide the other's jobs: the listing goes without, as before."""
    other = emulator.state.add_queue(BUCKET, "second")
    ids = {
        (await stub.SubmitMediaJob(submit(queue_id=queue_id), timeout=10)).jobs_detail.job_id
        for queue_id in (emulator.state.default_queue[BUCKET], other.queue_id)
    }
    listing = await stub.ListMediaJobs(LIST, timeout=10)
    assert {detail.job_id for detail in listing.jobs_detail} == ids
    with queue_id_required(emulator), pytest.raises(grpc.aio.AioRpcError) as caught:
        await stub.ListMediaJobs(LIST, timeout=10)
    # Such a CI's refusal reaches the caller, whose listing must then name a queue.
    assert caught.value.code() is grpc.StatusCode.INVALID_ARGUMENT


async def test_the_recovery_of_a_lost_answer_names_cis_default_queue(
    stub: Stub, emulator: RunningEmulator
) -> None:
    """A submit without QueueId whose answer is lost: the recovery's listing names the queue CI
    put the earlier such submit in, so it finds the job under either reading."""
    emulator.state.add_queue(BUCKET, "second")  # no single queue: only the learnt one helps
    await stub.SubmitMediaJob(submit(), timeout=10)
    emulator.state.faults.set("CreateMediaJobs", FaultSpec(commit_then_drop=1.0))
    with queue_id_required(emulator) as listings:
        answer = await stub.SubmitMediaJob(submit("rid-lost-answer"), timeout=20)
    assert emulator.state.jobs_created == 2  # the lost answer's job, found and not made again
    assert answer.jobs_detail.job_id in emulator.state.jobs
    assert listings
    assert {listing["queueId"] for listing in listings} == {emulator.state.default_queue[BUCKET]}


async def test_a_queue_type_submit_teaches_no_default_queue(
    stub: Stub, emulator: RunningEmulator
) -> None:
    """A submit with `QueueType` (SpeedTranscoding) and no `QueueId` runs in that type's queue,
    not CI's default one: its answer is not learnt, and a recovery of such a submit names no
    queue (the learnt one would hide its job)."""
    emulator.state.add_queue(BUCKET, "second")  # no single queue to fall back on
    await stub.SubmitMediaJob(submit(queue_type="SpeedTranscoding"), timeout=10)
    emulator.state.faults.set("CreateMediaJobs", FaultSpec(commit_then_drop=1.0))
    with queue_id_required(emulator, refuse=False) as listings:
        await stub.SubmitMediaJob(submit("rid-plain"), timeout=20)
    assert listings and not any("queueId" in listing for listing in listings)
    emulator.state.faults.set("CreateMediaJobs", FaultSpec())
    await stub.SubmitMediaJob(submit(), timeout=10)  # learnt: CI's default queue
    emulator.state.faults.set("CreateMediaJobs", FaultSpec(commit_then_drop=1.0))
    with queue_id_required(emulator, refuse=False) as listings:
        await stub.SubmitMediaJob(submit("rid-typed", queue_type="SpeedTranscoding"), timeout=20)
    assert listings and not any("queueId" in listing for listing in listings)


async def test_a_listing_of_a_kind_outside_media_queues_names_none(
    stub: Stub, emulator: RunningEmulator
) -> None:
    """VideoTag (an AI kind) may run in the AI queue family, which the media queue's id would
    hide: its listing goes without `queueId`, as the SDKs send it."""
    with queue_id_required(emulator, refuse=False) as listings:
        await stub.ListMediaJobs(service_pb2.ListMediaJobsRequest(tag="VideoTag"), timeout=10)
        await stub.ListMediaJobs(LIST, timeout=10)
    assert ["queueId" in listing for listing in listings] == [False, True]


async def test_first_listings_share_one_lookup(
    stub: Stub, emulator: RunningEmulator, gateway: RunningGateway
) -> None:
    """Listings of a bucket whose queue is not known yet share the one `GET /queue` in flight.
    A caller with little time waits for it half its time at most, then lists without a queue;
    a cancelled caller, even the one that started it, leaves it running for the others."""
    hold = Hold(1)

    async def hold_lookups(request: web.Request, target: EmulatorTarget) -> None:
        if request.method == "GET" and target.path == "/queue":
            await hold(request, target)

    emulator.state.request_hooks.append(hold_lookups)
    try:
        with queue_id_required(emulator, refuse=False) as listings:
            starter = asyncio.ensure_future(stub.ListMediaJobs(LIST, timeout=20))
            async with asyncio.timeout(10):
                await hold.full.wait()  # the starter's look-up is in the emulator
            starter.cancel()
            # Two seconds: half of them waiting on the look-up, then a listing without a queue.
            hurried = await stub.ListMediaJobs(LIST, timeout=2)
            assert gateway.in_flight.count == 0  # the starter's cancellation is done with
            patient = asyncio.ensure_future(stub.ListMediaJobs(LIST, timeout=20))
            hold.release.set()
            await patient
        assert hold.count == 1  # one look-up for all three, the starter's, never cancelled
        assert not hurried.jobs_detail
        queue_id = emulator.state.default_queue[BUCKET]
        assert [listing.get("queueId") for listing in listings] == [None, queue_id]
    finally:
        hold.release.set()
        emulator.state.request_hooks.remove(hold_lookups)
    with pytest.raises(asyncio.CancelledError):
        await starter


async def test_a_lookup_in_flight_ends_with_the_gateway(
    settings: Settings, credentials: Credentials, emulator: RunningEmulator
) -> None:
    """A look-up its callers left (here: cancelled) runs on by itself; stopping the gateway
    ends it rather than leaving a task behind."""
    hold = Hold(1)

    async def hold_lookups(request: web.Request, target: EmulatorTarget) -> None:
        if request.method == "GET" and target.path == "/queue":
            await hold(request, target)

    def lookups() -> list[asyncio.Task[object]]:
        return [t for t in asyncio.all_tasks() if t.get_name().startswith(LOOKUP_TASK_NAME)]

    emulator.state.request_hooks.append(hold_lookups)
    gateway = await start_gateway(settings, StaticCredentialsProvider(credentials))
    try:
        async with grpc.aio.insecure_channel(gateway.address) as channel:
            stub = service_pb2_grpc.MediaJobServiceStub(channel)
            listing = asyncio.ensure_future(stub.ListMediaJobs(LIST, timeout=20))
            async with asyncio.timeout(10):
                await hold.full.wait()
            listing.cancel()
            with pytest.raises(asyncio.CancelledError):
                await listing
        assert len(lookups()) == 1
        await gateway.stop(grace_s=0)
        assert not lookups()
    finally:
        hold.release.set()
        emulator.state.request_hooks.remove(hold_lookups)
        await gateway.stop(grace_s=0)
