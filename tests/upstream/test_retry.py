"""The retry loop: exact delays, attempt counts, deadlines, and which errors replay."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import pytest

from gateway.errors import (
    DeadlineExceeded,
    GatewayError,
    Reason,
    RetryBudgetExhausted,
    RetryClass,
    TransportError,
    UpstreamError,
    UpstreamTimeout,
)
from gateway.upstream.retry import (
    READ_ONLY,
    SUBMIT,
    Backoff,
    Deadline,
    RetryBudget,
    RetryPolicy,
    Settle,
    call_with_retry,
)


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def upstream(code: str, status: int) -> UpstreamError:
    return UpstreamError(http_status=status, code=code, message="m")


class Scripted:
    """An attempt that raises the scripted errors in turn, then returns 'ok'."""

    def __init__(self, *errors: GatewayError, clock: FakeClock | None = None, cost: float = 0):
        self.errors = list(errors)
        self.timeouts: list[float] = []
        self.clock, self.cost = clock, cost

    async def __call__(self, timeout: float) -> str:
        self.timeouts.append(timeout)
        if self.clock:
            self.clock.now += self.cost
        if self.errors:
            raise self.errors.pop(0)
        return "ok"


def recorder(
    clock: FakeClock | None = None,
) -> tuple[list[float], Callable[[float], Awaitable[None]]]:
    sleeps: list[float] = []

    async def sleep(delay: float) -> None:
        sleeps.append(delay)
        if clock:
            clock.now += delay

    return sleeps, sleep


async def test_transient_errors_retry_with_full_jitter_backoff() -> None:
    sleeps, sleep = recorder()
    attempt = Scripted(upstream("InternalError", 500), upstream("ServiceUnavailable", 503))
    result = await call_with_retry(attempt, READ_ONLY, Deadline(30), sleep=sleep, rng=lambda: 1.0)
    assert result == "ok"
    assert sleeps == [0.1, 0.2]  # base 0.1 doubling; rng()=1 takes the ceiling


async def test_throttling_uses_its_own_base_and_retry_after_wins() -> None:
    sleeps, sleep = recorder()
    throttled = upstream("SlowDown", 429)
    told = UpstreamError(http_status=429, code="SlowDown", message="m", retry_after_s=0.7)
    attempt = Scripted(throttled, told)
    await call_with_retry(attempt, READ_ONLY, Deadline(30), sleep=sleep, rng=lambda: 0.5)
    assert sleeps == [0.25, 0.7]


async def test_terminal_error_is_not_retried() -> None:
    attempt = Scripted(upstream("InvalidArgument", 400))
    with pytest.raises(UpstreamError) as caught:
        await call_with_retry(attempt, READ_ONLY, Deadline(30))
    assert len(attempt.timeouts) == 1
    assert caught.value.attempts == 1


async def test_attempts_are_capped_and_recorded() -> None:
    _, sleep = recorder()
    attempt = Scripted(*(upstream("InternalError", 500) for _ in range(5)))
    with pytest.raises(UpstreamError) as caught:
        await call_with_retry(attempt, READ_ONLY, Deadline(30), sleep=sleep)
    assert len(attempt.timeouts) == READ_ONLY.max_attempts
    assert caught.value.attempts == READ_ONLY.max_attempts


@pytest.mark.parametrize(
    ("error", "replayed"),
    [
        (TransportError("refused", sent=False), True),
        (TransportError("reset after sending", sent=True), False),
        (UpstreamTimeout("read timeout", sent=True), False),
        (upstream("InternalError", 500), False),
        (upstream("ServiceUnavailable", 503), False),
        (upstream("SlowDown", 429), True),
        (upstream("SlowDown", 503), True),
        (upstream("QueueSaturated", 403), True),
        (upstream("InvalidArgument", 400), False),
    ],
)
async def test_submit_replays_only_what_certainly_did_not_reach_ci(
    error: GatewayError, replayed: bool
) -> None:
    _, sleep = recorder()
    attempt = Scripted(error)
    if replayed:
        assert await call_with_retry(attempt, SUBMIT, Deadline(30), sleep=sleep) == "ok"
        assert len(attempt.timeouts) == 2
    else:
        with pytest.raises(GatewayError):
            await call_with_retry(attempt, SUBMIT, Deadline(30), sleep=sleep)
        assert len(attempt.timeouts) == 1


async def test_attempt_timeout_is_what_remains_of_the_deadline() -> None:
    clock = FakeClock()
    sleeps, sleep = recorder(clock)
    attempt = Scripted(upstream("InternalError", 500), clock=clock, cost=1.0)
    deadline = Deadline(5.0, clock=clock)
    await call_with_retry(attempt, READ_ONLY, deadline, sleep=sleep, rng=lambda: 1.0)
    assert attempt.timeouts[0] == pytest.approx(5.0)
    assert attempt.timeouts[1] == pytest.approx(5.0 - 1.0 - sleeps[0])


async def test_no_retry_that_cannot_finish_in_time() -> None:
    clock = FakeClock()
    _, sleep = recorder(clock)
    attempt = Scripted(upstream("SlowDown", 429), clock=clock, cost=0.0)
    policy = RetryPolicy(max_attempts=5, backoff=Backoff(throttled_base_s=10, cap_s=10))
    with pytest.raises(UpstreamError):  # the real error, not a made-up deadline error
        await call_with_retry(
            attempt, policy, Deadline(1.0, clock=clock), sleep=sleep, rng=lambda: 1.0
        )
    assert len(attempt.timeouts) == 1


async def test_timeout_that_consumed_the_deadline_is_deadline_exceeded() -> None:
    clock = FakeClock()
    attempt = Scripted(UpstreamTimeout("slow", sent=True), clock=clock, cost=2.0)
    with pytest.raises(DeadlineExceeded):
        await call_with_retry(attempt, READ_ONLY, Deadline(2.0, clock=clock))


async def test_expired_deadline_makes_no_attempt() -> None:
    clock = FakeClock()
    attempt = Scripted()
    with pytest.raises(DeadlineExceeded):
        await call_with_retry(attempt, READ_ONLY, Deadline(0.01, clock=clock))
    assert attempt.timeouts == []


def test_backoff_is_capped_and_jittered() -> None:
    backoff = Backoff(transient_base_s=1, cap_s=3)
    assert backoff.delay(10, RetryClass.TRANSIENT, rng=lambda: 1.0) == 3
    assert backoff.delay(10, RetryClass.TRANSIENT, rng=lambda: 0.0) == 0
    assert backoff.delay(1, RetryClass.TRANSIENT, retry_after_s=99, rng=lambda: 0.0) == 3


def refused_keys(*, replaced: bool) -> UpstreamError:
    """CI refused the attempt's keys; `replaced`: the gateway holds other ones by now."""
    error = upstream("SecretidNotExist", 401)
    error.credentials_replaced = replaced
    return error


@pytest.mark.parametrize(
    "policy",
    [READ_ONLY, SUBMIT, RetryPolicy(max_attempts=1)],
    ids=["read", "submit", "no-retries"],
)
async def test_a_refusal_of_replaced_keys_is_resent_once_at_once_whatever_the_policy(
    policy: RetryPolicy,
) -> None:
    """CI refused before acting, so a submit may be resent too; and a rotation should fail no
    call even where the operator turned retries off."""
    sleeps, sleep = recorder()
    budget = RetryBudget()
    attempt = Scripted(refused_keys(replaced=True))
    assert await call_with_retry(attempt, policy, Deadline(30), sleep=sleep, budget=budget) == "ok"
    assert len(attempt.timeouts) == 2 and sleeps == [0.0]
    assert budget.tokens == budget.capacity - budget.retry_cost + budget.success_refund


async def test_a_refusal_of_replaced_keys_is_resent_only_once_per_call() -> None:
    _, sleep = recorder()
    attempt = Scripted(refused_keys(replaced=True), refused_keys(replaced=True))
    with pytest.raises(UpstreamError) as caught:
        await call_with_retry(attempt, READ_ONLY, Deadline(30), sleep=sleep)
    assert len(attempt.timeouts) == 2 and caught.value.attempts == 2


async def test_a_refusal_of_keys_still_current_stays_final() -> None:
    attempt = Scripted(refused_keys(replaced=False))
    with pytest.raises(UpstreamError):
        await call_with_retry(attempt, READ_ONLY, Deadline(30))
    assert len(attempt.timeouts) == 1


async def test_the_resend_with_new_keys_respects_the_budget_and_the_deadline() -> None:
    empty = RetryBudget(capacity=1.0)
    attempt = Scripted(refused_keys(replaced=True))
    with pytest.raises(RetryBudgetExhausted) as exhausted:
        await call_with_retry(attempt, READ_ONLY, Deadline(30), budget=empty)
    assert exhausted.value.last.reason is Reason.UPSTREAM_AUTH_FAILED
    assert len(attempt.timeouts) == 1

    clock = FakeClock()
    attempt = Scripted(refused_keys(replaced=True), clock=clock, cost=0.99)
    with pytest.raises(UpstreamError):  # CI's refusal, not a made-up deadline error
        await call_with_retry(attempt, READ_ONLY, Deadline(1.0, clock=clock))
    assert len(attempt.timeouts) == 1


def test_the_settle_is_a_floor_plus_the_backoff_and_off_at_zero() -> None:
    """A submit in doubt waits at least the floor (CI may still be making the job), plus the
    backoff, which grows with each failure, or CI's Retry-After, so that resends to an
    overloaded CI are spread and slowed; a floor of 0 switches the wait off altogether."""
    settle = Settle(1.0, Backoff(transient_base_s=0.1, throttled_base_s=0.5, cap_s=3))
    gateway_timeout = upstream("", 504)
    assert settle.delay(1, gateway_timeout, rng=lambda: 0.0) == 1.0
    assert settle.delay(1, gateway_timeout, rng=lambda: 0.5) == pytest.approx(1.05)
    assert settle.delay(3, gateway_timeout, rng=lambda: 0.5) == pytest.approx(1.2)
    busy = UpstreamError(http_status=503, code="ServiceUnavailable", message="m", retry_after_s=2)
    assert settle.delay(1, busy, rng=lambda: 0.0) == 3.0
    off = Settle(0.0, Backoff(transient_base_s=0.1, throttled_base_s=0.5, cap_s=3))
    assert off.delay(3, busy, rng=lambda: 1.0) == 0.0
