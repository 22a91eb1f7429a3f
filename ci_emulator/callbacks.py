"""Job-completion callbacks: where a finished job reports, and delivering it without blocking.

Where to (notes §7, §2.2, §8.1), decided when the job ends:

1. the job's `CallBack` = `no`: nowhere (it suppresses the queue's callback);
2. the job's `CallBackType` = `TDMQ`: its `CallBackMqConfig` topic;
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
A callback to a host that is not loopback is sent (the emulator does not police it) but logged,
because tests must never reach out of the machine.
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
from dataclasses import dataclass
from typing import Final, NamedTuple, Protocol

import aiohttp
from yarl import URL

from ci_emulator.callback_body import (
    JSON_CONTENT_TYPE,
    XML_CONTENT_TYPE,
    json_body,
    xml_body,
)
from ci_emulator.config import CallbackSettings
from ci_emulator.jobs import Job, JobState
from ci_emulator.queues import MediaQueue

logger = logging.getLogger(__name__)

REPORTED_STATES: Final = frozenset({JobState.SUCCESS, JobState.FAILED})
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
    """`Url` or `TDMQ`."""
    address: str
    """The URL, or `region/mode/name` of the TDMQ topic."""
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
    if spec.callback_type == "TDMQ":
        return CallbackTarget("TDMQ", "/".join(value for _, value in spec.callback_mq), body_format)
    if spec.callback:
        return CallbackTarget("Url", spec.callback, body_format)
    if not notify.notifies_job_end:
        return None
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
        self._tasks: set[asyncio.Task[None]] = set()
        self._warned: set[str] = set()

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
        task = asyncio.create_task(self._deliver(target, body), name=f"callback-{name}")
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def close(self) -> None:
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        if self._session is not None:
            await self._session.close()
            self._session = None

    def _body(self, job: Job, body_format: str) -> tuple[bytes, str]:
        if body_format == "JSON":
            return json_body(job, as_array=self._settings.json_array), JSON_CONTENT_TYPE
        return xml_body(job), XML_CONTENT_TYPE

    def _client(self) -> aiohttp.ClientSession:
        if self._session is None:
            # trust_env=False: a proxy variable must never carry a callback off the machine.
            self._session = aiohttp.ClientSession(
                timeout=aiohttp.ClientTimeout(total=self._settings.timeout_s), trust_env=False
            )
        return self._session

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
        if not is_loopback(url.host or ""):
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


def is_loopback(host: str) -> bool:
    if host.lower() in _LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False
