"""Job-completion callbacks: where a finished job reports, and delivering it without blocking.

Where to (notes §7, §2.2, §8.1), decided when the job ends:

1. the job's `CallBack` = `no`: nowhere (it suppresses the queue's callback);
2. the job's `CallBackType` = `TDMQ` or `Kafka`: its `CallBackMqConfig` or
   `CallBackKafkaConfig` topic;
3. the job's `CallBack` URL: that URL;
4. otherwise the queue's `NotifyConfig`, if it is `On` and subscribed to `TaskFinish` (or the
   legacy `TransCodingFinish`): its Url, or its TDMQ topic for `Type` TDMQ;

and in which format: the job's `CallBackFormat`, else the queue's `ResultFormat`, else XML.

Which endings report: `Success` and `Failed` (the docs: "after the job completes"; a failed job's
Code/Message exist to be reported). `Cancel` does not by default: UNCONFIRMED, and a cancelled job
did not complete; `CallbackSettings.on_cancel` turns it on so a client can be tested either way.

Delivery: an HTTP POST from one shared `aiohttp.ClientSession`, in its own task (the job runner
never waits for it), retried on a non-2xx answer, a connection error or a timeout, at most
`attempts` times with exponential backoff (CI's own retry policy is UNCONFIRMED). Every finished
delivery, good or given up, is appended to `EmulatorState.callbacks` as `(url, status, attempts)`.
A URL without a scheme (the Go SDK's queue test uses `test.com`) is tried as `http://`.
TDMQ and Kafka cannot be reached from here: such callbacks are counted as not delivered (by
kind), and logged once.

Where to, allowed: a local tool must not POST job data to whatever URL a queue or job names (the
Go SDK's test queue names `test.com`). Unless `CallbackSettings.allow_public_hosts` (the
`--callback-allow-public-hosts` flag) says otherwise, a callback goes only to loopback or private
addresses (10/8, 172.16/12, 192.168/16, fc00::/7; not link-local, where cloud metadata lives): a
name is resolved first and every address it has must be such. A refused callback is never sent;
it is logged (once per host, as a warning naming the host and the flag), recorded with no
attempt, and counted as undeliverable (`public host`). The session's resolver applies the same
rule when it connects, so a name that resolves differently the second time is not followed.
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import socket
from dataclasses import dataclass
from typing import Final, NamedTuple, Protocol

import aiohttp
from aiohttp.abc import AbstractResolver, ResolveResult
from aiohttp.resolver import DefaultResolver
from yarl import URL

from ci_emulator.callback_body import (
    JSON_CONTENT_TYPE,
    XML_CONTENT_TYPE,
    json_body,
    xml_body,
)
from ci_emulator.config import CallbackSettings
from ci_emulator.jobs import Job, JobState
from ci_emulator.queues import MediaQueue, NotifyConfig
from ci_emulator.tasks import BackgroundTasks

logger = logging.getLogger(__name__)

REPORTED_STATES: Final = frozenset({JobState.SUCCESS, JobState.FAILED})
PUBLIC_HOST: Final = "public host"
"""`EmulatorState.callbacks_undeliverable` key of callbacks refused for their host."""
_LOOPBACK_NAMES: Final = frozenset({"localhost", "localhost.localdomain"})


class CallbackDelivery(NamedTuple):
    """One finished delivery, as recorded in `EmulatorState.callbacks`."""

    url: str
    status: int | None
    """The last answer's HTTP status; None if no try got an answer."""
    attempts: int


@dataclass(frozen=True)
class CallbackTarget:
    kind: str
    """`Url`, `TDMQ` or `Kafka`."""
    address: str
    """The URL, `region/mode/name` of the TDMQ topic, or `region/instance/topic` (Kafka)."""
    body_format: str
    """`XML` or `JSON`."""


def callback_target(
    job: Job, queue: MediaQueue, settings: CallbackSettings
) -> CallbackTarget | None:
    """Where `job`, just ended, reports (None: nowhere). Pure: no I/O."""
    if job.state not in REPORTED_STATES and not (
        settings.on_cancel and job.state is JobState.CANCEL
    ):
        return None
    spec, notify = job.spec, queue.notify
    if spec.callback == "no":
        return None
    body_format = spec.callback_format or notify.result_format or "XML"
    if spec.callback_type in ("TDMQ", "Kafka"):
        address = "/".join(value for _, value in spec.callback_mq)
        return CallbackTarget(spec.callback_type, address, body_format)
    if spec.callback:
        return CallbackTarget("Url", spec.callback, body_format)
    if not notify.notifies_job_end:
        return None
    return notify_target(notify, body_format)


def notify_target(notify: NotifyConfig, body_format: str) -> CallbackTarget:
    """Where a `NotifyConfig` (a queue's, a workflow Start node's) sends: its Url, its TDMQ
    topic or its Kafka topic, by its Type."""
    if notify.type == "TDMQ":
        address = f"{notify.mq_region}/{notify.mq_mode or 'Queue'}/{notify.mq_name}"
        return CallbackTarget("TDMQ", address, body_format)
    if notify.type == "Kafka":
        return CallbackTarget("Kafka", "/".join(value for _, value in notify.kafka), body_format)
    return CallbackTarget("Url", notify.url, body_format)


class CallbackRecorder(Protocol):
    """What the dispatcher reports to; `EmulatorState` implements it."""

    def record_scheduled(self) -> None: ...

    def record_callback(self, delivery: CallbackDelivery) -> None: ...

    def record_undeliverable(self, kind: str) -> None: ...


class CallbackDispatcher:
    """Sends callbacks in background tasks over one session; `close()` cancels what is left."""

    def __init__(self, recorder: CallbackRecorder, settings: CallbackSettings) -> None:
        self._recorder = recorder
        self._settings = settings
        self._session: aiohttp.ClientSession | None = None
        self._tasks = BackgroundTasks()
        self._warned: set[str] = set()
        self._resolver: LocalOnlyResolver | None = None

    def job_ended(self, job: Job, queue: MediaQueue) -> None:
        target = callback_target(job, queue, self._settings)
        if target is None:
            return
        self.send(target, self._body(job, target.body_format), job.job_id)

    def send(self, target: CallbackTarget, body: tuple[bytes, str], name: str) -> None:
        """Deliver `body` (bytes, content type) to `target` in the background, recorded like a
        job's callback: also how a finished workflow run reports (`workflows`)."""
        if target.kind != "Url":
            self._recorder.record_undeliverable(target.kind)
            message = "%s callbacks cannot be delivered by the emulator; counted"
            self._warn_once(target.kind, message, target.kind)
            return
        self._recorder.record_scheduled()
        self._tasks.spawn(self._deliver(target, body), name=f"callback-{name}")

    async def close(self) -> None:
        await self._tasks.close()
        if self._session is not None:
            await self._session.close()
            self._session = None
        if self._resolver is not None:
            await self._resolver.close()
            self._resolver = None

    def _body(self, job: Job, body_format: str) -> tuple[bytes, str]:
        if body_format == "JSON":
            return json_body(job, as_array=self._settings.json_array), JSON_CONTENT_TYPE
        return xml_body(job), XML_CONTENT_TYPE

    def _client(self) -> aiohttp.ClientSession:
        if self._session is None:
            # trust_env=False: a proxy variable must never carry a callback off the machine.
            connector = aiohttp.TCPConnector(resolver=self._local_resolver())
            self._session = aiohttp.ClientSession(
                connector=connector,
                timeout=aiohttp.ClientTimeout(total=self._settings.timeout_s),
                trust_env=False,
            )
        return self._session

    def _local_resolver(self) -> LocalOnlyResolver | None:
        """The one resolver of the session and of `_refusal` (None: public hosts allowed);
        made on first use, inside the event loop, and closed with the session."""
        if self._resolver is None and not self._settings.allow_public_hosts:
            self._resolver = LocalOnlyResolver()
        return self._resolver

    async def _refusal(self, host: str) -> str | None:
        """Why a callback to `host` is not sent, or None (see the module docstring)."""
        if host.lower() in _LOOPBACK_NAMES:
            return None
        try:
            if not is_local_address(host.strip("[]")):
                return "not a loopback or private address"
            return None
        except ValueError:
            pass  # a name: resolved below
        resolver = self._local_resolver()
        assert resolver is not None  # only asked when public hosts are not allowed
        try:
            await resolver.resolve(host, 0, socket.AF_UNSPEC)
        except PublicAddressError as exc:
            return str(exc)
        except OSError:
            return None  # unresolvable: the delivery fails, and is recorded, as any other
        return None

    async def _deliver(self, target: CallbackTarget, body: tuple[bytes, str]) -> None:
        settings = self._settings
        try:
            url = URL(target.address if "://" in target.address else "http://" + target.address)
            if url.scheme not in ("http", "https") or not url.host:
                raise ValueError(f"not an HTTP URL: {target.address!r}")
        except ValueError as exc:
            logger.warning("callback URL %r is unusable: %s", target.address, exc)
            self._recorder.record_callback(CallbackDelivery(target.address, None, 0))
            return
        if not settings.allow_public_hosts:
            refusal = await self._refusal(url.host or "")
            if refusal is not None:
                self._warn_once(url.host or "", "callback to %s refused: %s; pass "
                                "--callback-allow-public-hosts to allow it", target.address,
                                refusal)  # fmt: skip
                self._recorder.record_undeliverable(PUBLIC_HOST)
                self._recorder.record_callback(CallbackDelivery(target.address, None, 0))
                return
        elif not is_loopback(url.host or ""):
            self._warn_once(url.host or "", "callback to a non-loopback host: %s", url.host)
        status: int | None = None
        attempt = 0
        # Bounded: at most `attempts` tries, each bounded by the session timeout.
        for attempt in range(1, settings.attempts + 1):
            if attempt > 1:
                await asyncio.sleep(settings.backoff_s * 2 ** (attempt - 2))
            status = await self._post(url, body)
            if status is not None and 200 <= status < 300:
                break
        self._recorder.record_callback(CallbackDelivery(target.address, status, attempt))

    async def _post(self, url: URL, body: tuple[bytes, str]) -> int | None:
        data, content_type = body
        try:
            async with self._client().post(
                url, data=data, headers={"Content-Type": content_type}, allow_redirects=False
            ) as response:
                await response.read()
                return response.status
        except (aiohttp.ClientError, TimeoutError) as exc:
            logger.info("callback to %s failed: %r", url, exc)
            return None

    def _warn_once(self, key: str, message: str, *args: object) -> None:
        if key not in self._warned:
            self._warned.add(key)
            logger.warning(message, *args)


def is_local_address(address: str) -> bool:
    """Loopback or private, not link-local; `ValueError` if `address` is no IP address."""
    ip = ipaddress.ip_address(address.split("%", 1)[0])  # without an IPv6 zone
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped  # `::ffff:8.8.8.8` is 8.8.8.8, not a private IPv6 address
    return ip.is_loopback or (ip.is_private and not ip.is_link_local)


class PublicAddressError(OSError):
    """A callback host resolves to an address beyond loopback and private networks."""


class LocalOnlyResolver(AbstractResolver):
    """aiohttp's resolver, refusing a name that has any public address (`PublicAddressError`)."""

    def __init__(self) -> None:
        self._resolver = DefaultResolver()

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        results = await self._resolver.resolve(host, port, family)
        public = [result["host"] for result in results if not is_local_address(result["host"])]
        if public:
            raise PublicAddressError(f"{host} resolves to {public[0]}, a public address")
        return results

    async def close(self) -> None:
        await self._resolver.close()


def is_loopback(host: str) -> bool:
    if host.lower() in _LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False
