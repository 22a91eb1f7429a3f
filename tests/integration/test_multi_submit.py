"""SubmitMediaJobs end to end: one call, one job per operation, exactly once per operation.

Against the emulator (which runs MediaInfo jobs and reads CI's multi-operation form): the answer
lists the jobs in operation order, a lost answer is reconciled without a second POST, and 1,000
multi-submits under 20% injected faults create exactly the expected jobs. Against `echo_ci`
(which can create only some of a request's jobs, or name only some in its answer): a partial
outcome never sends an operation whose job was found.
"""

from __future__ import annotations

import hashlib
from typing import TYPE_CHECKING

import grpc
import pytest

from ci_emulator.faults import FaultSpec
from ci_emulator.server import RunningEmulator
from gateway._proto import media_pb2, outputs_pb2, service_pb2
from gateway.api.service import REQUEST_ID_METADATA
from gateway.config.settings import Settings
from gateway.credentials import Credentials
from gateway.jobs.multi_submit import operation_marker
from gateway.jobs.submit import MARKER_HEX, MARKER_PREFIX
from gateway.upstream.xml_codec import parse_document
from tests.integration.echo_ci import echo_ci, echo_gateway
from tests.integration.helpers import rich_error
from tests.integration.under_faults import submit_under_faults
from tests.jobs.helpers import gateway as jobs_gateway

if TYPE_CHECKING:
    from gateway._proto.service_pb2_grpc import MediaJobServiceAsyncStub as Stub

M, S = media_pb2, service_pb2
BUCKET, REGION = "examplebucket-1250000000", "ap-guangzhou"


def multi_request(
    request_id: str, key: str, *user_data: str, tags: tuple[str, ...] = ()
) -> S.SubmitMediaJobsRequest:
    """One operation per `user_data`, MediaInfo unless `tags` names each one's kind."""
    kinds = tags or ("MediaInfo",) * len(user_data)
    operations = [
        M.Operation(tag=tag, user_data=data) for tag, data in zip(kinds, user_data, strict=True)
    ]
    body = M.MultiOperationRequest(input=M.Input(object=key), operation=operations)
    return S.SubmitMediaJobsRequest(request_id=request_id, request=body)


async def test_one_job_per_operation_in_order_and_a_repeat_returns_them(
    stub: Stub, emulator: RunningEmulator
) -> None:
    emulator.state.pause_scheduling()
    request = multi_request("multi-1", "input/sample.mp4", "a", "b", "", "d")
    call = stub.SubmitMediaJobs(request, timeout=10)
    answer = await call
    assert dict(await call.trailing_metadata())[REQUEST_ID_METADATA] == "multi-1"
    assert [job.operation.user_data for job in answer.jobs_detail] == ["a", "b", "", "d"]
    assert [job.tag for job in answer.jobs_detail] == ["MediaInfo"] * 4
    assert len({job.job_id for job in answer.jobs_detail}) == 4 == emulator.state.jobs_created
    # CI holds each operation's own marker; the caller never sees one.
    for index, job in enumerate(answer.jobs_detail):
        stored = emulator.state.jobs[job.job_id].spec.user_data or ""
        assert stored.endswith(operation_marker("multi-1", index))
    assert MARKER_PREFIX not in str(answer)
    assert await stub.SubmitMediaJobs(request, timeout=10) == answer
    assert emulator.state.jobs_created == 4


async def test_a_request_id_names_one_call_whichever_form(
    stub: Stub, emulator: RunningEmulator
) -> None:
    emulator.state.pause_scheduling()
    await stub.SubmitMediaJobs(multi_request("rid-x", "input/sample.mp4", "a"), timeout=10)
    single = S.SubmitMediaJobRequest(
        request_id="rid-x",
        request=M.Request(
            input=M.Input(object="input/sample.mp4"), operation=M.Operation(user_data="a")
        ),
    )
    for refused in (
        stub.SubmitMediaJobs(multi_request("rid-x", "input/sample.mp4", "a", "b"), timeout=10),
        stub.SubmitMediaJob(single, timeout=10),
    ):
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await refused
        error = rich_error(caught.value)
        assert error.error_info is not None and error.error_info.reason == "REQUEST_ID_REUSED"
    assert emulator.state.jobs_created == 1


async def test_a_lost_answer_is_reconciled_without_a_second_post(
    stub: Stub, emulator: RunningEmulator
) -> None:
    emulator.state.pause_scheduling()
    emulator.state.faults.set("CreateMediaJobs", FaultSpec(commit_then_drop=1.0))
    answer = await stub.SubmitMediaJobs(
        multi_request("lost-1", "input/sample.mp4", "x", "y", "z"), timeout=10
    )
    assert emulator.state.faults.injected["CreateMediaJobs:commit_then_drop"] == 1
    assert emulator.state.jobs_created == 3
    assert [job.operation.user_data for job in answer.jobs_detail] == ["x", "y", "z"]
    assert {job.job_id for job in answer.jobs_detail} == set(emulator.state.jobs)


async def test_a_gateway_that_lost_its_store_returns_the_same_jobs(
    settings: Settings, credentials: Credentials, emulator: RunningEmulator
) -> None:
    emulator.state.pause_scheduling()
    request = multi_request("kept-in-ci", "input/sample.mp4", "a", "b", "c")
    async with jobs_gateway(settings, credentials) as first:
        before = await first.stub.SubmitMediaJobs(request, timeout=10)
    async with jobs_gateway(settings, credentials) as restarted:  # an empty embedded store
        after = await restarted.stub.SubmitMediaJobs(request, timeout=10)
    # The same jobs (as CI's listing shows them now), in operation order.
    assert [(j.job_id, j.operation.user_data) for j in after.jobs_detail] == [
        (j.job_id, j.operation.user_data) for j in before.jobs_detail
    ]
    assert emulator.state.jobs_created == 3  # found by their markers, none sent again


async def test_a_probe_and_a_snapshot_in_one_call_and_the_snapshots_outputs(
    stub: Stub, emulator: RunningEmulator
) -> None:
    """The emulator runs both jobs; the Snapshot's `${Number}` keys come back as the objects CI
    (here the emulator) wrote, each with its MD5 and role, without the caller reading
    MediaResult."""
    snapshot = M.Operation(
        tag="Snapshot",
        snapshot={
            "mode": "Average",
            "count": "3",
            "width": "160",
            "snapshot_out_mode": "SnapshotAndSprite",
            "sprite_snapshot_config": {"columns": "2", "lines": "2"},
        },
        output={
            "region": REGION,
            "bucket": BUCKET,
            "object": "snap/${InputName}-${Number}.jpg",
            "sprite_object": "sprite/${Number}.jpg",
        },
    )
    body = M.MultiOperationRequest(
        input=M.Input(object="input/sample.mp4"), operation=[M.Operation(tag="MediaInfo"), snapshot]
    )
    answer = await stub.SubmitMediaJobs(S.SubmitMediaJobsRequest(request=body), timeout=10)
    assert [job.tag for job in answer.jobs_detail] == ["MediaInfo", "Snapshot"]
    done = await stub.WaitMediaJob(
        S.WaitMediaJobRequest(job_id=answer.jobs_detail[1].job_id), timeout=60
    )
    job = done.jobs_detail
    assert job.state == M.JOB_STATE_SUCCESS, job.message
    root = emulator.state.config.buckets[0].root
    assert [(o.key, o.role) for o in job.outputs] == [
        ("snap/sample-0.jpg", outputs_pb2.OUTPUT_ROLE_MAIN),
        ("snap/sample-1.jpg", outputs_pb2.OUTPUT_ROLE_MAIN),
        ("snap/sample-2.jpg", outputs_pb2.OUTPUT_ROLE_MAIN),
        ("sprite/0.jpg", outputs_pb2.OUTPUT_ROLE_SPRITE),
    ]
    for output in job.outputs:
        assert (output.bucket, output.region) == (BUCKET, REGION)
        assert output.md5 == hashlib.md5((root / output.key).read_bytes()).hexdigest()  # noqa: S324
    probe = await stub.WaitMediaJob(
        S.WaitMediaJobRequest(job_id=answer.jobs_detail[0].job_id), timeout=30
    )
    assert probe.jobs_detail.state == M.JOB_STATE_SUCCESS
    assert list(probe.jobs_detail.outputs) == []  # a probe writes nothing


async def test_spaces_around_user_data_and_in_output_keys_come_back_as_ci_keeps_them(
    stub: Stub, emulator: RunningEmulator
) -> None:
    """A space is a legal part of UserData and of an object key, at either end too: CI (here
    the emulator) keeps it, and the answers the caller reads say what CI wrote, so each listed
    output is an object that exists and each UserData is the caller's own."""
    snapshot = M.Operation(
        tag="Snapshot",
        user_data=" lead and trail ",
        snapshot={"mode": "Average", "count": "2", "width": "160"},
        output={"region": REGION, "bucket": BUCKET, "object": "snap/ ${Number} .jpg"},
    )
    operations = [snapshot, M.Operation(tag="MediaInfo", user_data="  ")]
    body = M.MultiOperationRequest(input=M.Input(object="input/sample.mp4"), operation=operations)
    answer = await stub.SubmitMediaJobs(S.SubmitMediaJobsRequest(request=body), timeout=10)
    assert [job.operation.user_data for job in answer.jobs_detail] == [" lead and trail ", "  "]
    job_id = answer.jobs_detail[0].job_id
    done = (await stub.WaitMediaJob(S.WaitMediaJobRequest(job_id=job_id), timeout=60)).jobs_detail
    assert done.state == M.JOB_STATE_SUCCESS, done.message
    root = emulator.state.config.buckets[0].root
    assert [output.key for output in done.outputs] == ["snap/ 0 .jpg", "snap/ 1 .jpg"]
    assert all((root / output.key).is_file() for output in done.outputs)
    assert done.operation.output.object == "snap/ ${Number} .jpg"
    assert done.operation.user_data == " lead and trail "
    described = await stub.DescribeMediaJobs(
        S.DescribeMediaJobsRequest(job_ids=[job_id], include_raw_xml=True), timeout=10
    )
    (job,) = described.jobs_detail
    assert job.operation.user_data == " lead and trail "
    raw = parse_document(job.raw_xml.encode())
    assert raw.findtext("Operation/UserData") == " lead and trail "


async def test_thousand_multi_submits_under_faults_create_exactly_the_expected_jobs(
    stub: Stub, emulator: RunningEmulator
) -> None:
    calls, per_call = 1000, 3
    requests = {
        f"multi-{i:04d}": multi_request(
            f"multi-{i:04d}", f"input/clip-{i:04d}.mp4", *(f"n{i}-{k}" for k in range(per_call))
        )
        for i in range(calls)
    }

    async def submit(request_id: str) -> tuple[str, ...]:
        answer = await stub.SubmitMediaJobs(requests[request_id], timeout=30)
        sent = [operation.user_data for operation in requests[request_id].request.operation]
        assert [job.operation.user_data for job in answer.jobs_detail] == sent
        return tuple(job.job_id for job in answer.jobs_detail)

    jobs_of = await submit_under_faults(emulator, 20261130, requests, submit)

    # Exactly one job per operation: no duplicates, none lost.
    expected = calls * per_call
    assert emulator.state.jobs_created == expected
    every_job = [job_id for jobs in jobs_of.values() for job_id in jobs]
    assert len(set(every_job)) == expected
    per_operation = emulator.state.jobs_by_input
    assert len(per_operation) == expected and set(per_operation.values()) == {1}
    assert set(every_job) == set(emulator.state.jobs)


# ---- partial outcomes, against a CI that can produce them ------------------------------------


def _sent_markers(body: bytes) -> list[str]:
    return [
        (operation.findtext("UserData") or "")[-(len(MARKER_PREFIX) + MARKER_HEX) :]
        for operation in parse_document(body).findall("Operation")
    ]


async def test_a_partial_outcome_resends_only_the_operations_without_a_job() -> None:
    # CI created the first of three jobs and the answer was lost.
    async with echo_ci(create_only=1, lose_answers=1) as fake, echo_gateway(fake) as stub:
        answer = await stub.SubmitMediaJobs(
            multi_request(
                "partial-1",
                "input/demo.mp4",
                "t",
                "v",
                "s",
                tags=("SoundHound", "VideoTag", "SoundHound"),
            ),
            timeout=10,
        )
    markers = [operation_marker("partial-1", index) for index in range(3)]
    assert [_sent_markers(body) for body in fake.bodies] == [markers, markers[1:]]
    # Looked up per tag (one listing for SoundHound, one for VideoTag) before the first POST,
    # as any caller's request_id unknown to the store is, and after the lost answer at once and
    # again once CI had time to settle (operations 1 and 2 still without a job).
    lists, post = ["GET /jobs"] * 2, ["POST /jobs"]
    assert fake.calls == lists + post + lists + lists + post
    assert len(fake.jobs) == 3
    assert [job.tag for job in answer.jobs_detail] == ["SoundHound", "VideoTag", "SoundHound"]
    assert [job.operation.user_data for job in answer.jobs_detail] == ["t", "v", "s"]
    assert {job.job_id for job in answer.jobs_detail} == set(fake.jobs)


async def test_an_answer_naming_some_jobs_is_reconciled_for_the_rest() -> None:
    async with echo_ci(answer_only=1) as fake, echo_gateway(fake) as stub:
        answer = await stub.SubmitMediaJobs(
            multi_request("partial-2", "input/demo.mp4", "a", "b"), timeout=10
        )
    assert len(fake.bodies) == 1 and len(fake.jobs) == 2  # found by listing, never resent
    assert [job.operation.user_data for job in answer.jobs_detail] == ["a", "b"]
    assert {job.job_id for job in answer.jobs_detail} == set(fake.jobs)


async def test_a_refusal_after_some_jobs_exist_names_them_and_never_resends_them() -> None:
    # The first POST created operation 0 only and its answer was lost; CI refuses the resend of
    # operations 1 and 2 for certain (a 400). Operation 0's job exists: the record stays in doubt.
    async with echo_ci(create_only=1, lose_answers=1, refuse_submit=2) as fake:
        async with echo_gateway(fake) as stub:
            request = multi_request("partial-3", "input/demo.mp4", "a", "b", "c")
            with pytest.raises(grpc.aio.AioRpcError) as caught:
                await stub.SubmitMediaJobs(request, timeout=10)
            error = rich_error(caught.value)
            assert error.code is grpc.StatusCode.INVALID_ARGUMENT  # CI's own answer
            assert error.error_info is not None
            assert error.error_info.metadata["operations_with_a_job"] == "0"
            assert error.error_info.metadata["request_id"] == "partial-3"
            # Every request made for the call: look, POST (lost), reconcile at once and after
            # the settle, POST (refused).
            assert error.error_info.metadata["attempts"] == "5"
            # The caller retries with the same request_id once CI accepts again.
            answer = await stub.SubmitMediaJobs(request, timeout=10)
    markers = [operation_marker("partial-3", index) for index in range(3)]
    assert [_sent_markers(body) for body in fake.bodies] == [markers, markers[1:], markers[1:]]
    assert len(fake.jobs) == 3
    assert [job.operation.user_data for job in answer.jobs_detail] == ["a", "b", "c"]
