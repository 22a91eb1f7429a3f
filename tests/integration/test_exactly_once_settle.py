"""Exactly-once submit when CI is slower than the gateway's first look: the settle.

A submit whose answer is lost (here a balancer's 504 in front of CI, which made the job) is
looked for at once. If CI lists the job only a while after creating it (the emulator's
`listing_lag_s`: CI still committing, or a listing that lags), that look misses it, and a resend
then would make a second job. So the gateway lets CI settle (`retry.submit_settle_s` plus the
backoff's jitter) and looks again before it resends, and gives up in doubt rather than resend
unsettled when the caller's deadline leaves no room.

The coordinator runs against the real emulator through a real `CiClient`, and both share a
manual clock: the emulator lists a job only once its clock has passed the lag, the coordinator's
settle is that clock's `sleep`, so when a job appears is decided by the test, never by timing.
One test runs the whole gateway on the real clock, for the setting's way from `Settings` in.
"""

from __future__ import annotations

import asyncio
import inspect
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Generic, TypeVar

import grpc
import pytest
from aiohttp import web

from ci_emulator.errors import CiError
from ci_emulator.faults import FaultSpec
from ci_emulator.hosts import Target as CiTarget
from ci_emulator.server import RunningEmulator
from gateway._proto import service_pb2
from gateway.api import validation
from gateway.config.settings import Retry, Settings
from gateway.credentials import Credentials
from gateway.errors import RetryBudgetExhausted, SubmitOutcomeUnknown, UpstreamError
from gateway.jobs.exactly_once import ExactlyOnceCoordinator, InMemorySubmitStore, RequestKey
from gateway.jobs.multi_submit import MultiSubmitCoordinator
from gateway.jobs.submit import SubmitCoordinator
from gateway.upstream.client import CiClient, Reply
from gateway.upstream.retry import Backoff, Deadline, RetryBudget, RetryBudgets, Settle
from tests.conftest import ci_client, one_bucket_config, settings_for
from tests.fixtures.servers import StartEmulator
from tests.integration.test_exactly_once import (
    LB_PAGE,
    ManglingProxy,
    mangling_proxy,
    submit_request,
)
from tests.integration.test_multi_submit import multi_request
from tests.jobs.helpers import gateway

S = service_pb2
C = TypeVar("C", bound=ExactlyOnceCoordinator[Any, Any])
SETTLE_S = 1.0
LAG_S = 0.5  # CI lists a job this long after making it: within the settle
BACKOFF = Backoff(transient_base_s=0.1, throttled_base_s=0.01, cap_s=5.0)
HALF = 0.5  # the jitter's draw: half of the backoff's ceiling
FIRST_WAIT_S = SETTLE_S + HALF * 0.1  # after the first send in doubt: the floor + jitter
WAIT_S = 10.0  # what a test waits for the gateway at most, on the real clock


@dataclass
class ManualClock:
    """One clock for the emulator (job creation, listing lag, signatures) and the coordinator
    (records, settle): it moves only when the coordinator sleeps."""

    now_s: float = field(default_factory=time.time)
    slept: list[float] = field(default_factory=list)

    def now(self) -> float:
        return self.now_s

    async def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now_s += seconds
        await asyncio.sleep(0)


@dataclass
class Retries:
    """The CI client's telemetry, keeping the retries it was told of."""

    scheduled: list[tuple[str, str, float]] = field(default_factory=list)

    def attempt_started(self, operation: str) -> None:
        pass

    def attempt_finished(self, operation: str, outcome: str, seconds: float) -> None:
        pass

    def retry_scheduled(self, operation: str, reason: str, delay_s: float) -> None:
        self.scheduled.append((operation, reason, delay_s))


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture
async def lagging(
    emulators: StartEmulator, bucket_dir: Path, credentials: Credentials, clock: ManualClock
) -> RunningEmulator:
    """The emulator on the manual clock, listing every job `LAG_S` after creating it."""
    keys = {credentials.secret_id: credentials.secret_key}
    emulator = await emulators(one_bucket_config(bucket_dir, keys, clock=clock.now))
    emulator.state.pause_scheduling()  # jobs are only created; running them is not under test
    emulator.state.faults.set("DescribeMediaJobs", FaultSpec(listing_lag_s=LAG_S))
    return emulator


@dataclass
class Submits(Generic[C]):
    """A submit form as the service builds it (`form`), on the manual clock, its jitter drawn
    at half, with the settings its requests are validated with."""

    form: C
    store: InMemorySubmitStore
    client: CiClient
    settings: Settings
    clock: ManualClock
    retries: Retries

    async def single(self, request_id: str, seconds: float = 10) -> Reply[S.SubmitMediaJobResponse]:
        """One SubmitMediaJob under `request_id`, with `seconds` of deadline."""
        target, body, request_id = validation.validate_submit(
            submit_request(request_id), self.settings
        )
        deadline = Deadline(seconds, clock=self.clock.now)
        reply: Reply[S.SubmitMediaJobResponse] = await self.form.submit(
            target, body, RequestKey.unscoped(request_id), deadline
        )
        return reply


@asynccontextmanager
async def submits(
    form: type[C],
    settings: Settings,
    credentials: Credentials,
    clock: ManualClock,
    settle_s: float = SETTLE_S,
    sleep: Callable[[float], Awaitable[None]] | None = None,
    budget: RetryBudget | None = None,
) -> AsyncIterator[Submits[C]]:
    """`form` through a real `CiClient` to what `settings` names, on the manual clock (whose
    `sleep` it sleeps with, unless given another), with `budget` as every upstream's."""
    retries = Retries()
    client = ci_client(
        settings,
        credentials,
        telemetry=retries,
        budgets=RetryBudgets(budget) if budget is not None else None,
        clock=clock.now,
    )
    store = InMemorySubmitStore(clock=clock.now)
    try:
        coordinator = form(
            client,
            store,
            budget_for=client.budget_for,
            settle=Settle(settle_s, BACKOFF),
            clock=clock.now,
            sleep=sleep or clock.sleep,
            rng=lambda: HALF,
        )
        yield Submits(coordinator, store, client, settings, clock, retries)
    finally:
        await client.close()


@asynccontextmanager
async def behind_a_504(
    emulator: RunningEmulator, answered: Callable[[web.Request], None] | None = None
) -> AsyncIterator[tuple[ManglingProxy, Settings]]:
    """A balancer in front of CI that answers the first POST CI accepted (and made a job for)
    with a 504 page; the settings that reach CI through it."""
    async with mangling_proxy(emulator.url, lambda body: LB_PAGE, 504, answered) as proxy:
        yield proxy, replace(settings_for(emulator), endpoint_url=proxy.url)


def counts(emulator: RunningEmulator) -> tuple[int, int]:
    """(POSTs, listings) the emulator served."""
    operations = emulator.state.operations
    return operations["CreateMediaJobs"], operations["DescribeMediaJobs"]


def assert_one_job_and_the_callers(
    emulator: RunningEmulator, answer: S.SubmitMediaJobResponse
) -> None:
    """CI made one job for the request_id, whatever was lost and looked for, and the caller's
    answer names that one."""
    assert emulator.state.jobs_created == 1
    (job_id,) = emulator.state.jobs
    assert answer.jobs_detail.job_id == job_id


@pytest.mark.parametrize(("settle_s", "jobs"), [(SETTLE_S, 1), (0.0, 2)], ids=["settled", "off"])
async def test_a_job_listed_late_after_a_504_is_adopted_after_the_settle_not_sent_again(
    lagging: RunningEmulator,
    credentials: Credentials,
    clock: ManualClock,
    settle_s: float,
    jobs: int,
) -> None:
    """CI made the job, a balancer answered 504, and CI lists the job only `LAG_S` later. The
    look at once misses it; the one after the settle finds it, and the caller gets that job.
    With the settle off (`submit_settle_s = 0`, the behaviour before it) the same misses end in
    a resend and a second job: the emulator's lag really hides the job from the first look."""
    async with behind_a_504(lagging) as (proxy, settings):
        async with submits(SubmitCoordinator, settings, credentials, clock, settle_s) as forms:
            reply = await forms.single("rid-late")
    assert len(proxy.mangled) == 1  # the first POST made a job and reached us as a 504
    assert lagging.state.jobs_created == jobs
    if jobs == 1:
        assert_one_job_and_the_callers(lagging, reply.message)
        assert reply.message.jobs_detail.operation.user_data == "mine"
        assert clock.slept == [pytest.approx(FIRST_WAIT_S)]
        # The recovery look before the POST, the look at once, the look after the settle.
        assert counts(lagging) == (1, 3)
        # The pause is told as the retry it may become: counted, logged, on the RPC's span.
        ((operation, reason, delay_s),) = forms.retries.scheduled
        assert (operation, reason) == ("CreateMediaJobs", "UPSTREAM_UNAVAILABLE")
        assert delay_s == pytest.approx(FIRST_WAIT_S)
    else:
        assert clock.slept == []
        assert counts(lagging) == (2, 2)
        assert forms.retries.scheduled == []


async def test_no_room_to_settle_and_resend_ends_in_doubt_and_a_repeat_at_once_still_settles(
    lagging: RunningEmulator, credentials: Credentials, clock: ManualClock
) -> None:
    """A deadline shorter than the settle plus a look and a resend: the gateway does not
    resend, and the call ends UNAVAILABLE (SUBMIT_OUTCOME_UNKNOWN). The caller's repeat, sent at
    once, misses the job too (still unlisted), waits out the rest of the settle counted from
    the end of the first send, and adopts the one job."""
    async with behind_a_504(lagging) as (_, settings):
        async with submits(SubmitCoordinator, settings, credentials, clock) as forms:
            with pytest.raises(SubmitOutcomeUnknown) as caught:
                await forms.single("rid-short", seconds=FIRST_WAIT_S)
            assert caught.value.status is grpc.StatusCode.UNAVAILABLE
            assert caught.value.attempts == 3  # the recovery look, the POST, the look at once
            assert (lagging.state.jobs_created, clock.slept) == (1, [])
            assert counts(lagging) == (1, 2)

            reply = await forms.single("rid-short")
    assert_one_job_and_the_callers(lagging, reply.message)
    # The first send's settle floor; its jitter was that call's own.
    assert clock.slept == [pytest.approx(SETTLE_S)]
    assert counts(lagging) == (1, 4)


async def test_a_look_ci_answered_after_the_settle_but_served_before_it_decides_no_resend(
    lagging: RunningEmulator, credentials: Credentials, clock: ManualClock
) -> None:
    """The look at once is served while the job is still unlisted, and its answer takes longer
    than the settle to come back. The settle has passed by then, but that look saw CI before
    it: another look follows (without a wait) before anything is resent, and finds the job."""
    gets: list[str] = []

    def slow_first_look(request: web.Request) -> None:
        if request.method == "GET":
            gets.append(request.path)
            if len(gets) == 2:  # the look at once (the first: the recovery look)
                clock.now_s += 2 * SETTLE_S

    async with behind_a_504(lagging, slow_first_look) as (proxy, settings):
        async with submits(SubmitCoordinator, settings, credentials, clock) as forms:
            reply = await forms.single("rid-slow-look")
    assert len(proxy.mangled) == 1
    assert_one_job_and_the_callers(lagging, reply.message)
    assert clock.slept == []
    assert counts(lagging) == (1, 3)


async def test_resends_to_a_failing_ci_wait_a_growing_settle(
    lagging: RunningEmulator, credentials: Credentials, clock: ManualClock
) -> None:
    """CI answers every POST 503 (nothing made): each resend comes only after the settle, whose
    jitter grows with each failure, and after a look before and after it."""
    lagging.state.faults.set("CreateMediaJobs", FaultSpec(error_503=1.0))
    async with submits(SubmitCoordinator, settings_for(lagging), credentials, clock) as forms:
        with pytest.raises(SubmitOutcomeUnknown):
            await forms.single("rid-503", seconds=30)
    assert clock.slept == [
        pytest.approx(SETTLE_S + HALF * 0.1),
        pytest.approx(SETTLE_S + HALF * 0.2),
    ]
    assert counts(lagging) == (3, 5)
    assert lagging.state.jobs_created == 0


async def test_throttling_is_resent_at_once_without_a_settle(
    lagging: RunningEmulator, credentials: Credentials, clock: ManualClock
) -> None:
    """SlowDown means CI refused before processing: no job can exist, so the submit is
    retried with the throttled backoff as before, neither looked for nor settled."""
    throttled: list[str] = []

    async def slow_down_once(request: web.Request, target: CiTarget) -> web.StreamResponse | None:
        if request.method == "POST" and target.path == "/jobs" and not throttled:
            throttled.append(target.path)
            raise CiError("SlowDown", "Please reduce your request rate.", status=429)
        return None

    lagging.state.request_hooks.append(slow_down_once)
    fast = Retry(transient_base_s=0.01, throttled_base_s=0.01, backoff_cap_s=0.05)
    settings = replace(settings_for(lagging), retry=fast)
    async with submits(SubmitCoordinator, settings, credentials, clock) as forms:
        reply = await forms.single("rid-429")
    assert throttled
    assert_one_job_and_the_callers(lagging, reply.message)
    assert clock.slept == []
    # The 429 never reached the emulator's counters (a hook answered it); the listing is the
    # recovery look only.
    assert counts(lagging) == (1, 1)


async def test_the_multi_operation_form_settles_too(
    lagging: RunningEmulator, credentials: Credentials, clock: ManualClock
) -> None:
    async with behind_a_504(lagging) as (proxy, settings):
        async with submits(MultiSubmitCoordinator, settings, credentials, clock) as forms:
            target, body, request_id = validation.validate_submit_jobs(
                multi_request("multi-late", "input/sample.mp4", "a", "b"), settings
            )
            reply = await forms.form.submit(
                target, body, RequestKey.unscoped(request_id), Deadline(10, clock=clock.now)
            )
    assert len(proxy.mangled) == 1
    assert lagging.state.jobs_created == 2
    assert {job.job_id for job in reply.message.jobs_detail} == set(lagging.state.jobs)
    assert clock.slept == [pytest.approx(FIRST_WAIT_S)]


async def test_a_job_the_look_after_the_settle_finds_costs_no_retry_token(
    lagging: RunningEmulator, credentials: Credentials, clock: ManualClock
) -> None:
    """A retry token pays for a resend. The look after the settle found the job, so nothing
    was sent again, and the budget (which no success refills here) is whole."""
    budget = RetryBudget(capacity=100, retry_cost=5, success_refund=0)
    async with behind_a_504(lagging) as (_, settings):
        async with submits(SubmitCoordinator, settings, credentials, clock, budget=budget) as forms:
            reply = await forms.single("rid-free")
            tokens = forms.client.budgets.tokens()
    assert_one_job_and_the_callers(lagging, reply.message)
    assert clock.slept == [pytest.approx(FIRST_WAIT_S)]
    assert list(tokens.values()) == [100]


async def test_a_retry_budget_too_low_to_resend_ends_the_call_in_doubt_without_a_settle(
    lagging: RunningEmulator, credentials: Credentials, clock: ManualClock
) -> None:
    """CI is failing for everyone (the budget is spent): a submit in doubt that the budget would
    not let resend ends at once, UNAVAILABLE (SUBMIT_OUTCOME_UNKNOWN), rather than wait out a
    settle first; its error says the budget stopped it, with the failed send's CI RequestId."""
    budget = RetryBudget(capacity=4, retry_cost=5, success_refund=0)
    lagging.state.faults.set("CreateMediaJobs", FaultSpec(error_503=1.0))
    async with submits(
        SubmitCoordinator, settings_for(lagging), credentials, clock, budget=budget
    ) as forms:
        with pytest.raises(SubmitOutcomeUnknown) as caught:
            await forms.single("rid-broke")
    assert clock.slept == []
    assert counts(lagging) == (1, 2)  # the recovery look, the POST, the look at once
    assert caught.value.attempts == 3
    cause = caught.value.cause
    assert isinstance(cause, RetryBudgetExhausted) and isinstance(cause.last, UpstreamError)
    metadata = caught.value.metadata()
    assert metadata["last_reason"] == "UPSTREAM_UNAVAILABLE"
    assert metadata["ci_request_id"] and metadata["ci_request_id"] == cause.last.request_id


async def test_submits_settling_together_cannot_count_on_the_same_retry_token(
    lagging: RunningEmulator, credentials: Credentials, clock: ManualClock
) -> None:
    """The token of a resend is taken before the settle (and given back if no resend follows):
    with one resend's worth left, a second submit in doubt while the first settles ends at
    once, RETRY_BUDGET_EXHAUSTED, and the first, which holds the token, resends. (Taken only
    after the settle, the second waited and resent on the token the first was counting on,
    and the first then failed; meanwhile the tokens sat in a full bucket, where successes'
    refunds were lost to its cap.)"""
    budget = RetryBudget(capacity=5, retry_cost=5, success_refund=0)
    lagging.state.faults.set("CreateMediaJobs", FaultSpec(error_503=1.0))
    first_settling, release = asyncio.Event(), asyncio.Event()

    async def first_settle_held(seconds: float) -> None:
        if not first_settling.is_set():
            first_settling.set()
            await release.wait()
        await clock.sleep(seconds)

    async with submits(
        SubmitCoordinator,
        settings_for(lagging),
        credentials,
        clock,
        budget=budget,
        sleep=first_settle_held,
    ) as forms:
        first = asyncio.create_task(forms.single("rid-one"))
        async with asyncio.timeout(WAIT_S):
            await first_settling.wait()
        with pytest.raises(SubmitOutcomeUnknown) as second:
            await forms.single("rid-two")
        assert isinstance(second.value.cause, RetryBudgetExhausted)
        assert counts(lagging)[0] == 2  # one send each; the second did not resend
        release.set()
        with pytest.raises(SubmitOutcomeUnknown) as caught:
            await first
    assert counts(lagging)[0] == 3  # the first's resend, on the token it held (503 again)
    assert isinstance(caught.value.cause, RetryBudgetExhausted)


async def test_a_caller_gone_while_ci_settles_hands_the_submit_to_its_follower_at_once(
    lagging: RunningEmulator, credentials: Credentials, clock: ManualClock
) -> None:
    """Two calls with one request_id: the second follows the first, which leads. The leader's
    client goes away while the gateway lets CI settle (its handler is cancelled). The follower
    takes the submit over at once, not once the leader's lease (its deadline and a margin) has
    run out, and still lets CI settle from the end of the first send: it gets the one job."""
    settling = asyncio.Event()

    async def first_settle_outlasts_its_caller(seconds: float) -> None:
        if not settling.is_set():
            settling.set()
            await asyncio.Event().wait()  # until cancelled
        await clock.sleep(seconds)

    async with behind_a_504(lagging) as (proxy, settings):
        async with submits(
            SubmitCoordinator, settings, credentials, clock, sleep=first_settle_outlasts_its_caller
        ) as forms:
            leader = asyncio.create_task(forms.single("rid-gone"))
            follower = asyncio.create_task(forms.single("rid-gone"))
            async with asyncio.timeout(WAIT_S):
                await settling.wait()
            leader.cancel()
            async with asyncio.timeout(WAIT_S):
                reply = await follower
    assert leader.cancelled()
    assert len(proxy.mangled) == 1
    assert_one_job_and_the_callers(lagging, reply.message)
    # The settle's floor from the leader's send, and no wait for the leader's lease.
    assert clock.slept == [pytest.approx(SETTLE_S)]
    assert counts(lagging) == (1, 4)


async def test_a_caller_gone_mid_post_lets_ci_settle_from_then_before_a_resend(
    lagging: RunningEmulator, credentials: Credentials, clock: ManualClock
) -> None:
    """CI takes 2 s over a POST (it makes the job) and the client goes away before the
    answer. CI may act on a POST its sender left, so the repeat lets CI settle counted from
    then, not from the start of the call: it finds the job, listed 2.5 s after it was made,
    rather than resend at once (which the 2 s already past the start would allow) and make
    a second one."""
    lagging.state.faults.set("DescribeMediaJobs", FaultSpec(listing_lag_s=2.5))
    calls: list[asyncio.Task[Any]] = []

    def slow_post_then_gone(request: web.Request) -> None:
        if request.method == "POST":
            clock.now_s += 2.0
            calls[0].cancel()  # before the gateway reads CI's answer

    async with behind_a_504(lagging, slow_post_then_gone) as (_, settings):
        async with submits(SubmitCoordinator, settings, credentials, clock) as forms:
            calls.append(asyncio.create_task(forms.single("rid-cut")))
            with pytest.raises(asyncio.CancelledError):
                await calls[0]
            reply = await forms.single("rid-cut")
    assert_one_job_and_the_callers(lagging, reply.message)
    assert clock.slept == [pytest.approx(SETTLE_S)]


async def test_a_post_that_outlasts_its_deadline_lets_ci_settle_from_its_end_before_a_resend(
    lagging: RunningEmulator, credentials: Credentials, clock: ManualClock
) -> None:
    """As for a caller gone mid-POST: CI takes 2 s over a POST (it makes the job) and the
    answer, a 504, comes after the caller's 1.5 s deadline, so the call ends in doubt. The
    record must say the send ended then, not when the call claimed the id: the caller's
    repeat lets CI settle from then, finds the job listed 2.5 s after it was made, and sends
    nothing again (counted from the claim, the settle was long over, and the repeat resent)."""
    lagging.state.faults.set("DescribeMediaJobs", FaultSpec(listing_lag_s=2.5))

    def slow_post(request: web.Request) -> None:
        if request.method == "POST":
            clock.now_s += 2.0

    async with behind_a_504(lagging, slow_post) as (proxy, settings):
        async with submits(SubmitCoordinator, settings, credentials, clock) as forms:
            with pytest.raises(SubmitOutcomeUnknown) as caught:
                await forms.single("rid-late-answer", seconds=1.5)
            assert caught.value.attempts == 2  # the recovery look, the POST
            reply = await forms.single("rid-late-answer")
    assert len(proxy.mangled) == 1
    assert_one_job_and_the_callers(lagging, reply.message)
    assert clock.slept == [pytest.approx(SETTLE_S)]
    assert counts(lagging) == (1, 3)


async def test_a_caller_gone_before_anything_was_sent_leaves_its_request_id_unknown(
    lagging: RunningEmulator, credentials: Credentials, clock: ManualClock
) -> None:
    """The client goes away during the look for jobs of a request_id the store did not know,
    before anything was sent: the id is as unknown as before (its next call looks back as far
    as for any unknown id, rather than only from this call), and the repeat goes on at once."""
    held, release = asyncio.Event(), asyncio.Event()

    async def hold_the_first_look(request: web.Request, target: CiTarget) -> None:
        if request.method == "GET" and not held.is_set():
            held.set()
            async with asyncio.timeout(WAIT_S):
                await release.wait()

    lagging.state.request_hooks.append(hold_the_first_look)
    async with submits(SubmitCoordinator, settings_for(lagging), credentials, clock) as forms:
        first = asyncio.create_task(forms.single("rid-early"))
        async with asyncio.timeout(WAIT_S):
            await held.wait()
        first.cancel()
        with pytest.raises(asyncio.CancelledError):
            await first
        assert await forms.store.get("rid-early") is None
        reply = await forms.single("rid-early")
        release.set()
    assert_one_job_and_the_callers(lagging, reply.message)
    assert clock.slept == []


async def test_the_gateway_settles_by_its_setting_on_the_real_clock(
    emulator: RunningEmulator, credentials: Credentials
) -> None:
    """The whole gateway, default settings: a job CI lists 0.3 s after a 504 lost its answer
    is found by the look after the settle (1 s), and the caller gets it."""
    emulator.state.pause_scheduling()
    emulator.state.faults.set("DescribeMediaJobs", FaultSpec(listing_lag_s=0.3))
    async with behind_a_504(emulator) as (proxy, settings):
        assert settings.retry.submit_settle_s > 0.3
        async with gateway(settings, credentials) as running:
            answer = await running.stub.SubmitMediaJob(submit_request("rid-real"), timeout=10)
    assert len(proxy.mangled) == 1
    assert_one_job_and_the_callers(emulator, answer)
    assert emulator.state.faults.injected["DescribeMediaJobs:listing_lag"] >= 2


async def test_a_follower_cancelled_with_its_leader_ends_rather_than_lead(
    emulator: RunningEmulator, credentials: Credentials, clock: ManualClock
) -> None:
    """Two calls under one request_id: the second follows the first's flight. Both callers go
    at once (their clients cancel, or a drain cuts both), the follower's cancellation arriving
    as the leader's flight ends cancelled: the follower saw a cancelled leader and took over,
    sending CI a new POST for a caller that had left and swallowing its own cancellation. It
    must end cancelled."""
    posts: list[web.Request] = []
    posted = asyncio.Event()
    release = asyncio.Event()

    async def hold_posts(request: web.Request, target: CiTarget) -> None:
        if request.method == "POST" and target.path == "/jobs":
            posts.append(request)
            posted.set()
            async with asyncio.timeout(WAIT_S):  # bounded: a failing test still ends
                await release.wait()

    def innermost(task: asyncio.Task[Any]) -> str:
        """The name of the coroutine `task` is suspended in, at the end of its await chain."""
        coroutine: Any = task.get_coro()
        while inspect.iscoroutine(coroutine.cr_await):
            coroutine = coroutine.cr_await
        return str(coroutine.cr_code.co_name)

    emulator.state.request_hooks.append(hold_posts)
    try:
        async with submits(SubmitCoordinator, settings_for(emulator), credentials, clock) as forms:
            leader = asyncio.create_task(forms.single("rid-both"))
            await asyncio.wait_for(posted.wait(), WAIT_S)  # the leader's POST is in CI
            follower = asyncio.create_task(forms.single("rid-both"))
            # Its first step (scheduled before this task's next) takes it to the leader's
            # flight, where it waits: nothing on its way there awaits.
            await asyncio.sleep(0)
            assert innermost(follower) == "submit"
            # The follower's caller leaves in the very pass the leader's flight ends cancelled
            # (white box: the flight is the coordinator's), before the follower has woken.
            (_, flight) = forms.form._flights[RequestKey.unscoped("rid-both").key]
            flight.add_done_callback(lambda _: follower.cancel())
            leader.cancel()
            done, _ = await asyncio.wait({leader, follower}, timeout=WAIT_S)
            assert done == {leader, follower}
            assert leader.cancelled() and follower.cancelled()
            assert len(posts) == 1  # no POST for the follower's departed caller
    finally:
        release.set()
        emulator.state.request_hooks.remove(hold_posts)
