"""Shared mode: a submit's request_id is the client's own. Two clients that pick the same
natural id ("order-123") each get their own job, never the other's, and never a refusal for the
other's use of it; what each reads (trailers, errors) shows the id it sent.

End to end: real gateways in shared mode (bearer tokens) in front of the emulator, over a real
gRPC channel. Sidecar mode keeps its markers byte for byte: jobs made before still match.
"""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING, cast

import grpc
import pytest

from ci_emulator.faults import FaultSpec
from ci_emulator.server import RunningEmulator
from gateway._proto import media_pb2, service_pb2, service_pb2_grpc
from gateway.access.interceptor import ClientAccess
from gateway.api.server import RunningGateway
from gateway.api.service import REQUEST_ID_METADATA
from tests.access.helpers import token_access_file
from tests.conftest import SAMPLE_KEY
from tests.fixtures.accounts import Serve
from tests.integration.helpers import rich_error
from tests.integration.hold import HOLD_S, Hold

if TYPE_CHECKING:
    from gateway._proto.service_pb2_grpc import MediaJobServiceAsyncStub as Stub

M, S = media_pb2, service_pb2
ALPHA, BETA = "alpha-team", "beta-team"
TOKENS = {ALPHA: "tok-" + secrets.token_urlsafe(24), BETA: "tok-" + secrets.token_urlsafe(24)}
Metadata = tuple[tuple[str, str], ...]


def as_client(name: str) -> Metadata:
    return (("authorization", f"Bearer {TOKENS[name]}"),)


async def shared_gateway(serve: Serve, tmp_path: Path) -> RunningGateway:
    """A gateway in shared mode with its own embedded store (a replica of its own)."""
    directory = tmp_path / secrets.token_hex(4)
    directory.mkdir()
    return await serve(
        ClientAccess.from_file(token_access_file(directory / "access.toml", *TOKENS.items()))
    )


def single(request_id: str, user_data: str) -> S.SubmitMediaJobRequest:
    body = M.Request(input=M.Input(object=SAMPLE_KEY), operation=M.Operation(user_data=user_data))
    return S.SubmitMediaJobRequest(request_id=request_id, request=body)


def multi(request_id: str, user_data: str) -> S.SubmitMediaJobsRequest:
    operations = [M.Operation(tag="MediaInfo", user_data=f"{user_data}-{i}") for i in range(2)]
    body = M.MultiOperationRequest(input=M.Input(object=SAMPLE_KEY), operation=operations)
    return S.SubmitMediaJobsRequest(request_id=request_id, request=body)


async def submit(stub: Stub, form: str, request_id: str, user_data: str, who: str) -> list[str]:
    """One submit of `form` as client `who`: the job ids of its answer, in operation order."""
    if form == "single":
        answer = await stub.SubmitMediaJob(
            single(request_id, user_data), metadata=as_client(who), timeout=10
        )
        return [answer.jobs_detail.job_id]
    answers = await stub.SubmitMediaJobs(
        multi(request_id, user_data), metadata=as_client(who), timeout=10
    )
    return [job.job_id for job in answers.jobs_detail]


FORMS = pytest.mark.parametrize("form", ["single", "multi"])


@FORMS
async def test_two_clients_with_one_request_id_each_get_their_own_job(
    serve: Serve, tmp_path: Path, emulator2: RunningEmulator, form: str
) -> None:
    """Different requests under the same id: neither is refused as a reuse, and a repeat
    returns each client its own job."""
    emulator2.state.pause_scheduling()
    gateway = await shared_gateway(serve, tmp_path)
    async with grpc.aio.insecure_channel(gateway.address) as channel:
        stub = service_pb2_grpc.MediaJobServiceStub(channel)
        alphas = await submit(stub, form, "order-123", "alpha's", ALPHA)
        betas = await submit(stub, form, "order-123", "beta's", BETA)
        created = emulator2.state.jobs_created
        assert not set(alphas) & set(betas)
        assert created == len(alphas) + len(betas)
        assert await submit(stub, form, "order-123", "alpha's", ALPHA) == alphas
        assert await submit(stub, form, "order-123", "beta's", BETA) == betas
    assert emulator2.state.jobs_created == created
    for job_id in alphas:
        assert (emulator2.state.jobs[job_id].spec.user_data or "").startswith("alpha's")
    for job_id in betas:
        assert (emulator2.state.jobs[job_id].spec.user_data or "").startswith("beta's")


@FORMS
async def test_a_first_submit_does_not_adopt_another_clients_job_of_the_same_id(
    serve: Serve, tmp_path: Path, emulator2: RunningEmulator, form: str
) -> None:
    """The reconcile path: a caller's id the store does not know is looked for in CI before the
    first POST. Two replicas with their own stores, and the very same request under the same id
    (same tag, same input object): beta's look must not find alpha's job by its marker."""
    emulator2.state.pause_scheduling()
    first = await shared_gateway(serve, tmp_path)
    second = await shared_gateway(serve, tmp_path)
    async with (
        grpc.aio.insecure_channel(first.address) as one,
        grpc.aio.insecure_channel(second.address) as two,
    ):
        stub_one = service_pb2_grpc.MediaJobServiceStub(one)
        stub_two = service_pb2_grpc.MediaJobServiceStub(two)
        alphas = await submit(stub_one, form, "order-7", "same", ALPHA)
        betas = await submit(stub_two, form, "order-7", "same", BETA)  # a miss on replica two
        assert not set(alphas) & set(betas)
        created = emulator2.state.jobs_created
        assert created == len(alphas) + len(betas)
        # Each repeat on the replica that never saw it reconciles, and finds its own job.
        assert await submit(stub_one, form, "order-7", "same", BETA) == betas
        assert await submit(stub_two, form, "order-7", "same", ALPHA) == alphas
    assert emulator2.state.jobs_created == created


async def test_concurrent_submits_of_two_clients_do_not_share_a_flight(
    serve: Serve, tmp_path: Path, emulator2: RunningEmulator
) -> None:
    """Concurrent calls with one request_id in a process share one flight, but only the same
    client's: both clients' first looks (their recovery listings) are held in CI at once, which
    a call following the other client's flight would never send."""
    emulator2.state.pause_scheduling()
    gateway = await shared_gateway(serve, tmp_path)
    hold = Hold(2)
    emulator2.state.request_hooks.append(hold)
    async with grpc.aio.insecure_channel(gateway.address) as channel:
        stub = service_pb2_grpc.MediaJobServiceStub(channel)
        calls = [
            asyncio.ensure_future(submit(stub, "single", "order-5", "same", who))
            for who in (ALPHA, BETA)
        ]
        try:
            await asyncio.wait_for(hold.full.wait(), HOLD_S / 2)
        finally:
            hold.release.set()
            emulator2.state.request_hooks.remove(hold)
        alphas, betas = await asyncio.gather(*calls)
    assert alphas != betas
    assert emulator2.state.jobs_created == 2


def trailers(metadata: object) -> dict[str, str]:
    return dict(cast("Iterable[tuple[str, str]]", metadata or ()))


def assert_names_only(text: str, request_id: str) -> None:
    """`text` names the caller's own id and nothing of the scoping (the scoped key holds the
    client's name)."""
    assert repr(request_id) in text
    assert ALPHA not in text and BETA not in text


async def test_trailers_and_errors_show_the_callers_own_request_id(
    serve: Serve, tmp_path: Path, emulator2: RunningEmulator
) -> None:
    emulator2.state.pause_scheduling()
    gateway = await shared_gateway(serve, tmp_path)
    async with grpc.aio.insecure_channel(gateway.address) as channel:
        stub = service_pb2_grpc.MediaJobServiceStub(channel)
        await stub.SubmitMediaJob(
            single("order-9", "alpha's"), metadata=as_client(ALPHA), timeout=10
        )
        call = stub.SubmitMediaJob(
            single("order-9", "beta's"), metadata=as_client(BETA), timeout=10
        )
        await call
        assert trailers(await call.trailing_metadata())[REQUEST_ID_METADATA] == "order-9"

        # Beta's own reuse of its id is refused, in beta's terms.
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await stub.SubmitMediaJob(
                single("order-9", "other"), metadata=as_client(BETA), timeout=10
            )
        error = rich_error(caught.value)
        assert error.code is grpc.StatusCode.INVALID_ARGUMENT
        assert error.error_info is not None
        assert error.error_info.reason == "REQUEST_ID_REUSED"
        assert error.error_info.metadata["request_id"] == "order-9"
        assert_names_only(error.message, "order-9")

        # An outcome left in doubt names the caller's id to retry with.
        emulator2.state.faults.set("CreateMediaJobs", FaultSpec(error_500=1.0))
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await stub.SubmitMediaJob(
                single("order-10", "beta's"), metadata=as_client(BETA), timeout=10
            )
        error = rich_error(caught.value)
        assert error.error_info is not None
        assert error.error_info.reason == "SUBMIT_OUTCOME_UNKNOWN"
        assert error.error_info.metadata["request_id"] == "order-10"
        assert_names_only(error.message, "order-10")


async def test_a_sidecar_submit_carries_the_unscoped_marker(
    stub: Stub, emulator: RunningEmulator
) -> None:
    """The marker of `gateway.jobs.submit.marker("abc")` before scoping existed, pinned."""
    emulator.state.pause_scheduling()
    answer = await stub.SubmitMediaJob(single("abc", "mine"), timeout=10)
    stored = emulator.state.jobs[answer.jobs_detail.job_id].spec.user_data
    assert stored == "mine #cigw:ba7816bf8f01cfea4141"
