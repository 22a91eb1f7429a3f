"""Retries, budgets, deadlines, load shedding and exactly-once submit, against injected faults.

The emulator's seeded `FaultPlan` makes CI fail the same way on every run; the gateway is real
and is called over a real gRPC channel.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

import grpc
import pytest

from ci_emulator.faults import FaultSpec
from ci_emulator.server import RunningEmulator
from gateway._proto import media_pb2, service_pb2, service_pb2_grpc
from gateway.api.service import REQUEST_ID_METADATA, MediaJobService
from gateway.config.settings import Settings
from gateway.credentials import Credentials
from gateway.jobs.submit import InMemorySubmitStore, SubmitRecord, SubmitStore
from gateway.upstream.client import CiClient
from gateway.upstream.retry import READ_ONLY, RetryBudget, RetryBudgets
from tests.conftest import ci_client
from tests.integration.helpers import rich_error
from tests.integration.hold import Hold
from tests.integration.under_faults import submit_under_faults

if TYPE_CHECKING:
    from gateway._proto.service_pb2_grpc import MediaJobServiceAsyncStub as Stub

M, S = media_pb2, service_pb2
UNKNOWN_JOB = "j" + "0" * 32


@dataclass
class Recorder:
    """Telemetry that lets a test await what the CI client did."""

    started: asyncio.Event = field(default_factory=asyncio.Event)
    finished: asyncio.Event = field(default_factory=asyncio.Event)
    outcomes: list[str] = field(default_factory=list)

    def attempt_started(self, operation: str) -> None:
        self.started.set()

    def attempt_finished(self, operation: str, outcome: str, seconds: float) -> None:
        self.outcomes.append(outcome)
        self.finished.set()

    def retry_scheduled(self, operation: str, reason: str, delay_s: float) -> None:
        pass


@dataclass
class Gateway:
    stub: Stub
    client: CiClient
    recorder: Recorder


@asynccontextmanager
async def custom_gateway(
    settings: Settings,
    credentials: Credentials,
    *,
    max_in_flight_rpcs: int = 2000,
    max_in_flight_upstream: int = 512,
    budget: RetryBudget | None = None,
    submit_store: SubmitStore | None = None,
) -> AsyncIterator[Gateway]:
    """A gateway with non-default bounds, built the way `start_gateway` builds one."""
    recorder = Recorder()
    client = ci_client(
        settings,
        credentials,
        telemetry=recorder,
        budgets=RetryBudgets(budget),
        max_in_flight=max_in_flight_upstream,
    )
    server = grpc.aio.server()
    service_pb2_grpc.add_MediaJobServiceServicer_to_server(
        MediaJobService(
            client, settings, submit_store=submit_store, max_in_flight_rpcs=max_in_flight_rpcs
        ),
        server,
    )
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    try:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
            yield Gateway(service_pb2_grpc.MediaJobServiceStub(channel), client, recorder)
    finally:
        await server.stop(0)
        await client.close()


def submit_request(request_id: str, key: str, user_data: str = "") -> S.SubmitMediaJobRequest:
    return S.SubmitMediaJobRequest(
        request_id=request_id,
        request=M.Request(input=M.Input(object=key), operation=M.Operation(user_data=user_data)),
    )


async def test_thousand_submits_under_faults_create_exactly_one_job_each(
    stub: Stub, emulator: RunningEmulator
) -> None:
    calls = 1000
    requests = {
        f"req-{i:04d}": submit_request(f"req-{i:04d}", f"input/clip-{i:04d}.mp4", f"n{i}")
        for i in range(calls)
    }

    async def submit(request_id: str) -> str:
        answer = await stub.SubmitMediaJob(requests[request_id], timeout=30)
        sent = requests[request_id].request.operation.user_data
        assert answer.jobs_detail.operation.user_data == sent
        return answer.jobs_detail.job_id

    job_of = await submit_under_faults(emulator, 20261129, requests, submit)

    # Exactly one job per request: no duplicates, none lost.
    assert emulator.state.jobs_created == calls
    assert len(set(job_of.values())) == calls
    per_input = emulator.state.jobs_by_input
    assert len(per_input) == calls and set(per_input.values()) == {1}
    assert set(job_of.values()) == {job.job_id for job in emulator.state.jobs.values()}


async def test_full_outage_is_not_multiplied_by_retries(
    settings: Settings, credentials: Credentials, emulator: RunningEmulator
) -> None:
    emulator.state.faults.set("DescribeMediaJob", FaultSpec(error_500=1.0))
    budget = RetryBudget(capacity=50, retry_cost=5)
    # Attempts are counted, not timed: a millisecond backoff keeps the 10 retries quick.
    quick = replace(settings, retry=replace(settings.retry, transient_base_s=0.001))
    async with custom_gateway(quick, credentials, budget=budget) as gateway:
        seen_before = emulator.state.requests_seen
        reasons: list[str] = []
        calls = 200
        for _ in range(calls):  # bounded and sequential: attempts are easy to count
            with pytest.raises(grpc.aio.AioRpcError) as caught:
                await gateway.stub.DescribeMediaJobs(
                    S.DescribeMediaJobsRequest(job_ids=[UNKNOWN_JOB]), timeout=10
                )
            error = rich_error(caught.value)
            assert error.code is grpc.StatusCode.UNAVAILABLE
            assert error.error_info is not None
            reasons.append(error.error_info.reason)
        attempts = emulator.state.requests_seen - seen_before
    # 50 tokens buy 10 retries in all; then every call fails fast after one attempt.
    assert attempts <= 1.2 * calls
    assert attempts == calls + 10
    assert reasons[-1] == "RETRY_BUDGET_EXHAUSTED"
    assert reasons.count("UPSTREAM_UNAVAILABLE") == 10 // (READ_ONLY.max_attempts - 1)


async def test_budget_refills_with_successes(
    settings: Settings, credentials: Credentials, emulator: RunningEmulator
) -> None:
    budget = RetryBudget(capacity=10, retry_cost=5, success_refund=1)
    async with custom_gateway(settings, credentials, budget=budget) as gateway:
        describe = S.DescribeMediaJobsRequest(job_ids=[UNKNOWN_JOB])
        emulator.state.faults.set("DescribeMediaJob", FaultSpec(error_500=1.0))
        with pytest.raises(grpc.aio.AioRpcError):
            await gateway.stub.DescribeMediaJobs(describe, timeout=10)
        (tokens,) = gateway.client.budgets.tokens().values()
        assert tokens == 0
        emulator.state.faults.clear()
        for _ in range(5):
            await gateway.stub.DescribeMediaJobs(describe, timeout=10)
        (tokens,) = gateway.client.budgets.tokens().values()
        assert tokens == 5


async def test_deadline_is_honoured_and_the_upstream_request_aborted(
    settings: Settings, credentials: Credentials, emulator: RunningEmulator
) -> None:
    emulator.state.faults.set("DescribeMediaJob", FaultSpec(latency_s=2.0))
    async with custom_gateway(settings, credentials) as gateway:
        started = time.monotonic()
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await gateway.stub.DescribeMediaJobs(
                S.DescribeMediaJobsRequest(job_ids=[UNKNOWN_JOB]), timeout=0.5
            )
        elapsed = time.monotonic() - started
        # The gateway gave up on CI too: its attempt ended well before CI's 2 s answer.
        await asyncio.wait_for(gateway.recorder.finished.wait(), timeout=1.0)
        ended = time.monotonic() - started
    assert caught.value.code() is grpc.StatusCode.DEADLINE_EXCEEDED
    assert 0.45 <= elapsed < 1.0
    assert ended < 1.5
    assert gateway.client.in_flight == 0
    assert gateway.recorder.outcomes != ["200"]


async def test_client_cancel_aborts_the_upstream_request(
    settings: Settings, credentials: Credentials, emulator: RunningEmulator
) -> None:
    emulator.state.faults.set("DescribeMediaJob", FaultSpec(latency_s=5.0))
    async with custom_gateway(settings, credentials) as gateway:
        call = gateway.stub.DescribeMediaJobs(
            S.DescribeMediaJobsRequest(job_ids=[UNKNOWN_JOB]), timeout=30
        )
        await asyncio.wait_for(gateway.recorder.started.wait(), timeout=5)
        call.cancel()
        await asyncio.wait_for(gateway.recorder.finished.wait(), timeout=1.0)
        assert gateway.client.in_flight == 0
        assert gateway.recorder.outcomes == ["Cancelled"]


async def test_same_request_id_concurrently_creates_one_job(
    stub: Stub, emulator: RunningEmulator
) -> None:
    emulator.state.pause_scheduling()
    request = submit_request("one-id-for-fifty", "input/sample.mp4", "fifty")
    answers = await asyncio.gather(*(stub.SubmitMediaJob(request, timeout=10) for _ in range(50)))
    assert len({answer.jobs_detail.job_id for answer in answers}) == 1
    assert emulator.state.jobs_created == 1
    assert answers[0].jobs_detail.operation.user_data == "fifty"


async def test_repeat_returns_the_original_and_a_different_body_is_refused(
    stub: Stub, emulator: RunningEmulator
) -> None:
    emulator.state.pause_scheduling()
    call = stub.SubmitMediaJob(submit_request("rid-7", "input/sample.mp4"), timeout=10)
    first = await call
    trailing = dict(await call.trailing_metadata())
    assert trailing[REQUEST_ID_METADATA] == "rid-7"
    repeat = await stub.SubmitMediaJob(submit_request("rid-7", "input/sample.mp4"), timeout=10)
    assert repeat == first
    assert emulator.state.jobs_created == 1
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await stub.SubmitMediaJob(submit_request("rid-7", "input/other.mp4"), timeout=10)
    error = rich_error(caught.value)
    assert error.code is grpc.StatusCode.INVALID_ARGUMENT
    assert error.error_info is not None
    assert error.error_info.reason == "REQUEST_ID_REUSED"
    assert "rid-7" in error.message
    # The id to retry with rides in the trailers of a failed submit too.
    trailers: Any = caught.value.trailing_metadata()  # grpc types the items loosely
    assert dict(trailers)[REQUEST_ID_METADATA] == "rid-7"
    assert emulator.state.jobs_created == 1


async def test_generated_request_id_is_returned(stub: Stub) -> None:
    call = stub.SubmitMediaJob(submit_request("", "input/sample.mp4"), timeout=10)
    await call
    trailing = dict(await call.trailing_metadata())
    assert len(trailing[REQUEST_ID_METADATA]) == 36  # a UUID


async def test_marker_never_reaches_the_caller(stub: Stub, emulator: RunningEmulator) -> None:
    emulator.state.pause_scheduling()
    job = (
        await stub.SubmitMediaJob(submit_request("rid-m", "input/sample.mp4", "mine"))
    ).jobs_detail
    stored = emulator.state.jobs[job.job_id].spec.user_data
    assert stored is not None and stored.startswith("mine #cigw:")  # CI holds the marker ...
    described = await stub.DescribeMediaJobs(S.DescribeMediaJobsRequest(job_ids=[job.job_id]))
    listed = await stub.ListMediaJobs(S.ListMediaJobsRequest())
    # ... the caller never sees it.
    assert described.jobs_detail[0].operation.user_data == "mine"
    assert [j.operation.user_data for j in listed.jobs_detail] == ["mine"]


async def held_then_released(
    calls: Sequence[asyncio.Future[Any]], hold: Hold, refused: int
) -> list[Any]:
    """Every call's result or error: first those that ended while `hold` kept the admitted ones
    in the emulator (at least `refused` of them are awaited), then the held ones, released."""
    async with asyncio.timeout(10):  # bounded, and each round below ends at least one call
        await hold.full.wait()
        pending: set[asyncio.Future[Any]] = set(calls)
        while len(calls) - len(pending) < refused:
            _, pending = await asyncio.wait(pending, return_when=asyncio.FIRST_COMPLETED)
    ended = [call for call in calls if call.done()]
    hold.release.set()
    await asyncio.gather(*calls, return_exceptions=True)
    ordered = ended + [call for call in calls if call not in ended]
    return [call.exception() or call.result() for call in ordered]


async def test_over_the_rpc_bound_is_resource_exhausted_then_recovers(
    settings: Settings, credentials: Credentials, emulator: RunningEmulator
) -> None:
    hold = Hold(4)
    emulator.state.request_hooks.append(hold)
    describe = S.DescribeMediaJobsRequest(job_ids=[UNKNOWN_JOB])
    async with custom_gateway(settings, credentials, max_in_flight_rpcs=4) as gateway:
        calls = [
            asyncio.ensure_future(gateway.stub.DescribeMediaJobs(describe, timeout=10))
            for _ in range(12)
        ]
        results = await held_then_released(calls, hold, refused=8)
        refused = results[:8]
        assert all(isinstance(r, grpc.aio.AioRpcError) for r in refused)
        assert not any(isinstance(r, BaseException) for r in results[8:])
        for error in map(rich_error, refused):
            assert error.code is grpc.StatusCode.RESOURCE_EXHAUSTED
            assert error.error_info is not None and error.error_info.reason == "OVERLOADED"
            assert error.retry_info is not None
        assert hold.count == 4  # the refused calls never reached CI
        answer = await gateway.stub.DescribeMediaJobs(describe, timeout=10)
        assert list(answer.non_exist_job_ids) == [UNKNOWN_JOB]


async def test_over_the_upstream_bound_is_resource_exhausted(
    settings: Settings, credentials: Credentials, emulator: RunningEmulator
) -> None:
    hold = Hold(3)
    emulator.state.request_hooks.append(hold)
    describe = S.DescribeMediaJobsRequest(job_ids=[UNKNOWN_JOB])
    async with custom_gateway(settings, credentials, max_in_flight_upstream=3) as gateway:
        calls = [
            asyncio.ensure_future(gateway.stub.DescribeMediaJobs(describe, timeout=10))
            for _ in range(9)
        ]
        results = await held_then_released(calls, hold, refused=6)
        codes = [r.code() if isinstance(r, grpc.aio.AioRpcError) else "ok" for r in results]
        assert codes == [grpc.StatusCode.RESOURCE_EXHAUSTED] * 6 + ["ok"] * 3
        assert hold.count == 3
        assert gateway.client.in_flight == 0


async def test_empty_user_data_round_trips_and_reconciles(
    stub: Stub, emulator: RunningEmulator
) -> None:
    """CI trims the whitespace around UserData, so the marker must work without its space."""
    emulator.state.pause_scheduling()
    emulator.state.faults.set("CreateMediaJobs", FaultSpec(commit_then_drop=1.0))
    request = submit_request("rid-empty", "input/sample.mp4")
    # The job is created and its answer lost; the gateway finds it and adopts it.
    job = (await stub.SubmitMediaJob(request, timeout=10)).jobs_detail
    assert emulator.state.faults.injected["CreateMediaJobs:commit_then_drop"] == 1
    assert emulator.state.jobs_created == 1  # adopted, not resent
    assert job.operation.user_data == ""
    described = await stub.DescribeMediaJobs(S.DescribeMediaJobsRequest(job_ids=[job.job_id]))
    assert described.jobs_detail[0].operation.user_data == ""


async def test_two_replicas_sharing_a_store_create_one_job_for_one_request_id(
    settings: Settings, credentials: Credentials, emulator: RunningEmulator
) -> None:
    """Concurrent first attempts with one request_id on two replicas: one leads, the other
    waits for its outcome instead of sending the same job in parallel."""
    emulator.state.pause_scheduling()
    emulator.state.faults.set("CreateMediaJobs", FaultSpec(latency_s=0.3))  # a long lead
    shared = InMemorySubmitStore()
    request = submit_request("rid-two-replicas", "input/sample.mp4", "both")
    async with (
        custom_gateway(settings, credentials, submit_store=shared) as a,
        custom_gateway(settings, credentials, submit_store=shared) as b,
    ):
        answers = await asyncio.gather(
            *(gateway.stub.SubmitMediaJob(request, timeout=10) for gateway in (a, b, a, b))
        )
    assert len({answer.jobs_detail.job_id for answer in answers}) == 1
    assert emulator.state.jobs_created == 1


async def test_store_keeps_outcomes_only_for_ids_a_caller_can_repeat(
    settings: Settings, credentials: Credentials, emulator: RunningEmulator
) -> None:
    """A gateway-made request_id that succeeded can never be repeated, so its record is dropped
    (memory stays flat); a caller's id is remembered for its repeats."""
    emulator.state.pause_scheduling()
    store = CountingStore()
    async with custom_gateway(settings, credentials, submit_store=store) as gateway:
        for _ in range(20):
            await gateway.stub.SubmitMediaJob(submit_request("", "input/sample.mp4"), timeout=10)
        assert len(store) == 0
        # Dropped, not stored and then dropped: one store call after the claim (a Redis round
        # trip each, when shared).
        assert store.calls == {"claim": 20, "delete": 20}
        await gateway.stub.SubmitMediaJob(submit_request("mine", "input/sample.mp4"), timeout=10)
        assert len(store) == 1
    assert emulator.state.jobs_created == 21


async def test_a_record_the_full_store_evicted_is_recovered_by_the_reconcile(
    settings: Settings, credentials: Credentials, emulator: RunningEmulator
) -> None:
    """A store past its memory budget drops its oldest records; a repeat of such a request_id
    finds the job again in CI (the reconcile by marker) instead of creating a second one."""
    emulator.state.pause_scheduling()
    store = InMemorySubmitStore(max_bytes=1500)  # room for two or three answered records
    requests = [submit_request(f"rid-full-{i}", f"input/full-{i}.mp4", f"n{i}") for i in range(6)]
    async with custom_gateway(settings, credentials, submit_store=store) as gateway:
        first = [await gateway.stub.SubmitMediaJob(r, timeout=10) for r in requests]
        assert len(store) < len(requests)
        assert await store.get("rid-full-0") is None  # evicted
        again = [await gateway.stub.SubmitMediaJob(r, timeout=10) for r in requests]
    assert [a.jobs_detail.job_id for a in again] == [f.jobs_detail.job_id for f in first]
    assert emulator.state.jobs_created == len(requests)


class CountingStore(InMemorySubmitStore):
    """The embedded store, counting the calls made to it by name."""

    def __init__(self) -> None:
        super().__init__()
        self.calls: dict[str, int] = {}

    def _count(self, name: str) -> None:
        self.calls[name] = self.calls.get(name, 0) + 1

    async def get(self, request_id: str) -> SubmitRecord | None:
        self._count("get")
        return await super().get(request_id)

    async def claim(self, request_id: str, record: SubmitRecord) -> SubmitRecord | None:
        self._count("claim")
        return await super().claim(request_id, record)

    async def put(self, request_id: str, record: SubmitRecord) -> None:
        self._count("put")
        await super().put(request_id, record)

    async def delete(self, request_id: str) -> None:
        self._count("delete")
        await super().delete(request_id)


class MeetOnClaim:
    """A store shared by replicas whose `claim`, once `armed`, answers an existing record only
    when `count` claims have read it: replicas retrying a record in doubt at the same moment
    all see it as it was before any of them acts on it. A plain write of a lead over a record
    in doubt (what taking it over was before `take_over`) waits likewise for `count` of them,
    so that every replica that wrongly leads also reconciles before any sends. Bounded: a
    failing test still ends."""

    def __init__(self, store: SubmitStore, count: int = 2) -> None:
        self.store = store
        self.count = count
        self.armed = False
        self.met = 0
        self.all_met = asyncio.Event()
        self.led = 0
        self.all_led = asyncio.Event()

    async def get(self, request_id: str) -> SubmitRecord | None:
        return await self.store.get(request_id)

    async def claim(self, request_id: str, record: SubmitRecord) -> SubmitRecord | None:
        existing = await self.store.claim(request_id, record)
        if existing is not None and self.armed:
            self.met += 1
            if self.met >= self.count:
                self.all_met.set()
            async with asyncio.timeout(5):
                await self.all_met.wait()
        return existing

    async def take_over(
        self, request_id: str, expected: SubmitRecord, record: SubmitRecord
    ) -> bool:
        return await self.store.take_over(request_id, expected, record)

    async def put(self, request_id: str, record: SubmitRecord) -> None:
        await self.store.put(request_id, record)
        if self.armed and record.jobs_detail is None and record.leader_until > 0:
            self.led += 1
            if self.led >= self.count:
                self.all_led.set()
            async with asyncio.timeout(5):
                await self.all_led.wait()

    async def delete(self, request_id: str) -> None:
        await self.store.delete(request_id)


async def retry_in_doubt_on_two_replicas(
    settings: Settings, credentials: Credentials, emulator: RunningEmulator, store: SubmitStore
) -> list[S.SubmitMediaJobResponse]:
    """Leave a submit in doubt (CI answers 503 to every POST: no job, but the gateway cannot
    know), then retry it with its request_id on two replicas sharing `store` at once."""
    state = emulator.state
    state.pause_scheduling()
    meeting = MeetOnClaim(store)
    request = submit_request("rid-in-doubt", "input/sample.mp4", "doubt")
    async with (
        custom_gateway(settings, credentials, submit_store=meeting) as a,
        custom_gateway(settings, credentials, submit_store=meeting) as b,
    ):
        state.faults.set("CreateMediaJobs", FaultSpec(error_503=1.0))
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await a.stub.SubmitMediaJob(request, timeout=10)
        error = rich_error(caught.value)
        assert error.error_info is not None
        assert error.error_info.reason == "SUBMIT_OUTCOME_UNKNOWN"
        assert state.jobs_created == 0
        state.faults.set("CreateMediaJobs", FaultSpec())
        meeting.armed = True
        answers = await asyncio.gather(
            a.stub.SubmitMediaJob(request, timeout=10), b.stub.SubmitMediaJob(request, timeout=10)
        )
    assert meeting.met >= 2  # both read the record in doubt before either acted
    return list(answers)


async def test_two_replicas_retrying_a_submit_in_doubt_create_one_job(
    settings: Settings, credentials: Credentials, emulator: RunningEmulator
) -> None:
    """Only one replica may take the lead over a record in doubt; the other waits for its
    outcome. Taking it over by a plain write let both reconcile, find nothing, and send."""
    answers = await retry_in_doubt_on_two_replicas(
        settings, credentials, emulator, InMemorySubmitStore()
    )
    assert len({answer.jobs_detail.job_id for answer in answers}) == 1
    assert emulator.state.jobs_created == 1
