"""Exactly-once submit where CI's answer to `POST /jobs` is lost after CI accepted it, and the
honesty of what a failed submit reports.

CI's answer is mangled by a small proxy between the gateway and the emulator (the emulator
itself always answers well-formed XML): the job exists in the emulator, and only the 200's body
the gateway reads is cut in half, garbled or empty. Everything else is the emulator, which
counts the requests and jobs the gateway really caused.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, cast

import aiohttp
import grpc
import pytest
from aiohttp import web
from yarl import URL

from ci_emulator.faults import FaultSpec
from ci_emulator.server import RunningEmulator
from gateway._proto import media_pb2, service_pb2
from gateway.credentials import Credentials
from gateway.rpc_context import CI_REQUEST_ID_METADATA
from tests.conftest import settings_for
from tests.fixtures.servers import serve_app
from tests.integration.helpers import rich_error
from tests.jobs.helpers import gateway

if TYPE_CHECKING:
    from gateway._proto.service_pb2_grpc import MediaJobServiceAsyncStub as Stub

M, S = media_pb2, service_pb2
Mangle = Callable[[bytes], bytes]
# Hop-by-hop and framing headers the proxy recomputes rather than copies.
_NOT_COPIED = frozenset({"content-length", "transfer-encoding", "content-encoding", "connection"})


@dataclass
class ManglingProxy:
    """Forwards every request to the emulator; the first 200 answer to `POST /jobs` reaches
    the gateway with its body passed through `mangle` (well framed: the HTTP exchange itself
    succeeds, only the XML is bad)."""

    upstream: str
    mangle: Mangle
    session: aiohttp.ClientSession
    # The status that answer reaches the gateway with instead of CI's 200 (None: kept).
    status: int | None = None
    # Told of every request once CI's answer to it is in, before the gateway gets it.
    answered: Callable[[web.Request], None] | None = None
    url: str = ""
    mangled: list[bytes] = field(default_factory=list)

    async def handle(self, request: web.Request) -> web.Response:
        headers = {k: v for k, v in request.headers.items() if k.lower() not in _NOT_COPIED}
        async with self.session.request(
            request.method,
            URL(self.upstream + request.raw_path, encoded=True),
            headers=headers,
            data=await request.read(),
            allow_redirects=False,
        ) as answer:
            body = await answer.read()
            status, answer_headers = answer.status, answer.headers
        if (request.method, request.path, status) == ("POST", "/jobs", 200) and not self.mangled:
            self.mangled.append(body)
            body = self.mangle(body)
            status = self.status or status
        if self.answered is not None:
            self.answered(request)
        copied = {k: v for k, v in answer_headers.items() if k.lower() not in _NOT_COPIED}
        return web.Response(status=status, body=body, headers=copied)


@asynccontextmanager
async def mangling_proxy(
    upstream: str,
    mangle: Mangle,
    status: int | None = None,
    answered: Callable[[web.Request], None] | None = None,
) -> AsyncIterator[ManglingProxy]:
    async with aiohttp.ClientSession(
        auto_decompress=False, skip_auto_headers=("User-Agent", "Accept", "Accept-Encoding")
    ) as session:
        proxy = ManglingProxy(upstream, mangle, session, status, answered)
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", proxy.handle)
        async with serve_app(app) as proxy.url:
            yield proxy


def submit_request(request_id: str, key: str = "input/sample.mp4") -> S.SubmitMediaJobRequest:
    return S.SubmitMediaJobRequest(
        request_id=request_id,
        request=M.Request(input=M.Input(object=key), operation=M.Operation(user_data="mine")),
    )


@pytest.mark.parametrize(
    "mangle",
    [
        lambda body: body[: len(body) // 2],  # cut in half
        lambda body: body.replace(b"<", b"{"),  # garbled: not XML at all
        lambda body: b"",  # empty
        # CI's error under the 200 (a terminal Code at that): no proof that nothing was made.
        lambda body: b"<Error><Code>InvalidArgument</Code><Message>m</Message></Error>",
    ],
    ids=["half", "garbled", "empty", "error"],
)
async def test_an_unreadable_200_to_a_submit_is_reconciled_into_the_one_job(
    emulator: RunningEmulator, credentials: Credentials, mangle: Mangle
) -> None:
    """CI answered 200, so it accepted the submit: the job probably exists. The gateway must
    look for it before sending again, and a repeat must return that same job."""
    emulator.state.pause_scheduling()
    async with mangling_proxy(emulator.url, mangle) as proxy:
        settings = replace(settings_for(emulator), endpoint_url=proxy.url)
        async with gateway(settings, credentials) as running:
            first = await running.stub.SubmitMediaJob(submit_request("rid-mangled"), timeout=10)
            again = await running.stub.SubmitMediaJob(submit_request("rid-mangled"), timeout=10)
    assert len(proxy.mangled) == 1  # the first answer really was unreadable
    assert emulator.state.jobs_created == 1
    (job_id,) = emulator.state.jobs
    assert first.jobs_detail.job_id == again.jobs_detail.job_id == job_id
    assert first.jobs_detail.operation.user_data == "mine"  # the marker stripped, as always


LB_PAGE = b"<html><body><h1>520 Origin Error</h1></body></html>"


@pytest.mark.parametrize("status", [505, 507, 520, 599])
async def test_any_5xx_to_a_submit_is_reconciled_into_the_one_job(
    emulator: RunningEmulator, credentials: Credentials, status: int
) -> None:
    """A 5xx may come after CI made the job, whatever its number: one outside 500-504 (a load
    balancer's 520, a 507) without a CI code the gateway knows is no proof that nothing was
    made. The gateway must look for the job before answering, even for an id it made itself
    (a caller told UNAVAILABLE without SUBMIT_OUTCOME_UNKNOWN would submit again, anew)."""
    emulator.state.pause_scheduling()
    async with mangling_proxy(emulator.url, lambda body: LB_PAGE, status) as proxy:
        settings = replace(settings_for(emulator), endpoint_url=proxy.url)
        async with gateway(settings, credentials) as running:
            answer = await running.stub.SubmitMediaJob(submit_request(""), timeout=10)
    assert len(proxy.mangled) == 1  # CI's 200 really reached the gateway as that 5xx
    assert emulator.state.jobs_created == 1
    (job_id,) = emulator.state.jobs
    assert answer.jobs_detail.job_id == job_id


async def test_a_failed_submit_reports_every_attempt_and_cis_request_id(
    stub: Stub, emulator: RunningEmulator
) -> None:
    """CI fails every POST with a 5xx (which may come after the job was made): the gateway
    reconciles between sends (at once, and again after letting CI settle) and ends
    SUBMIT_OUTCOME_UNKNOWN. What it reports must be true:
    every HTTP attempt counted, and CI's RequestId of the last answer in RequestInfo and in
    the `x-ci-request-id` trailer."""
    emulator.state.pause_scheduling()
    emulator.state.faults.set("CreateMediaJobs", FaultSpec(error_500=1.0))
    seen = emulator.state.requests_seen
    operations = dict(emulator.state.operations)
    call = stub.SubmitMediaJob(submit_request("rid-5xx"), timeout=10)
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await call
    error = rich_error(caught.value)
    assert error.code is grpc.StatusCode.UNAVAILABLE
    assert error.error_info is not None
    assert error.error_info.reason == "SUBMIT_OUTCOME_UNKNOWN"
    sent = emulator.state.requests_seen - seen
    posts = emulator.state.operations["CreateMediaJobs"] - operations.get("CreateMediaJobs", 0)
    lists = emulator.state.operations["DescribeMediaJobs"] - operations.get("DescribeMediaJobs", 0)
    # The store-recovery look before the first send; two looks before each resend.
    assert (posts, lists) == (3, 5)
    assert error.error_info.metadata["attempts"] == str(sent) == "8"
    ci_request_id = error.error_info.metadata["ci_request_id"]
    assert ci_request_id
    assert error.request_info is not None and error.request_info.request_id == ci_request_id
    trailing = dict(cast("Iterable[tuple[str, str]]", caught.value.trailing_metadata() or ()))
    assert trailing[CI_REQUEST_ID_METADATA] == ci_request_id
    assert emulator.state.jobs_created == 0

    # And the repeat, with CI well again, creates the job once.
    emulator.state.faults.clear()
    job = (await stub.SubmitMediaJob(submit_request("rid-5xx"), timeout=10)).jobs_detail
    assert emulator.state.jobs_created == 1 and job.job_id in emulator.state.jobs
