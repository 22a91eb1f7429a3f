"""DescribeMediaJobs naming more ids than one CI request carries, end to end: a real channel, the
gateway, the emulator (which refuses more than 10 ids a request, as the gateway assumes CI may).

The batches are sent together and answered as one, in the order asked; one batch failing fails
the call with its error, never a partial answer."""

from __future__ import annotations

import asyncio
import json
from typing import TYPE_CHECKING

import grpc
import pytest
from aiohttp import web

from ci_emulator.errors import CiError
from ci_emulator.hosts import Target
from ci_emulator.server import RunningEmulator
from gateway._proto import media_pb2, service_pb2
from gateway.api.server import RunningGateway
from gateway.logs import JsonFormatter
from tests.fixtures.logs import access_lines
from tests.integration.helpers import refused, rich_error

M, S = media_pb2, service_pb2
if TYPE_CHECKING:
    from gateway._proto.service_pb2_grpc import MediaJobServiceAsyncStub as Stub

WAIT_S = 10.0


def unknown(index: int) -> str:
    return f"j{index:032x}"


class Describes:
    """Every describe request the emulator receives: its ids, and how many are out at once."""

    def __init__(self) -> None:
        self.ids: list[list[str]] = []
        self.out = 0
        self.most_out = 0
        self.gate: asyncio.Event | None = None  # when set, requests wait for it
        self._arrived = asyncio.Event()

    async def wait_out(self, count: int) -> None:
        """Until `count` requests are out at once."""
        async with asyncio.timeout(WAIT_S):
            while self.out < count:  # bounded by the timeout
                self._arrived.clear()
                await self._arrived.wait()

    async def hook(self, request: web.Request, target: Target) -> web.StreamResponse | None:
        if request.method != "GET" or not target.path.startswith("/jobs/"):
            return None
        self.ids.append(target.path[len("/jobs/") :].split(","))
        self.out += 1
        self.most_out = max(self.most_out, self.out)
        self._arrived.set()
        try:
            if self.gate is not None:
                async with asyncio.timeout(WAIT_S):
                    await self.gate.wait()
        finally:
            self.out -= 1
        return None


@pytest.fixture
def describes(emulator: RunningEmulator) -> Describes:
    seen = Describes()
    emulator.state.request_hooks.append(seen.hook)
    return seen


async def submitted(stub: Stub, count: int) -> list[str]:
    ids = []
    for _ in range(count):
        answer = await stub.SubmitMediaJob(
            S.SubmitMediaJobRequest(request=M.Request(input=M.Input(object="input/sample.mp4"))),
            timeout=WAIT_S,
        )
        ids.append(answer.jobs_detail.job_id)
    return ids


async def test_25_ids_with_unknown_ones_and_a_repeat_are_one_answer_in_the_order_asked(
    stub: Stub, emulator: RunningEmulator, describes: Describes
) -> None:
    emulator.state.pause_scheduling()  # the jobs stay Submitted: nothing changes mid-test
    jobs = await submitted(stub, 20)
    missing = [unknown(index) for index in range(4)]
    # Known and unknown interleaved, the unknown ones not in the order CI would list them, and
    # one job asked twice: 25 ids, 24 distinct, so three requests (10, 10, 4).
    asked = [*jobs[:7], missing[2], *jobs[7:15], missing[0], jobs[3], *jobs[15:]]
    asked += [missing[3], missing[1]]
    assert len(asked) == 25
    distinct = list(dict.fromkeys(asked))
    with access_lines(JsonFormatter()) as logs:
        call = stub.DescribeMediaJobs(S.DescribeMediaJobsRequest(job_ids=asked), timeout=WAIT_S)
        answer = await call
    assert [job.job_id for job in answer.jobs_detail] == jobs
    assert list(answer.non_exist_job_ids) == [missing[2], missing[0], missing[3], missing[1]]
    assert all(job.state == M.JOB_STATE_SUBMITTED for job in answer.jobs_detail)
    # Ten ids a request at most, each distinct id asked once (the batches may arrive in any order).
    batches = {tuple(distinct[start : start + 10]) for start in (0, 10, 20)}
    assert {tuple(ids) for ids in describes.ids} == batches and len(describes.ids) == 3
    # CI's RequestId of every request in the trailers, and the same in the access line.
    trailers = dict(await call.trailing_metadata())
    request_ids = str(trailers["x-ci-request-id"]).split(",")
    assert len(request_ids) == 3 and len(set(request_ids)) == 3 and all(request_ids)
    (line,) = [json.loads(text) for text in logs.getvalue().splitlines()]
    assert line["grpc_method"].endswith("/DescribeMediaJobs") and line["grpc_code"] == "OK"
    assert line["ci_request_id"] == trailers["x-ci-request-id"]
    assert line["attempts"] == 3


async def test_up_to_ten_ids_is_still_one_request(stub: Stub, describes: Describes) -> None:
    ids = [unknown(index) for index in range(10)]
    answer = await stub.DescribeMediaJobs(S.DescribeMediaJobsRequest(job_ids=ids), timeout=WAIT_S)
    assert list(answer.non_exist_job_ids) == ids
    assert describes.ids == [ids]


async def test_batches_are_sent_together_but_at_most_four_at_once(
    stub: Stub, describes: Describes
) -> None:
    describes.gate = asyncio.Event()
    ids = [unknown(index) for index in range(100)]
    call = stub.DescribeMediaJobs(S.DescribeMediaJobsRequest(job_ids=ids), timeout=WAIT_S)
    await describes.wait_out(4)
    assert describes.out == 4  # the others wait for a place, not for the first to answer
    describes.gate.set()
    answer = await call
    assert list(answer.non_exist_job_ids) == ids
    assert len(describes.ids) == 10 and describes.most_out == 4


async def test_more_than_a_hundred_ids_are_refused_naming_the_field(
    stub: Stub, describes: Describes
) -> None:
    ids = [unknown(index) for index in range(101)]
    error = await refused(stub.DescribeMediaJobs(S.DescribeMediaJobsRequest(job_ids=ids)))
    assert error.violations == {"job_ids": "at most 100 ids per call, got 101"}
    assert describes.ids == []


async def test_a_batch_retried_after_a_transient_error_still_gives_one_whole_answer(
    stub: Stub, emulator: RunningEmulator, describes: Describes
) -> None:
    ids = [unknown(index) for index in range(25)]
    failed: list[str] = []

    async def second_batch_fails_once(request: web.Request, target: Target) -> None:
        if target.path.startswith("/jobs/" + ids[10]) and not failed:
            failed.append(target.path)
            raise CiError("InternalError", "try again", status=500)

    emulator.state.request_hooks.append(second_batch_fails_once)
    with access_lines(JsonFormatter()) as logs:
        answer = await stub.DescribeMediaJobs(
            S.DescribeMediaJobsRequest(job_ids=ids), timeout=WAIT_S
        )
    assert list(answer.non_exist_job_ids) == ids
    assert len(failed) == 1 and len(describes.ids) == 4  # three batches, one of them twice
    (line,) = [json.loads(text) for text in logs.getvalue().splitlines()]
    assert line["grpc_code"] == "OK" and line["attempts"] == 4


async def test_one_batch_failing_fails_the_call_with_its_error_and_no_partial_answer(
    stub: Stub, emulator: RunningEmulator, describes: Describes, gateway: RunningGateway
) -> None:
    ids = [unknown(index) for index in range(30)]
    describes.gate = asyncio.Event()  # the first and third batches are held, unanswered

    async def second_batch_is_refused(request: web.Request, target: Target) -> None:
        if target.path.startswith("/jobs/" + ids[10]):
            await describes.wait_out(2)  # refused only once the other two are out
            raise CiError("AccessDenied", "not for these jobs", status=403)

    emulator.state.request_hooks.insert(0, second_batch_is_refused)
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await stub.DescribeMediaJobs(S.DescribeMediaJobsRequest(job_ids=ids), timeout=WAIT_S)
    error = rich_error(caught.value)
    assert error.code is grpc.StatusCode.FAILED_PRECONDITION, error
    assert error.error_info is not None
    assert error.error_info.reason == "UPSTREAM_ACCESS_DENIED"
    assert error.error_info.metadata["ci_code"] == "AccessDenied"
    assert error.error_info.metadata["attempts"] == "1"  # its own; the others never answered
    # The call ended while the other batches were held, and took them with it: no request
    # towards CI is left waiting for an answer nobody will read.
    assert not describes.gate.is_set()
    in_flight = gateway.metrics.samples("ci_upstream_requests_in_flight")
    assert {labels["operation"]: value for labels, value in in_flight}["DescribeMediaJob"] == 0
    describes.gate.set()
