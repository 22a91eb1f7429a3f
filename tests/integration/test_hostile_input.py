"""Hostile input to MediaJobService, end to end: a real gateway in front of the emulator.

What a caller can put in a proto string that no CI request can carry (U+FFFE in an object key,
a URL urlsplit cannot read) must be the caller's INVALID_ARGUMENT naming the field, refused
before CI is asked: never INTERNAL, never a request CI would refuse.
"""

from __future__ import annotations

import pytest

from ci_emulator.server import RunningEmulator
from gateway._proto import media_pb2, service_pb2, service_pb2_grpc
from tests.conftest import SAMPLE_KEY
from tests.integration.helpers import refused


@pytest.mark.parametrize(
    "call_back",
    [
        "http://user:pass@[::1/cb",  # urlsplit: "Invalid IPv6 URL" (was INTERNAL)
        "http://callbacks.example:99999/cb",  # urlsplit: port out of range (reached CI)
        "http://callbacks.example/c b",
        "http://callbacks.exa\r\nmple/cb",
    ],
)
async def test_a_call_back_that_is_no_url_is_refused_naming_it(
    stub: service_pb2_grpc.MediaJobServiceAsyncStub, emulator: RunningEmulator, call_back: str
) -> None:
    seen = emulator.state.requests_seen
    request = media_pb2.Request(input=media_pb2.Input(object=SAMPLE_KEY), call_back=call_back)
    error = await refused(
        stub.SubmitMediaJob(service_pb2.SubmitMediaJobRequest(request=request), timeout=10)
    )
    assert set(error.violations) == {"request.call_back"}
    multi = media_pb2.MultiOperationRequest(
        input=media_pb2.Input(object=SAMPLE_KEY),
        call_back=call_back,
        operation=[media_pb2.Operation(tag="MediaInfo")],
    )
    error = await refused(
        stub.SubmitMediaJobs(service_pb2.SubmitMediaJobsRequest(request=multi), timeout=10)
    )
    assert set(error.violations) == {"request.call_back"}
    assert emulator.state.requests_seen == seen


async def test_a_good_call_back_still_submits(
    stub: service_pb2_grpc.MediaJobServiceAsyncStub,
) -> None:
    request = media_pb2.Request(
        input=media_pb2.Input(object=SAMPLE_KEY), call_back="https://[::1]:8443/ci?x=1"
    )
    answer = await stub.SubmitMediaJob(
        service_pb2.SubmitMediaJobRequest(request=request), timeout=10
    )
    assert answer.jobs_detail.job_id


@pytest.mark.parametrize("char", ["\ufffe", "\uffff"])
async def test_an_object_key_xml_cannot_carry_is_refused_by_every_rpc_naming_it(
    stub: service_pb2_grpc.MediaJobServiceAsyncStub, emulator: RunningEmulator, char: str
) -> None:
    """GenerateMediaInfo writes the key into an XML body and checked only for C0 controls: a
    non-character there was INTERNAL. Every key follows one rule, so the other RPCs refuse it
    the same way."""
    key = f"input/{char}.mp4"
    seen = emulator.state.requests_seen
    generate = await refused(
        stub.GenerateMediaInfo(
            service_pb2.GenerateMediaInfoRequest(input=media_pb2.Input(object=key)), timeout=10
        )
    )
    assert set(generate.violations) == {"input.object"}
    get = await refused(stub.GetMediaInfo(service_pb2.GetMediaInfoRequest(object=key), timeout=10))
    assert set(get.violations) == {"object"}
    listed = await refused(
        stub.ListMediaJobs(service_pb2.ListMediaJobsRequest(input_object=key), timeout=10)
    )
    assert set(listed.violations) == {"input_object"}
    assert emulator.state.requests_seen == seen


async def test_a_version_id_with_control_characters_is_refused_naming_it(
    stub: service_pb2_grpc.MediaJobServiceAsyncStub, emulator: RunningEmulator
) -> None:
    """It was checked for length only, and reached CI percent-encoded in the query."""
    seen = emulator.state.requests_seen
    error = await refused(
        stub.GetMediaInfo(
            service_pb2.GetMediaInfoRequest(object=SAMPLE_KEY, version_id="v\x00\r\n1"), timeout=10
        )
    )
    assert set(error.violations) == {"version_id"}
    assert emulator.state.requests_seen == seen
