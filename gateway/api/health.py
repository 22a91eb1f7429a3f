"""Liveness and readiness, served as grpc.health.v1 and mirrored for the HTTP probes.

One `Readiness.servicer` answers on the API port and, with `health_listen`, on the plaintext
health port too (`gateway.api.server`), so the two can never disagree.

Two names are reported. `""` (the whole server) is liveness: SERVING as soon as the server
listens, NOT_SERVING only once it drains, because restarting a process that is merely waiting
for credentials would not help. `ci.media.v1.MediaJobService` is readiness: NOT_SERVING while
starting, while any readiness check fails, and for good once draining begins.

A readiness check is any `async () -> None` that raises when the gateway cannot do useful work
(`credentials_check`: the provider cannot produce credentials; `submit_store_check`: the shared
request_id store does not answer, so no submit can be served). Checks run at start, then every
`interval_s`, so a later failure (credentials expired and not renewed, Redis down) takes the
replica out of rotation and a recovery brings it back; `Readiness.add_check` is the seam for
more of them.

A check may ask for hysteresis (`fail_after`, `pass_after`): a dependency reached over the
network (Redis) fails a single probe now and then, and a replica that left and rejoined the
rotation on every blip would shed its connections for nothing. The first probe of a check
decides at once either way, so hysteresis never delays start nor lets a replica start ready
while its store is down.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass

from grpc_health.v1 import health_pb2
from grpc_health.v1._async import HealthServicer

from gateway._proto import service_pb2
from gateway.credentials import CredentialsProvider, check_credentials
from gateway.logs import event

log = logging.getLogger(__name__)

OVERALL = ""
API_SERVICE: str = service_pb2.DESCRIPTOR.services_by_name["MediaJobService"].full_name
SERVING = health_pb2.HealthCheckResponse.SERVING
NOT_SERVING = health_pb2.HealthCheckResponse.NOT_SERVING
DEFAULT_INTERVAL_S = 5.0
CHECK_TIMEOUT_S = 5.0


# The shared submit store: out of rotation after two failed probes in a row, back after two
# good ones (with the 5 s interval: 5-10 s after an outage begins or ends).
SUBMIT_STORE_FAIL_AFTER = 2
SUBMIT_STORE_PASS_AFTER = 2


class _ListingHealthServicer(HealthServicer):  # type: ignore[misc]  # untyped package
    """grpc's asyncio health servicer, with the `List` method health v1 defines and it leaves
    unimplemented: every `List` (which anyone may call, on either port, without credentials)
    was answered UNKNOWN and logged an ERROR with a traceback. Lists what `Readiness` reports."""

    def __init__(self, statuses: Mapping[str, int]) -> None:
        super().__init__()
        self._statuses = statuses

    async def List(
        self, request: health_pb2.HealthListRequest, context: object
    ) -> health_pb2.HealthListResponse:
        return health_pb2.HealthListResponse(
            statuses={
                name: health_pb2.HealthCheckResponse(status=status)
                for name, status in self._statuses.items()
            }
        )


@dataclass(frozen=True)
class ReadinessCheck:
    name: str
    probe: Callable[[], Awaitable[object]]
    # Probes in a row that must fail before a passing check counts as failing, and pass before
    # a failing one counts as passing again; 1 and 1 follow every probe.
    fail_after: int = 1
    pass_after: int = 1

    def __post_init__(self) -> None:
        if self.fail_after < 1 or self.pass_after < 1:
            raise ValueError("fail_after and pass_after must be at least 1")


def credentials_check(provider: CredentialsProvider) -> ReadinessCheck:
    """Ready only while every account behind the provider has credentials to sign with
    (`provider.get` alone would vouch for the default account only)."""

    async def probe() -> None:
        await provider.get()  # the default account, refreshed if it is due
        await check_credentials(provider)  # and every other account

    return ReadinessCheck(f"credentials:{provider.name}", probe)


def submit_store_check(ping: Callable[[], Awaitable[object]], kind: str) -> ReadinessCheck:
    """Ready only while the shared request_id store answers: without it no submit can be served
    (`SUBMIT_STORE_UNAVAILABLE`), so the replica should leave the rotation, with hysteresis."""
    return ReadinessCheck(
        f"submit-store:{kind}",
        ping,
        fail_after=SUBMIT_STORE_FAIL_AFTER,
        pass_after=SUBMIT_STORE_PASS_AFTER,
    )


class Readiness:
    """Owns every serving status the gateway reports; nothing else sets them."""

    def __init__(
        self,
        checks: Sequence[ReadinessCheck] = (),
        *,
        interval_s: float = DEFAULT_INTERVAL_S,
        check_timeout_s: float = CHECK_TIMEOUT_S,
    ) -> None:
        self._status = {OVERALL: NOT_SERVING, API_SERVICE: NOT_SERVING}
        self.servicer = _ListingHealthServicer(self._status)
        self._checks = list(checks)
        self._interval_s = interval_s
        self._check_timeout_s = check_timeout_s
        self._failing: tuple[str, ...] = ("starting",)
        # Per check name: its verdict (True: failing; absent until its first probe) and how many
        # probes in a row have disagreed with that verdict.
        self._verdicts: dict[str, bool] = {}
        self._against: dict[str, int] = {}
        self._draining = False
        self._recheck = asyncio.Event()
        self._monitor: asyncio.Task[None] | None = None

    # What the probes read ---------------------------------------------------------------------

    @property
    def alive(self) -> bool:
        return bool(self._status[OVERALL] == SERVING)

    @property
    def ready(self) -> bool:
        return bool(self._status[API_SERVICE] == SERVING)

    @property
    def failing(self) -> tuple[str, ...]:
        """Why the API is not ready: failing check names, `starting` or `draining`."""
        return self._failing

    # Lifecycle --------------------------------------------------------------------------------

    async def prepare(self) -> None:
        """Before the server starts: everything NOT_SERVING."""
        for service in self._status:
            await self.servicer.set(service, NOT_SERVING)

    async def start(self) -> None:
        """The server listens: alive now, ready once the checks pass (re-run periodically)."""
        await self._set(OVERALL, SERVING)
        self._monitor = asyncio.create_task(self._run(), name="readiness-monitor")

    def add_check(self, check: ReadinessCheck) -> None:
        self._checks.append(check)
        self.recheck()

    def recheck(self) -> None:
        """Run the checks now rather than at the next interval."""
        self._recheck.set()

    async def enter_graceful_shutdown(self) -> None:
        """Draining: NOT_SERVING for every name, for good."""
        self._draining = True
        self._failing = ("draining",)
        # Before anything is awaited: from the moment a drain begins (and its log line is out),
        # /readyz and /livez must say so, not once the monitor has finished.
        for service in self._status:
            self._status[service] = NOT_SERVING
        if self._monitor is not None:
            self._monitor.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._monitor
        await self.servicer.enter_graceful_shutdown()
        event(log, logging.INFO, "health: draining, every service NOT_SERVING")

    # Internals --------------------------------------------------------------------------------

    async def _set(self, service: str, status: int) -> None:
        if self._draining:
            return
        self._status[service] = status
        await self.servicer.set(service, status)

    async def _run(self) -> None:
        # Runs for the server's lifetime and ends by cancellation (drain); each wait is bounded.
        while True:
            await self.evaluate()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._recheck.wait(), self._interval_s)
            self._recheck.clear()

    async def evaluate(self) -> bool:
        """Run every check once and publish the result; True when ready."""
        if self._draining:
            return False
        checks = list(self._checks)
        results = await asyncio.gather(*(self._probe(check) for check in checks))
        failing = tuple(
            check.name
            for check, (_, error) in zip(checks, results, strict=True)
            if self._judge(check, failed=error is not None)
        )
        was_ready = self.ready
        if failing != self._failing:
            for name, error in results:
                if error is not None:
                    event(log, logging.WARNING, "readiness check failed", check=name, error=error)
        self._failing = failing
        await self._set(API_SERVICE, NOT_SERVING if failing else SERVING)
        if self.ready != was_ready:
            event(
                log,
                logging.INFO,
                "health: ready" if self.ready else "health: not ready",
                service=API_SERVICE,
                failing=list(failing),
            )
        return not failing

    def _judge(self, check: ReadinessCheck, *, failed: bool) -> bool:
        """The check's verdict (True: failing) after one more probe, with its hysteresis."""
        verdict = self._verdicts.get(check.name)
        if verdict is None or verdict == failed:
            self._verdicts[check.name] = failed
            self._against[check.name] = 0
            return failed
        against = self._against.get(check.name, 0) + 1
        if against >= (check.fail_after if failed else check.pass_after):
            self._verdicts[check.name] = failed
            against = 0
        self._against[check.name] = against
        return self._verdicts[check.name]

    async def _probe(self, check: ReadinessCheck) -> tuple[str, str | None]:
        try:
            await asyncio.wait_for(check.probe(), self._check_timeout_s)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # any failure of a probe means "not ready"
            # The class and text of the failure; providers never put secrets in their errors.
            return check.name, f"{type(exc).__name__}: {str(exc)[:200]}"
        return check.name, None
