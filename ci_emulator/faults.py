"""Seeded fault injection per CI operation: errors, latency, resets and "commit then drop".

Resilience tests need CI to misbehave on purpose, reproducibly. A `FaultPlan` (on
`EmulatorState.faults`) maps an operation name to a `FaultSpec` of probabilities; for every
request that has passed routing *and* the signature check, the front end asks the plan for a
`FaultDecision` and applies it. Faults never apply before verification, so an injected 500 can
never hide a request the real CI would have refused as unauthenticated.

What each fault does to the request (the client's view in brackets):

    latency_s         sleep before processing, with probability latency_p   [a slow answer]
                      (shutdown ends the sleep and drops the request unanswered)
    error_500         InternalError 500, CI's error XML, nothing processed  [retryable 5xx]
    error_503         ServiceUnavailable 503, nothing processed             [retryable 5xx]
    slowdown_429      SlowDown 429 (CI's documented status), nothing done   [throttled]
    reset_before      TCP RST before processing: SO_LINGER 0 + abort        [ECONNRESET]
    commit_then_drop  process fully (the job exists), then close the socket
                      without a byte of answer (FIN)                        [server disconnected]
    listing_lag_s     DescribeMediaJobs only, every listing (no draw): jobs
                      created less than this long ago are not listed yet,
                      though they exist and describe by id                  [eventual consistency]

The two connection faults end differently on purpose: a reset (`ClientOSError`/
`ConnectionResetError` in aiohttp) and an orderly close with no answer (`ServerDisconnectedError`)
are the two ways a real connection dies, and a client must treat both as "outcome unknown".

The listing lag is CI's own timing rather than a fault of one request: a job committed but
listed only after a while, so a client that looks for it at once misses it (UNCONFIRMED whether
CI's listing lags at all; the gateway must not resend on such a miss). It reads the emulator's
clock (`EmulatorConfig.clock`), so a test on a manual clock decides exactly when a job appears.

Determinism: each operation draws from its own `random.Random` stream seeded by `(seed,
operation)`, and every faultable request of that operation draws exactly two numbers (latency,
outcome) whatever its spec says. So the N-th CreateMediaJobs meets the same fate for a given seed
however many describes a poller sent in between, and changing one operation's spec never shifts
another's sequence. The draw happens synchronously when the request reaches the fault stage, so
"request order" is the order in which requests pass verification.
"""

from __future__ import annotations

import asyncio
import collections
import enum
import math
import random
import socket
import struct
from collections.abc import Mapping
from dataclasses import asdict, dataclass, fields
from typing import Final

from aiohttp import web

from ci_emulator.errors import CiError

OPERATIONS: Final = frozenset(
    {
        "CreateMediaJobs",
        "DescribeMediaJob",
        "DescribeMediaJobs",
        "CancelMediaJob",
        "DescribeMediaQueues",
        "UpdateMediaQueue",
        "GenerateMediaInfo",
        "GetMediaInfo",
    }
)
"""The operation names `FaultPlan.set` accepts (CI's doc names; the list API is the plural)."""

ALL_OPERATIONS: Final = "*"
"""The key whose spec applies to every operation without a spec of its own."""

LISTING: Final = "DescribeMediaJobs"
"""The one operation `FaultSpec.listing_lag_s` applies to."""


class FaultKind(enum.StrEnum):
    """One outcome of a draw; the value is the `FaultSpec` field and the counter suffix."""

    ERROR_500 = "error_500"
    ERROR_503 = "error_503"
    SLOWDOWN_429 = "slowdown_429"
    RESET_BEFORE = "reset_before"
    COMMIT_THEN_DROP = "commit_then_drop"


_OUTCOME_ORDER: Final = tuple(FaultKind)
"""The order outcomes occupy [0, 1) in a draw; fixed so a seed means the same thing forever."""


@dataclass(frozen=True)
class FaultSpec:
    """Probabilities for one operation. The five outcomes are exclusive (one draw picks at most
    one), so they must sum to at most 1; latency is drawn separately and may combine with any."""

    error_500: float = 0.0
    error_503: float = 0.0
    slowdown_429: float = 0.0
    reset_before: float = 0.0
    commit_then_drop: float = 0.0
    latency_s: float = 0.0
    latency_p: float = 1.0
    listing_lag_s: float = 0.0

    def __post_init__(self) -> None:
        for name in (*(kind.value for kind in FaultKind), "latency_p"):
            value = getattr(self, name)
            if not (isinstance(value, int | float) and 0.0 <= value <= 1.0):
                raise ValueError(f"{name} must be a probability in [0, 1], not {value!r}")
        if sum(getattr(self, kind.value) for kind in FaultKind) > 1.0 + 1e-9:
            raise ValueError("the outcome probabilities of one FaultSpec must sum to at most 1")
        for name in ("latency_s", "listing_lag_s"):
            value = getattr(self, name)
            if not (isinstance(value, int | float) and 0.0 <= value < math.inf):
                raise ValueError(f"{name} must be a finite number >= 0, not {value!r}")

    @classmethod
    def from_mapping(cls, values: Mapping[str, object]) -> FaultSpec:
        """Build from JSON or CLI values; an unknown key is an error (a typo must not pass)."""
        known = {f.name for f in fields(cls)}
        unknown = set(values) - known
        if unknown:
            raise ValueError(f"unknown fault field(s): {', '.join(sorted(unknown))}")
        numbers: dict[str, float] = {}
        for name, value in values.items():
            if isinstance(value, bool) or not isinstance(value, int | float | str):
                raise ValueError(f"{name} must be a number")
            try:
                numbers[name] = float(value)
            except ValueError as exc:
                raise ValueError(f"{name} must be a number, not {value!r}") from exc
        return cls(**numbers)

    def to_dict(self) -> dict[str, float]:
        return asdict(self)


@dataclass(frozen=True)
class FaultDecision:
    """What to do to one request: sleep `latency_s`, then apply `kind` (None: serve normally)."""

    latency_s: float = 0.0
    kind: FaultKind | None = None


NO_FAULT: Final = FaultDecision()


class FaultPlan:
    """Per-operation fault specs, their seeded random streams, and what was injected.

    `injected` counts each applied fault as `"<Operation>:<kind>"` (kinds: the `FaultKind`
    values and `latency`), e.g. `injected["CreateMediaJobs:commit_then_drop"]`.
    """

    def __init__(self, seed: int = 0) -> None:
        self._seed = seed
        self._specs: dict[str, FaultSpec] = {}
        self._streams: dict[str, random.Random] = {}
        self.injected: collections.Counter[str] = collections.Counter()
        self.holding = 0
        """Requests sleeping out their injected latency right now."""
        self.cut_short = 0
        """Latency sleeps ended early because the emulator shut down."""
        self._shutting_down = asyncio.Event()
        self._holding_changed = asyncio.Event()

    @property
    def seed(self) -> int:
        return self._seed

    @property
    def specs(self) -> Mapping[str, FaultSpec]:
        return dict(self._specs)

    def set(self, operation: str, spec: FaultSpec) -> None:
        """Install `spec` for `operation` (or `"*"`); replaces any earlier spec for it."""
        check_operation(operation)
        if spec.listing_lag_s and operation not in (LISTING, ALL_OPERATIONS):
            raise ValueError(f"listing_lag_s applies to {LISTING} (or '*'), not {operation}")
        self._specs[operation] = spec

    def clear(self) -> None:
        """Remove every spec. Counters and random streams stay: what happened, happened."""
        self._specs.clear()

    def reseed(self, seed: int) -> None:
        """Restart every operation's random stream from `seed`."""
        self._seed = seed
        self._streams.clear()

    def draw(self, operation: str) -> FaultDecision:
        """Decide one request's fault. Always consumes exactly two numbers of its stream."""
        stream = self._streams.get(operation)
        if stream is None:
            # A str seed is hashed with SHA-512 by `random`: stable across runs and processes.
            stream = self._streams[operation] = random.Random(f"{self._seed}:{operation}")
        latency_draw, outcome_draw = stream.random(), stream.random()
        spec = self._specs.get(operation) or self._specs.get(ALL_OPERATIONS)
        if spec is None:
            return NO_FAULT
        latency = spec.latency_s if spec.latency_s > 0 and latency_draw < spec.latency_p else 0.0
        if latency:
            self.injected[f"{operation}:latency"] += 1
        kind = _pick(spec, outcome_draw)
        if kind is not None:
            self.injected[f"{operation}:{kind}"] += 1
        return FaultDecision(latency, kind) if latency or kind else NO_FAULT

    def listed_until(self, now: float) -> float | None:
        """The newest creation time a listing served at `now` shows (None: every job), under
        the listing lag; a listing it applies to counts as `DescribeMediaJobs:listing_lag`."""
        spec = self._specs.get(LISTING) or self._specs.get(ALL_OPERATIONS)
        if spec is None or spec.listing_lag_s <= 0:
            return None
        self.injected[f"{LISTING}:listing_lag"] += 1
        return now - spec.listing_lag_s

    async def delay(self, decision: FaultDecision) -> bool:
        """Sleep out the decision's latency; False when shutdown ended the sleep first.

        A latency fault may be long (a test holding a request to cancel it, a demo of a slow
        CI). aiohttp's shutdown waits for in-flight handlers for its whole grace period before
        cancelling them, so a plain sleep would hold `RunningEmulator.close()` that long; the
        sleep waits on the shutdown event instead, and the caller drops the request unanswered.
        """
        if decision.latency_s <= 0:
            return True
        if self._shutting_down.is_set():
            self.cut_short += 1
            return False
        self._set_holding(self.holding + 1)
        try:
            async with asyncio.timeout(decision.latency_s):
                await self._shutting_down.wait()
        except TimeoutError:
            return True
        finally:
            self._set_holding(self.holding - 1)
        self.cut_short += 1
        return False

    def shut_down(self) -> None:
        """End every latency sleep now and skip later ones (the emulator is closing)."""
        self._shutting_down.set()

    async def wait_until_holding(self, count: int) -> None:
        """Return once at least `count` requests sleep out a latency (bound it with a time-out)."""
        while self.holding < count:  # each pass waits for the next change of `holding`
            await self._holding_changed.wait()

    def _set_holding(self, count: int) -> None:
        self.holding = count
        changed, self._holding_changed = self._holding_changed, asyncio.Event()
        changed.set()

    def snapshot(self) -> dict[str, object]:
        """JSON-ready: the seed, the specs, and the injection counts."""
        return {
            "seed": self._seed,
            "faults": {operation: spec.to_dict() for operation, spec in self._specs.items()},
            "injected": dict(self.injected),
        }


def check_operation(operation: str) -> None:
    if operation != ALL_OPERATIONS and operation not in OPERATIONS:
        known = ", ".join(sorted(OPERATIONS))
        raise ValueError(f"unknown operation {operation!r}; use one of {known} or '*'")


def _pick(spec: FaultSpec, draw: float) -> FaultKind | None:
    edge = 0.0
    for kind in _OUTCOME_ORDER:
        edge += getattr(spec, kind.value)
        if draw < edge:
            return kind
    return None


def injected_error(kind: FaultKind | None) -> CiError | None:
    """The CI error an error fault answers with (a fresh exception each time), else None."""
    if kind is FaultKind.ERROR_500:
        return CiError("InternalError", "The server encountered an internal error.")
    if kind is FaultKind.ERROR_503:
        return CiError("ServiceUnavailable", "Service is temporarily unavailable.")
    if kind is FaultKind.SLOWDOWN_429:
        # CI's documented status for SlowDown is 429 (COS answers 503); the spec names 429.
        return CiError("SlowDown", "Please reduce your request rate.", status=429)
    return None


def reset_connection(request: web.Request) -> web.StreamResponse:
    """Abort the connection with a TCP RST and return a response aiohttp will fail to send.

    `SO_LINGER` with a zero timeout makes `close()` discard unsent data and send RST instead of
    FIN. aiohttp then finds the transport closing when it writes the returned placeholder, treats
    that as a client that went away (no log, no traceback), and drops the connection.
    """
    transport = request.transport
    if transport is not None:
        sock = transport.get_extra_info("socket")
        if sock is not None:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        transport.abort()
    return web.Response(status=500)


def close_connection(request: web.Request) -> web.StreamResponse:
    """Close the connection in order (FIN) without answering; the placeholder is never sent."""
    transport = request.transport
    if transport is not None:
        transport.close()
    return web.Response(status=500)
