"""Temporary credentials (Tencent STS) renewed in the background before they expire.

After botocore's `RefreshableCredentials`, async and with one refresh in flight at a time:

- **advisory window** (15 min before expiry): a refresh starts in the background; calls keep
  the current credentials meanwhile, and a failed refresh only logs (the keys still work);
- **mandatory window** (10 min before expiry): calls wait for the refresh in flight (one for
  all of them) and get the new credentials.

A call waits no longer than its deadline allows (`SIGN_BY`, set by the CI client): with usable
keys in hand (the mandatory window), for half the time it has left at most, and then it signs
with those keys (new ones are preferred there, not needed), the other half left for its attempt;
without (the first keys), until its deadline leaves no room for an attempt, and then it fails
with `NoCredentialsError` (UNAVAILABLE: nothing was sent to CI). Either way the refresh goes on
(shielded) for the calls after it: a short deadline no longer waits out STS's 10 s time-out.

Once a refresh has failed, no call waits on STS any more: calls keep the current credentials
while they stay valid for `EXPIRY_MARGIN_S`, and after that fail at once with
`NoCredentialsError` (UNAVAILABLE) rather than send an expired token, while the refresh is
retried with a capped backoff (5 s doubling to a minute), in the background. Waiting would buy
nothing: the keys in hand are as good as new ones until the margin, and a call that waited for
a failing STS (up to its 10 s time-out, one attempt after another) would only fail later.

Besides, a background task refreshes at a jittered point in the advisory window, so the keys
are renewed even without traffic (and readiness stays true), and replicas started together do
not call STS in the same second; it is also what retries after a failure. A call may start a
retry whose backoff has run out (without waiting for it), so a provider used without `start`
recovers too.

When CI refuses the keys an attempt was signed with, `renew` only says whether they were renewed
meanwhile; it never calls STS. UNCONFIRMED that Tencent revokes temporary keys before their
ExpiredTime; if it does not, a refusal of valid temporary keys is the clock's, the role's or the
signer's fault, which new keys would not cure, and a forced fetch per refused call would only
load STS.

For credentials that live shorter than the windows assume, the windows shrink to a fraction of
the lifetime, so a 15-minute token is not refreshed on every call.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import logging
import random
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime

from gateway._files import Sleep
from gateway.credentials import (
    EXPIRY_MARGIN_S,
    SIGN_BY,
    Clock,
    Credentials,
    SingleSourceProvider,
)
from gateway.errors import NoCredentialsError
from gateway.logs import event

log = logging.getLogger(__name__)

ADVISORY_REFRESH_S = 15 * 60.0
MANDATORY_REFRESH_S = 10 * 60.0
# The background refresh starts up to this much earlier than the advisory point.
DEFAULT_JITTER_S = 120.0
# After a failed refresh: retry after 5 s, doubling up to a minute.
RETRY_INITIAL_S = 5.0
RETRY_MAX_S = 60.0

Fetch = Callable[[], Awaitable[Credentials]]
"""Returns new temporary credentials with `expires_at` set (e.g. `sts.StsFetcher`)."""


class FetchError(Exception):
    """A fetch failed in a known way; its text is safe to log (no secret, no response body)."""


def _iso(timestamp: float | None) -> str | None:
    if timestamp is None:
        return None
    return datetime.fromtimestamp(timestamp, UTC).isoformat(timespec="seconds")


class RefreshingCredentialsProvider(SingleSourceProvider):
    """Credentials from `fetch`, renewed before they expire; see the module docstring."""

    def __init__(
        self,
        fetch: Fetch,
        *,
        name: str,
        clock: Clock = time.time,
        sleep: Sleep = asyncio.sleep,
        rng: Callable[[], float] = random.random,
        advisory_s: float = ADVISORY_REFRESH_S,
        mandatory_s: float = MANDATORY_REFRESH_S,
        jitter_s: float = DEFAULT_JITTER_S,
        margin_s: float = EXPIRY_MARGIN_S,
    ) -> None:
        if not advisory_s >= mandatory_s > margin_s >= 0:
            raise ValueError("need advisory_s >= mandatory_s > margin_s >= 0")
        super().__init__(name, clock=clock, margin_s=margin_s)
        self._fetch = fetch
        self._sleep = sleep
        self._rng = rng
        self._advisory_s = advisory_s
        self._mandatory_s = mandatory_s
        self._jitter_s = jitter_s
        self._fetched_at = 0.0
        self._jitter = 0.0
        self._failures = 0
        # After a failed refresh: when the next one may start (provider clock).
        self._retry_at = 0.0
        self._refresh: asyncio.Task[bool] | None = None
        self._background: asyncio.Task[None] | None = None
        self._started = False

    # The provider contract ----------------------------------------------------------------

    async def start(self) -> None:
        """Fetch, then renew in the background; a second call is a no-op."""
        if self._started:
            return
        self._started = True
        await self.refresh()
        self._background = asyncio.create_task(self._run(), name=f"refresh:{self.name}")

    async def close(self) -> None:
        for task in (self._background, self._refresh):
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        self._background = self._refresh = None

    async def get(self) -> Credentials:
        current = self._current
        now = self._clock()
        if current is None or not current.usable_at(now, self._margin_s):
            if self._failures:
                self._refresh_when_due()  # fail fast; the retry never makes a call wait
                return self._served()
            # A first try: every caller waits for the same one, as long as its deadline allows.
            return self._served(waited_out=not await self._wait_for_refresh(keys_in_hand=False))
        advisory, mandatory = self._windows(current)
        remaining = self._remaining(current, now)
        if remaining <= mandatory and not self._failures:
            await self._wait_for_refresh(keys_in_hand=True)
            return self._served()  # the new keys, or these while they last
        if remaining <= advisory:
            self._refresh_when_due()  # renew in the background, use these meanwhile
        return current

    def at_hand(self) -> Credentials | None:
        """The current credentials while `get` would hand them out and do nothing else: usable,
        and before the advisory window. None otherwise (no keys yet, expiring, a window
        reached), for `get` to refresh, wait or fail as it does: never a fetch started here."""
        current = self._current
        if current is None:
            return None
        now = self._clock()
        if not current.usable_at(now, self._margin_s):
            return None
        if self._remaining(current, now) <= self._windows(current)[0]:
            return None
        return current

    def _served(self, *, waited_out: bool = False) -> Credentials:
        """The current credentials if an attempt signed now reaches CI before they expire;
        otherwise `NoCredentialsError` saying why (the source's name, never a value):
        `waited_out` when the call's deadline came before the fetch it waited for ended."""
        current = self._current
        if waited_out:
            detail = (
                " (fetching them takes longer than this call's deadline allows; the fetch goes "
                "on in the background)"
            )
        elif self._failures:
            detail = f" ({self._failures} failed attempt(s); retrying in the background)"
        else:
            detail = ""
        if current is None:
            raise NoCredentialsError(f"no temporary credentials from {self.name} yet{detail}")
        if not current.usable_at(self._clock(), self._margin_s):
            outcome = "is late" if waited_out else "failed"
            raise NoCredentialsError(
                f"the temporary credentials from {self.name} expire and renewing them "
                f"{outcome}{detail}"
            )
        return current

    async def _wait_for_refresh(self, *, keys_in_hand: bool) -> bool:
        """Wait for a refresh (the one in flight, or a new one) as long as the caller may
        (`SIGN_BY`): all its time without usable keys in hand, half of it with them. True if
        the refresh ended in that time (renewed or failed); False if the caller gave up
        first. Giving up cancels only this wait, never the refresh (`refresh` shields it)."""
        sign_by = SIGN_BY.get()
        if sign_by is None:  # a caller without a deadline: background work, readiness
            await self.refresh()
            return True
        if keys_in_hand:
            now = asyncio.get_running_loop().time()
            sign_by = now + (sign_by - now) / 2
        try:
            async with asyncio.timeout_at(sign_by):
                await self.refresh()
        except TimeoutError:
            return False
        return True

    # Refreshing -----------------------------------------------------------------------------

    async def refresh(self) -> bool:
        """Fetch new credentials now, joining a fetch already in flight; True on success.
        The fetch is shielded: a caller that gives up does not cancel it for the others."""
        return await asyncio.shield(self._start_refresh())

    def _refresh_when_due(self) -> None:
        """Start a refresh in the background, unless one is in flight or a failed one's
        backoff has not run out."""
        if self._refresh is not None and not self._refresh.done():
            return
        if self._failures and self._clock() < self._retry_at:
            return
        self._start_refresh()

    def _start_refresh(self) -> asyncio.Task[bool]:
        if self._refresh is None or self._refresh.done():
            # A context of its own, as the job tracker's poller has: the fetch serves every
            # caller, so it must not run (and log, and trace) as part of the RPC that happened
            # to start it, nor inherit that call's `SIGN_BY`.
            self._refresh = asyncio.create_task(
                self._do_refresh(), name=f"fetch:{self.name}", context=contextvars.Context()
            )
        return self._refresh

    async def _do_refresh(self) -> bool:
        try:
            fresh = await self._fetch()
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # any failure keeps the old keys; logged safely
            self._failed()
            # A FetchError's text is safe by contract; anything else shows its class only.
            detail = str(exc) if isinstance(exc, FetchError) else type(exc).__name__
            event(
                log,
                logging.WARNING,
                "temporary credentials: refresh failed",
                source=self.name,
                error=detail,
                failures=self._failures,
                current_expires_at=_iso(self.expires_at()),
            )
            return False
        now = self._clock()
        if fresh.expires_at is None or not fresh.usable_at(now, self._margin_s):
            self._failed()
            event(
                log,
                logging.WARNING,
                "temporary credentials: refresh returned credentials that expire too soon",
                source=self.name,
                expires_at=_iso(fresh.expires_at),
            )
            return False
        self._fetched_at = now
        self._failures = 0
        self._jitter = self._rng() * self._jitter_s  # drawn once per credentials
        self._adopt(fresh)
        event(
            log,
            logging.INFO,
            "temporary credentials refreshed",
            source=self.name,
            generation=self._generation,
            expires_at=_iso(fresh.expires_at),
        )
        return True

    def _failed(self) -> None:
        self._failures += 1
        exponent = self._failures - 1
        self._retry_at = self._clock() + min(RETRY_INITIAL_S * 2.0**exponent, RETRY_MAX_S)

    def _remaining(self, credentials: Credentials, now: float) -> float:
        assert credentials.expires_at is not None  # only stored with an expiry
        return credentials.expires_at - now

    def _windows(self, credentials: Credentials) -> tuple[float, float]:
        """(advisory, mandatory) seconds before expiry, shrunk for short-lived credentials."""
        assert credentials.expires_at is not None
        lifetime = credentials.expires_at - self._fetched_at
        return min(self._advisory_s, lifetime / 2), min(self._mandatory_s, lifetime / 3)

    def next_refresh_in(self) -> float:
        """Seconds until the background task should refresh (jittered), or retry after a
        failure."""
        current = self._current
        if self._failures:
            return max(self._retry_at - self._clock(), 0.0)
        if current is None:
            return RETRY_INITIAL_S
        return max(self._until_due(current), 0.0)

    def _until_due(self, current: Credentials) -> float:
        advisory = self._windows(current)[0]
        return self._remaining(current, self._clock()) - advisory - self._jitter

    def _refresh_due(self) -> bool:
        current = self._current
        if self._failures:
            return self._clock() >= self._retry_at  # a call may have retried meanwhile
        return current is None or self._until_due(current) <= 0

    async def _run(self) -> None:
        # Ends only by cancellation (close); each round sleeps, then makes one bounded fetch
        # unless a call already renewed the credentials meanwhile.
        while True:
            await self._sleep(self.next_refresh_in())
            if self._refresh_due():
                await self.refresh()
