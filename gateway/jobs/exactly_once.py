"""The machinery of exactly-once submission that the single and the multi-operation form share:
the record store, the claim and lease on a request_id, waiting out another replica's lead, one
shared flight per request_id in this process, and the rounds of reconcile-then-send that end in
a stored answer, a freed id or a record left in doubt.

The design (markers in `UserData`, what is ambiguous, how far a reconcile looks and why) is
`gateway.jobs.submit`'s docstring: read it first. `ExactlyOnceCoordinator` runs that protocol
once; a form says only how many jobs its request makes, how it fingerprints, sends and finds
them, and how its answer is built (`gateway.jobs.submit.SubmitCoordinator`,
`gateway.jobs.multi_submit.MultiSubmitCoordinator`). A job is known by its operation's index,
so the single form is the case of one operation.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
from abc import ABC, abstractmethod
from collections import OrderedDict
from collections.abc import AsyncGenerator, Awaitable, Callable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta, timezone
from typing import Final, Generic, Protocol, TypeVar

from google.protobuf.message import Message

from gateway._proto import media_pb2, service_pb2
from gateway.errors import (
    DeadlineExceeded,
    GatewayError,
    Reason,
    RequestIdReused,
    RetryBudgetExhausted,
    RetryClass,
    SubmitOutcomeUnknown,
    SubmitStoreUnavailable,
    TransportError,
    UpstreamError,
    UpstreamProtocolError,
)
from gateway.model import Target
from gateway.upstream.client import SUBMIT_OPERATION, Attempts, CiClient, FillQueue, Reply
from gateway.upstream.retry import MIN_ATTEMPT_S, Deadline, RetryBudget, Settle

log = logging.getLogger(__name__)

RETENTION_S = 24 * 3600
# How far before the first attempt a reconcile looks back: covers clock skew between the
# gateway and CI (CI's creation times come from CI's clock).
RECONCILE_LOOKBACK_S = 600
# A caller's request_id the store does not know: how far back a job of it may have been created
# with its record since lost. The store keeps records RETENTION_S, so a repeat within that is
# promised its job whatever happened to the store; beyond it, not even an intact store would.
RECOVERY_LOOKBACK_S = RETENTION_S + RECONCILE_LOOKBACK_S
RECONCILE_PAGES = 5
RECONCILE_PAGE_SIZE = 100  # CI's maximum `size`
MAX_SEND_ROUNDS = 3
# What a resend needs after the settle: a look and the POST, each given at least what any CI
# attempt is (`call_with_retry` starts none with less). With less left, the call ends
# SUBMIT_OUTCOME_UNKNOWN instead of resending unsettled.
RESEND_ROOM_S = 2 * MIN_ATTEMPT_S
# How often a call may find the record in doubt taken over by another replica before it gives up.
MAX_TAKEOVERS = 5
# A lead lasts the caller's deadline plus this; a replica that died mid-submit blocks others
# at most that long, and then they reconcile.
LEASE_MARGIN_S = 5.0
# How often a replica looks whether another replica's lead on the same request_id has ended.
LEADER_POLL_S = (0.05, 0.5)
CI_TIMEZONE = timezone(timedelta(hours=8))

RequestT = TypeVar("RequestT", bound=Message)
ResponseT = TypeVar("ResponseT", bound=Message)
# Operation index -> its job, as far as known (the single form's one job is operation 0).
Jobs = dict[int, media_pb2.JobsDetail]
# Between a client's name and its request_id in a scoped key. Not a request_id character
# (`gateway.jobs.submit.REQUEST_ID`), so an unscoped key never contains it and the part after
# the last one is always the caller's whole id: no two (client, request_id) pairs share a key,
# whatever the names hold, and none meets a sidecar's key.
SCOPE_SEPARATOR = "|"


@dataclass(unsafe_hash=True)
class RequestKey:
    """A submit's request_id twice over: `shown`, as the caller sent it (or the gateway made
    it), for everything the caller reads (trailers, error messages and metadata), and `key`,
    what the store, the in-process flight and the markers derive from.

    In shared mode several clients pick their own ids, and natural ones ("order-123") collide:
    under one key, a client would be refused as reusing another's id, or adopt the other's job
    as its own. So a client's key is scoped by its name (`scoped`). Without a client (sidecar
    mode) the key is the id itself (`unscoped`), exactly as before scoping existed, so the
    markers of existing jobs and the records in the store still match."""

    # Read-only by type (`Final`), not `frozen=True`: a frozen dataclass sets each field through
    # `object.__setattr__`, ~3x the cost of building a plain one, and every submit builds one.
    # `unsafe_hash` keeps the hash the frozen class had.
    shown: Final[str]
    key: Final[str]

    @classmethod
    def unscoped(cls, request_id: str) -> RequestKey:
        return cls(request_id, request_id)

    @classmethod
    def scoped(cls, client: str | None, request_id: str) -> RequestKey:
        """`client`'s own request_id; no client (sidecar mode) is `unscoped`."""
        if client is None:
            return cls.unscoped(request_id)
        return cls(request_id, f"{client}{SCOPE_SEPARATOR}{request_id}")


@dataclass(unsafe_hash=True)
class SubmitRecord:
    # Read-only by type (`Final`), not `frozen=True`: a frozen dataclass sets each field through
    # `object.__setattr__`, ~3x the cost of building a plain one, and every submit builds one
    # (changed copies come from `replace`). `unsafe_hash` keeps the hash the frozen class had.
    fingerprint: Final[str]
    # None while in doubt: sent or about to be sent, outcome not known yet.
    jobs_detail: Final[bytes | None]
    first_attempt_at: Final[float]
    # In doubt and nobody leading: when its last send ended, from which a repeat lets CI settle
    # before it sends again (`Settle`).
    updated_at: Final[float]
    # Until when the replica leading this submit may still be sending it (0: nobody is). Another
    # replica waits for the leader's outcome instead of sending the same job in parallel.
    leader_until: Final[float] = 0.0


class SubmitStore(Protocol):
    """request_id -> SubmitRecord. The embedded store is the default; a shared one (Redis) makes
    retries land on any replica."""

    async def get(self, request_id: str) -> SubmitRecord | None: ...

    async def claim(self, request_id: str, record: SubmitRecord) -> SubmitRecord | None:
        """Store `record` only if the id has none, atomically; return the existing one if any."""
        ...

    async def take_over(
        self, request_id: str, expected: SubmitRecord, record: SubmitRecord
    ) -> bool:
        """Replace `expected` by `record` only if the id still holds `expected`, atomically:
        of several replicas taking over one record in doubt at once, one leads."""
        ...

    async def put(self, request_id: str, record: SubmitRecord) -> None: ...

    async def delete(self, request_id: str) -> None: ...


DEFAULT_STORE_MAX_BYTES = 32 * 1024 * 1024
"""The embedded store's budget. A pod's memory limit, not the request rate, must bound it: with
callers sending their own request_id on every submit it would otherwise grow ~1.1 KiB per submit
for 24 h (a sidecar limited to 192 MiB would be OOM-killed within a day at a few submits/s)."""

RECORD_OVERHEAD_BYTES = 290
"""What a record costs beyond its key's, fingerprint's and answer's bytes: the strings'
headers, the record itself and its OrderedDict entry (and `_BYTES_HEADER` more for an answer).
Measured with tracemalloc on CPython 3.11 (386 B for a record in doubt with a 40-character key,
1,157 B with a 700-byte answer); a test keeps the count within 15% of what tracemalloc sees."""

_BYTES_HEADER = 33

_EVICTION_WARNING_EVERY_S = 300.0


def record_bytes(request_id: str, record: SubmitRecord) -> int:
    """The memory one record holds, as the budget counts it."""
    detail = record.jobs_detail
    return (
        RECORD_OVERHEAD_BYTES
        + len(request_id)
        + len(record.fingerprint)
        + (len(detail) + _BYTES_HEADER if detail is not None else 0)
    )


class InMemorySubmitStore:
    """Process-local store. Records live `retention_s` (24 h); beyond `max_bytes` the oldest are
    evicted first, so memory stays bounded under any request rate and any answer size (and so
    does the count: a record is at least `RECORD_OVERHEAD_BYTES`).

    An evicted record is not a broken promise: a repeat of its request_id finds no record and
    reconciles first, listing CI's jobs for the id's marker as far back as the retention
    (`RECOVERY_LOOKBACK_S`), so it still gets its job, at the cost of CI calls (and within
    the reconcile's page limit). Evicting before the retention ends is logged (at most every
    few minutes): raise the budget, or use the Redis store, if it shows."""

    def __init__(
        self,
        *,
        retention_s: float = RETENTION_S,
        max_bytes: int = DEFAULT_STORE_MAX_BYTES,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._records: OrderedDict[str, SubmitRecord] = OrderedDict()
        self._retention_s = retention_s
        self._max_bytes = max_bytes
        self._clock = clock
        self._bytes = 0
        self._early_evictions = 0
        self._warned_at: float | None = None

    def __len__(self) -> int:
        return len(self._records)

    @property
    def max_bytes(self) -> int:
        return self._max_bytes

    @property
    def held_bytes(self) -> int:
        """The records' memory as the budget counts it (`record_bytes`)."""
        return self._bytes

    def _expire(self) -> None:
        horizon = self._clock() - self._retention_s
        while self._records:
            oldest_id, oldest = next(iter(self._records.items()))
            expired = oldest.updated_at < horizon
            if not expired and self._bytes <= self._max_bytes:
                return
            del self._records[oldest_id]
            self._bytes -= record_bytes(oldest_id, oldest)
            if not expired:
                self._evicted_early()

    def _evicted_early(self) -> None:
        self._early_evictions += 1
        now = self._clock()
        if self._warned_at is None or now - self._warned_at >= _EVICTION_WARNING_EVERY_S:
            self._warned_at = now
            log.warning(
                "submit store full: %d records evicted before their 24 h so far (budget %d "
                "bytes, %d records held); repeats of their request_ids reconcile with CI "
                "first. Raise shared.submit_store_max_mb or use the Redis store",
                self._early_evictions,
                self._max_bytes,
                len(self._records),
            )

    def _insert(self, request_id: str, record: SubmitRecord) -> None:
        previous = self._records.get(request_id)
        if previous is not None:
            self._bytes -= record_bytes(request_id, previous)
        self._records[request_id] = record
        self._bytes += record_bytes(request_id, record)

    async def get(self, request_id: str) -> SubmitRecord | None:
        self._expire()
        return self._records.get(request_id)

    async def claim(self, request_id: str, record: SubmitRecord) -> SubmitRecord | None:
        self._expire()
        existing = self._records.get(request_id)
        if existing is None:
            # Not through `put`: expired above already, and this runs for every submit. A new
            # key goes last by itself.
            self._insert(request_id, record)
            if self._bytes > self._max_bytes:
                self._expire()
        return existing

    async def take_over(
        self, request_id: str, expected: SubmitRecord, record: SubmitRecord
    ) -> bool:
        self._expire()
        if self._records.get(request_id) != expected:
            return False
        await self.put(request_id, record)
        return True

    async def put(self, request_id: str, record: SubmitRecord) -> None:
        self._insert(request_id, record)
        self._records.move_to_end(request_id)
        self._expire()

    async def delete(self, request_id: str) -> None:
        record = self._records.pop(request_id, None)
        if record is not None:
            self._bytes -= record_bytes(request_id, record)


def is_ambiguous(error: GatewayError) -> bool:
    """Might CI have acted on a submit that failed this way?"""
    if isinstance(error, RetryBudgetExhausted):
        return is_ambiguous(error.last)
    if isinstance(error, TransportError):
        return error.sent
    if isinstance(error, DeadlineExceeded):
        return True  # the last attempt may have been in flight
    if isinstance(error, UpstreamProtocolError):
        # A 2xx whose body could not be read (cut short, garbled, empty, oversize): CI accepted
        # the submit, so the job probably exists; only its answer is lost.
        return 200 <= error.http_status < 300
    if isinstance(error, UpstreamError):
        # A 5xx may come after CI created the job, whatever its number or code (a load
        # balancer's 520 names none): only a throttling answer and a 501 (CI cannot do it at
        # all) say it refused first. 3xx and 4xx come before. An `<Error>` under a 2xx is no
        # documented answer: CI accepted something, so it is taken as a 2xx that lost its body.
        if 200 <= error.http_status < 300:
            return True
        if error.retry is RetryClass.THROTTLED or error.http_status == 501:
            return False
        return error.http_status >= 500
    return False


def _waited_in_doubt(request_id: RequestKey, why: str) -> SubmitOutcomeUnknown:
    """The error of a call that sent nothing itself and ends in doubt because its deadline left
    no room to wait longer (for another replica's lead, for CI to settle after an earlier
    call's send): `why` names the wait, which made no attempt (`_give_up` counts the call's
    looks, if it made any)."""
    waited = DeadlineExceeded(why)
    unknown = SubmitOutcomeUnknown(request_id.shown, waited)
    waited.attempts = unknown.attempts = 0
    return unknown


def ci_time(unix: float) -> str:
    return datetime.fromtimestamp(unix, UTC).astimezone(CI_TIMEZONE).strftime("%Y-%m-%dT%H:%M:%S%z")


@dataclass
class _Lead(Generic[RequestT]):
    """One call's lead on a request_id, from its claim to its answer: what it submits, and
    what its rounds of look, settle and send have learnt so far."""

    target: Target
    request: RequestT
    request_id: RequestKey
    deadline: Deadline
    # The answer is stored once the jobs are known: the id is the caller's, who may repeat it.
    keep: bool
    operations: int
    # As the call leaves it in doubt; `updated_at` is when its last send in doubt ended.
    record: SubmitRecord
    # The store had no record of the id: no earlier send of it is known to be in doubt.
    fresh: bool
    # Where the next look for the id's jobs starts (None: send without looking first).
    since: float | None
    attempts: Attempts = field(default_factory=Attempts)
    jobs: Jobs = field(default_factory=dict)
    # CI's RequestId of the last POST answered.
    ci_request_id: str = ""
    # Why this call's last send is in doubt; None while it has sent nothing in doubt.
    last_error: GatewayError | None = None
    # A POST of this call's has gone out (or may have: it was cut short).
    sent: bool = False

    @property
    def sent_nothing(self) -> bool:
        """No job of this id can exist: the store did not know it, and this call has neither
        sent it nor found any of its jobs."""
        return self.fresh and not self.sent and not self.jobs


class ExactlyOnceCoordinator(ABC, Generic[RequestT, ResponseT]):
    """Submits a request at most once per request_id, whatever fails on the way. Subclasses
    supply the form's steps (the abstract methods); the order of claim, reconcile, send and
    record, which is what makes it exactly once, is here alone."""

    # The answer's message type, to read a stored outcome back.
    _response_type: type[ResponseT]

    def __init__(
        self,
        client: CiClient,
        store: SubmitStore,
        *,
        budget_for: Callable[[Target], RetryBudget] | None = None,
        settle: Settle | None = None,
        clock: Callable[[], float] = time.time,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        rng: Callable[[], float] = random.random,
    ) -> None:
        self._client = client
        self._store = store
        self._budget_for = budget_for
        self._settle = settle if settle is not None else Settle()
        self._clock = clock
        self._sleep = sleep
        self._rng = rng
        self._flights: dict[str, tuple[str, asyncio.Future[Reply[ResponseT]]]] = {}

    # ---- what a form supplies ---------------------------------------------------------------

    @abstractmethod
    def _fingerprint(self, target: Target, request: RequestT) -> str:
        """What one request_id must always name: a different request under it is refused."""

    @abstractmethod
    def _operations(self, request: RequestT) -> int:
        """How many jobs the request makes: the call is done once each has its job."""

    @abstractmethod
    async def _send(
        self,
        target: Target,
        request: RequestT,
        request_id: str,
        pending: list[int],
        deadline: Deadline,
        attempts: Attempts,
    ) -> tuple[Jobs, str, ResponseT | None]:
        """POST the `pending` operations with their markers (derived from `request_id`, which
        is the `RequestKey.key`): the jobs CI's answer names for them, CI's RequestId, and CI's
        answer itself when it already is the caller's answer for exactly those jobs (nothing
        else in it; None otherwise). An answer naming fewer leaves the rest in doubt."""

    @abstractmethod
    async def _find(
        self,
        target: Target,
        request: RequestT,
        request_id: str,
        known: Jobs,
        since: float,
        deadline: Deadline,
        attempts: Attempts,
    ) -> tuple[Jobs, str]:
        """Reconcile: the jobs a lost submit may have created (created since `since` by CI's
        clock, marked from `request_id`, the key) for the operations not in `known`, and the CI
        RequestId to answer with should they complete the call ("" to keep the last POST's)."""

    @abstractmethod
    def _response(self, jobs: Jobs, answer: ResponseT | None = None) -> ResponseT:
        """The caller's answer once every operation has its job, markers stripped: `answer`
        (what `_send` handed back, when its send named every job) as it stands, else one built
        from `jobs`. Taking CI's answer saves upb's copy of each job into a new message
        (~11,000 instructions for one job: bench/README, session 14)."""

    # ---- the protocol -----------------------------------------------------------------------

    async def submit(
        self,
        target: Target,
        request: RequestT,
        request_id: RequestKey,
        deadline: Deadline,
        *,
        caller_supplied: bool = True,
    ) -> Reply[ResponseT]:
        """Submit once per request_id: per `request_id.key` (in shared mode, per client), while
        errors name `request_id.shown`. `caller_supplied=False` (the gateway made the id) skips
        the look for a lost record's jobs (nobody can have sent the id before) and drops the
        record once the jobs are known, which keeps memory flat (no caller can repeat a call
        that succeeded); records in doubt are kept either way, since their id was returned.
        Nor does such a call open a flight for others to follow: nobody knows the id before the
        call answers (it leaves in the trailers), so no concurrent call can name it."""
        print_ = self._fingerprint(target, request)
        if not caller_supplied:
            return await self._lead(
                target, request, request_id, print_, deadline, caller_supplied=False
            )
        # Bounded: a cancelled leader hands over at most this often.
        key = request_id.key
        for _ in range(MAX_SEND_ROUNDS):
            flight = self._flights.get(key)
            if flight is None:
                break
            flight_print, leader = flight
            if flight_print != print_:
                raise RequestIdReused(request_id.shown)
            try:
                return await asyncio.shield(leader)
            except asyncio.CancelledError:
                task = asyncio.current_task()
                if not leader.cancelled() or (task is not None and task.cancelling()):
                    # We were cancelled ourselves: also when the leader was, in the same pass
                    # of the loop (its client and ours gone at once, or a drain's cut of both),
                    # where taking over would lead for a caller that has left.
                    raise
                # The leading call was cancelled by its client; take over.
        future: asyncio.Future[Reply[ResponseT]] = asyncio.get_running_loop().create_future()
        self._flights[key] = (print_, future)
        try:
            reply = await self._lead(
                target, request, request_id, print_, deadline, caller_supplied=True
            )
        except GatewayError as error:
            future.set_exception(error)
            future.exception()  # mark retrieved: followers may be none
            raise
        except BaseException:
            future.cancel()
            raise
        else:
            future.set_result(reply)
            return reply
        finally:
            if self._flights.get(key, (None, None))[1] is future:
                del self._flights[key]

    async def _lead(
        self,
        target: Target,
        request: RequestT,
        request_id: RequestKey,
        print_: str,
        deadline: Deadline,
        *,
        caller_supplied: bool,
    ) -> Reply[ResponseT]:
        """Take the lead on `request_id` (`_claim`) and run the submit's rounds (`_rounds`);
        an answer stored before is returned as it is. A gateway-made id (not `caller_supplied`)
        is not looked for before its first send, and its record goes once the jobs are known
        (see `submit`)."""
        record, fresh = await self._claim(request_id, print_, deadline)
        if record.jobs_detail is not None:
            if not caller_supplied:
                await self._forget(request_id.key)
            return Reply(self._response_type.FromString(record.jobs_detail), "")
        if not fresh:
            # Sent before (answer lost, caller gone, replica died): look for its jobs first.
            since: float | None = record.first_attempt_at - RECONCILE_LOOKBACK_S
        elif caller_supplied:
            # Nobody has sent it since the store last knew, but a caller's id may still have
            # jobs whose record the store lost: look as far back as the store keeps records.
            since = record.first_attempt_at - RECOVERY_LOOKBACK_S
        else:
            since = None  # the gateway's own id: nobody can have sent it
        operations = self._operations(request)
        lead = _Lead(
            target, request, request_id, deadline, caller_supplied, operations, record, fresh, since
        )
        try:
            return await self._rounds(lead)
        except GatewayError:
            raise  # each of those ends left the record as the next call needs it
        except BaseException:
            await self._step_down(lead)
            raise

    async def _claim(
        self, request_id: RequestKey, print_: str, deadline: Deadline
    ) -> tuple[SubmitRecord, bool]:
        """Make this call the one that sends `request_id`: claim an id the store does not know
        (`fresh`), or take over a record left in doubt once another replica's lead on it has
        ended. The record returned is the one the call leads with, or, holding `jobs_detail`,
        the answer of an earlier call. The lease lasts the caller's deadline and a margin, so a
        replica that dies leading blocks the id only that long."""
        key = request_id.key
        now = self._clock()
        lease = now + deadline.remaining() + LEASE_MARGIN_S
        record = SubmitRecord(print_, None, now, now, leader_until=lease)
        existing = await self._store.claim(key, record)
        # Bounded: each pass claims the id, takes over its record, or lost the take-over to
        # another replica, which leads now (and is waited for on the next pass).
        for _ in range(MAX_TAKEOVERS):
            if existing is None:
                return record, True
            existing = await self._await_other_leader(request_id, existing, deadline)
            if existing.fingerprint != print_:
                raise RequestIdReused(request_id.shown)
            if existing.jobs_detail is not None:
                return existing, False
            # Lead only if no other replica took the record over since we read it.
            taken = replace(existing, leader_until=lease, updated_at=self._clock())
            if await self._store.take_over(key, existing, taken):
                # Here `updated_at` stays when the last send ended, from which this call lets
                # CI settle before it resends, and which its record keeps if it ends sending
                # nothing (else each such repeat would put the settle off again).
                return replace(taken, updated_at=existing.updated_at), False
            existing = await self._store.claim(key, record)
        raise _waited_in_doubt(request_id, "other replicas kept taking the submit over")

    async def _rounds(self, lead: _Lead[RequestT]) -> Reply[ResponseT]:
        """Until every operation has its job: look for the jobs a send in doubt may have made
        (`_reconcile`), send the operations still without one (`_send_rest`); at most
        `MAX_SEND_ROUNDS` sends. Each way out leaves the record as the next call with the id
        needs it: the answer (`_complete`), in doubt (`_give_up`), or gone (`_forget`)."""
        # How long CI may still be creating (or not yet listing) the jobs of the last send in
        # doubt, which ended at `record.updated_at`. A record in doubt left by an earlier call
        # counts too: a caller retrying at once after SUBMIT_OUTCOME_UNKNOWN must not resend
        # unsettled either.
        settle_s = 0.0 if lead.fresh else self._settle.floor_s
        for sends in range(1, MAX_SEND_ROUNDS + 1):
            # A gateway-made id not sent yet (`since` None) has no job to look for: no call.
            if (
                lead.since is not None
                and (reply := await self._reconcile(lead, settle_s)) is not None
            ):
                return reply
            if (reply := await self._send_rest(lead)) is not None:
                return reply
            assert lead.last_error is not None  # in doubt (`_in_doubt`): the next round looks
            settle_s = self._settle.delay(sends, lead.last_error, rng=self._rng)
        assert lead.last_error is not None
        raise await self._give_up(lead, lead.last_error) from lead.last_error

    async def _reconcile(self, lead: _Lead[RequestT], settle_s: float) -> Reply[ResponseT] | None:
        """Look for the jobs: the call's answer once every operation has one; None when the
        rest may be sent. CI may still be acting on the last send in doubt until `settle_s`
        after it ended: a look begun before then decides no resend (however long it took to
        answer), so the call waits out the settle and looks again, or, when its deadline
        leaves no room for that and a resend, ends in doubt rather than resend unsettled.

        A resend of this call's own send in doubt costs a retry token, as `call_with_retry`'s
        retries do. It is taken before the settle, so an empty budget ends the call at once
        (no wait for a resend it would refuse) and calls settling together cannot count on the
        same tokens; a job the look after the settle finds gives it back (nothing was sent
        again). Taken only after the settle, the tokens stayed in a full bucket meanwhile,
        where successes' refunds were lost to its cap: under 20% faults (`bench.run --only
        faults`) one submit in 16 then ended RETRY_BUDGET_EXHAUSTED, against one in 200."""
        if lead.since is None:
            return None  # a gateway-made id, not sent yet: no job of it can exist
        settled_at = lead.record.updated_at + settle_s
        # At once: a job CI made and lists already (the answer alone was lost) is the caller's
        # without waiting.
        early = self._clock() < settled_at
        if (reply := await self._look(lead)) is not None:
            return reply
        if early:
            # At most `settle_s`, should the wall clock step back.
            wait = max(min(settled_at - self._clock(), settle_s), 0.0)
            if lead.deadline.remaining() < wait + RESEND_ROOM_S:
                log.debug(
                    "submit in doubt: %.3f s left, too little to settle and resend",
                    lead.deadline.remaining(),
                )
                unsettled = self._unsettled(lead.request_id, lead.last_error)
                raise await self._give_up(lead, unsettled) from lead.last_error
            if not self._resend_allowed(lead):
                raise await self._give_up(lead, self._exhausted(lead)) from lead.last_error
            try:
                if wait > 0:
                    # Counted, logged and traced as the retry it may become: an operator sees
                    # what the pause is and how often it happens.
                    reason = Reason.SUBMIT_OUTCOME_UNKNOWN
                    if lead.last_error is not None:
                        reason = lead.last_error.reason
                    self._client.retry_scheduled(SUBMIT_OPERATION, reason, wait)
                    await self._sleep(wait)
                reply = await self._look(lead)
            except BaseException:
                self._give_back(lead)  # cancelled, or the look failed: no resend follows
                raise
            if reply is not None:
                self._give_back(lead)
            return reply
        if not self._resend_allowed(lead):
            raise await self._give_up(lead, self._exhausted(lead)) from lead.last_error
        return None

    async def _look(self, lead: _Lead[RequestT]) -> Reply[ResponseT] | None:
        """Adopt the jobs CI made for this request_id: the call's answer once every operation
        has one."""
        assert lead.since is not None
        key = lead.request_id.key
        try:
            found, listed_by = await self._find(
                lead.target, lead.request, key, lead.jobs, lead.since, lead.deadline, lead.attempts
            )
        except GatewayError as error:
            if lead.sent_nothing:
                # The look for a lost record's jobs failed, and nothing was sent: the id is
                # free again, and the next call looks just as far back.
                await self._forget(key)
                lead.attempts.report(error)
                raise
            raise await self._give_up(lead, error) from error
        lead.jobs.update(found)
        if len(lead.jobs) == lead.operations:
            return await self._complete(lead, listed_by or lead.ci_request_id)
        return None

    async def _send_rest(self, lead: _Lead[RequestT]) -> Reply[ResponseT] | None:
        """POST the operations still without a job: the call's answer once CI's names every
        job; None when the outcome is in doubt (`lead.last_error` says why)."""
        pending = [i for i in range(lead.operations) if i not in lead.jobs]
        lead.sent = True
        try:
            answered, lead.ci_request_id, answer = await self._send(
                lead.target,
                lead.request,
                lead.request_id.key,
                pending,
                lead.deadline,
                lead.attempts,
            )
        except GatewayError as error:
            if not is_ambiguous(error):
                if not lead.jobs:
                    await self._forget(lead.request_id.key)  # certainly no job: the id is free
                    lead.attempts.report(error)
                    raise
                # CI refused the rest for certain, but some operations have a job: keep the
                # record in doubt, so no repeat sends those again, and say which they are.
                await self._give_up(lead, error, wrap=False)
                raise
            self._in_doubt(lead, error)
            if isinstance(error, DeadlineExceeded) or lead.deadline.expired:
                raise await self._give_up(lead, error) from error
            return None
        except BaseException:
            # Cut short (cancelled): CI may act on the POST all the same, so whoever sends it
            # next lets CI settle from now.
            lead.record = replace(lead.record, updated_at=self._clock())
            raise
        lead.jobs.update(answered)
        if len(lead.jobs) == lead.operations:
            # CI's answer is the caller's only when this send named every job.
            whole = answer if len(answered) == lead.operations else None
            return await self._complete(lead, lead.ci_request_id, whole)
        # CI answered for some operations only: the others may or may not have a job.
        self._in_doubt(
            lead,
            UpstreamProtocolError(
                f"CI's answer names {len(answered)} of the {len(pending)} jobs it was sent",
                http_status=200,
                request_id=lead.ci_request_id,
            ),
        )
        return None

    def _in_doubt(self, lead: _Lead[RequestT], error: GatewayError) -> None:
        """This call's send ended now in doubt (`error` says why): the next look starts from
        before the first send, and whoever resends lets CI settle from now, this call or,
        should it end here (its deadline spent, its rounds used up), the next call with the
        id, which reads the time from the record `_give_up` leaves."""
        lead.last_error = error
        lead.since = lead.record.first_attempt_at - RECONCILE_LOOKBACK_S
        lead.record = replace(lead.record, updated_at=self._clock())

    async def _reconcile_pages(
        self,
        target: Target,
        deadline: Deadline,
        attempts: Attempts,
        *,
        tag: str,
        input_object: str,
        queue_id: str,
        queue_type: str,
        since: float,
    ) -> AsyncGenerator[Reply[service_pb2.ListMediaJobsResponse], None]:
        """The listing a reconcile reads, newest first: jobs of `tag` on the same input object
        (and queue, when the request names one) created since `since`, page by page, at most
        `RECONCILE_PAGES` of them. A form stops reading once it has found what it looks for."""
        params = {
            "tag": tag,
            "startCreationTime": ci_time(since),
            "orderByTime": "Desc",
            "size": str(RECONCILE_PAGE_SIZE),
            "nextToken": "",
        }
        if input_object:  # a kind without input (Concat) is found by tag and marker
            params["inputObject"] = input_object
        if queue_id:
            params["queueId"] = queue_id
        for _ in range(RECONCILE_PAGES):
            # Without a queue id, the listing names CI's default queue (`upstream.default_queue`),
            # unless the submit asked for a queue type's queue, which is another.
            fill: FillQueue = "none" if queue_type else "learnt"
            page = await attempts.counted(
                self._client.list_jobs(target, params, deadline, fill_queue=fill)
            )
            yield page
            if not page.message.next_token:
                return
            params["nextToken"] = page.message.next_token

    async def _await_other_leader(
        self, request_id: RequestKey, record: SubmitRecord, deadline: Deadline
    ) -> SubmitRecord:
        """Another replica leads this request_id: wait (bounded) for its outcome."""
        delay = LEADER_POLL_S[0]
        while record.jobs_detail is None and record.leader_until > self._clock():
            if deadline.remaining() <= delay:
                raise _waited_in_doubt(request_id, "another replica is still submitting it")
            await self._sleep(delay)
            delay = min(delay * 2, LEADER_POLL_S[1])
            latest = await self._store.get(request_id.key)
            if latest is None:  # the other lead failed for certain: the id is free again
                return replace(record, leader_until=0.0)
            record = latest
        return record

    async def _complete(
        self, lead: _Lead[RequestT], ci_request_id: str, answer: ResponseT | None = None
    ) -> Reply[ResponseT]:
        key, record, jobs = lead.request_id.key, lead.record, lead.jobs
        response = self._response(jobs, answer)
        if not lead.keep:
            # Dropped rather than stored and then dropped: one store call instead of two (a
            # round trip to Redis when shared), nothing serialized. The jobs are known; a
            # record the store fails to drop expires by itself.
            await self._forget(key)
            return Reply(response, ci_request_id)
        stored = response.SerializeToString()
        try:
            await self._store.put(
                key,
                SubmitRecord(record.fingerprint, stored, record.first_attempt_at, self._clock()),
            )
        except SubmitStoreUnavailable:
            # The jobs exist and are known: the caller gets them. A repeat still finds them,
            # through the in-doubt record if the store kept it, else through the recovery look.
            log.warning("submit succeeded but its outcome could not be stored; a repeat looks")
        return Reply(response, ci_request_id)

    async def _give_up(
        self, lead: _Lead[RequestT], error: GatewayError, *, wrap: bool = True
    ) -> GatewayError:
        """Leave the record in doubt with nobody leading (the next call with this id reconciles
        at once, and resends only once CI had `Settle`'s time since `record.updated_at`) and
        return the error the call ends with: the submit's own failure, even should the store
        fail too (`_release`)."""
        shown = lead.request_id.shown
        await self._release(lead)
        final = error
        if wrap and not isinstance(error, DeadlineExceeded | SubmitOutcomeUnknown):
            final = SubmitOutcomeUnknown(shown, error)
        lead.attempts.report(final)
        final.extra["request_id"] = shown
        if lead.jobs:
            final.extra["operations_with_a_job"] = ",".join(map(str, sorted(lead.jobs)))
        return final

    async def _step_down(self, lead: _Lead[RequestT]) -> None:
        """Stop leading with no outcome (the call was cancelled: its client left, or the server
        is stopping; or a bug): hand the id on now, not when the lease runs out, so a call that
        followed this one in the process, or the client's repeat, goes on at once instead of
        waiting for a lead nobody holds. An id nothing was sent under is freed, as a failed
        first look frees it (so the next call looks as far back as for any id the store does
        not know); else the record stays in doubt from the end of its last send (from now, when
        the cancellation cut a POST short). Shielded: a second cancellation does not cut the
        store's write short."""
        if lead.sent_nothing:
            await asyncio.shield(self._forget(lead.request_id.key))
        else:
            await asyncio.shield(self._release(lead))

    async def _release(self, lead: _Lead[RequestT]) -> None:
        """Leave the record in doubt with nobody leading. Best effort: should the store fail,
        the lease runs out by itself."""
        with contextlib.suppress(SubmitStoreUnavailable):
            await self._store.put(lead.request_id.key, replace(lead.record, leader_until=0.0))

    async def _forget(self, key: str) -> None:
        """Drop the id's record: no job was made for it (the id is free again), or the jobs
        are known and the id was the gateway's (nobody can repeat it). Best effort, like
        `_give_up`: CI's answer is what the caller must learn; a record the store failed to
        drop is reconciled by the next call, or expires."""
        # Not contextlib.suppress: every submit without a request_id ends here.
        try:  # noqa: SIM105
            await self._store.delete(key)
        except SubmitStoreUnavailable:
            pass

    @staticmethod
    def _unsettled(request_id: RequestKey, last_error: GatewayError | None) -> GatewayError:
        """Why a call whose deadline leaves no room to let CI settle ends in doubt: its own
        send's failure, or (its send in doubt was an earlier call's) the wait itself."""
        if last_error is not None:
            return last_error
        return _waited_in_doubt(request_id, "an earlier send of it may still be running at CI")

    def _resend_allowed(self, lead: _Lead[RequestT]) -> bool:
        """Whether the upstream's retry budget allows resending this call's send in doubt; takes
        the token if so. Resending an earlier call's costs nothing: that call paid for its own
        sends, and the caller chose to repeat."""
        error = lead.last_error
        if self._budget_for is None or error is None:
            return True
        return self._budget_for(lead.target).try_spend(error)

    def _give_back(self, lead: _Lead[RequestT]) -> None:
        """The token `_resend_allowed` took, for a resend that will not go out."""
        if self._budget_for is not None and lead.last_error is not None:
            self._budget_for(lead.target).give_back(lead.last_error)

    @staticmethod
    def _exhausted(lead: _Lead[RequestT]) -> GatewayError:
        """Why a call the budget allows no resend ends in doubt: the budget, and its own
        send's failure (CI's Code and RequestId with it)."""
        assert lead.last_error is not None
        return RetryBudgetExhausted(lead.last_error, lead.attempts.count)
