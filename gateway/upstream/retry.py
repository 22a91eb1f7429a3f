"""When to try CI again, how long to wait, and when to give up.

The parts, after botocore's standard retry mode and google-api-core's `retry_target`:

- `Deadline`: one overall time budget on the monotonic clock (the caller's gRPC deadline, or
  the configured ceiling). Every attempt's timeout is cut to what remains, and no attempt starts
  that could not get a useful slice of it.
- `Backoff`: exponential with full jitter and a cap; throttling waits on a larger base than
  transient failures, and a `Retry-After` from CI wins when present.
- `RetryPolicy`: which outcomes may be retried for which operation. Read-only calls retry every
  transient or throttled outcome. A job submit is not idempotent: it is replayed only when the
  request certainly never reached CI (no connection, or throttled before processing).
- `call_with_retry`: the loop, over a target that takes the attempt's timeout. Besides what the
  policy retries, it resends once, at once, an attempt CI refused for the credentials it was
  signed with when the gateway holds other ones by now (`credentials_replaced`): a key rotated
  while the attempt was in flight, or a mounted Secret re-read on the refusal. CI refused before
  acting on it, so that resend is safe for a submit too; every other auth refusal stays final.

- `RetryBudget`: a token bucket per upstream (bucket + region), after AWS's standard retry
  quota: a retry spends tokens, a success refunds one, so when CI is down retries stop within a
  few dozen calls instead of multiplying the outage by `max_attempts`. An empty budget fails the
  call at once with RETRY_BUDGET_EXHAUSTED rather than waiting.

- `Settle`: how long a submit whose outcome is unknown is left to CI before the look that
  decides whether to send it again.

Exactly-once submission across ambiguous failures lives in `gateway.jobs.submit`, which reconciles
with CI before any replay; this module only refuses to replay what might have reached CI, and
says how long to wait before that reconcile (`Settle`).
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TypeVar

from gateway.config import settings as config
from gateway.errors import (
    DeadlineExceeded,
    GatewayError,
    RetryBudgetExhausted,
    RetryClass,
    TransportError,
    UpstreamError,
    UpstreamTimeout,
)

T = TypeVar("T")

# An attempt needs at least this long to be worth starting (one loopback round trip is ~1 ms,
# one CI round trip tens of ms).
MIN_ATTEMPT_S = 0.05


class Deadline:
    """Time left for a whole call, on the monotonic clock."""

    def __init__(self, seconds: float, *, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._expires_at = clock() + max(seconds, 0.0)

    def remaining(self) -> float:
        return max(self._expires_at - self._clock(), 0.0)

    @property
    def expired(self) -> bool:
        return self.remaining() <= 0.0


@dataclass(frozen=True)
class Backoff:
    """Full-jitter exponential backoff: sleep uniformly in [0, min(cap, base * 2**n)).

    The defaults are the `[retry]` settings' (declared once, in `gateway.config.settings`)."""

    transient_base_s: float = config.Retry.transient_base_s
    throttled_base_s: float = config.Retry.throttled_base_s
    cap_s: float = config.Retry.backoff_cap_s

    def delay(
        self,
        failures: int,
        retry_class: RetryClass,
        *,
        retry_after_s: float | None = None,
        rng: Callable[[], float] = random.random,
    ) -> float:
        if retry_after_s is not None:
            return min(max(retry_after_s, 0.0), self.cap_s)
        base = (
            self.throttled_base_s if retry_class is RetryClass.THROTTLED else self.transient_base_s
        )
        ceiling: float = min(self.cap_s, base * 2.0 ** max(failures - 1, 0))
        return rng() * ceiling


def credentials_replaced(error: GatewayError) -> bool:
    """CI refused the keys the attempt was signed with, and the gateway holds others now."""
    return isinstance(error, UpstreamError) and error.credentials_replaced


def _idempotent_replay(error: GatewayError) -> bool:
    return error.retry is not RetryClass.TERMINAL


def _never_sent_replay(error: GatewayError) -> bool:
    """A submit may be replayed only when CI certainly did not act on it (and when a replay
    can help: an egress proxy's refusal of our credentials never can)."""
    if isinstance(error, TransportError):
        return not error.sent and error.retry is not RetryClass.TERMINAL
    if isinstance(error, UpstreamError) and 200 <= error.http_status < 300:
        return False  # CI's <Error> under a 2xx: CI accepted something, whatever it says
    # A throttled answer (429 SlowDown, QueueSaturated) means CI refused before processing.
    return error.retry is RetryClass.THROTTLED


@dataclass(frozen=True)
class RetryPolicy:
    max_attempts: int = config.Retry.max_attempts
    backoff: Backoff = field(default_factory=Backoff)
    is_retryable: Callable[[GatewayError], bool] = _idempotent_replay

    def for_submit(self) -> RetryPolicy:
        return RetryPolicy(self.max_attempts, self.backoff, _never_sent_replay)


READ_ONLY = RetryPolicy()
SUBMIT = READ_ONLY.for_submit()


def _backoff(settings: config.Retry) -> Backoff:
    return Backoff(settings.transient_base_s, settings.throttled_base_s, settings.backoff_cap_s)


def read_only_policy(settings: config.Retry) -> RetryPolicy:
    """The policy for idempotent calls, from the `[retry]` settings."""
    return RetryPolicy(settings.max_attempts, _backoff(settings))


@dataclass(frozen=True)
class Settle:
    """How long a submit in doubt is left to CI before it may be sent again.

    A submit whose outcome is unknown may still be running at CI (a balancer's 504 while CI
    commits, a read time-out on a slow front end), or be made but not listed yet. A resend
    decided by a look right after the failure would then make a second job, so
    `gateway.jobs.exactly_once` waits `floor_s` (plus the policy's backoff: full jitter that
    grows with each failure, or CI's `Retry-After`, so an overloaded CI is not met by every
    caller's resend at once) and looks again before it resends."""

    floor_s: float = config.Retry.submit_settle_s
    backoff: Backoff = field(default_factory=Backoff)

    def delay(
        self, failures: int, error: GatewayError, *, rng: Callable[[], float] = random.random
    ) -> float:
        """The wait after the `failures`-th send in doubt, which failed with `error`."""
        if self.floor_s <= 0:
            return 0.0  # settling switched off: resend right after the first look, as before
        jitter = self.backoff.delay(
            failures, error.retry, retry_after_s=error.retry_after_s, rng=rng
        )
        return self.floor_s + jitter


def submit_settle(settings: config.Retry) -> Settle:
    """The settle of submits in doubt, from the `[retry]` settings."""
    return Settle(settings.submit_settle_s, _backoff(settings))


@dataclass
class RetryBudget:
    """Token bucket shared by every call to one upstream. Not thread-safe: one event loop.
    The defaults are the `[retry]` settings' `budget_*`."""

    capacity: float = config.Retry.budget_capacity
    retry_cost: float = config.Retry.budget_retry_cost
    timeout_cost: float = config.Retry.budget_timeout_cost
    success_refund: float = config.Retry.budget_success_refund
    tokens: float = field(init=False)

    def __post_init__(self) -> None:
        self.tokens = self.capacity

    def cost(self, error: GatewayError) -> float:
        """What a retry after `error` spends."""
        return self.timeout_cost if isinstance(error, UpstreamTimeout) else self.retry_cost

    def try_spend(self, error: GatewayError) -> bool:
        cost = self.cost(error)
        if self.tokens < cost:
            return False
        self.tokens -= cost
        return True

    def give_back(self, error: GatewayError) -> None:
        """Return what `try_spend(error)` took, for a retry that did not go out after all."""
        self.tokens = min(self.capacity, self.tokens + self.cost(error))

    def refund(self) -> None:
        self.tokens = min(self.capacity, self.tokens + self.success_refund)


class RetryBudgets:
    """One `RetryBudget` per upstream key, created on first use with the same settings."""

    @classmethod
    def from_settings(cls, settings: config.Retry) -> RetryBudgets:
        return cls(
            RetryBudget(
                settings.budget_capacity,
                settings.budget_retry_cost,
                settings.budget_timeout_cost,
                settings.budget_success_refund,
            )
        )

    def __init__(self, template: RetryBudget | None = None) -> None:
        self._template = template or RetryBudget()
        self._budgets: dict[str, RetryBudget] = {}

    def for_upstream(self, key: str) -> RetryBudget:
        budget = self._budgets.get(key)
        if budget is None:
            t = self._template
            budget = RetryBudget(t.capacity, t.retry_cost, t.timeout_cost, t.success_refund)
            self._budgets[key] = budget
        return budget

    def tokens(self) -> dict[str, float]:
        return {key: budget.tokens for key, budget in self._budgets.items()}


async def call_with_retry(
    attempt: Callable[[float], Awaitable[T]],
    policy: RetryPolicy,
    deadline: Deadline,
    *,
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    rng: Callable[[], float] = random.random,
    on_retry: Callable[[GatewayError, float], None] | None = None,
    budget: RetryBudget | None = None,
) -> T:
    """Run `attempt(timeout_s)` until it succeeds, fails terminally, or time/attempts run out.

    The error raised is the last attempt's, with `attempts` recorded on CI errors; it becomes
    `DeadlineExceeded` only when the deadline really left no room for an attempt.

    An attempt refused for credentials since replaced is resent once per call without backoff,
    whatever the policy (a refusal of the keys is no failure of CI's, and an operator who set
    `max_attempts = 1` still expects a rotation to fail no call); the deadline and the budget
    still bound it.
    """
    failures = 0
    resent_with_new_keys = False
    while True:
        remaining = deadline.remaining()
        if remaining < MIN_ATTEMPT_S:
            expired = DeadlineExceeded(
                f"deadline exceeded after {failures} attempt(s)"
                if failures
                else "deadline too short to call CI"
            )
            expired.attempts = failures
            raise expired
        try:
            result = await attempt(remaining)
        except GatewayError as error:
            failures += 1
            error.attempts = failures
            if isinstance(error, UpstreamTimeout) and deadline.remaining() < MIN_ATTEMPT_S:
                expired = DeadlineExceeded(f"deadline exceeded waiting for CI (attempt {failures})")
                expired.attempts = failures
                raise expired from error
            if credentials_replaced(error) and not resent_with_new_keys:
                resent_with_new_keys = True
                delay = 0.0
            elif failures >= policy.max_attempts or not policy.is_retryable(error):
                raise
            else:
                delay = policy.backoff.delay(
                    failures, error.retry, retry_after_s=error.retry_after_s, rng=rng
                )
            if delay + MIN_ATTEMPT_S > deadline.remaining():
                raise
            if budget is not None and not budget.try_spend(error):
                raise RetryBudgetExhausted(error, failures) from error
            if on_retry is not None:
                on_retry(error, delay)
            await sleep(delay)
        else:
            if budget is not None:
                budget.refund()
            return result
