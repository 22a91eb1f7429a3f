"""A small stateful CI for the job kinds the emulator does not run yet (it answers every tag
but MediaInfo with NotImplemented): submit stores the job and echoes its `Operation`, as CI
does (one job per Operation in the multi-operation form); describe and list answer it back,
with result nodes the test chooses; cancel marks it. It can also lose an answer, create only
some of a multi-operation submit's jobs, name only some of them in its answer, or refuse a
given submit outright.

It checks no signature and no parameter: it exists to show that what the gateway sends for a
kind comes back through describe, list and cancel without losing a node. The emulator remains
the peer for everything about how the gateway signs and what CI accepts. `echo_gateway` puts a
real gateway in front of it.
"""

from __future__ import annotations

import copy
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field

import grpc
from aiohttp import web
from lxml import etree

from gateway._proto import service_pb2_grpc
from gateway.api.server import start_gateway
from gateway.config.settings import Callbacks, Settings
from gateway.credentials import Credentials, StaticCredentialsProvider
from gateway.upstream.xml_codec import parse_document
from tests.conftest import BUCKET, REGION
from tests.fixtures.servers import serve_app

QUEUE_ID = "p893bcda225bf4945a378da6662e81a89"
CREATED = "2023-07-12T10:00:00+0800"
SECRET = Credentials("AKIDechoci00000000000000000000000", "echo-ci-secret-key-never-shown")


@dataclass
class EchoCI:
    # tag -> the result nodes describe adds under `Operation` once the job is done.
    results: dict[str, Callable[[], list[etree._Element]]] = field(default_factory=dict)
    # Answer this many submits with a 500 *after* storing the job (a lost answer).
    lose_answers: int = 0
    # The next multi-operation submit creates only its first n jobs (a partial outcome).
    create_only: int | None = None
    # The next answer names only its first n jobs (all are created).
    answer_only: int | None = None
    # Refuse the submit with this number (1 = the first) with a 400, creating nothing.
    refuse_submit: int | None = None
    # Echo the request's `CallBack` in each job's JobsDetail (documented CI does not; a CI that
    # did would hand the gateway's callback URL, token included, back to its callers).
    echo_callback: bool = False
    url: str = ""
    jobs: dict[str, etree._Element] = field(default_factory=dict)
    bodies: list[bytes] = field(default_factory=list)
    calls: list[str] = field(default_factory=list)

    async def handle(self, request: web.Request) -> web.StreamResponse:
        self.calls.append(f"{request.method} {request.path}")
        if request.method == "POST" and request.path == "/jobs":
            return await self._submit(request)
        if request.method == "GET" and request.path == "/jobs":
            return self._list(request)
        if request.method == "GET" and request.path.startswith("/jobs/"):
            return self._describe(request.path.removeprefix("/jobs/").split(","))
        if request.method == "PUT" and request.path.startswith("/jobs/"):
            job = self.jobs[request.path.removeprefix("/jobs/")]
            _set(job, "State", "Cancel")
            return web.Response(status=200)
        return web.Response(status=404)

    async def _submit(self, request: web.Request) -> web.StreamResponse:
        body = await request.read()
        self.bodies.append(body)
        if len(self.bodies) == self.refuse_submit:
            return web.Response(
                status=400, body=b"<Error><Code>InvalidArgument</Code><Message>no</Message></Error>"
            )
        sent = parse_document(body)
        if sent.find("Tag") is None and sent.find("Operation/Tag") is not None:
            # The multi-operation form: one job per Operation, each naming its own Tag.
            operations = sent.findall("Operation")
            if self.create_only is not None:
                operations, self.create_only = operations[: self.create_only], None
            created = [self._create(sent, op.findtext("Tag") or "", op) for op in operations]
        else:
            created = [self._create(sent, sent.findtext("Tag") or "", sent.find("Operation"))]
        if self.lose_answers > 0:
            self.lose_answers -= 1
            return web.Response(status=500, body=b"<Error><Code>InternalError</Code></Error>")
        if self.answer_only is not None:
            created, self.answer_only = created[: self.answer_only], None
        return _answer(created)

    def _create(
        self, sent: etree._Element, tag: str, operation: etree._Element | None
    ) -> etree._Element:
        job = etree.Element("JobsDetail")
        job_id = "j" + uuid.uuid4().hex
        for name, text in (
            ("Code", "Success"),
            ("Message", "Success"),
            ("JobId", job_id),
            ("Tag", tag),
            ("State", "Submitted"),
            ("CreationTime", CREATED),
            ("StartTime", "-"),
            ("EndTime", "-"),
            ("QueueId", sent.findtext("QueueId") or QUEUE_ID),
        ):
            etree.SubElement(job, name).text = text
        if self.echo_callback and sent.find("CallBack") is not None:
            etree.SubElement(job, "CallBack").text = sent.findtext("CallBack")
        inputs = etree.SubElement(job, "Input")
        etree.SubElement(inputs, "Object").text = sent.findtext("Input/Object")
        echo = copy.deepcopy(operation) if operation is not None else etree.Element("Operation")
        for node in echo.findall("Tag"):
            echo.remove(node)
        job.append(echo)
        self.jobs[job_id] = job
        return job

    def _describe(self, job_ids: list[str]) -> web.StreamResponse:
        found = []
        for job_id in job_ids:
            job = self.jobs.get(job_id)
            if job is None:
                continue
            if job.findtext("State") == "Submitted":
                self._finish(job)
            found.append(job)
        return _answer(found)

    def _finish(self, job: etree._Element) -> None:
        _set(job, "State", "Success")
        _set(job, "StartTime", "2023-07-12T10:00:01+0800")
        _set(job, "EndTime", "2023-07-12T10:00:09+0800")
        operation = job.find("Operation")
        assert operation is not None
        make = self.results.get(job.findtext("Tag") or "")
        for node in make() if make is not None else []:
            operation.append(node)

    def _list(self, request: web.Request) -> web.StreamResponse:
        tag, key = request.query.get("tag"), request.query.get("inputObject")
        found = [
            job
            for job in self.jobs.values()
            if job.findtext("Tag") == tag and (key is None or job.findtext("Input/Object") == key)
        ]
        return _answer(found, next_token=True)


def _set(job: etree._Element, name: str, text: str) -> None:
    node = job.find(name)
    assert node is not None
    node.text = text


def _answer(jobs: list[etree._Element], *, next_token: bool = False) -> web.Response:
    root = etree.Element("Response")
    for job in jobs:
        root.append(copy.deepcopy(job))
    if next_token:
        etree.SubElement(root, "NextToken")
    return web.Response(
        body=etree.tostring(root, xml_declaration=True, encoding="utf-8"),
        content_type="application/xml",
    )


@asynccontextmanager
async def echo_ci(**options: object) -> AsyncIterator[EchoCI]:
    fake = EchoCI(**options)  # type: ignore[arg-type]
    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", fake.handle)
    async with serve_app(app) as fake.url:
        yield fake


@asynccontextmanager
async def echo_gateway(
    fake: EchoCI, callbacks: Callbacks | None = None
) -> AsyncIterator[service_pb2_grpc.MediaJobServiceAsyncStub]:
    """A gateway whose CI is `fake` (bucket `BUCKET` in `REGION`), and a stub to call it."""
    settings = Settings(
        listen="127.0.0.1:0",
        default_bucket=BUCKET,
        default_region=REGION,
        endpoint_url=fake.url,
        callbacks=callbacks or Callbacks(),
    )
    running = await start_gateway(settings, StaticCredentialsProvider(SECRET))
    try:
        async with grpc.aio.insecure_channel(running.address) as channel:
            yield service_pb2_grpc.MediaJobServiceStub(channel)
    finally:
        await running.stop(0)
